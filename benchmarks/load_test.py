"""Load test of the web page's API: concurrent clients posting drawings to ``POST /api/explain``.

Not a timed test: a measurement to read.  By default it starts ``digitlens serve`` in a separate
process on 127.0.0.1 (a free port), then runs 8 concurrent clients that each send 500 explain
requests — canvas-like 140×140 PNGs of bundled test digits, as the page sends them — and prints
requests per second, p50/p95/p99 latency (client side, including queueing) and the errors.

Two kinds of request are measured, as the page sends them:

- ``live``: while a stroke is being drawn (answer, pre-processing, every layer's numbers);
- ``full``: when the pen lifts (adds the attribution map of the method on screen — integrated
  gradients by default —, "why X and not Y", the counterfactual, the units and the nearest
  training digits).

Usage::

    python benchmarks/load_test.py                      # cnn, 8 clients x 500, live and full
    python benchmarks/load_test.py --requests 50        # a quicker run
    python benchmarks/load_test.py --full-requests 25   # fewer of the slow full explanations
    python benchmarks/load_test.py --model mlp --detail live
    python benchmarks/load_test.py --url http://127.0.0.1:8000/   # an already running server

The model is taken from the digitlens cache (``digitlens train --model cnn``); if it is not
trained there, a quick 1-epoch model is trained into a temporary directory first (latency
depends on the architecture, not on how well it was trained).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


#: the options the page sends (its sendUpdate, static/js): one attribution method at a time
PAGE_OPTIONS = {"live": {"detail": "live", "counterfactual": True},
                "full": {"detail": "full", "counterfactual": True,
                         "method": "integrated_gradients"}}


#: the side of the drawing the page sends: its 280×280 board at the page's SEND_SCALE (0.5)
CANVAS_SIDE = 140


def canvas_pngs(n: int, seed: int = 0, side: int = CANVAS_SIDE) -> list[bytes]:
    """``n`` bundled test digits as ``side``×``side`` white-on-black opaque RGBA PNGs: what the
    page sends (Chromium's ``canvas.toDataURL("image/png")`` writes RGBA even for an opaque
    canvas; tests/view/test_browser.py checks the page sends 140×140)."""
    from PIL import Image

    from digitlens.data import load_digits

    d = load_digits()
    rng = np.random.default_rng(seed)
    out = []
    for i in rng.choice(len(d.x_test), size=n, replace=False):
        a = np.rint(d.x_test[i, 0] * 255).astype(np.uint8)
        im = Image.fromarray(a).resize((side, side), Image.BILINEAR).convert("RGBA")
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_model(name: str, home: Path | None) -> Path:
    """A DIGITLENS_HOME holding a trained ``name``: the user's cache if it has one, else a
    temporary directory with a quick 1-epoch model."""
    from digitlens._util import paths

    if home is None and paths.model_path(name).exists():
        return paths.home()
    if home is not None and (home / "models" / f"{name}.npz").exists():
        return home
    tmp = Path(tempfile.mkdtemp(prefix="digitlens_load_"))
    print(f"no trained {name!r} model in the cache: training a quick 1-epoch one in {tmp}",
          flush=True)
    env = {**os.environ, "DIGITLENS_HOME": str(tmp)}
    subprocess.run([sys.executable, "-m", "digitlens", "train", "--model", name, "--epochs", "1"],
                   env=env, check=True)
    return tmp


def start_server(model: str, home: Path, workers: int = 1) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "DIGITLENS_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "digitlens", "serve", "--no-train",
                             "--no-allow-training", "--model", model, "--port", str(port),
                             "--workers", str(workers)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/"
    import httpx

    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(url + "api/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("the server did not start within 60 s")


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system) used so far by process ``pid`` and its children that ended, from
    /proc (Linux); NaN when unknown."""
    if pid is None:
        return float("nan")
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    # fields[0] is the state (field 3 of stat); utime, stime, cutime, cstime are fields 14-17
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


