"""Full MNIST (60,000 training + 10,000 test digits): download on request, verify, cache, load.

Nothing here touches the network unless :func:`download_mnist` is called (the CLI's
``digitlens data download mnist``).  The four official gzip IDX files are fetched from a list of
known mirrors, trying the next one when a mirror fails; each file is streamed into a temporary
file beside its destination while its MD5 is computed, and renamed into place only when the
checksum matches, so the cache never holds a half or a wrong file.

The library stays quiet: progress is reported through an optional callback, which the CLI turns
into a progress bar.

The MNIST files are by Yann LeCun, Corinna Cortes and Christopher J. C. Burges (CC BY-SA 3.0).
"""

from __future__ import annotations

import hashlib
import http.client
import math
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import ChecksumError, DownloadError  # noqa: F401  (callers catch them here too)
from .bundled import Digits, to_float
from .idx import read_mnist_pair

MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
"""Base URLs serving the four official files under their official names, tried in order."""

FILES: dict[str, str] = {
    "train-images": "train-images-idx3-ubyte.gz",
    "train-labels": "train-labels-idx1-ubyte.gz",
    "test-images": "t10k-images-idx3-ubyte.gz",
    "test-labels": "t10k-labels-idx1-ubyte.gz",
}
"""The four files: role -> file name."""

MD5: dict[str, str] = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaee5b4797c5d45b5a7a8b",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
"""Known MD5 checksums of the official files (see DESIGN.md)."""

MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024
"""No MNIST file is bigger than 10 MB; a server sending more is refused."""

CHUNK = 64 * 1024
#: slowest useful mirror, bytes per second on average (a 10 MB file then takes ~10 minutes)
MIN_RATE = 16_000

ProgressCallback = Callable[[str, int, "int | None"], None]
"""``progress(file_name, bytes_done, bytes_total_or_None)``."""


def default_dir() -> Path:
    """Where downloaded MNIST lives: ``<digitlens home>/mnist`` (see :mod:`digitlens._util.paths`).
    """
    from .._util import paths

    return paths.home() / "mnist"


