"""The web page's live path made cheaper: each shortcut gives what the longer way gave.

No timings here (benchmarks/load_test.py measures them); these check that the cheaper code is
still right: scalar rounding, the step thumbnails, the threshold's labels, the single forward
pass of a trace, and the server's limit on concurrent explanations.
"""

from __future__ import annotations

import asyncio
import base64
import io
import threading
import time

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage as ndi

from digitlens._util.jsonsafe import num, sig
from digitlens.explain.trace import trace
from digitlens.recognizer import Recognizer

from digitlens._util.png import gray_png, png_data_url  # noqa: E402
from digitlens.data.images import load_gray  # noqa: E402
from digitlens.preprocessing.steps import flatten_lighting, polarity, threshold  # noqa: E402


def test_num_rounds_exactly_like_sig_on_every_magnitude():
    rng = np.random.default_rng(0)
    xs = rng.standard_normal(20_000) * 10.0 ** rng.integers(-12, 12, 20_000)
    xs = np.concatenate([xs, [0.0, -0.0, 1.0, 10.0, 1e-300, 123456.5, 2.5, -0.000125,
                              np.float32(0.1), 999999.5]])
    for digits in (4, 6):
        got = [num(x, digits) for x in xs]
        # num's former definition: sig() of one number.  For numbers above 10^digits the scale
        # 10^-k is inexact and NumPy's pow rounds it differently from C's now and then, so the
        # two agree to within 2 units in the last place (bit for bit below 10^digits)
        want = np.array([float(sig(np.float64(x), digits)) for x in xs])
        np.testing.assert_allclose(got, want, rtol=5e-16, atol=0)
        small = np.abs(xs) < 10.0 ** digits
        assert np.array_equal(np.array(got)[small], want[small])
        assert all(type(v) is float for v in got)
    assert num(None) is None and num(float("nan")) is None and num(-np.inf) is None
    assert num(np.int64(3)) == 3.0


