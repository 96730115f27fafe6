"""``digitlens serve`` on a fresh install, as a real process on a loopback port: the page answers
within 5 s while the ladder's models still train in the background, logistic first."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

DIGITLENS = Path(sys.executable).with_name("digitlens")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.read()


def test_serve_on_an_empty_home_answers_at_once_and_trains_in_the_background(tmp_path):
    port = _free_port()
    env = {**os.environ, "DIGITLENS_HOME": str(tmp_path), "COLUMNS": "200"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(DIGITLENS), "serve", "--port", str(port), "--train-epochs", "1"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        while True:
            try:
                health = json.loads(_get(port, "/api/health"))
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()[0]
                assert time.perf_counter() - t0 < 30, "serve did not answer in 30 s"
                time.sleep(0.05)
        page = _get(port, "/")
        first = json.loads(_get(port, "/api/models"))
        assert health["ok"] is True and b"<!doctype html" in page[:200].lower()
        # how fast it answers is measured by benchmarks/first_start.py, not timed here
        # the cnn (the model asked for) was still training when the page answered
        status = {m["name"]: m["status"] for m in first["models"]}
        assert "cnn" in first["pending"] and status["cnn"]["state"] in ("queued", "training")
        assert not (tmp_path / "models" / "cnn.npz").exists()
        # each model is used as soon as it is ready: logistic first, then the default moves up
        deadline, seen = time.perf_counter() + 240, []
        while time.perf_counter() < deadline:
            info = json.loads(_get(port, "/api/models"))
            ready = [m["name"] for m in info["models"] if m["trained"] and m["in_ladder"]]
            for n in ready:
                if n not in seen:
                    seen.append(n)
                    assert info["default"] in ready
            if not info["pending"]:
                break
            time.sleep(0.2)
        assert seen[0] == "logistic" and seen[:3] == ["logistic", "lab", "mlp"]
        assert info["default"] == "cnn" and info["pending"] == []
        assert {m["name"]: m["status"]["state"] for m in info["models"] if m["status"]} == \
            {n: "trained" for n in ("logistic", "lab", "mlp", "cnn", "cnn_tiny")}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out = proc.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            out = proc.communicate()[0]
    said = " ".join(out.split())
    assert f"open http://127.0.0.1:{port}/" in said
    assert "training logistic, lab, mlp, cnn, cnn_tiny" in said and "in the background" in said
