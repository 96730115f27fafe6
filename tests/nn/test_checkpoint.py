"""Model files: exact round trips, and every kind of bad file refused with a clear CheckpointError
(never a traceback from deep inside zipfile/zlib, never an unpickled object)."""

from __future__ import annotations

import json
import os
import pickle
import stat

import numpy as np
import pytest

import digitlens as dl
from digitlens.nn import checkpoint
from digitlens._util.files import atomic_write
from digitlens.errors import CheckpointError
from digitlens.nn.checkpoint import load_model, save_model


@pytest.fixture(scope="module")
def lab():
    return dl.build_model("lab", np.random.default_rng(0))


@pytest.fixture
def saved(lab, tmp_path):
    path = tmp_path / "lab.npz"
    save_model(lab, path, {"test_accuracy": 0.91, "note": "hello"})
    return path


def arrays_of(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as d:
        return {k: d[k] for k in d.files}


def rewrite(src, dst, **changes):
    """Copy a model file, replacing (or with None, removing) some entries."""
    arrays = arrays_of(src)
    for k, v in changes.items():
        k = k.replace("__slash__", "/")
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    np.savez(dst, **arrays)
    return dst


def json_entry(obj) -> np.ndarray:
    return np.frombuffer(json.dumps(obj).encode(), dtype=np.uint8)


# ------------------------------------------------------------------------------ round trip


@pytest.mark.parametrize("name", ["logistic", "binary", "lab", "mlp"])
def test_round_trip_is_exact(name, tmp_path, digits):
    model = dl.build_model(name, np.random.default_rng(1))
    # move the weights away from their initial values so the test is not about initialisation
    for p in model.params().values():
        p += np.random.default_rng(2).standard_normal(p.shape).astype(np.float32) * 0.01
    meta = {"test_accuracy": 0.5, "history": {"epochs": [{"loss": 1.25}]}, "seed": 7}
    path = save_model(model, tmp_path / f"{name}.npz", meta)
    again, meta2 = load_model(path, with_meta=True)
    assert meta2 == meta
    assert again.config == model.config
    assert again.config.to_json() == model.config.to_json()
    assert (again.name, again.description, again.classes) == (model.name, model.description,
                                                              model.classes)
    assert set(again.params()) == set(model.params())
    for k, v in model.params().items():
        assert again.params()[k].dtype == v.dtype
        np.testing.assert_array_equal(again.params()[k], v)
    x = digits.x_test[:50]
    np.testing.assert_array_equal(again.predict_proba(x), model.predict_proba(x))
    np.testing.assert_array_equal(again.predict(x), model.predict(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip_keeps_the_models_dtype(dtype, tmp_path, digits):
    model = dl.build_model("cnn_tiny", np.random.default_rng(1), dtype=dtype)
    again = load_model(save_model(model, tmp_path / "m.npz"))
    assert again.dtype == np.dtype(dtype)
    for k, v in model.params().items():
        assert again.params()[k].dtype == np.dtype(dtype)
        np.testing.assert_array_equal(again.params()[k], v)
    x = digits.x_test[:20]
    out = again.forward(x)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, model.forward(x))


def test_trained_model_round_trip_keeps_accuracy(trained, digits, tmp_path):
    model = trained("logistic")
    again = load_model(save_model(model, tmp_path / "m.npz"))
    assert dl.evaluate(again, digits.x_test, digits.y_test) == \
        dl.evaluate(model, digits.x_test, digits.y_test)


def test_file_is_a_plain_npz_without_pickles(saved):
    arrays = arrays_of(saved)  # loads with allow_pickle=False
    assert arrays["__format__"].tolist() == [checkpoint.FORMAT_VERSION]
    assert json.loads(arrays["__config__"].tobytes())["name"] == "lab"
    assert {k for k in arrays if k.startswith("param/")} == {
        "param/1.W", "param/1.b", "param/3.W", "param/3.b", "param/5.W", "param/5.b"}


def test_new_files_are_readable_by_others_not_private(saved):
    # mkstemp creates 0600 files; the saved model should have ordinary permissions
    assert stat.S_IMODE(os.stat(saved).st_mode) == 0o644


def test_resave_keeps_the_files_permissions(lab, saved):
    os.chmod(saved, 0o640)
    save_model(lab, saved)
    assert stat.S_IMODE(os.stat(saved).st_mode) == 0o640


# ------------------------------------------------------------------------------- bad files


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"model file .*nope.npz does not exist"):
        load_model(tmp_path / "nope.npz")


@pytest.mark.parametrize("keep", [0, 1, 30, 0.25, 0.5, 0.9, 0.999, -1])
def test_truncated_files_rejected(saved, tmp_path, keep):
    raw = saved.read_bytes()
    n = keep if isinstance(keep, int) and keep >= 0 else (len(raw) + keep if keep < 0
                                                          else int(len(raw) * keep))
    bad = tmp_path / "cut.npz"
    bad.write_bytes(raw[:n])
    with pytest.raises(CheckpointError, match="truncated"):
        load_model(bad)


def test_flipped_bytes_in_the_weights_rejected(saved, tmp_path):
    raw = saved.read_bytes()
    import zipfile

    with zipfile.ZipFile(saved) as z:
        info = z.getinfo("param/1.W.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)  # compressed data
    bad = tmp_path / "flipped.npz"
    for pos in np.random.default_rng(0).integers(start, start + info.compress_size, 20):
        b = bytearray(raw)
        b[pos] ^= 0x5A
        bad.write_bytes(bytes(b))
        with pytest.raises(CheckpointError, match="corrupted"):
            load_model(bad)


def test_any_single_flipped_byte_is_rejected_or_harmless(saved, lab, tmp_path):
    """Flips in zip metadata the reader ignores (timestamps, ...) are harmless; everything else
    must be a CheckpointError -- never another exception, never different weights."""
    raw = saved.read_bytes()
    bad = tmp_path / "flipped.npz"
    rng = np.random.default_rng(1)
    positions = np.concatenate([np.arange(0, 200), np.arange(len(raw) - 400, len(raw)),
                                rng.integers(0, len(raw), 200)])
    rejected = 0
    for pos in positions:
        b = bytearray(raw)
        b[pos] ^= 0xFF
        bad.write_bytes(bytes(b))
        try:
            again = load_model(bad)
        except CheckpointError:
            rejected += 1
            continue
        for k, v in lab.params().items():
            np.testing.assert_array_equal(again.params()[k], v)
    assert rejected > len(positions) / 2  # the data itself is CRC-checked


class Exploit:
    """Unpickling this would create a file: proof that the payload ran."""

    marker = None

    def __reduce__(self):
        return (open, (str(Exploit.marker), "w"))


def test_npz_with_a_pickled_object_array_rejected(saved, tmp_path):
    Exploit.marker = tmp_path / "pwned"
    evil = np.empty(1, dtype=object)
    evil[0] = Exploit()
    bad = rewrite(saved, tmp_path / "evil.npz", **{"param__slash__1.W": evil})
    with pytest.raises(CheckpointError, match="contains pickled Python objects; digitlens never "
                                              "unpickles"):
        load_model(bad)
    assert not Exploit.marker.exists()


def test_raw_pickle_file_rejected(lab, tmp_path):
    Exploit.marker = tmp_path / "pwned"
    bad = tmp_path / "model.npz"
    bad.write_bytes(pickle.dumps({"model": lab, "payload": Exploit()}))
    with pytest.raises(CheckpointError, match="is a Python pickle, not a digitlens model file"):
        load_model(bad)
    assert not Exploit.marker.exists()


@pytest.mark.parametrize("version, message", [
    (2, r"has model format version 2 \(written by a newer digitlens\); this digitlens reads "
        r"version 1"),
    (0, "has model format version 0; this digitlens reads version 1"),
])
def test_wrong_version_rejected(saved, tmp_path, version, message):
    bad = rewrite(saved, tmp_path / "v.npz", __format__=np.array([version], dtype=np.int64))
    with pytest.raises(CheckpointError, match=message):
        load_model(bad)


def test_malformed_version_entry_rejected(saved, tmp_path):
    bad = rewrite(saved, tmp_path / "v.npz", __format__=np.array([], dtype=np.int64))
    with pytest.raises(CheckpointError, match="__format__ entry should be one integer"):
        load_model(bad)


def test_wrong_shape_rejected(saved, tmp_path):
    bad = rewrite(saved, tmp_path / "shape.npz",
                  **{"param__slash__3.W": np.zeros((25, 16), np.float32)})
    with pytest.raises(CheckpointError, match=r"weights do not match the architecture: parameter "
                                              r"3.W: expected shape \(25, 15\), got \(25, 16\)"):
        load_model(bad)


def test_missing_parameter_rejected(saved, tmp_path):
    bad = rewrite(saved, tmp_path / "missing.npz", **{"param__slash__5.b": None})
    with pytest.raises(CheckpointError, match=r"weights do not match the architecture: parameter "
                                              r"names differ: missing \['5.b'\]"):
        load_model(bad)


def test_non_finite_and_non_float_weights_rejected(saved, tmp_path):
    w = arrays_of(saved)["param/5.b"].copy()
    w[2] = np.nan
    with pytest.raises(CheckpointError, match="parameter 5.b contains NaN or inf"):
        load_model(rewrite(saved, tmp_path / "nan.npz", **{"param__slash__5.b": w}))
    with pytest.raises(CheckpointError, match="parameter 5.b has dtype int64, expected floats"):
        load_model(rewrite(saved, tmp_path / "int.npz",
                           **{"param__slash__5.b": np.zeros(10, np.int64)}))


def test_invalid_config_rejected(saved, tmp_path):
    bad = rewrite(saved, tmp_path / "json.npz",
                  __config__=np.frombuffer(b"{not json", dtype=np.uint8))
    with pytest.raises(CheckpointError, match="the __config__ entry is not valid JSON"):
        load_model(bad)
    cfg = json.loads(arrays_of(saved)["__config__"].tobytes())
    cfg["layers"][1] = {"type": "transformer"}
    bad = rewrite(saved, tmp_path / "layer.npz", __config__=json_entry(cfg))
    with pytest.raises(CheckpointError, match="the model description is invalid: unknown layer "
                                              "type 'transformer'"):
        load_model(bad)


@pytest.mark.parametrize("content, message", [
    (b"hello, I am a text file\n", "is not a digitlens model file"),
    (b"", "is not a digitlens model file"),
    (b"\x89PNG\r\n\x1a\n" + bytes(100), "is not a digitlens model file"),
])
def test_foreign_files_rejected(tmp_path, content, message):
    bad = tmp_path / "foreign.npz"
    bad.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_model(bad)


def test_random_npz_rejected(tmp_path):
    bad = tmp_path / "random.npz"
    np.savez(bad, weights=np.random.default_rng(0).random((3, 3)), labels=np.arange(3))
    with pytest.raises(CheckpointError, match=r"is not a digitlens model file \(no __format__ "
                                              r"entry\)"):
        load_model(bad)


def test_npy_file_rejected(tmp_path):
    bad = tmp_path / "weights.npy"
    np.save(bad, np.zeros((784, 10)))
    with pytest.raises(CheckpointError, match=r"is a single NumPy \.npy array"):
        load_model(bad)


# --------------------------------------------------------------------------- atomic saves


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("exc", [OSError("disk full"), KeyboardInterrupt()])
def test_interrupted_save_keeps_the_previous_file(saved, lab, tmp_path, monkeypatch, exc):
    before = saved.read_bytes()
    real = np.savez_compressed

    def half_then_fail(f, **arrays):
        real(f, **dict(list(arrays.items())[:3]))  # some bytes reach the temporary file ...
        raise exc  # ... then the disk fills up / the user presses Ctrl-C

    monkeypatch.setattr(np, "savez_compressed", half_then_fail)
    other = dl.build_model("lab", np.random.default_rng(99))
    with pytest.raises(type(exc)):
        save_model(other, saved)
    monkeypatch.undo()
    assert saved.read_bytes() == before
    assert leftovers(tmp_path) == []
    again = load_model(saved)
    np.testing.assert_array_equal(again.params()["1.W"], lab.params()["1.W"])


def test_atomic_write_replaces_only_when_complete(tmp_path):
    target = tmp_path / "f.bin"
    atomic_write(target, lambda f: f.write(b"old"))
    with pytest.raises(RuntimeError):
        atomic_write(target, lambda f: (f.write(b"new but incompl"), (_ for _ in ()).throw(
            RuntimeError("boom"))))
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path) == []
    atomic_write(target, lambda f: f.write(b"new"))
    assert target.read_bytes() == b"new"


def test_refuses_to_save_non_finite_weights(lab, saved):
    before = saved.read_bytes()
    broken = lab.copy()
    broken.params()["3.b"][0] = np.inf
    with pytest.raises(CheckpointError,
                       match="refusing to save: parameter 3.b contains NaN or inf"):
        save_model(broken, saved)
    assert saved.read_bytes() == before


def test_save_creates_missing_directories(lab, tmp_path):
    path = save_model(lab, tmp_path / "a" / "b" / "m.npz")
    assert load_model(path).n_params == lab.n_params


# ------------------------------------------------------------ crafted files (issue 15)
def _craft(path, config, params=None, big=None):
    """A .npz with ``config``; ``big=(name, n)``: a zero float32 array of n values, written
    compressed in chunks (a zip bomb: megabytes on disk, gigabytes inside)."""
    import io
    import zipfile

    from numpy.lib import format as npf

    def npy(a):
        b = io.BytesIO()
        np.save(b, a)
        return b.getvalue()

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("__format__.npy", npy(np.array([1], np.int64)))
        z.writestr("__config__.npy", npy(json_entry(config)))
        for k, v in (params or {}).items():
            z.writestr(f"param/{k}.npy", npy(v))
        if big is not None:
            with z.open(f"param/{big[0]}.npy", "w", force_zip64=True) as f:
                hdr = io.BytesIO()
                npf.write_array_header_1_0(hdr, {"descr": "<f4", "fortran_order": False,
                                                 "shape": (big[1],)})
                f.write(hdr.getvalue())
                zeros = bytes(1 << 24)
                for _ in range(big[1] * 4 // len(zeros)):
                    f.write(zeros)
    return path


def _dense(units=32, classes=10, out=10, loss="softmax_cross_entropy", layers=None):
    if layers is None:
        layers = [{"type": "flatten"}, {"type": "dense", "units": units, "init": "he"},
                  {"type": "activation", "fn": "relu"},
                  {"type": "dense", "units": out, "init": "xavier"}]
    return {"layers": layers, "input_shape": [1, 28, 28], "classes": list(range(classes)),
            "loss": loss, "name": "custom", "description": ""}


def _params(config):
    from digitlens.nn.model import ModelConfig, Sequential

    return Sequential.from_config(ModelConfig.from_dict(config),
                                  rng=np.random.default_rng(0)).params()


@pytest.mark.parametrize("config, message", [
    (_dense(units=1_000_000), "parameters"),
    (_dense(units=2_000_000), "would output shape"),
    (_dense(layers=[]), "no layers"),
    (_dense(layers=[{"type": "flatten"}] * 65), "65 layers"),
    (_dense(classes=2), "expected 2 outputs"),
    (_dense(classes=10, out=1, loss="sigmoid_binary_cross_entropy"), "two classes"),
    (_dense(units=0), "units"),
    ({**_dense(), "layers": [{"type": "conv2d", "filters": 5000, "kernel_size": [3, 3],
                              "padding": [1, 1]}, {"type": "flatten"},
                             {"type": "dense", "units": 10}]}, "would output shape"),
    ({**_dense(), "input_shape": [1, 0, 28]}, "input_shape"),
])
def test_bad_configs_are_refused_before_anything_is_allocated(tmp_path, config, message):
    path = _craft(tmp_path / "m.npz", config)
    with pytest.raises(CheckpointError, match=message) as e:
        load_model(path)
    assert str(path) in str(e.value)


def test_a_consistent_crafted_model_still_loads(tmp_path):
    cfg = _dense()
    m = load_model(_craft(tmp_path / "m.npz", cfg, _params(cfg)))
    assert m.predict_proba(np.zeros((1, 1, 28, 28), np.float32)).shape == (1, 10)


def test_a_zip_bombed_weight_is_refused_before_decompressing(tmp_path):
    import resource

    path = _craft(tmp_path / "m.npz", _dense(), big=("1.W", 48 * 2**20))  # 192 MiB inside
    assert path.stat().st_size < 2_000_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match="decompress to") as e:
        load_model(path)
    assert str(path) in str(e.value)
    # refused before decompressing: the process's peak memory did not grow by the 192 MiB
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) < 50 * 1024  # KiB


def test_a_header_declaring_more_than_the_entry_holds_is_refused(tmp_path):
    import io
    import zipfile

    from numpy.lib import format as npf

    path = _craft(tmp_path / "m.npz", _dense())
    hdr = io.BytesIO()
    npf.write_array_header_1_0(hdr, {"descr": "<f4", "fortran_order": False,
                                     "shape": (10**6,)})
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("param/1.W.npy", hdr.getvalue() + bytes(16))
    with pytest.raises(CheckpointError, match="declares shape"):
        load_model(path)


def test_a_save_removes_the_temporary_files_of_a_killed_save(lab, tmp_path):
    import time

    path = tmp_path / "lab.npz"
    orphan, fresh = tmp_path / ".lab.npz.abc.tmp", tmp_path / ".lab.npz.def.tmp"
    orphan.write_bytes(bytes(100))
    fresh.write_bytes(bytes(100))   # a save running right now in another process: kept
    old = time.time() - 3600
    os.utime(orphan, (old, old))
    save_model(lab, path)
    assert not orphan.exists() and fresh.exists() and path.exists()
