"""Who may talk to the server, and how much at once: one ASGI middleware in front of every route.

A learner's server runs on their own computer while they browse the web.  Any page they visit
can make their browser send requests to ``http://127.0.0.1:8000``; without these checks such a
page could start the lab, cancel a job or retrain and overwrite their models.  The checks, in
the order they run:

1. **Host** (DNS rebinding): an attacker's name (``evil.example``) can be made to resolve to
   127.0.0.1, and the browser then treats the server as part of the attacker's site.  Only the
   loopback names (``localhost``, 127.0.0.0/8, ``::1``), the ``--host`` value and names given
   with ``--allowed-host`` are accepted; when the server listens on every interface
   (``--host 0.0.0.0``) any IP address is accepted too, since rebinding needs a *name*.  Else 403
   ``host_not_allowed``.
2. **Origin**: a browser names the page that made a request in ``Origin``.  A request naming any
   origin other than this server's own gets 403 ``cross_origin``.  (Tools such as curl and the
   CLI send no ``Origin`` and are not affected.)
3. **Content type** of state-changing requests (POST, PUT, PATCH, DELETE): JSON, or image bytes
   on the explain endpoints (:data:`IMAGE_PATHS`), or no body at all.  A web page can send the
   other types (forms, ``text/plain``) to any server without asking first; JSON and images it
   cannot.  Else 415 ``unsupported_media_type``.
4. **Teacher token**: when the server has a token (``digitlens serve --token``), the endpoints
   that train, run the lab or cancel jobs (:data:`TEACHER_ROUTES`) need
   ``Authorization: Bearer <token>``; else 401 ``teacher_only``.  Class mode (issue 17) turns
   this on for a class.
5. **Work in flight**: the heavy endpoints (:data:`HEAVY_PATHS`) take a place before their body
   is read; when ``max_in_flight`` requests are already being read or computed the answer is 503
   ``busy`` with ``Retry-After``, so 40 clients posting 11 MB each cannot make the server hold
   40 bodies at once.  Each piece of a body must arrive within ``body_timeout`` seconds (408
   ``body_timeout``): a client dripping a byte at a time is cut off.

Every refusal is the usual JSON error body (:func:`~.errors.error_response`).
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from typing import Iterable

import anyio

from .errors import BodyTimeout, error_response

#: names that always reach only this computer
LOOPBACK_NAMES = ("localhost",)
#: the name Starlette's TestClient sends; a single-label name no public DNS can point anywhere
TEST_CLIENT_HOST = "testserver"
#: paths whose POST may carry image bytes instead of JSON
IMAGE_PATHS = ("/api/explain", "/api/report")
#: (method, path pattern) of the endpoints only a teacher may call when the server has a token
TEACHER_ROUTES = (("POST", re.compile(r"^/api/train(/custom)?$")),
                  ("POST", re.compile(r"^/api/train/[^/]+/cancel$")),
                  ("POST", re.compile(r"^/api/lab/(run|cancel)$")),
                  ("POST", re.compile(r"^/api/playground/(run|cancel)$")))
#: endpoints that compute on a request body: they take an in-flight place before reading it
HEAVY_PATHS = re.compile(r"^/api/(explain|report|trust|mine|class/digits|functions/rug"
                         r"|evaluation/[^/]+/map/place"
                         r"|models/[^/]+/(units|filters|worked|maps|step)(/.*)?)$")
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_TYPES = ("application/json",)
IMAGE_TYPES = ("application/octet-stream",)
#: default: seconds a client may take to send each piece of a request body
BODY_TIMEOUT = 10.0
#: default: heavy requests being read or computed at once (beyond them: 503); each may hold a
#: body of up to 12 MiB, so this bounds their memory near 12 x 15 MB
MAX_IN_FLIGHT = 12


def _host_name(value: str) -> str:
    """The name part of a ``Host`` header or an origin's netloc, lower case: ``[::1]:8000`` ->
    ``::1``, ``LocalHost.:80`` -> ``localhost``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value[1:]
    if value.count(":") == 1:
        value = value.split(":")[0]
    return value.rstrip(".")


def _ip(name: str):
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


class HostPolicy:
    """Which ``Host`` names the server answers.

    Parameters
    ----------
    listen : the address the server listens on (``digitlens serve --host``); ``0.0.0.0`` or
        ``::`` (every interface) also admits every IP address.
    allowed : further names (``--allowed-host``), e.g. the teacher's machine name.
    test_client : also admit Starlette's TestClient name (apps built in tests and notebooks).

    Examples
    --------
    >>> p = HostPolicy("127.0.0.1", ["class.local"])
    >>> [p.allows(h) for h in ("localhost:8000", "[::1]:80", "class.local", "evil.example")]
    [True, True, True, False]
    """

    def __init__(self, listen: str = "127.0.0.1", allowed: Iterable[str] = (),
                 test_client: bool = False) -> None:
        listen = _host_name(listen or "127.0.0.1")
        self.any_ip = listen in ("0.0.0.0", "::", "")
        self.names = {_host_name(n) for n in (*LOOPBACK_NAMES, listen, *allowed) if n}
        if test_client:
            self.names.add(TEST_CLIENT_HOST)

    def allows(self, host: str | None) -> bool:
        if host is None:  # HTTP/1.0 without a Host header: nothing to rebind
            return True
        name = _host_name(host)
        if name in self.names or name.endswith(".localhost"):
            return True
        ip = _ip(name)
        return ip is not None and (ip.is_loopback or self.any_ip)


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", ())}


