"""Recognizer: the pre-processing pipeline in front, explanations behind, safe across threads."""

from __future__ import annotations

import io
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from digitlens.nn.checkpoint import CheckpointError, save_model
from digitlens.recognizer import DEFAULT_METHODS, Recognizer


def canvas_png(digit: np.ndarray, size: int = 280) -> bytes:
    """A bundled 28x28 digit drawn like the web canvas: dark ink on white, 280x280 PNG."""
    from PIL import Image

    img = Image.fromarray((255 - digit * 255).astype(np.uint8)).resize((size, size),
                                                                       Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def rec(trained, digits):
    return Recognizer({"mlp": trained("mlp"), "logistic": trained("logistic")}, digits=digits)


@pytest.mark.slow
def test_explain_a_canvas_png_through_the_pipeline(rec, digits):
    right = 0
    for i in range(10):
        e = rec.explain(canvas_png(digits.x_test[i, 0]), model="mlp", counterfactual=False)
        right += e.prediction == digits.y_test[i]
        assert e.preprocessing is not None
        assert [s["name"] for s in e.preprocessing_dict()["steps"]][0] == "decode"
        assert e.image.shape == (28, 28) and 0 <= e.image.min() and e.image.max() <= 1
        assert e.runner_up != e.prediction
        if e.probabilities[e.runner_up] >= 0.05:  # a real runner-up: the contrast is with it
            assert e.contrast.b == e.runner_up and e.contrast.reason == "runner-up"
        else:  # no real runner-up: the digit people most often confuse with this one
            assert e.contrast.reason == "usual confusion"
            assert e.contrast.b == e.contrast.suggestions[0][0] != e.prediction
        assert sorted(e.attributions) == sorted(DEFAULT_METHODS)
        assert abs(e.contrast.units.sum_check) < 1e-9
        assert e.probabilities.sum() == pytest.approx(1.0)
    assert right >= 8  # the pipeline turns a canvas drawing back into an MNIST-like digit


def test_predict_matches_the_model_on_the_preprocessed_image(rec, digits, trained):
    png = canvas_png(digits.x_test[4, 0])
    p = rec.predict(png, model="mlp")
    from digitlens.preprocessing import preprocess

    x = preprocess(png).image[None, None]
    np.testing.assert_allclose(p.probabilities, trained("mlp").predict_proba(x)[0], atol=1e-6)
    assert p.label == int(trained("mlp").predict(x)[0])
    assert json.loads(json.dumps(p.to_dict()))["label"] == p.label


def test_explain_switches_and_validation(rec, digits):
    x = digits.x_test[0, 0]
    e = rec.explain(x, model="logistic", skip_preprocess=True, methods=["saliency"],
                    counterfactual=False, units=False, nearest=False, trace=False)
    assert list(e.attributions) == ["saliency"]
    assert e.counterfactual is None and e.units is None and e.nearest is None and e.trace is None
    assert any("exactly each pixel's term" in s for s in rec.explain(
        x, model="logistic", skip_preprocess=True, counterfactual=False).sentences)
    pred = e.prediction
    other = (pred + 1) % 10
    assert rec.explain(x, model="logistic", vs=other, skip_preprocess=True,
                       counterfactual=False).contrast.b == other
    with pytest.raises(ValueError, match="vs must differ"):
        rec.explain(x, model="logistic", vs=pred, skip_preprocess=True)
    with pytest.raises(ValueError, match="classes"):
        rec.explain(x, model="logistic", vs=12, skip_preprocess=True)
    with pytest.raises(ValueError, match="model must be one of"):
        rec.explain(x, model="cnn9", skip_preprocess=True)
    with pytest.raises(ValueError, match="methods"):
        rec.explain(x, model="logistic", skip_preprocess=True, methods=["lime"])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rec.explain(x * 3, model="logistic", skip_preprocess=True)
    from digitlens.errors import PreprocessError

    with pytest.raises(PreprocessError):
        rec.explain(b"not an image", model="logistic")


def test_from_cache_loads_trained_models_and_says_how_to_train(tmp_path, monkeypatch, trained):
    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path))
    from digitlens._util import paths

    save_model(trained("logistic"), paths.model_path("logistic"))
    r = Recognizer.from_cache(["logistic"])
    assert r.names == ["logistic"]
    assert Recognizer.from_cache().names == ["logistic"]  # every trained zoo model
    with pytest.raises(CheckpointError, match="digitlens train --model mlp"):
        Recognizer.from_cache(["mlp"])
    with pytest.raises(ValueError, match="no models"):
        Recognizer().predict(np.zeros((28, 28)), skip_preprocess=True)


def _strip(d):
    d = dict(d)
    d.pop("timings_ms")
    return d


