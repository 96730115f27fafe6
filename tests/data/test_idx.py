"""IDX files: round trips for every type, and each kind of damage rejected with a clear error."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from digitlens.data.idx import (
    IDXError,
    parse_idx,
    read_idx,
    read_mnist_pair,
    to_idx_bytes,
    write_idx,
)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32,
                                   np.float64])
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 28, 28), (1, 2, 3, 4)])
def test_round_trip(tmp_path, dtype, shape):
    rng = np.random.default_rng(0)
    a = (rng.normal(size=shape) * 50).astype(dtype)
    for name in ("a.idx", "a.idx.gz"):
        path = write_idx(tmp_path / name, a)
        b = read_idx(path)
        assert b.dtype == np.dtype(dtype) and b.dtype.isnative and b.shape == a.shape
        np.testing.assert_array_equal(a, b)
        b[...] = 0                                                # a writable copy
    assert (tmp_path / "a.idx.gz").read_bytes()[:2] == b"\x1f\x8b"


def test_known_bytes_match_the_format():
    # the header of MNIST's label file: magic 0x00000801, then the count
    raw = to_idx_bytes(np.array([5, 0, 4], dtype=np.uint8))
    assert raw == b"\x00\x00\x08\x01" + struct.pack(">I", 3) + bytes([5, 0, 4])
    raw = to_idx_bytes(np.array([[1, -2]], dtype=np.int16))
    assert raw == b"\x00\x00\x0b\x02" + struct.pack(">II", 1, 2) + struct.pack(">hh", 1, -2)
    assert read_idx(raw).tolist() == [[1, -2]]


def test_non_native_byte_order_input():
    a = np.arange(5, dtype=">i4")
    np.testing.assert_array_equal(read_idx(to_idx_bytes(a)), np.arange(5))


def test_gzip_is_deterministic(tmp_path):
    a = np.arange(100, dtype=np.uint8)
    write_idx(tmp_path / "x.gz", a)
    first = (tmp_path / "x.gz").read_bytes()
    write_idx(tmp_path / "x.gz", a)
    assert (tmp_path / "x.gz").read_bytes() == first


GOOD = to_idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))


@pytest.mark.parametrize("data, message", [
    (b"", "only 0 bytes"),
    (b"\x00\x00", "only 2 bytes"),
    (b"\x01\x00" + GOOD[2:], "bad magic"),
    (b"PK\x03\x04" + GOOD[4:], "bad magic"),
    (GOOD[:2] + b"\x07" + GOOD[3:], "unknown data type code 0x07"),
    (GOOD[:3] + b"\x00" + GOOD[4:], "0 dimensions"),
    (GOOD[:10], "truncated header"),
    (GOOD[:-1], "truncated: shape (2, 3, 4) needs 24 data bytes, the file has 23"),
    (GOOD[:16], "truncated"),
    (GOOD + b"\x00", "1 unexpected bytes after the data"),
    (GOOD[:4] + struct.pack(">III", 60000, 60000, 60000) + b"\x00", "over the limit"),
])
def test_damaged_files_are_rejected(data, message):
    with pytest.raises(IDXError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_idx(data)


def test_limits_and_gzip_damage(tmp_path):
    big = to_idx_bytes(np.zeros(1000, dtype=np.uint8))
    with pytest.raises(IDXError, match="over the limit"):
        read_idx(big, max_bytes=500)
    # a small gzip that expands past the limit is stopped while decompressing
    bomb = gzip.compress(b"\x00" * 100_000)
    assert len(bomb) < 1_000
    with pytest.raises(IDXError, match="decompresses to more than"):
        read_idx(bomb, max_bytes=10_000)
    gz = gzip.compress(GOOD)
    with pytest.raises(IDXError, match="damaged gzip"):
        read_idx(gz[: len(gz) // 2])
    path = tmp_path / "big.idx"
    path.write_bytes(big)
    with pytest.raises(IDXError, match="over the limit"):
        read_idx(path, max_bytes=500)
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "missing.idx")


def test_write_refuses_unsupported_arrays(tmp_path):
    with pytest.raises(ValueError, match="no IDX type"):
        write_idx(tmp_path / "x.idx", np.zeros(3, dtype=np.uint16))
    with pytest.raises(ValueError, match="1 to 255 dimensions"):
        write_idx(tmp_path / "x.idx", np.array(3, dtype=np.uint8))
    assert not list(tmp_path.iterdir())                           # nothing half-written


def test_mnist_pair_validation(tmp_path):
    imgs = np.zeros((3, 28, 28), np.uint8)
    write_idx(tmp_path / "i.gz", imgs)
    write_idx(tmp_path / "l.gz", np.array([1, 2, 3], np.uint8))
    x, y = read_mnist_pair(tmp_path / "i.gz", tmp_path / "l.gz")
    assert x.shape == (3, 28, 28) and y.tolist() == [1, 2, 3]
    write_idx(tmp_path / "l2.gz", np.array([1, 2], np.uint8))
    with pytest.raises(IDXError, match="3 images but .* 2 labels"):
        read_mnist_pair(tmp_path / "i.gz", tmp_path / "l2.gz")
    write_idx(tmp_path / "l3.gz", np.array([1, 2, 12], np.uint8))
    with pytest.raises(IDXError, match="digits 0..9"):
        read_mnist_pair(tmp_path / "i.gz", tmp_path / "l3.gz")
    write_idx(tmp_path / "i2.gz", np.zeros((3, 27, 28), np.uint8))
    with pytest.raises(IDXError, match=r"\(N, 28, 28\)"):
        read_mnist_pair(tmp_path / "i2.gz", tmp_path / "l.gz")


def test_a_header_with_too_many_dimensions_is_an_idx_error():
    import struct

    from digitlens.data.idx import parse_idx
    from digitlens.errors import IDXError

    data = bytes([0, 0, 0x08, 65]) + struct.pack(">65I", *([1] * 65)) + b"\x00"
    with pytest.raises(IDXError, match="65 dimensions"):
        parse_idx(data)
