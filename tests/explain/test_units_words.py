"""What units are called and how they are described: "like" a hand-made kernel only above the
stated cosine, sentences from fine measurements (not the same boilerplate for every unit), layer
and unit names in the figures, and the CLI's "I don't know" verdict and usual confusions."""

from __future__ import annotations

import re

import numpy as np
import pytest
from typer.testing import CliRunner

import digitlens as dl
from digitlens.explain import words
from digitlens.explain.filters import LIKE_THRESHOLD
from digitlens.explain.names import layer_names
from digitlens.explain.units import first_layer_units, hand_kernels, strongest_blobs
from digitlens.nn import build_model


# ------------------------------------------------------------------------ "like" needs 0.6
def _cnn_tiny_with_filters(f0: np.ndarray, f1: np.ndarray):
    m = build_model("cnn_tiny", np.random.default_rng(0))
    W = m.layers[0].params["W"]  # (C, 1, 5, 5)
    W[0, 0] = f0
    W[1, 0] = f1
    return m


def test_a_filter_is_like_a_hand_kernel_only_above_the_threshold(digits):
    hk = hand_kernels(5)
    v = hk["vertical edge"]
    # a weak relative: cosine 0.3 with the vertical edge, the rest orthogonal noise
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(5, 5))
    noise -= noise.mean()
    for K in hk.values():  # orthogonal to every hand kernel, so the vertical edge is closest
        noise -= (noise * K).sum() * K / (K * K).sum()
    noise /= np.linalg.norm(noise)
    weak = 0.3 * v + np.sqrt(1 - 0.3 ** 2) * noise
    m = _cnn_tiny_with_filters(2.0 * v, weak)
    rep = first_layer_units(m, digits.x_test[0])
    strong, faint = rep.units[0], rep.units[1]
    assert strong.similar_kernel == "vertical edge" and strong.similarity == pytest.approx(1.0)
    assert faint.similarity is not None and abs(faint.similarity) < LIKE_THRESHOLD
    assert faint.similar_kernel is None  # no "like" at a cosine below 0.6
    assert faint.closest_kernel is not None and faint.like_threshold == LIKE_THRESHOLD
    d = faint.to_dict()
    assert d["similar_kernel"] is None and d["closest_kernel"] == faint.closest_kernel
    assert d["like_threshold"] == LIKE_THRESHOLD
    # every "like" in the report is at or above the threshold, every closest-only below it
    for u in rep.units:
        if u.similar_kernel is not None:
            assert abs(u.similarity) >= LIKE_THRESHOLD
        elif u.similarity is not None:
            assert abs(u.similarity) < LIKE_THRESHOLD
    # the sentences name only the strong ones
    said = " ".join(rep.sentences)
    assert "filter 1 " not in said.replace("filter 1,", "filter 1 ")  # not listed as alike


def test_the_figure_says_closest_below_the_threshold_not_like(digits):
    from digitlens.view.figures.explanation import cosine_text

    assert cosine_text(0.598, 0.6) == "0.598"  # not "0.60 ... below 0.6"
    assert cosine_text(0.83, 0.6) == "0.83" and cosine_text(-0.24, 0.6) == "0.24"


# ---------------------------------------------------------------------- finer measurements
def test_strongest_blobs_find_the_windows_of_each_sign():
    t = np.zeros((28, 28))
    t[3:8, 20:25] = 1.0
    t[14:18, 2:6] = -0.5
    up, down = strongest_blobs(t)
    assert up.sign == 1 and up.rows[0] <= 3 and up.rows[1] >= 7
    assert up.cols[0] <= 20 and up.cols[1] >= 24
    assert up.share == pytest.approx(1.0) and up.mean == pytest.approx(25 / 49)
    assert down.sign == -1 and down.rows[0] <= 14 <= 17 <= down.rows[1]
    assert down.cols[0] <= 2 and down.cols[1] >= 5 and down.mean < 0
    assert words.place(up) == "the top right (rows 3–9, columns 18–24)"
    assert strongest_blobs(np.ones((28, 28)))[1] is None  # nothing negative
    with pytest.raises(ValueError, match="2-D"):
        strongest_blobs(np.zeros(784))


@pytest.mark.slow  # trains the mlp (~5 s, shared with the session)
def test_contrast_unit_sentences_of_a_trained_mlp_are_mostly_distinct(trained):
    """Every unit of the contrast gets its own description: no sentence is repeated word for word
    by more than two of the units, and their short descriptions are mostly different."""
    from digitlens.recognizer import Recognizer

    m = trained("mlp")
    rec = Recognizer({"mlp": m})
    d = dl.load_digits()
    for i in (0, 4, 7):  # three test digits
        e = rec.explain(d.x_test[i, 0], model="mlp", counterfactual=False, skip_preprocess=True)
        terms = e.contrast.units.for_a + e.contrast.units.for_b
        assert len(terms) >= 6
        clauses: dict[str, int] = {}
        for t in terms:
            assert t.sentence and "Around your digit" not in t.sentence
            for c in set(re.split(r"(?<=\.)\s+", t.sentence)):
                clauses[c] = clauses.get(c, 0) + 1
        repeated = {c: n for c, n in clauses.items() if n > 2}
        assert not repeated, repeated
        wheres = [t.where for t in terms]
        assert all(wheres) and len(set(wheres)) >= 0.7 * len(wheres), wheres
        # the numbers in the sentence are the template's own
        t = terms[0]
        up, down = strongest_blobs(np.asarray(t.template))
        assert f"{up.mean:+.2g}" in t.sentence
        assert words.place(up) in t.sentence
        # and no list position leaks into the explanation's words
        assert not re.search(r"\(layer \d+\)", " ".join(e.sentences))