@pytest.mark.slow
def test_concurrent_requests_give_the_same_answers(trained, digits):
    """Many threads explaining at once (the web server) == one at a time; the atlas is built
    once even when the first requests race for it."""
    rec = Recognizer({"lab": trained("lab"), "cnn_tiny": trained("cnn_tiny", 2)}, digits=digits)
    jobs = [(("lab", "cnn_tiny")[i % 2], digits.x_test[i, 0]) for i in range(12)]

    def run(job):
        name, x = job
        return _strip(rec.explain(x, model=name, skip_preprocess=True, ig_steps=16).to_dict())

    with ThreadPoolExecutor(max_workers=6) as pool:
        parallel = list(pool.map(run, jobs))
    atlas = rec.atlas("lab")
    sequential = [run(j) for j in jobs]
    assert parallel == sequential
    assert rec.atlas("lab") is atlas


def test_repr_html_and_figure(rec, digits):
    from html import escape

    from digitlens.data.images import gray_from_data_url
    from digitlens.view.figures.explanation import explanation_figure, explanation_html

    e = rec.explain(digits.x_test[1, 0], model="logistic", skip_preprocess=True)
    html = e._repr_html_()
    assert html.startswith("<div>") and f"reads <b>{e.prediction}</b>" in html
    url = html.split("src='")[1].split("'")[0]  # the digit the network read, as a PNG
    np.testing.assert_allclose(gray_from_data_url(url), e.image, atol=1 / 255)
    assert all(escape(s) in html for s in e.sentences)
    fig = explanation_figure(e)
    assert len(fig.subfigs) == 6  # top, attributions, contrast, counterfactual, units, nearest
    full = explanation_html(e)
    assert full.startswith("<div>") and "data:image/png;base64," in full
    assert not hasattr(e, "figure")  # results are data: the view draws them


# ------------------------------------------------------------------------ the JSON API's calls
@pytest.fixture(scope="module")
def unit_rec(digits):
    """Untrained ``lab`` and ``cnn_tiny`` models: a unit card is about structure, not accuracy."""
    import digitlens as dl

    return Recognizer({"lab": dl.build_model("lab", np.random.default_rng(0)),
                       "cnn_tiny": dl.build_model("cnn_tiny", np.random.default_rng(1))},
                      digits=digits)


def test_unit_detail_of_a_pixel_unit_is_its_weights_and_top_digits(unit_rec, digits):
    from digitlens.explain.result import Example

    model, j = unit_rec.model("lab"), 3
    u = unit_rec.unit_detail("lab", 1, j)
    W, b = model.layers[1].params["W"], model.layers[1].params["b"]
    assert (u["model"], u["layer"], u["unit"], u["type"]) == ("lab", 1, j, "dense")
    assert u["n_units"] == 25 and u["n_weights"] == 784 and u["template_kind"] == "weights"
    assert u["bias"] == pytest.approx(float(b[j]), rel=1e-5, abs=1e-7)
    assert u["weights"]["min"] == pytest.approx(float(W[:, j].min()), rel=1e-5)
    np.testing.assert_allclose(u["template"], W[:, j].reshape(28, 28), rtol=1e-3, atol=1e-6)
    assert u["sentence"].startswith("This unit reads the pixels directly")
    tops = u["top_examples"]
    assert len(tops) == 8
    acts = [t["activation"] for t in tops]
    assert acts == sorted(acts, reverse=True)
    for t in tops[:3]:  # each is that training digit, and excites the unit (after ReLU) that much
        x = digits.x_train[t["index"]]
        assert t["label"] == int(digits.y_train[t["index"]])
        np.testing.assert_allclose(Example.from_dict(t).image, x[0], atol=1e-7)
        a = model.forward(x[None], trace=True).layers[2].output[0, j]
        assert t["activation"] == pytest.approx(float(a), rel=1e-4, abs=1e-6)
    json.dumps(u)


def test_unit_detail_of_a_deeper_unit_is_its_input_gradient_at_an_image(unit_rec, digits):
    u = unit_rec.unit_detail("lab", 3, 2)
    assert u["template"] is None and u["template_kind"] is None
    assert "send the image" in u["sentence"] and len(u["top_examples"]) == 8  # last hidden
    x = digits.x_test[0, 0].astype(np.float64)
    v = unit_rec.unit_detail("lab", 3, 2, image=x)
    assert v["template_kind"] == "input_gradient" and v["top_examples"] == u["top_examples"]
    g = np.array(v["template"])
    # the template is d a_2 / dx, a = ReLU(layer 3's z): check it by central differences
    m = unit_rec.exact_model("lab")

    def act(img):
        return float(m.forward(img[None, None], trace=True).layers[4].output[0, 2])

    eps, rng = 1e-4, np.random.default_rng(0)
    for r, c in zip(rng.integers(4, 24, 6), rng.integers(4, 24, 6)):
        e = np.zeros((28, 28))
        e[r, c] = eps
        assert g[r, c] == pytest.approx((act(x + e) - act(x - e)) / (2 * eps), rel=2e-3,
                                        abs=1e-6)
    out = unit_rec.unit_detail("lab", 5, 4)  # an output unit: no atlas examples
    assert out["n_units"] == 10 and out["top_examples"] == []