async def run_clients(url: str, model: str, detail: str, clients: int, requests: int,
                      images: list[bytes], server_pid: int | None = None) -> dict:
    import httpx

    latencies: list[float] = []
    server_ms: list[float] = []
    errors: dict[str, int] = {}

    async def client(k: int):
        async with httpx.AsyncClient(base_url=url, timeout=120) as c:
            for r in range(requests):
                png = images[(k * requests + r) % len(images)]
                body = {"image": "data:image/png;base64," + base64.b64encode(png).decode(),
                        "model": model, "options": PAGE_OPTIONS[detail]}
                t0 = time.perf_counter()
                try:
                    resp = await c.post("api/explain", json=body)
                    data = resp.json()
                except (httpx.HTTPError, ValueError) as e:
                    errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
                    continue
                latencies.append(time.perf_counter() - t0)
                if resp.status_code != 200:
                    key = f"{resp.status_code} {data.get('error')}"
                    errors[key] = errors.get(key, 0) + 1
                else:
                    server_ms.append(float(data["timings_ms"].get("total", np.nan)))

    t0, c0, s0 = time.perf_counter(), time.process_time(), cpu_seconds(server_pid)
    await asyncio.gather(*(client(k) for k in range(clients)))
    wall = time.perf_counter() - t0
    client_cpu, server_cpu = time.process_time() - c0, cpu_seconds(server_pid) - s0
    lat = np.array(latencies) * 1e3
    return {"detail": detail, "n": clients * requests, "wall_s": wall,
            "rps": len(latencies) / wall if wall else float("nan"),
            "p50": float(np.percentile(lat, 50)) if lat.size else float("nan"),
            "p95": float(np.percentile(lat, 95)) if lat.size else float("nan"),
            "p99": float(np.percentile(lat, 99)) if lat.size else float("nan"),
            "server_p50": float(np.nanmedian(server_ms)) if server_ms else float("nan"),
            "errors": sum(errors.values()), "error_kinds": errors,
            "client_cpu_ms": client_cpu / max(len(latencies), 1) * 1e3,
            "server_cpu_ms": server_cpu / max(len(latencies), 1) * 1e3}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="cnn")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--requests", type=int, default=500, help="requests per client")
    ap.add_argument("--full-requests", type=int, default=None,
                    help="requests per client for 'full' (default: --requests)")
    ap.add_argument("--detail", choices=("live", "full", "both"), default="both")
    ap.add_argument("--workers", type=int, default=1, help="server processes (digitlens serve "
                    "--workers)")
    ap.add_argument("--side", type=int, default=CANVAS_SIDE, help="side of the drawings sent, "
                    "in pixels (the page sends 140)")
    ap.add_argument("--url", default=None, help="test this running server instead of starting one")
    ap.add_argument("--home", type=Path, default=None, help="DIGITLENS_HOME holding the model")
    args = ap.parse_args(argv)
    if args.clients < 1 or args.requests < 1:
        ap.error("--clients and --requests must be at least 1")

    images = canvas_pngs(min(200, args.clients * args.requests), side=args.side)
    proc = None
    url = args.url
    if url is None:
        home = ensure_model(args.model, args.home)
        proc, url = start_server(args.model, home, args.workers)
    try:
        import httpx

        # first request: loads the model and builds its unit atlas (not measured)
        warm = {"image": "data:image/png;base64," + base64.b64encode(images[0]).decode(),
                "model": args.model, "options": {"detail": "full"}}
        r = httpx.post(url.rstrip("/") + "/api/explain", json=warm, timeout=300)
        if r.status_code != 200:
            print(f"warm-up request failed: {r.status_code} {r.text[:300]}")
            return 1
        print(f"digitlens load test: {args.clients} concurrent clients x {args.requests} "
              f"requests, model {args.model}, {args.side}x{args.side} drawings, {url}"
              + (f", {args.workers} server processes" if args.url is None else ""))
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
              f"load average before {os.getloadavg()[0]:.2f}")
        details = ("live", "full") if args.detail == "both" else (args.detail,)
        print(f"{'request':<8} {'n':>6} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
              f"{'server p50 ms':>14} {'CPU ms/req server':>18} {'client':>7} {'errors':>7}")
        worst, floors = 0, []
        for detail in details:
            n = args.requests if detail == "live" else (args.full_requests or args.requests)
            res = asyncio.run(run_clients(url, args.model, detail, args.clients, n, images,
                                          proc.pid if proc is not None else None))
            worst = max(worst, res["errors"])
            print(f"{detail:<8} {res['n']:>6} {res['rps']:>8.1f} {res['p50']:>8.1f} "
                  f"{res['p95']:>8.1f} {res['p99']:>8.1f} {res['server_p50']:>14.1f} "
                  f"{res['server_cpu_ms']:>18.1f} {res['client_cpu_ms']:>7.1f} "
                  f"{res['errors']:>7}" + (f"  {res['error_kinds']}" if res["errors"] else ""),
                  flush=True)
            floors.append((detail, res))
        print(f"load average after {os.getloadavg()[0]:.2f} (other processes share these cores; "
              "latency includes queueing behind the other clients)")
        for detail, res in floors:
            # with every client always waiting, the cores are busy all the time: each request
            # waits for the CPU work of all the clients' requests, spread over the cores
            cpu = res["server_cpu_ms"] + res["client_cpu_ms"]
            floor = args.clients * cpu / os.cpu_count()
            if np.isfinite(floor):
                print(f"{detail}: the CPU work alone puts the mean latency at >= {floor:.0f} ms "
                      f"here ({args.clients} clients x {cpu:.1f} ms of server + client CPU per "
                      f"request / {os.cpu_count()} cores)")
        return 1 if worst else 0
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    sys.exit(main())
