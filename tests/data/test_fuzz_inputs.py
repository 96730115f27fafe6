"""Fuzzing (issue 15): mutated PNG, JPEG and WebP bytes and mutated model files.  Every case must
end in a result or in the library's own clean error — never another exception, never a hang.
A few hundred cases in all, kept fast (small files)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from digitlens.errors import CheckpointError, PreprocessError
from digitlens.preprocessing import preprocess


def _seed_image(fmt: str) -> bytes:
    im = Image.new("RGBA" if fmt != "JPEG" else "RGB", (40, 40), "white")
    ImageDraw.Draw(im).line([(10, 5), (30, 35)], fill="black", width=4)
    buf = io.BytesIO()
    im.save(buf, fmt, **({"quality": 80} if fmt == "JPEG" else {}))
    return buf.getvalue()


SEEDS = {fmt: _seed_image(fmt) for fmt in ("PNG", "JPEG", "WEBP")}

#: one mutation: (kind, position as a fraction of the length, a byte value, a length)
MUTATION = st.tuples(st.sampled_from(["flip", "set", "cut", "insert", "dup"]),
                     st.floats(0, 1), st.integers(0, 255), st.integers(1, 64))


def mutate(data: bytes, mutations) -> bytes:
    b = bytearray(data)
    for kind, where, value, n in mutations:
        i = min(int(where * len(b)), max(len(b) - 1, 0))
        if kind == "flip" and b:
            b[i] ^= 1 << (value % 8)
        elif kind == "set" and b:
            b[i:i + n] = bytes([value]) * len(b[i:i + n])
        elif kind == "cut":
            del b[i:i + n]
        elif kind == "insert":
            b[i:i] = bytes([value]) * n
        elif kind == "dup":
            b[i:i] = b[i:i + n]
    return bytes(b)


@pytest.mark.parametrize("fmt", list(SEEDS))
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          derandomize=True)
@given(mutations=st.lists(MUTATION, min_size=1, max_size=4))
def test_mutated_images_end_in_a_result_or_a_clean_error(fmt, mutations):
    data = mutate(SEEDS[fmt], mutations)
    try:
        p = preprocess(data)
    except PreprocessError:
        return
    assert p.image.shape == (28, 28) and np.all(np.isfinite(p.image))


def _seed_model() -> bytes:
    import tempfile
    from pathlib import Path

    import digitlens as dl
    from digitlens.nn.checkpoint import save_model

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "m.npz"
        save_model(dl.build_model("logistic", np.random.default_rng(0)), p)
        return p.read_bytes()


MODEL = _seed_model()


def _entries(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


ENTRIES = _entries(MODEL)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture],
          derandomize=True)
@given(mutations=st.lists(MUTATION, min_size=1, max_size=3),
       inside=st.sampled_from([None, *sorted(ENTRIES)]))
def test_mutated_model_files_load_or_raise_checkpoint_error(tmp_path, mutations, inside):
    """Mutate the file's bytes, or one entry's bytes inside a valid zip (so the config JSON,
    the .npy headers and the weights are reached, not only the zip checks)."""
    from digitlens.nn.checkpoint import load_model

    if inside is None:
        data = mutate(MODEL, mutations)
    else:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name, content in ENTRIES.items():
                z.writestr(name, mutate(content, mutations) if name == inside else content)
        data = buf.getvalue()
    path = tmp_path / "m.npz"
    path.write_bytes(data)
    try:
        m = load_model(path)
    except CheckpointError as e:
        assert str(path) in str(e)
        return
    assert m.predict_proba(np.zeros((1, 1, 28, 28), np.float32)).shape == (1, 10)
