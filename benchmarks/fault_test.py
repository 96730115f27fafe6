"""Load and faults together: a short check a maintainer runs before a release.

Starts ``digitlens serve`` (model ``mlp``, a temporary home) and runs ``--clients`` ordinary
clients posting drawings (live explanations) for ``--seconds``, while injecting faults
alongside: decode bombs, 11 MB junk bodies, slow-drip connections, cross-site requests and
clients that hang up mid-body.  Prints the ordinary clients' requests, errors, p50 and p95, the
server's peak memory, and each fault injected with the answers it got.  Exit status 1 if an
ordinary request failed or the server answered a fault with a 5xx other than 503.

Usage::

    python benchmarks/fault_test.py                 # 4 clients, 20 s
    python benchmarks/fault_test.py --clients 8 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from attack_test import crafted  # noqa: E402
from load_test import PAGE_OPTIONS, canvas_pngs, ensure_model, start_server  # noqa: E402


def hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def faults(url: str, stop: threading.Event, log: Counter) -> None:
    """Inject each kind of fault in turn until ``stop`` is set."""
    import httpx

    host, port = "127.0.0.1", int(url.rsplit(":", 1)[1].strip("/"))
    bomb, junk = crafted("png_rgba"), os.urandom(11 * 2**20)

    def post(kind, **kw):
        try:
            r = httpx.post(url + kw.pop("path", "api/explain?model=mlp"), timeout=60, **kw)
            log[f"{kind}: {r.status_code}"] += 1
        except httpx.HTTPError as e:
            log[f"{kind}: {type(e).__name__}"] += 1

    def drip():
        s = socket.create_connection((host, port))
        t0 = time.perf_counter()
        try:
            for b in b"POST /api/explain HTTP/1.1\r\nHost: 127.0.0.1\r\n":
                s.sendall(bytes([b]))
                time.sleep(1)
                if stop.is_set():
                    break
        except OSError:
            log[f"slow drip: cut off after {time.perf_counter() - t0:.0f} s"] += 1
        finally:
            s.close()

    def hang_up():
        s = socket.create_connection((host, port))
        s.sendall(b"POST /api/explain?model=mlp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                  b"image/png\r\nContent-Length: 100000\r\n\r\n" + bomb[:1000])
        s.close()
        log["hang-up mid-body"] += 1

    threading.Thread(target=drip, daemon=True).start()
    while not stop.is_set():
        post("decode bomb (RGBA PNG)", content=bomb, headers={"Content-Type": "image/png"})
        post("11 MB junk body", content=junk, headers={"Content-Type": "image/png"})
        post("cross-site form POST /api/lab/run", path="api/lab/run", content=b"a=1",
             headers={"Content-Type": "application/x-www-form-urlencoded",
                      "Origin": "http://evil.example"})
        post("DNS-rebinding Host", path="api/models", headers={"Host": "evil.example"})
        hang_up()
        stop.wait(0.5)


async def clients(url, n, seconds, images):
    import httpx

    lat, errors = [], Counter()
    end = time.perf_counter() + seconds

    async def one(k):
        async with httpx.AsyncClient(base_url=url, timeout=120) as c:
            i = 0
            while time.perf_counter() < end:
                png = images[(k * 97 + i) % len(images)]
                i += 1
                body = {"image": "data:image/png;base64," + base64.b64encode(png).decode(),
                        "model": "mlp", "options": PAGE_OPTIONS["live"]}
                t0 = time.perf_counter()
                try:
                    r = await c.post("api/explain", json=body)
                    if r.status_code != 200:
                        errors[str(r.status_code)] += 1
                        continue
                except httpx.HTTPError as e:
                    errors[type(e).__name__] += 1
                    continue
                lat.append(time.perf_counter() - t0)
    await asyncio.gather(*(one(k) for k in range(n)))
    return np.array(lat) * 1e3, errors


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args(argv)
    home = ensure_model("mlp", Path(tempfile.mkdtemp(prefix="digitlens_fault_")))
    proc, url = start_server("mlp", home)
    try:
        images = canvas_pngs(50)
        asyncio.run(clients(url, 1, 1, images))  # warm up
        base = hwm_mb(proc.pid)
        log, stop = Counter(), threading.Event()
        t = threading.Thread(target=faults, args=(url, stop, log), daemon=True)
        t.start()
        lat, errors = asyncio.run(clients(url, args.clients, args.seconds, images))
        stop.set()
        t.join(30)
        peak = hwm_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)
    print(f"{args.clients} clients x {args.seconds:.0f} s of live explanations, with faults")
    print(f"requests {lat.size}, errors {sum(errors.values())} {dict(errors) or ''}")
    if lat.size:
        print(f"p50 {np.percentile(lat, 50):.1f} ms, p95 {np.percentile(lat, 95):.1f} ms")
    print(f"server peak memory {peak:.0f} MB ({peak - base:+.0f} MB during the run)")
    print("faults injected (answer: count):")
    for k, v in sorted(log.items()):
        print(f"  {k}: {v}")
    bad = [k for k in log if k.rsplit(": ", 1)[-1].startswith("5") and not k.endswith("503")]
    return 1 if errors or bad else 0


if __name__ == "__main__":
    sys.exit(main())