def test_unit_detail_of_a_filter(unit_rec):
    model = unit_rec.model("cnn_tiny")
    u = unit_rec.unit_detail("cnn_tiny", 0, 2)
    assert u["type"] == "conv2d" and u["template_kind"] == "filter" and u["n_weights"] == 25
    np.testing.assert_allclose(u["template"], model.layers[0].params["W"][2, 0], rtol=1e-3,
                               atol=1e-6)
    assert u["template_caption"] == "its 5×5 filter, slid over the image"
    assert len(u["top_examples"]) == 8


def test_unit_detail_errors(unit_rec):
    from digitlens.errors import NotAUnitLayerError, UnknownUnitError

    with pytest.raises(UnknownUnitError, match="layers 0 to 5, not 9") as e:
        unit_rec.unit_detail("lab", 9, 0)
    assert e.value.code == "unknown_layer"
    with pytest.raises(NotAUnitLayerError, match=r"layer 2 \(activation\) has no units"):
        unit_rec.unit_detail("lab", 2, 0)
    for unit in (25, -1):
        with pytest.raises(UnknownUnitError, match="units 0 to 24") as e:
            unit_rec.unit_detail("lab", 1, unit)
        assert e.value.code == "unknown_unit"
    for bad in ([[0.5] * 27] * 28, [[2.0] * 28] * 28, np.full((28, 28), np.nan)):
        with pytest.raises(ValueError, match=r"28 rows of 28 numbers in \[0, 1\]"):
            unit_rec.unit_detail("lab", 3, 0, image=bad)
    with pytest.raises(ValueError, match="model must be one of"):
        unit_rec.unit_detail("vgg", 1, 0)


def test_explain_dict_is_the_explanation_with_detail_and_notes(rec, digits):
    x = digits.x_test[3, 0]
    d = rec.explain_dict(x, "logistic", skip_preprocess=True)
    e = rec.explain(x, model="logistic", skip_preprocess=True)
    assert d["detail"] == "full" and d["notes"] == []
    from digitlens.explain.names import layer_names

    names = [n.to_dict() for n in layer_names(rec.model("logistic"))]
    assert d["layer_names"] == names  # the page names layers as the library does
    assert _strip(d) == {**_strip(e.to_dict()), "detail": "full", "notes": [],
                         "layer_names": names}
    live = rec.explain_dict(x, "logistic", detail="live", vs=3, skip_preprocess=True)
    assert live["detail"] == "live" and live["attributions"] == {} and live["trace"]
    assert live["contrast"] is None and live["units"] is None and live["counterfactual"] is None


def test_explain_dict_vs_method_and_target(rec, digits):
    from digitlens.explain.attribution import attribute
    from digitlens.recognizer import METHOD_OPTIONS

    x = digits.x_test[0, 0]
    pred = rec.predict(x, model="logistic", skip_preprocess=True).label
    # asking "why not <the answer>" falls back to the runner-up, and says so
    d = rec.explain_dict(x, "logistic", vs=pred, method="saliency", counterfactual=False,
                         skip_preprocess=True)
    assert d["contrast"]["b"] == d["runner_up"] != pred and d["counterfactual"] is None
    assert d["notes"] == [f"You asked why not {pred}, but the network now reads {pred}; this "
                          f"compares it with {d['runner_up']}, the runner-up, instead."]
    assert set(d["attributions"]) == {"saliency"}
    other = (pred + 1) % 10
    for meth in ("saliency", "integrated_gradients", "occlusion"):
        d = rec.explain_dict(x, "logistic", method=meth, target=other, counterfactual=False,
                             skip_preprocess=True)
        assert set(d["attributions"][meth]) == {str(pred), str(other)}
        ref = attribute(rec.exact_model("logistic"), x.astype(np.float64), other, meth,
                        **METHOD_OPTIONS.get(meth, {})).to_dict()
        assert d["attributions"][meth][str(other)] == ref
    with pytest.raises(ValueError, match=r"options.vs: the 'logistic' model only knows the "
                                         r"digits \[0, 1, 2, 3, 4, 5, 6, 7, 8, 9\], got 12"):
        rec.explain_dict(b"not even an image", "logistic", vs=12)  # checked before decoding
    with pytest.raises(ValueError, match="options.target"):
        rec.explain_dict(x, "logistic", target=-1, skip_preprocess=True)
    with pytest.raises(ValueError, match="detail"):
        rec.explain_dict(x, "logistic", detail="medium", skip_preprocess=True)
    with pytest.raises(ValueError, match="method"):
        rec.explain_dict(x, "logistic", method="lime", skip_preprocess=True)


def test_explain_dict_preprocesses_with_the_given_switches(rec, digits):
    png = canvas_png(digits.x_test[2, 0])
    d = rec.explain_dict(png, "logistic", detail="live", steps={"center": False})
    steps = {s["name"]: s for s in d["preprocessing"]["steps"]}
    assert steps["center"]["enabled"] is False
    from digitlens.preprocessing import preprocess

    ref = preprocess(png, steps={"center": False}).image
    np.testing.assert_allclose(d["image"], ref, atol=6e-4)