def _png_pixels(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as im:
        return np.asarray(im, dtype=np.float64)


def test_step_thumbnail_is_the_block_mean_by_a_whole_factor():
    rng = np.random.default_rng(1)
    a = rng.random((280, 210)).astype(np.float32)
    px = _png_pixels(png_data_url(a, 192))
    assert px.shape == (140, 105)                              # factor 2: 280 -> 140
    blocks = a.astype(np.float64).reshape(140, 2, 105, 2).mean(axis=(1, 3))
    assert np.abs(px - np.rint(blocks * 255)).max() <= 1      # each pixel: its 2x2 block's mean
    # a side that is no multiple of the factor keeps its last, partial block
    assert _png_pixels(png_data_url(np.ones((193, 50), np.float32), 192)).shape == (97, 25)
    small = np.linspace(0, 1, 28 * 28, dtype=np.float32).reshape(28, 28)
    assert np.abs(_png_pixels(png_data_url(small)) - np.rint(small * 255)).max() == 0


def test_threshold_labels_are_the_full_image_labels_of_the_kept_ink(digits):
    from digitlens.data.images import synthetic_photo

    rng = np.random.default_rng(2)
    for i in range(6):
        gray, _ = load_gray(synthetic_photo(digits.x_test[i, 0], rng))
        a, _, _ = polarity(gray, {})
        a, _, _ = flatten_lighting(a, {})
        ctx: dict = {}
        out, numbers, _ = threshold(a, ctx)
        labels, mass = ctx["labels"]
        assert labels.shape == out.shape
        kept = out > 0
        assert (labels[kept] > 0).all()
        # labelling the candidate ink (label > 0) on the full image gives the same numbers
        full, n = ndi.label(labels > 0, structure=np.ones((3, 3), dtype=bool))
        assert np.array_equal(full, labels) and n == mass.size - 1
        np.testing.assert_allclose(mass, np.bincount(labels[kept], weights=out[kept],
                                                     minlength=mass.size), rtol=1e-6)


def test_trace_reuses_a_forward_pass_and_refuses_a_batch(trained):
    m = trained("mlp")
    x = np.random.default_rng(3).random((1, 1, 28, 28)).astype(np.float32)
    a, b = trace(m, x), trace(m, x, forward=m.forward(x, trace=True))
    assert a.to_dict() == b.to_dict()
    two = np.concatenate([x, x])
    with pytest.raises(ValueError, match="one image"):
        trace(m, x, forward=m.forward(two, trace=True))


def test_recognizer_logits_match_a_plain_forward_with_the_trace_on(trained, digits):
    m = trained("mlp")
    rec = Recognizer({"mlp": m})
    x = digits.x_test[:1]
    e = rec.explain(x[0, 0], model="mlp", methods=(), trace=True, contrast=False,
                    counterfactual=False, units=False, nearest=False, skip_preprocess=True)
    np.testing.assert_array_equal(e.logits, rec.exact_model("mlp").forward(x)[0])


def test_server_runs_at_most_compute_threads_explanations_at_once(trained, digits):
    import httpx

    from digitlens.view.server.app import create_app

    with pytest.raises(ValueError, match="compute_threads"):
        create_app(Recognizer({"mlp": trained("mlp")}), default_model="mlp", compute_threads=0)
    app = create_app(Recognizer({"mlp": trained("mlp")}), default_model="mlp", training=False,
                     compute_threads=1)
    ex = app.state.explainer
    lock, running, peak = threading.Lock(), [0], [0]
    real = ex.explain_json

    def counting(*args):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            time.sleep(0.02)  # long enough that unlimited threads would overlap
            return real(*args)
        finally:
            with lock:
                running[0] -= 1

    ex.explain_json = counting
    png = io.BytesIO()
    Image.fromarray(np.rint(digits.x_test[0, 0] * 255).astype(np.uint8)).save(png, "PNG")

    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return await asyncio.gather(*(c.post("/api/explain?detail=live", content=png.getvalue(),
                                                 headers={"content-type": "image/png"})
                                          for _ in range(6)))

    responses = asyncio.run(go())
    assert [r.status_code for r in responses] == [200] * 6
    assert peak[0] == 1


def test_gray_png_is_a_valid_png_of_exactly_the_pixels():
    rng = np.random.default_rng(3)
    for shape in [(1, 1), (3, 7), (140, 105), (97, 25)]:
        u8 = rng.integers(0, 256, size=shape, dtype=np.uint8)
        for level in (0, 1, 9):
            with Image.open(io.BytesIO(gray_png(u8, level))) as im:
                im.load()                                   # Pillow checks every chunk's CRC
                assert (im.format, im.mode, im.size) == ("PNG", "L", shape[::-1])
                assert np.array_equal(np.asarray(im), u8)
    for bad in [np.zeros((4, 4), np.float32), np.zeros((2, 2, 3), np.uint8),
                np.zeros((0, 5), np.uint8)]:
        with pytest.raises(ValueError, match="uint8"):
            gray_png(bad)


def test_pass_through_layers_name_the_layer_whose_values_they_repeat():
    import json

    from digitlens import build_model
    from digitlens.explain.result import TraceReport

    tiny = build_model("cnn_tiny", np.random.default_rng(0))  # conv, relu, pool, flatten, dense
    x = np.random.default_rng(1).random((1, 1, 28, 28)).astype(np.float32)
    d = json.loads(json.dumps(trace(tiny, x).to_dict()))
    pool = [L for L in d["layers"] if L["type"] == "maxpool2d" and L["values"] is not None]
    assert pool, "the pooling layer's outputs (6x14x14) are small enough to be listed"
    flat = next(L for L in d["layers"] if L["type"] == "flatten")
    assert flat["values"] is None and flat["values_same_as"] == pool[-1]["index"]
    # the cnn: ... conv 3, relu, flatten, dropout, dense, relu, dropout, dense
    m = build_model("cnn", np.random.default_rng(0))
    tr = trace(m, x)
    d = json.loads(json.dumps(tr.to_dict()))
    flat = next(L for L in d["layers"] if L["type"] == "flatten")
    # 64x7x7 = 3,136 numbers: too many to list, and so is the ReLU it repeats: nothing to name
    assert flat["values"] is None and "values_same_as" not in flat
    assert d["layers"][12]["type"] == "dropout" and d["layers"][12]["values_same_as"] == 11
    drops = [L for L in d["layers"] if L["type"] == "dropout"]
    assert drops and all(L["values"] is None for L in drops)   # dropout is off when predicting
    # every listed layer that is not a repeat carries its own numbers
    assert all("values_same_as" not in L for L in d["layers"] if L["values"] is not None)
    back = TraceReport.from_dict(d)
    for a, b in zip(back.layers, tr.layers):
        if b.values is None:
            assert a.values is None
        else:
            np.testing.assert_allclose(a.values, b.values, rtol=1e-4)
    assert back.to_dict() == d


def test_json_lists_carry_no_nan_or_inf():
    import json

    from digitlens._util.jsonsafe import arr, image_list, map_list

    a = np.array([[1.23456, np.nan], [-np.inf, 0.5]])
    assert map_list(a) == [[1.235, None], [None, 0.5]]
    assert image_list(a) == [[1.235, None], [None, 0.5]]
    json.dumps(map_list(a), allow_nan=False)
    back = arr(map_list(a))
    assert np.isnan(back[0, 1]) and np.isnan(back[1, 0]) and back[1, 1] == 0.5


def test_recognizer_weight_statistics_follow_the_model(trained, digits):
    from digitlens import build_model

    rec = Recognizer({"mlp": trained("mlp")}, digits=digits)
    kw = dict(methods=(), contrast=False, counterfactual=False, units=False, nearest=False,
              skip_preprocess=True)
    x = digits.x_test[0, 0]
    first = rec.explain(x, model="mlp", **kw).trace.to_dict()
    assert rec.explain(x, model="mlp", **kw).trace.to_dict() == first      # cached: the same
    assert first == trace(rec.exact_model("mlp"), x).to_dict()
    other = build_model("mlp", np.random.default_rng(5))
    rec.add("mlp", other)                                          # new weights, new statistics
    w = rec.explain(x, model="mlp", **kw).trace.layers[1].params["W"]
    W = rec.exact_model("mlp").layers[1].params["W"]
    assert w["max"] == pytest.approx(float(W.max())) and w["std"] == pytest.approx(float(W.std()))
    with pytest.raises(ValueError, match="one entry per layer"):
        trace(other, x, params=[{}])
