"""uvicorn's HTTP/1.1 protocol with a deadline on request headers, and the uvicorn settings that
bound the work in flight (``digitlens serve`` passes :func:`uvicorn_limits` to ``uvicorn.run``).

uvicorn closes a connection that stays idle between requests (``timeout_keep_alive``), but a
client that sends one byte of its headers every few seconds is never idle and was kept forever.
:class:`DeadlineH11Protocol` closes a connection whose request headers are not complete within
:data:`HEADER_TIMEOUT` seconds of the connection opening (or of the previous response).  Request
*bodies* have their own deadline in :class:`~digitlens.view.server.security.SecurityMiddleware`.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

#: seconds a client has to send complete request headers
HEADER_TIMEOUT = 10.0
#: connections served at once by one process; uvicorn answers 503 beyond (a class of 30 with a
#: few tabs each fits)
LIMIT_CONCURRENCY = 128


class DeadlineH11Protocol(H11Protocol):
    """:class:`uvicorn.protocols.http.h11_impl.H11Protocol`, closing connections whose request
    headers take longer than :data:`HEADER_TIMEOUT` to arrive."""

    header_timeout = HEADER_TIMEOUT

    def connection_made(self, transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        handle = getattr(self, "_header_deadline", None)
        if handle is not None:
            handle.cancel()
        self._header_deadline = None

    def _too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before:  # a request's headers are complete: its cycle began
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection gets its own deadline

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)


def uvicorn_limits() -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.run`` that bound a server's work: the protocol with
    the header deadline, the concurrency limit, the keep-alive timeout."""
    return {"http": DeadlineH11Protocol, "limit_concurrency": LIMIT_CONCURRENCY,
            "timeout_keep_alive": 5}


__all__ = ["DeadlineH11Protocol", "HEADER_TIMEOUT", "LIMIT_CONCURRENCY", "uvicorn_limits"]
