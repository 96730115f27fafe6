"""Attacks on every input surface of digitlens, each measured: outcome, seconds, peak memory.

Not a timed test: a measurement to read, before and after a change (issue 15).  Each attack runs
in a fresh child process under an address-space cap (``--cap-gb``, default 6) and a time limit
(``--timeout``, default 120 s), so a bomb cannot take the shared machine down; a child that hits
the cap shows ``MemoryError``/``killed``.  Peak memory is the child's own peak RSS growth over
its state after imports (``ru_maxrss``); for attacks on a live server (``digitlens serve`` in a
subprocess, model ``mlp``) it is the server's peak RSS growth (``VmHWM``).

Usage::

    python benchmarks/attack_test.py                 # every attack, a table
    python benchmarks/attack_test.py --only png      # attacks whose name contains "png"
    python benchmarks/attack_test.py --json out.json # also write the rows as JSON

The outcome column says what happened (HTTP status, exception type, or a fact such as
"cache replaced"); ``safe`` is the verdict: yes when the attack was refused cleanly and cheaply.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ATTACKS: dict[str, tuple[str, object]] = {}
#: attacks judged by memory alone: safe when the peak stays under this many MB
CEILING_MB = {"ckpt_2m_units": 150, "ckpt_zip_bomb": 150, "png_rgba_bomb": 150,
              "png_16bit_bomb": 150, "webp_bomb": 150, "server_40_bodies": 300}


def attack(name: str, what: str):
    def deco(fn):
        ATTACKS[name] = (what, fn)
        return fn
    return deco


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------ crafted inputs
def png_rgba(side=6300) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGBA", (side, side), (0, 0, 0, 0)).save(buf, "PNG", optimize=False,
                                                        compress_level=9)
    return buf.getvalue()


def png_16bit(side=6300) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("I;16", (side, side), 0).save(buf, "PNG", compress_level=9)
    return buf.getvalue()


def webp_big(side=6300) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGBA", (side, side), (255, 255, 255, 255)).save(buf, "WEBP", lossless=True)
    return buf.getvalue()


#: crafted once by the parent (its memory is not the attack's), read by the children
def ckpt_bomb() -> bytes:
    p = Path(tempfile.mkdtemp()) / "m.npz"
    ckpt(p, dense_config(), big=("1.W", 375_000_000))
    return p.read_bytes()


INPUTS = {"png_rgba": png_rgba, "png_16bit": png_16bit, "webp_big": webp_big,
          "ckpt_bomb": ckpt_bomb}
INPUT_DIR = Path(tempfile.gettempdir()) / "digitlens_attack_inputs"


def crafted(name: str) -> bytes:
    path = INPUT_DIR / name
    if not path.exists():
        INPUT_DIR.mkdir(exist_ok=True)
        path.write_bytes(INPUTS[name]())
    return path.read_bytes()


def small_png() -> bytes:
    sys.path.insert(0, str(HERE))
    from load_test import canvas_pngs

    return canvas_pngs(1)[0]


def ckpt(path: Path, config: dict, params: dict | None = None, big: tuple | None = None):
    """A .npz model file with ``config``; ``big=(name, n_float32)`` adds a zip-bombed zero
    array written in chunks (never held in memory here)."""
    from numpy.lib import format as npf

    def npy(a):
        b = io.BytesIO()
        np.save(b, a)
        return b.getvalue()

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("__format__.npy", npy(np.array([1], np.int64)))
        z.writestr("__config__.npy", npy(np.frombuffer(json.dumps(config).encode(), np.uint8)))
        for k, v in (params or {}).items():
            z.writestr(f"param/{k}.npy", npy(v))
        if big is not None:
            name, n = big
            with z.open(f"param/{name}.npy", "w", force_zip64=True) as f:
                hdr = io.BytesIO()
                npf.write_array_header_1_0(hdr, {"descr": "<f4", "fortran_order": False,
                                                 "shape": (n,)})
                f.write(hdr.getvalue())
                chunk = bytes(64 << 20)
                left = n * 4
                while left:
                    f.write(chunk[:min(left, len(chunk))])
                    left -= min(left, len(chunk))


def dense_config(units=32, classes=10, layers=None):
    layers = layers if layers is not None else [
        {"type": "flatten"}, {"type": "dense", "units": units, "init": "he"},
        {"type": "activation", "fn": "relu"}, {"type": "dense", "units": 10, "init": "he"}]
    return {"layers": layers, "input_shape": [1, 28, 28], "classes": list(range(classes)),
            "name": "custom", "description": "", "loss": "softmax_cross_entropy"}


# ------------------------------------------------------------------------ in-process apps
class StubLab:
    """A lab runner that records whether a study was started (nothing is computed)."""

    def __init__(self, out_dir=None):
        self.started, self.current, self.running = 0, None, False
        self.out_dir = out_dir

    def start(self):
        self.started += 1

    def cancel(self):
        return None

    def report(self):
        if self.out_dir is None:
            return None
        from digitlens.view.server.lab_jobs import LabRunner

        return LabRunner(self.out_dir).report()

    def figure_path(self, name):
        from digitlens.view.server.lab_jobs import LabRunner

        return LabRunner(self.out_dir).figure_path(name)

    def shutdown(self, timeout=0):
        pass


def client(lab=None, **kw):
    from fastapi.testclient import TestClient

    from digitlens.view.server.app import create_app

    return TestClient(create_app(lab=lab or StubLab(), default_model="mlp", **kw),
                      base_url="http://127.0.0.1:8000", raise_server_exceptions=False)


# ------------------------------------------------------------------------ the attacks
@attack("xsite_lab_run_form", "cross-site form POST /api/lab/run, Origin evil.example")
def _():
    lab = StubLab()
    r = client(lab).post("/api/lab/run", content=b"a=1", headers={
        "Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"})
    return f"{r.status_code}, study started: {bool(lab.started)}", not lab.started


@attack("xsite_host_rebind", "GET /api/models with Host: evil.example (DNS rebinding)")
def _():
    r = client().get("/api/models", headers={"Host": "evil.example"})
    return f"{r.status_code}", r.status_code in (400, 403, 421)


def _decode(data: bytes):
    from digitlens.preprocessing import preprocess

    try:
        preprocess(data)
        return "decoded", False
    except Exception as e:  # noqa: BLE001
        return type(e).__name__, type(e).__name__ in ("ImageTooLargeError", "NoInkError")


@attack("png_rgba_bomb", "6300x6300 RGBA PNG (within 40 Mpx) through preprocess()")
def _():
    data = crafted("png_rgba")
    out, _ = _decode(data)
    return f"{out} ({len(data) / 1e3:.0f} kB)", None


@attack("png_16bit_bomb", "6300x6300 16-bit PNG through preprocess()")
def _():
    data = crafted("png_16bit")
    out, _ = _decode(data)
    return f"{out} ({len(data) / 1e3:.0f} kB)", None


@attack("webp_bomb", "6300x6300 lossless WebP through preprocess()")
def _():
    data = crafted("webp_big")
    out, _ = _decode(data)
    return f"{out} ({len(data) / 1e3:.1f} kB)", None


def _load(path):
    from digitlens.nn.checkpoint import load_model

    try:
        load_model(path)
        return "loaded", False
    except Exception as e:  # noqa: BLE001
        ok = type(e).__name__ == "CheckpointError" and str(path) in str(e)
        return f"{type(e).__name__}: {str(e)[:70]}", ok


@attack("ckpt_2m_units", "model file declaring a 2,000,000-unit dense layer")
def _():
    p = Path(tempfile.mkdtemp()) / "m.npz"
    ckpt(p, dense_config(units=2_000_000))
    return _load(p)


@attack("ckpt_zip_bomb", "model file with a zip-bombed 1.5 GB weight array")
def _():
    p = Path(tempfile.mkdtemp()) / "m.npz"
    p.write_bytes(crafted("ckpt_bomb"))
    out, ok = _load(p)
    return f"{out} (file {p.stat().st_size / 1e6:.1f} MB)", ok


@attack("ckpt_zero_units", "model file with a 0-unit dense layer")
def _():
    p = Path(tempfile.mkdtemp()) / "m.npz"
    ckpt(p, dense_config(units=0))
    return _load(p)


def _params(config):
    from digitlens.nn.model import ModelConfig, Sequential

    m = Sequential.from_config(ModelConfig.from_dict(config), rng=np.random.default_rng(0))
    return m.params()


@attack("ckpt_classes_mismatch", "model file: 2 classes, 10 outputs")
def _():
    p = Path(tempfile.mkdtemp()) / "m.npz"
    ckpt(p, dense_config(classes=2), _params(dense_config()))
    return _load(p)


@attack("ckpt_no_layers", "model file with zero layers")
def _():
    p = Path(tempfile.mkdtemp()) / "m.npz"
    ckpt(p, dense_config(layers=[]))
    return _load(p)


@attack("ckpt_bad_in_cache", "a bad model file in the cache, then GET /api/models")
def _():
    from digitlens._util import paths

    paths.models_dir().mkdir(parents=True, exist_ok=True)
    ckpt(paths.model_path("mlp"), dense_config(units=2_000_000))
    r = client().get("/api/models")
    return f"{r.status_code}", r.status_code == 200


@attack("unit_ragged_image", "POST /api/models/mlp/units/1/0 with a ragged image")
def _():
    from digitlens.nn.checkpoint import save_model
    from digitlens._util import paths
    from digitlens.nn.zoo import build_model

    save_model(build_model("mlp", np.random.default_rng(0)), paths.model_path("mlp"))
    r = client().post("/api/models/mlp/units/1/0", json={"image": [[0.0] * 28, [0.0] * 3]})
    return f"{r.status_code}", r.status_code == 422


@attack("lab_result_damaged", "damaged lab result.json, then GET /api/lab/figures/x")
def _():
    from digitlens.view.server.lab_jobs import LabRunner

    d = Path(tempfile.mkdtemp())
    (d / "result.json").write_text('{"study": "quick", "runs": [')
    (d / "x.png").write_bytes(b"\x89PNG")
    r = client(LabRunner(d)).get("/api/lab/figures/x")
    return f"{r.status_code}", r.status_code in (404, 422)


@attack("json_vs_true", "POST /api/explain JSON with options.vs = true")
def _():
    from digitlens.view.server.api import ExplainOptions

    try:
        o = ExplainOptions.model_validate_json('{"vs": true}')
        return f"accepted as vs={o.vs!r}", False
    except ValueError:
        return "422", True


@attack("json_model_empty", "POST /api/explain JSON with \"model\": \"\"")
def _():
    import base64

    from digitlens.nn.checkpoint import save_model
    from digitlens._util import paths
    from digitlens.nn.zoo import build_model

    save_model(build_model("mlp", np.random.default_rng(0)), paths.model_path("mlp"))
    img = "data:image/png;base64," + base64.b64encode(small_png()).decode()
    r = client().post("/api/explain", json={"image": img, "model": "",
                                            "options": {"detail": "live"}})
    return f"{r.status_code}", r.status_code in (404, 422)


@attack("orphan_tmp", "kill -9 during a save leaves .tmp; does the next save clean it?")
def _():
    from digitlens.nn.checkpoint import save_model
    from digitlens.nn.zoo import build_model

    d = Path(tempfile.mkdtemp())
    orphan = d / ".mlp.npz.abc123.tmp"
    orphan.write_bytes(bytes(1000))
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    save_model(build_model("mlp", np.random.default_rng(0)), d / "mlp.npz")
    return f"orphan left: {orphan.exists()}", not orphan.exists()


@attack("idx_65_dims", "IDX header declaring 65 dimensions")
def _():
    import struct

    from digitlens.data.idx import parse_idx

    data = bytes([0, 0, 0x08, 65]) + struct.pack(">65I", *([1] * 65)) + b"\x00"
    try:
        parse_idx(data)
        return "parsed", False
    except Exception as e:  # noqa: BLE001
        return type(e).__name__, type(e).__name__ == "IDXError"


def _cli(*args, env=None, timeout=600, stdin=None):
    env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "digitlens", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


@attack("download_timeout_nan", "digitlens data download mnist --timeout nan")
def _():
    r = _cli("data", "download", "mnist", "--timeout", "nan", "--dir", tempfile.mkdtemp(),
             "--mirror", "http://127.0.0.1:9/", timeout=60)
    refused = r.returncode != 0 and "timeout" in (r.stderr + r.stdout).lower()
    return f"exit {r.returncode}: {(r.stderr or r.stdout).strip()[-60:]!r}", refused


@attack("download_drip", "a mirror sending one byte every 2 s, timeout 3 s (cut at 30 s)")
def _():
    import http.server
    import threading

    from digitlens.data.mnist import FILES, download_mnist

    class Drip(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(1000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(2)
            except OSError:
                pass

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Drip)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sums = {n: "0" * 32 for n in FILES.values()}
    box = {}

    def run():
        try:
            download_mnist(tempfile.mkdtemp(), mirrors=[f"http://127.0.0.1:{srv.server_port}/"],
                           checksums=sums, timeout=3)
        except Exception as e:  # noqa: BLE001
            box["e"] = type(e).__name__
    t0 = time.perf_counter()
    th = threading.Thread(target=run, daemon=True)
    th.start()
    th.join(30)
    dt = time.perf_counter() - t0
    if th.is_alive():
        return "still downloading after 30 s", False
    return f"{box.get('e', 'ok')} after {dt:.1f} s", dt < 15


def _train_env():
    home = tempfile.mkdtemp(prefix="digitlens_attack_")
    return {"DIGITLENS_HOME": home}, Path(home) / "models" / "mlp.npz"


def _cached_acc(path):
    from digitlens.nn.checkpoint import load_model

    return load_model(path, with_meta=True)[1].get("test_accuracy")


@attack("train_lr_1e6", "digitlens train --model mlp --lr 1e6 over a good cached model")
def _():
    env, path = _train_env()
    _cli("train", "--model", "mlp", "--epochs", "2", env=env)
    before = _cached_acc(path)
    r = _cli("train", "--model", "mlp", "--epochs", "1", "--lr", "1e6", env=env)
    after = _cached_acc(path)
    return (f"exit {r.returncode}, cache {before:.1%} -> {after:.1%}", after == before)


@attack("train_ctrl_c", "Ctrl-C after epoch 1 of 6 over a good cached model")
def _():
    import signal

    env, path = _train_env()
    _cli("train", "--model", "mlp", "--epochs", "6", env=env)
    before = _cached_acc(path)
    p = subprocess.Popen([sys.executable, "-m", "digitlens", "train", "--model", "mlp",
                          "--epochs", "6", "--seed", "1"], env={**os.environ, **env},
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in p.stdout:
        if "epoch" in line and "1/6" in line:
            p.send_signal(signal.SIGINT)
            break
    p.communicate(timeout=300)
    after = _cached_acc(path)
    partial = path.with_name("mlp.partial.npz").exists()
    return (f"exit {p.returncode}, cache {before:.1%} -> {after:.1%}, partial saved: {partial}",
            after == before)


@attack("out_missing_dir", "digitlens train --out into a directory that does not exist")
def _():
    env, _ = _train_env()
    d = Path(tempfile.mkdtemp()) / "no" / "such"
    r = _cli("train", "--model", "logistic", "--epochs", "1", "--out", str(d / "m.npz"), env=env)
    return f"exit {r.returncode}, directory created: {d.exists()}", not d.exists()


# ------------------------------------------------------------------------ live-server attacks
def _server():
    sys.path.insert(0, str(HERE))
    from load_test import ensure_model, start_server

    home = ensure_model("mlp", Path(tempfile.mkdtemp(prefix="digitlens_attack_srv_")))
    return start_server("mlp", home)


def _hwm_mb(pid) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _live_latency(url, png) -> float:
    import base64

    import httpx

    body = {"image": "data:image/png;base64," + base64.b64encode(png).decode(), "model": "mlp",
            "options": {"detail": "live"}}
    t0 = time.perf_counter()
    httpx.post(url + "api/explain", json=body, timeout=120)
    return time.perf_counter() - t0


def server_attack(fn):
    """Run ``fn(url, pid)`` against a fresh server; the memory column is the server's."""
    def run():
        proc, url = _server()
        try:
            _live_latency(url, small_png())  # warm
            h0 = _hwm_mb(proc.pid)
            t0 = time.perf_counter()
            out, ok = fn(url, proc)
            return out, ok, time.perf_counter() - t0, _hwm_mb(proc.pid) - h0
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
    run.server = True
    return run


