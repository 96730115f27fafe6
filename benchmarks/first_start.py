"""How soon `digitlens serve` answers on a fresh install, against how long its models take.

Starts `digitlens serve` on an empty DIGITLENS_HOME (a temporary folder) on a free loopback port
and records, from the moment the process starts: when `/api/health` first answers, when the page
`/` answers, and when each ladder model becomes ready (as `/api/models` reports it).  The ratio
printed is the time to the first answer over the time until the whole ladder is trained, both
from the same run: the page used to answer only after all of it.

    python benchmarks/first_start.py [--train-epochs N]   # N: fewer epochs for a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.read()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-epochs", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as home:
        cmd = [sys.executable, "-m", "digitlens", "serve", "--port", str(port)]
        if args.train_epochs:
            cmd += ["--train-epochs", str(args.train_epochs)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env={**os.environ, "DIGITLENS_HOME": home},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        events: dict[str, float] = {}
        try:
            while time.perf_counter() - t0 < args.timeout:
                try:
                    if "health" not in events:
                        get(port, "/api/health")
                        events["health"] = time.perf_counter() - t0
                        get(port, "/")
                        events["page"] = time.perf_counter() - t0
                    info = json.loads(get(port, "/api/models"))
                except OSError:
                    time.sleep(0.05)
                    continue
                for m in info["models"]:
                    if m.get("trained") and m["name"] not in events:
                        events[m["name"]] = time.perf_counter() - t0
                if not info.get("pending"):
                    break
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
    last = max(events.values())
    print(f"digitlens serve on an empty home (train epochs: {args.train_epochs or 'recipe'})")
    for name, t in sorted(events.items(), key=lambda kv: kv[1]):
        print(f"  {name:<10} ready after {t:6.1f} s")
    print(f"first answer / whole ladder trained: {events['health'] / last:.3f} "
          f"({events['health']:.1f} s of {last:.1f} s)")


if __name__ == "__main__":
    main()
