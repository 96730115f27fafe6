"""Downloading MNIST over a real HTTP server on 127.0.0.1 serving small IDX files the test writes:
success, falling back to the next mirror, checksum mismatch (nothing cached), cut-off and slow
mirrors; then loading the files, and the CLI commands that use them."""

from __future__ import annotations

import gzip
import hashlib
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from typer.testing import CliRunner

from digitlens.data import load_dataset, load_mnist, mnist
from digitlens.data.idx import to_idx_bytes
from digitlens.data.mnist import ChecksumError, DownloadError, download_mnist

N_TRAIN, N_TEST = 60, 20


def small_mnist() -> dict[str, bytes]:
    """Four gzip IDX files shaped like MNIST's, with a few random digits."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": (np.arange(N_TRAIN) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": (np.arange(N_TEST) % 10).astype(np.uint8),
    }
    return {k: gzip.compress(to_idx_bytes(v), mtime=0) for k, v in arrays.items()}


class Server:
    """A loopback HTTP server; ``routes[path] = (behaviour, body)``; ``hits`` counts requests."""

    def __init__(self):
        self.routes: dict[str, tuple[str, bytes]] = {}
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                outer.hits.append(self.path)
                kind, body = outer.routes.get(self.path, ("404", b""))
                if kind == "404":
                    self.send_error(404)
                    return
                if kind == "slow":
                    time.sleep(3)
                self.send_response(200)
                claimed = len(body) + (1000 if kind == "cut" else 0)
                self.send_header("Content-Length", str(claimed))
                self.end_headers()
                self.wfile.write(body)
                if kind == "cut":
                    self.close_connection = True

            def log_message(self, *args):  # keep the test output clean
                pass

        class Quiet(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # e.g. the slow mirror writing after the client gave up: expected

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, prefix: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{prefix}/"

    def serve(self, prefix: str, files: dict[str, bytes], kind: str = "ok"):
        for name, body in files.items():
            self.routes[f"/{prefix}/{name}"] = (kind, body)


@pytest.fixture
def server():
    s = Server()
    s.thread.start()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.fixture
def files():
    return small_mnist()


def md5s(files):
    return {k: hashlib.md5(v).hexdigest() for k, v in files.items()}


def dead_url() -> str:
    """A loopback port nothing listens on: connection refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


def test_success_with_progress_then_load(server, files, tmp_path):
    server.serve("m", files)
    seen: dict[str, list] = {}
    dest = download_mnist(tmp_path / "mnist", mirrors=[server.url("m")], checksums=md5s(files),
                          timeout=5, progress=lambda f, done, total: seen.setdefault(f, []).append(
                              (done, total)))
    assert sorted(p.name for p in dest.iterdir()) == sorted(files)
    for name, body in files.items():
        assert (dest / name).read_bytes() == body
        assert seen[name][-1] == (len(body), len(body))          # progress reached the end
        assert [d for d, _ in seen[name]] == sorted(d for d, _ in seen[name])
    d = load_mnist(dest)
    assert d.source == "mnist"
    assert d.x_train.shape == (N_TRAIN, 1, 28, 28) and d.x_test.shape == (N_TEST, 1, 28, 28)
    assert d.x_train.dtype == np.float32 and 0 <= d.x_train.min() and d.x_train.max() <= 1
    assert d.y_train.tolist() == [i % 10 for i in range(N_TRAIN)]
    assert load_dataset("mnist", dest).y_test.shape == (N_TEST,)
    # a second call finds verified files and makes no request
    before = len(server.hits)
    download_mnist(dest, mirrors=[server.url("m")], checksums=md5s(files), timeout=5)
    assert len(server.hits) == before


def test_first_mirror_down_second_used(server, files, tmp_path):
    server.serve("good", files)
    mirrors = [dead_url(), server.url("missing"), server.url("good")]
    dest = download_mnist(tmp_path, mirrors=mirrors, checksums=md5s(files), timeout=5)
    assert all((dest / n).read_bytes() == b for n, b in files.items())
    assert any(h.startswith("/missing/") for h in server.hits)    # the 404 mirror was tried


def test_checksum_mismatch_is_an_error_and_nothing_is_cached(server, files, tmp_path):
    server.serve("m", files)
    wrong = dict(md5s(files), **{"train-images-idx3-ubyte.gz": "0" * 32})
    with pytest.raises(ChecksumError, match="does not match"):
        download_mnist(tmp_path / "mnist", mirrors=[server.url("m")], checksums=wrong, timeout=5)
    assert list((tmp_path / "mnist").iterdir()) == []             # no file, no temporary


def test_corrupt_mirror_skipped_for_a_good_one(server, files, tmp_path):
    server.serve("bad", {k: v[:-4] + b"XXXX" for k, v in files.items()})
    server.serve("good", files)
    dest = download_mnist(tmp_path, mirrors=[server.url("bad"), server.url("good")],
                          checksums=md5s(files), timeout=5)
    assert all((dest / n).read_bytes() == b for n, b in files.items())