class SecurityMiddleware:
    """The checks of this module's docstring, in front of the app (an ASGI middleware).

    Parameters
    ----------
    app : the ASGI app behind it.
    hosts : the :class:`HostPolicy`.
    token : the teacher's token (None: every endpoint is open to every allowed client).
    max_in_flight : heavy requests read or computed at once; beyond: 503 with ``Retry-After``.
    body_timeout : seconds allowed for each piece of a request body to arrive (408 beyond).
    """

    def __init__(self, app, hosts: HostPolicy, token: str | None = None,
                 max_in_flight: int = MAX_IN_FLIGHT, body_timeout: float = BODY_TIMEOUT) -> None:
        self.app, self.hosts, self.token = app, hosts, token or None
        self.max_in_flight, self.body_timeout = int(max_in_flight), float(body_timeout)
        self.in_flight = 0  # one event loop: plain arithmetic between awaits is atomic

    def refusal(self, scope) -> tuple[int, str, str, dict] | None:
        """``(status, code, message, headers)`` when the request must be refused, else None."""
        h = _headers(scope)
        host = h.get("host")
        if not self.hosts.allows(host):
            port = _port(host or "", scope.get("scheme", "http"))
            return (403, "host_not_allowed", f"this server does not answer to the name {host!r}; "
                    f"open it at http://127.0.0.1:{port}/ on the computer running it (a teacher "
                    "can add names with `digitlens serve --allowed-host NAME`)", {})
        origin = h.get("origin")
        if origin is not None and not self._same_origin(origin, host, scope):
            return (403, "cross_origin", f"requests from other web sites ({origin}) are refused; "
                    "use the page this server serves", {})
        method, path = scope.get("method", "GET"), scope.get("path", "")
        if method in STATE_CHANGING:
            ctype = h.get("content-type", "").split(";")[0].strip().lower()
            ok = ctype in JSON_TYPES or (path in IMAGE_PATHS and (
                ctype.startswith("image/") or ctype in IMAGE_TYPES)) or (
                not ctype and _no_body(h))
            if not ok:
                return (415, "unsupported_media_type", f"Content-Type {ctype or 'none'!r} is "
                        f"not accepted for {method} {path}; send application/json"
                        + (" or image bytes" if path in IMAGE_PATHS else ""), {})
            if self.token and any(m == method and p.match(path) for m, p in TEACHER_ROUTES):
                got = h.get("authorization", "")
                want = f"Bearer {self.token}"
                if not hmac.compare_digest(got.encode(), want.encode()):
                    return (401, "teacher_only", "only the teacher can do this on this server "
                            "(it needs the teacher's token)", {"WWW-Authenticate": "Bearer"})
        return None

    @staticmethod
    def _same_origin(origin: str, host: str | None, scope) -> bool:
        m = re.match(r"^(https?)://([^/]+)$", origin.strip().lower())
        if m is None or host is None:  # "null" (a sandboxed frame, a file), or junk
            return False
        scheme = scope.get("scheme", "http")
        if m.group(1) != scheme:
            return False
        return m.group(2) == host.strip().lower() or (
            _host_name(m.group(2)) == _host_name(host) and _port(m.group(2), scheme) ==
            _port(host, scheme))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refused = self.refusal(scope)
        if refused is not None:
            status, code, message, headers = refused
            if code == "host_not_allowed" and _wants_html(scope):
                response = _refusal_page(message)
            else:
                response = error_response(status, code, message)
            response.headers.update(headers)
            return await response(scope, receive, send)
        heavy = scope.get("method") in STATE_CHANGING and HEAVY_PATHS.match(scope.get("path", ""))
        if not heavy:
            return await self.app(scope, self._timed(receive), send)
        if self.in_flight >= self.max_in_flight:
            response = error_response(503, "busy", "the server is busy with other drawings; "
                                      "it will try again in a moment")
            response.headers["Retry-After"] = "1"
            return await response(scope, receive, send)
        self.in_flight += 1
        try:
            await self.app(scope, self._timed(receive), send)
        finally:
            self.in_flight -= 1

    def _timed(self, receive):
        """``receive`` with a deadline on each piece of the body (408 when it passes)."""
        timeout = self.body_timeout

        async def timed_receive():
            with anyio.move_on_after(timeout) as scope:
                message = await receive()
            if scope.cancelled_caught:
                raise BodyTimeout
            return message

        return timed_receive


def _port(netloc: str, scheme: str) -> str:
    tail = netloc.rsplit("]", 1)[-1]
    if ":" in tail:
        return tail.rsplit(":", 1)[1]
    return "443" if scheme in ("https", "wss") else "80"


def _wants_html(scope) -> bool:
    """A person's browser opening a page (not the page's own API calls)."""
    accept = _headers(scope).get("accept", "")
    return not scope.get("path", "").startswith("/api") and "text/html" in accept


def _refusal_page(message: str):
    """The host refusal as a small page a learner can read (the API answers JSON)."""
    import html

    from fastapi.responses import HTMLResponse

    return HTMLResponse(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>digitlens: wrong "
        "address</title></head><body style='font:18px/1.5 sans-serif;max-width:40em;"
        "margin:3em auto'><h1>Wrong address for digitlens</h1><p>"
        + html.escape(message[0].upper() + message[1:]) + ".</p><p>The server refuses names it "
        "does not know, so that another web site cannot reach it by pretending to be it.</p>"
        "</body></html>", status_code=403)


def _no_body(h: dict[str, str]) -> bool:
    """True when a request carries no body (no length, or length 0, and not chunked)."""
    return h.get("content-length", "0").strip() in ("", "0") and "transfer-encoding" not in h


__all__ = ["HostPolicy", "SecurityMiddleware", "BodyTimeout", "TEACHER_ROUTES", "IMAGE_PATHS",
           "HEAVY_PATHS"]