@attack("server_4_bombs_live", "4 RGBA PNG bombs at once + one live request")
@server_attack
def _(url, proc):
    import concurrent.futures as cf

    import httpx

    bomb, png = crafted("png_rgba"), small_png()
    with cf.ThreadPoolExecutor(5) as ex:
        futs = [ex.submit(httpx.post, url + "api/explain?model=mlp", content=bomb,
                          headers={"Content-Type": "image/png"}, timeout=300)
                for _ in range(4)]
        time.sleep(0.3)
        live = _live_latency(url, png)
        codes = sorted(f.result().status_code for f in futs)
    return f"bombs {codes}, live request {live:.2f} s", live < 2


@attack("server_40_bodies", "40 concurrent 11 MB bodies")
@server_attack
def _(url, proc):
    import concurrent.futures as cf

    import httpx

    body = os.urandom(11 * 2**20)

    def post(_):
        try:
            return httpx.post(url + "api/explain?model=mlp", content=body,
                              headers={"Content-Type": "image/png"}, timeout=300).status_code
        except httpx.HTTPError as e:
            return type(e).__name__
    with cf.ThreadPoolExecutor(40) as ex:
        codes = list(ex.map(post, range(40)))
    summary = {str(c): codes.count(c) for c in set(codes)}
    return f"{summary}", None