def md5_file(path: str | os.PathLike) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _fetch(url: str, dest: Path, expected_md5: str, timeout: float, max_bytes: int,
           progress: ProgressCallback | None) -> None:
    """Stream ``url`` into ``dest`` atomically, checking size and MD5 before the rename."""
    from .._util.files import atomic_write

    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise DownloadError(f"{url}: only http(s) URLs are used, not {scheme!r}")

    def write(f):
        req = urllib.request.Request(url, headers={"User-Agent": "digitlens"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - scheme checked
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            if total is not None and total > max_bytes:
                raise DownloadError(f"{url}: {total:,} bytes is over the limit of "
                                    f"{max_bytes:,}")
            h = hashlib.md5(usedforsecurity=False)
            done, t0 = 0, time.monotonic()
            if progress:
                progress(dest.name, 0, total)
            while True:
                # read1: what has arrived (up to CHUNK), so the rate check below runs even
                # when a mirror drips a byte at a time (read() would wait for a whole CHUNK)
                chunk = resp.read1(CHUNK)
                if not chunk:
                    break
                done += len(chunk)
                elapsed = time.monotonic() - t0
                if elapsed > timeout and done / elapsed < MIN_RATE:
                    raise DownloadError(f"{url}: {done:,} bytes in {elapsed:.0f} s, slower than "
                                        f"{MIN_RATE // 1000} kB/s; stopped")
                if done > max_bytes:
                    raise DownloadError(f"{url}: more than {max_bytes:,} bytes; stopped")
                h.update(chunk)
                f.write(chunk)
                if progress:
                    progress(dest.name, done, total)
        if total is not None and done != total:
            raise DownloadError(f"{url}: connection closed after {done:,} of {total:,} bytes")
        got = h.hexdigest()
        if got != expected_md5:
            raise ChecksumError(f"{url}: MD5 {got} does not match the known {expected_md5}")

    atomic_write(dest, write)  # the temporary file is removed if write() raises


def _remove_stale_temporaries(dest: Path, name: str, age_s: float = 3600.0) -> None:
    """Delete temporary files an earlier, killed download left beside ``name``
    (:func:`digitlens._util.files.remove_stale_temporaries`)."""
    from .._util.files import remove_stale_temporaries

    remove_stale_temporaries(dest / name, age_s)


def download_mnist(dest: str | os.PathLike | None = None, *,
                   mirrors: Sequence[str] = MIRRORS, checksums: Mapping[str, str] = MD5,
                   timeout: float = 30.0, progress: ProgressCallback | None = None,
                   force: bool = False, max_bytes: int = MAX_DOWNLOAD_BYTES) -> Path:
    """Download the four MNIST files into ``dest`` (default :func:`default_dir`), verified.

    Files already present with the right checksum are kept.  For each missing file the mirrors
    are tried in order; a mirror that is down, times out, sends too much or sends bytes with the
    wrong MD5 is skipped.  A file only appears in ``dest`` once it is complete and verified.

    Parameters
    ----------
    dest : path, optional
        Target directory (created if needed).
    mirrors : sequence of str
        Base URLs; the file name is appended.
    checksums : mapping file name -> MD5 hex digest
        Defaults to the official :data:`MD5` table (tests pass their own).
    timeout : float
        Seconds to wait for a mirror to connect or send the next chunk; after this long, a
        mirror sending slower than :data:`MIN_RATE` bytes per second on average is dropped.
    progress : callable, optional
        ``progress(file_name, bytes_done, bytes_total_or_None)``, called as bytes arrive.
    force : bool
        Download again even if a verified file is present.

    Returns
    -------
    Path
        The directory holding the four files.

    Raises
    ------
    DownloadError
        No mirror delivered a file (:class:`ChecksumError` if every answer had a wrong MD5).
    """
    if not mirrors:
        raise ValueError("mirrors must list at least one base URL")
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a number of seconds > 0; got {timeout}")
    dest = Path(dest) if dest is not None else default_dir()
    dest.mkdir(parents=True, exist_ok=True)
    for name in FILES.values():
        if name not in checksums:
            raise ValueError(f"checksums has no entry for {name}")
        expected = checksums[name].lower()
        target = dest / name
        _remove_stale_temporaries(dest, name)
        if target.exists() and not force and md5_file(target) == expected:
            if progress:
                size = target.stat().st_size
                progress(name, size, size)
            continue
        failures: list[str] = []
        bad_sums = 0
        for base in mirrors:
            url = base if base.endswith("/") else base + "/"
            url += name
            try:
                _fetch(url, target, expected, timeout, max_bytes, progress)
                break
            except ChecksumError as e:
                bad_sums += 1
                failures.append(str(e))
            except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as e:
                # URLError/HTTPError/timeouts are OSErrors; ValueError and HTTPException: a
                # malformed or cut-off response
                reason = getattr(e, "reason", None) or e
                failures.append(f"{url}: {reason}")
        else:
            cls = ChecksumError if bad_sums == len(mirrors) else DownloadError
            raise cls(f"could not download {name}: " + "; ".join(failures))
    return dest


def _find(data_dir: Path, name: str) -> Path:
    """The file for official ``name`` in ``data_dir``, compressed or not, either naming style
    (``t10k-images-idx3-ubyte`` or ``t10k-images.idx3-ubyte``)."""
    stem = name[:-3]                                     # without .gz
    dotted = stem.replace("-idx", ".idx")
    for cand in (name, stem, dotted, dotted + ".gz"):
        p = data_dir / cand
        if p.is_file():
            return p
    raise FileNotFoundError(
        f"{data_dir} has no {name} (or {stem}); run `digitlens data download mnist`, or pass the "
        f"directory that holds your MNIST IDX files")


def load_mnist(data_dir: str | os.PathLike | None = None) -> Digits:
    """The full MNIST split from IDX files: 60,000 train / 10,000 test digits.

    ``data_dir`` defaults to the download cache.  Reads nothing from the network.  The digits
    are already in MNIST's normalised form, so they become floats exactly as the bundled ones do
    (``uint8 / 255``); the pre-processing test shows the pipeline leaves such digits unchanged.

    Returns
    -------
    Digits
        ``x_*`` (N, 1, 28, 28) float32 in [0, 1]; ``y_*`` (N,) int64; ``source="mnist"``.
    """
    d = Path(data_dir) if data_dir is not None else default_dir()
    if not d.is_dir():
        raise FileNotFoundError(f"no MNIST directory at {d}; run `digitlens data download mnist`")
    xtr, ytr = read_mnist_pair(_find(d, FILES["train-images"]), _find(d, FILES["train-labels"]))
    xte, yte = read_mnist_pair(_find(d, FILES["test-images"]), _find(d, FILES["test-labels"]))
    return Digits(to_float(xtr), ytr.astype(np.int64), to_float(xte), yte.astype(np.int64),
                  source="mnist")


def load_dataset(source: str = "bundled", data_dir: str | os.PathLike | None = None) -> Digits:
    """Digits from ``source``: ``"bundled"`` (5,000 shipped digits) or ``"mnist"`` (the full
    set from ``data_dir`` or the download cache).  Giving ``data_dir`` implies ``"mnist"``."""
    from .bundled import load_digits

    if source not in ("bundled", "mnist"):
        raise ValueError(f"source must be 'bundled' or 'mnist'; got {source!r}")
    if source == "bundled" and data_dir is None:
        return load_digits()
    return load_mnist(data_dir)