def test_cut_off_and_slow_mirrors_fall_through(server, files, tmp_path):
    server.serve("cut", files, kind="cut")
    server.serve("slow", files, kind="slow")
    server.serve("good", files)
    with pytest.raises(DownloadError) as e:
        download_mnist(tmp_path / "a", mirrors=[server.url("cut"), server.url("slow")],
                       checksums=md5s(files), timeout=0.5)
    assert "connection closed after" in str(e.value) and "timed out" in str(e.value)
    assert not isinstance(e.value, ChecksumError)
    assert list((tmp_path / "a").iterdir()) == []
    dest = download_mnist(tmp_path / "b", mirrors=[server.url("cut"), server.url("good")],
                          checksums=md5s(files), timeout=5)
    assert all((dest / n).read_bytes() == b for n, b in files.items())


def test_a_wrong_cached_file_is_replaced(server, files, tmp_path):
    server.serve("m", files)
    name = "t10k-labels-idx1-ubyte.gz"
    (tmp_path / name).write_bytes(b"half a file")
    download_mnist(tmp_path, mirrors=[server.url("m")], checksums=md5s(files), timeout=5)
    assert (tmp_path / name).read_bytes() == files[name]


def test_only_http_urls_and_sane_arguments(files, tmp_path):
    (tmp_path / "src").mkdir()
    with pytest.raises(DownloadError, match="only http"):
        download_mnist(tmp_path / "d", mirrors=[(tmp_path / "src").as_uri() + "/"],
                       checksums=md5s(files))
    with pytest.raises(ValueError, match="mirrors"):
        download_mnist(tmp_path / "d", mirrors=[], checksums=md5s(files))
    with pytest.raises(ValueError, match="timeout"):
        download_mnist(tmp_path / "d", mirrors=["http://127.0.0.1:9/"], timeout=0)


def test_official_table_matches_design():
    assert mnist.MD5["train-images-idx3-ubyte.gz"] == "f68b3c2dcbeaee5b4797c5d45b5a7a8b"
    assert mnist.MD5["t10k-labels-idx1-ubyte.gz"] == "ec29112dd5afa0611ce80d1b7f02629c"
    assert set(mnist.MD5) == set(mnist.FILES.values())
    assert all(u.startswith("https://") for u in mnist.MIRRORS)


def test_load_mnist_missing_files_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="digitlens data download mnist"):
        load_mnist(tmp_path)
    with pytest.raises(ValueError, match="bundled' or 'mnist"):
        load_dataset("emnist")


def test_load_mnist_accepts_uncompressed_and_dotted_names(files, tmp_path):
    for name, body in files.items():
        plain = name[:-3].replace("-idx", ".idx")                 # t10k-images.idx3-ubyte
        (tmp_path / plain).write_bytes(gzip.decompress(body))
    assert load_mnist(tmp_path).x_train.shape == (N_TRAIN, 1, 28, 28)


# --------------------------------------------------------------------------- CLI

def test_cli_download_info_and_train(server, files, tmp_path, monkeypatch):
    from digitlens.cli import app

    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(mnist, "MD5", md5s(files))
    server.serve("m", files)
    runner = CliRunner()
    r = runner.invoke(app, ["data", "download", "mnist", "--mirror", dead_url(),
                            "--mirror", server.url("m"), "--timeout", "5"])
    assert r.exit_code == 0, r.output
    cached = tmp_path / "home" / "mnist"
    assert sorted(p.name for p in cached.iterdir()) == sorted(files)
    r = runner.invoke(app, ["data", "info"])
    assert r.exit_code == 0 and r.output.count("verified") == 4
    r = runner.invoke(app, ["train", "--model", "logistic", "--epochs", "1", "--data", "mnist",
                            "--out", str(tmp_path / "m.npz")])
    assert r.exit_code == 0, r.output
    assert f"training on {N_TRAIN} mnist digits" in r.output
    assert f"on {N_TEST} held-out digits" in r.output
    r = runner.invoke(app, ["train", "--model", "logistic", "--epochs", "1", "--data-dir",
                            str(tmp_path / "nowhere"), "--out", str(tmp_path / "n.npz")])
    assert r.exit_code == 1 and "no MNIST directory" in r.output


def test_cli_download_failure_is_one_line(server, files, tmp_path, monkeypatch):
    from digitlens.cli import app

    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(mnist, "MD5", dict(md5s(files), **{"train-images-idx3-ubyte.gz":
                                                           "1" * 32}))
    server.serve("m", files)
    r = CliRunner().invoke(app, ["data", "download", "--mirror", server.url("m")])
    assert r.exit_code == 1
    assert "does not match" in r.output and "Traceback" not in r.output
    assert not any((tmp_path / "home" / "mnist").iterdir())


def server_hits(server, prefix: str) -> int:
    """How many requests ``server`` answered under ``prefix``."""
    return sum(h.startswith(prefix) for h in server.hits)
