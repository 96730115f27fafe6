"""Helpers for the server tests (plain functions; the fixtures are in ``conftest.py``): a live
uvicorn server in a thread, a free loopback port, a stub lab runner and a drawn 9."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time

from PIL import Image, ImageDraw


def free_port() -> int:
    """A loopback port nobody listens on (as the system handed it out a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def live_server(app, **config):
    """Serve ``app`` with uvicorn on 127.0.0.1 at a free port, in a daemon thread; yield its URL
    (``http://127.0.0.1:<port>/``) once it has started; on exit stop it and join the thread.

    ``config``: more ``uvicorn.Config`` arguments (``log_level`` is "warning" unless given).
    """
    import uvicorn

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                        **{"log_level": "warning", **config}))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    try:
        deadline = time.time() + 30
        while not srv.started:
            if time.time() > deadline or not t.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}/"
    finally:
        srv.should_exit = True
        t.join(10)


class StubLab:
    """A lab runner that only counts the studies started (nothing is computed)."""

    def __init__(self):
        self.started = 0
        self.current, self.running = None, False

    def start(self):
        self.started += 1

    def cancel(self):
        return None

    def report(self):
        return None

    def figure_path(self, name):
        return None

    def shutdown(self, timeout=0):
        pass


def nine_png() -> bytes:
    """A '9': a loop on top of a stem, ink bright on dark, 280×280, as PNG bytes."""
    img = Image.new("L", (280, 280), 0)
    d = ImageDraw.Draw(img)
    d.ellipse((80, 40, 200, 140), outline=255, width=20)
    d.line((190, 100, 170, 250), fill=255, width=20)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()
