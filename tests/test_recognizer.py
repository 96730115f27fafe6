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
        assert e.runner_up != e.prediction and e.contrast.b == e.runner_up
        assert sorted(e.attributions) == sorted(DEFAULT_METHODS)
        assert abs(e.contrast.units.sum_check) < 1e-9
        assert e.probabilities.sum() == pytest.approx(1.0)
    assert right >= 8  # the pipeline turns a canvas drawing back into an MNIST-like digit


def test_predict_matches_the_model_on_the_preprocessed_image(rec, digits, trained):
    png = canvas_png(digits.x_test[4, 0])
    p = rec.predict(png, model="mlp")
    from digitlens.preprocessing.pipeline import preprocess

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
    from digitlens.preprocessing.pipeline import PreprocessError

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
    e = rec.explain(digits.x_test[1, 0], model="logistic", skip_preprocess=True)
    html = e._repr_html_()
    assert html.startswith("<div>") and "data:image/png;base64," in html
    assert str(e.prediction) in html
    fig = e.figure()
    assert len(fig.subfigs) == 6  # top, attributions, contrast, counterfactual, units, nearest