# ----------------------------------------------------------------------- names in figures
def _figure_texts(fig) -> str:
    from matplotlib.text import Text

    return "\n".join(t.get_text() for t in fig.findobj(Text))


@pytest.mark.slow  # a whole explanation (atlas, calibration): a few seconds
def test_figures_name_layers_and_units_for_people(digits):
    from digitlens.recognizer import Recognizer
    from digitlens.view.figures.explanation import explanation_figure

    m = build_model("cnn_tiny", np.random.default_rng(0))
    rec = Recognizer({"cnn_tiny": m})
    e = rec.explain(digits.x_test[3, 0], model="cnn_tiny", counterfactual=False,
                    skip_preprocess=True)
    text = " ".join(_figure_texts(explanation_figure(e, layers=layer_names(m))).split())
    assert "filter 0 of convolution 1" in text
    assert not re.search(r"(?<!hidden )\blayer \d", text), text  # never "layer 4"
    assert "like " not in text or all(
        abs(u.similarity) >= LIKE_THRESHOLD for u in e.units.units if u.similar_kernel)
    # without the names: by role, still no list index
    text = " ".join(_figure_texts(explanation_figure(e)).split())
    assert "filter 0 of the first layer" in text and not re.search(r"(?<!hidden )\blayer \d", text)


@pytest.mark.slow  # a whole explanation (atlas, calibration): a few seconds
def test_figure_names_hidden_units_of_an_mlp(digits):
    from digitlens.recognizer import Recognizer
    from digitlens.view.figures.explanation import explanation_figure

    m = build_model("mlp", np.random.default_rng(0))
    rec = Recognizer({"mlp": m})
    e = rec.explain(digits.x_test[1, 0], model="mlp", counterfactual=False, skip_preprocess=True)
    text = " ".join(_figure_texts(explanation_figure(e, layers=layer_names(m))).split())
    assert "of hidden layer 2" in text  # the contrast's units feed the output layer
    assert "of hidden layer 1" in text  # the first layer's units
    assert not re.search(r"(?<!hidden )\blayer \d", text), text


# -------------------------------------------------------------------------------- the CLI
@pytest.fixture()
def mlp_home(tmp_path, monkeypatch):
    """An untrained mlp saved as the zoo's mlp: the CLI's words do not need a good model."""
    from digitlens._util import paths
    from digitlens.nn.checkpoint import save_model

    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path / "home"))
    save_model(build_model("mlp", np.random.default_rng(0)), paths.model_path("mlp"))
    return tmp_path


@pytest.mark.slow  # a whole explanation (atlas, calibration): a few seconds
def test_cli_explain_prints_the_dont_know_verdict_and_usual_confusions(mlp_home):
    from digitlens.cli import app
    from digitlens.explain.result import Explanation

    js = mlp_home / "e.json"
    r = CliRunner().invoke(app, ["explain", "--sample", "5", "--model", "mlp",
                                 "--no-counterfactual", "--json", str(js)])
    assert r.exit_code == 0, r.output
    e = Explanation.from_dict(__import__("json").loads(js.read_text()))
    text = " ".join(r.output.split())
    o = e.ood
    assert o is not None
    assert f"unusualness score {o.score:.2f}, threshold {o.threshold:.2f}" in text
    verdict = ("does not look like any digit it was trained on" if o.flagged else
               "looks like the digits it was trained on")
    assert verdict in text
    assert e.contrast.suggestions, "the test digits' confusions give suggestions"
    d, n = e.contrast.suggestions[0]
    assert f"most often confuses with {e.contrast.a} on the test digits: {d} ({n} time" in text
    assert f"--vs {d}" in text


def test_cli_does_not_call_never_confused_digits_often_confused():
    from types import SimpleNamespace

    from digitlens.cli.explain import _verdict_lines

    e = SimpleNamespace(ood=None, contrast=SimpleNamespace(a=0, suggestions=[(8, 0), (6, 0)]))
    (line,) = _verdict_lines(e)
    assert "never mixed up 0" in line and "--vs 8" in line and "0 times" not in line
    e.contrast.suggestions = [(8, 3), (6, 0)]
    (line,) = _verdict_lines(e)
    assert "8 (3 times)" in line and "6 (0" not in line