@attack("server_slow_drip", "a client sending one header byte per second (cut at 20 s)")
@server_attack
def _(url, proc):
    import socket

    port = int(url.rsplit(":", 1)[1].strip("/"))
    s = socket.create_connection(("127.0.0.1", port))
    req = b"POST /api/explain HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n"
    t0 = time.perf_counter()
    closed = None
    for i in range(20):
        try:
            s.sendall(req[i:i + 1] if i < len(req) else b"x")
            s.settimeout(1.0)
            try:
                if s.recv(1024) == b"":
                    closed = time.perf_counter() - t0
                    break
            except socket.timeout:
                pass
        except OSError:
            closed = time.perf_counter() - t0
            break
    s.close()
    return ("still open after 20 s" if closed is None else f"cut off after {closed:.1f} s",
            closed is not None)


@attack("server_chunked_over", "a chunked 13 MB body (over the 12 MiB limit)")
@server_attack
def _(url, proc):
    import httpx

    def gen():
        for _ in range(13):
            yield bytes(2**20)
    r = httpx.post(url + "api/explain?model=mlp", content=gen(),
                   headers={"Content-Type": "image/png"}, timeout=60)
    return f"{r.status_code}", r.status_code == 413


@attack("server_disconnect_log", "clients that disconnect mid-request: traceback in the log?")
@server_attack
def _(url, proc):
    import socket

    port = int(url.rsplit(":", 1)[1].strip("/"))
    body = png_rgba(3000)
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"POST /api/explain?model=mlp HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: image/png\r\nContent-Length: %d\r\n\r\n" % (len(body) + 10))
        s.sendall(body[:1000])
        s.close()
    time.sleep(1.5)
    proc.terminate()
    err = proc.stderr.read().decode(errors="replace")
    tb = err.count("Traceback")
    return f"{tb} tracebacks in the server log", tb == 0


# ------------------------------------------------------------------------ the runner
def child(name: str, cap_gb: float) -> None:
    if cap_gb > 0:
        cap = int(cap_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    os.environ.setdefault("DIGITLENS_HOME", tempfile.mkdtemp(prefix="digitlens_attack_home_"))
    import digitlens.preprocessing  # noqa: F401  (the imports are not the attack's memory)
    import digitlens.view.server.app  # noqa: F401
    import fastapi.testclient  # noqa: F401
    import PIL.Image  # noqa: F401
    _, fn = ATTACKS[name]
    base = rss_mb()
    t0 = time.perf_counter()
    try:
        res = fn()
    except MemoryError:
        res = ("MemoryError (hit the cap)", False)
    if getattr(fn, "server", False):
        out, ok, secs, mem = res
    else:
        (out, ok), secs, mem = res, time.perf_counter() - t0, rss_mb() - base
    print("RESULT " + json.dumps({"outcome": out, "safe": ok, "seconds": secs, "peak_mb": mem}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="", help="run attacks whose name contains this")
    ap.add_argument("--cap-gb", type=float, default=6.0)
    ap.add_argument("--timeout", type=float, default=240)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child, args.cap_gb)
        return 0
    for name in INPUTS:
        crafted(name)
    rows = []
    print(f"{'attack':<24} {'seconds':>8} {'peak MB':>8} {'safe':>5}  outcome")
    for name, (what, fn) in ATTACKS.items():
        if args.only not in name:
            continue
        cap = 0 if getattr(fn, "server", False) else args.cap_gb
        t0 = time.perf_counter()
        try:
            r = subprocess.run([sys.executable, __file__, "--child", name, "--cap-gb", str(cap)],
                               capture_output=True, text=True, timeout=args.timeout)
            line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
            if line:
                row = json.loads(line[-1][7:])
            else:
                tail = (r.stderr.strip().splitlines() or ["?"])[-1]
                row = {"outcome": f"child died (exit {r.returncode}): {tail[:80]}", "safe": False,
                       "seconds": time.perf_counter() - t0, "peak_mb": float("nan")}
        except subprocess.TimeoutExpired:
            row = {"outcome": f"killed after {args.timeout:.0f} s", "safe": False,
                   "seconds": args.timeout, "peak_mb": float("nan")}
        row.update(name=name, what=what)
        if row["safe"] is not False and name in CEILING_MB:
            row["safe"] = bool(row["peak_mb"] < CEILING_MB[name])
        rows.append(row)
        safe = {True: "yes", False: "NO", None: "-"}[row["safe"]]
        print(f"{name:<24} {row['seconds']:>8.2f} {row['peak_mb']:>8.0f} {safe:>5}  "
              f"{row['outcome']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
