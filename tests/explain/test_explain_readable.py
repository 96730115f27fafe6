"""Issue 13A: readable maps (clipped colour scales, sums that mean something), contrast units that
explain themselves, the contrast the learner means (confusion counts), and plausible edits next
to the smallest one — on constructed digits and models with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from digitlens.explain import attribution as A
from digitlens.explain import confusions as CF
from digitlens.explain import contrast as C
from digitlens.explain import plausible as PL
from digitlens.explain import scale as S
from digitlens.explain import units as U
from digitlens.explain import words
from digitlens.explain.parts import Counterfactual
from digitlens.nn import build_model


# ---------------------------------------------------------------------------- colour scales
def test_colour_limit_clips_at_the_stated_percentile():
    m = np.zeros((28, 28))
    m.flat[:100] = np.arange(1, 101) / 100.0  # 100 pixels with 0.01 .. 1.00
    m[27, 27] = 250.0  # one outlier that would wash out a max-scaled map
    lim = S.colour_limit(m)
    assert lim == pytest.approx(np.percentile(np.abs(m), 99))
    assert lim < 1.0 < 250.0  # the outlier does not set the scale
    assert S.n_saturated(m, lim) == int((np.abs(m) > lim).sum()) <= 8
    assert S.colour_limit(m, 100) == 250.0
    # the 95th-percentile pixel keeps at least a quarter of full colour
    assert np.percentile(np.abs(m), 95) / lim > 0.25


def test_colour_limit_of_a_nearly_empty_map_falls_back_to_its_largest_value():
    m = np.zeros((28, 28))
    m[3, 4], m[5, 6] = 0.5, -2.0  # 99% of the pixels are 0
    assert S.colour_limit(m) == 2.0
    assert S.colour_limit(np.zeros((28, 28))) == 0.0
    with pytest.raises(ValueError, match="percentile"):
        S.colour_limit(m, 0)


def test_attribution_json_carries_the_engine_scale_and_honest_sums():
    rng = np.random.default_rng(0)
    m = build_model("mlp", rng)
    x = np.clip(rng.random((28, 28)) - 0.6, 0, 1)
    for meth in A.METHODS:
        a = A.attribute(m, x, 3, meth)
        d = a.to_dict()
        assert d["scale"]["percentile"] == S.COLOUR_PERCENTILE
        # the page's number is the engine's: the limit of the map the JSON carries
        assert d["scale"]["limit"] == pytest.approx(S.colour_limit(np.array(d["map"])), rel=1e-6)
        note = d["meta"]["sum_note"]
        if meth == "integrated_gradients":
            assert d["meta"]["adds_up_to"] == pytest.approx(a.meta["f_x"] - a.meta["f_baseline"],
                                                           rel=1e-5)
            assert note.startswith("The map adds up to") and "completeness error" in note
        else:  # an MLP: no method but integrated gradients has a meaningful total
            assert d["meta"]["adds_up_to"] is None
            assert note.startswith("No total") and "adds up to" not in note
    lin = build_model("logistic", rng)
    g = A.attribute(lin, x, 3, "gradient_x_input")
    assert g.meta["adds_up_to"] == pytest.approx(g.meta["score"] - g.meta["bias"])
    assert g.map.sum() == pytest.approx(g.meta["adds_up_to"])


# ------------------------------------------------------------------------------ the words
def test_articles_and_pixel_counts_read_right():
    assert words.a_digit(8) == "an 8" and words.a_digit(9) == "a 9" and words.a_digit(0) == "a 0"
    delta = np.zeros((28, 28))
    delta[0, :4] = 0.785
    s = words.counterfactual(True, 0, 8, delta, 0.6, 8, 40, 2)
    assert "into an 8" in s and "into a 8" not in s
    assert "adding ink to 4 pixels (as much ink as 3.1 fully inked pixels)" in s
    assert "ink at 4" not in s


# ------------------------------------------------------------------- units of a contrast
def test_receptive_field_of_cnn_tiny_positions():
    m = build_model("cnn_tiny", np.random.default_rng(0))  # conv 5×5 pad 2, pool 2 -> 14×14
    L = 4  # the final Dense reads the flattened pooled maps
    assert U.receptive_field(m, L, 0, 0) == (0, 0, 3, 3)
    assert U.receptive_field(m, L, 5, 7) == (8, 12, 13, 17)  # 2·5 − 2 .. 2·5 + 1 − 2 + 4
    assert U.receptive_field(m, L, 13, 13) == (24, 24, 27, 27)


def test_cnn_tiny_contrast_names_filters_and_positions_not_unit_numbers(digits):
    m = build_model("cnn_tiny", np.random.default_rng(1)).astype(np.float64)
    atlas = U.build_atlas(m, digits.x_train[:300], digits.y_train[:300])
    uc = C.unit_contrast(m, digits.x_test[0, 0], 9, 4, atlas=atlas)
    assert uc.sum_check == pytest.approx(0, abs=1e-9)
    for t in uc.for_a + uc.for_b:
        c, r, q = np.unravel_index(t.unit, (6, 14, 14))
        assert t.name == f"filter {c}, pooled map at row {r}, col {q}"
        assert (t.open_layer, t.open_unit) == (0, c)  # opens the filter in the conv layer
        assert t.box == U.receptive_field(m, 4, r, q)
        r0, c0, r1, c1 = t.box
        assert len(t.patches) == 3
        for p, i in zip(t.patches, t.top_examples):
            np.testing.assert_array_equal(p, digits.x_train[i, 0, r0:r1 + 1, c0:c1 + 1])
        assert f"rows {r0}–{r1}, columns {c0}–{c1}" in t.sentence
        assert "unit " not in t.to_dict()["name"]


def test_dense_contrast_units_open_their_layer_and_read_from_measurements(digits):
    m = build_model("lab", np.random.default_rng(2)).astype(np.float64)
    atlas = U.build_atlas(m, digits.x_train[:400], digits.y_train[:400])
    uc = C.unit_contrast(m, digits.x_test[1, 0], 3, 5, atlas=atlas)
    sentences = [t.sentence for t in uc.for_a + uc.for_b]
    for t in uc.for_a + uc.for_b:
        assert (t.open_layer, t.open_unit) == (3, t.unit)  # the 15-unit Dense layer
        labels = [int(atlas.y[i]) for i in t.top_examples]
        top, k = U.label_counts(labels)[0]
        assert f"{top}s" in t.sentence or "a mix" in t.sentence
        assert t.box is None and t.patches == []
    assert len(set(sentences)) > 1 or len(sentences) <= 1  # measured, not one boilerplate line
    # the last layer as a logistic regression: all 15 features, products exact
    assert len(uc.table) == 15 and uc.table_rest == 0.0
    total = sum(r["product"] for r in uc.table) + uc.bias_term
    assert total == pytest.approx(uc.gap, abs=1e-9)
    for r in uc.table:
        assert r["product"] == pytest.approx(r["feature"] * r["weight_diff"])


def test_logistic_contrast_table_lists_pixels_and_the_rest():
    m = build_model("logistic", np.random.default_rng(3)).astype(np.float64)
    x = np.zeros((28, 28))
    x[5:20, 14] = 1.0
    uc = C.unit_contrast(m, x, 1, 7)
    assert uc.kind == "pixels" and len(uc.table) == C.TABLE_ROWS
    assert uc.table[0]["name"].startswith("pixel at row ")
    shown = sum(r["product"] for r in uc.table)
    assert shown + uc.table_rest + uc.bias_term == pytest.approx(uc.gap, abs=1e-9)
    r, c = divmod(uc.table[0]["index"], 28)
    assert uc.table[0]["name"] == f"pixel at row {r}, col {c}"


# ------------------------------------------------------------------------- confusions
def _counts_model():
    """Confusions with known counts: 4 and 9 swap three times, 7 and 9 once."""
    counts = np.diag([50] * 10).astype(np.int64)
    counts[4, 9], counts[9, 4], counts[9, 7] = 2, 1, 1
    return CF.Confusions(list(range(10)), counts, np.full((10, 10), 0.01), int(counts.sum()))


def test_rivals_count_both_directions_and_the_runner_up_floor():
    table = _counts_model()
    assert table.rivals(9, 2) == [(4, 3), (7, 1)]
    assert table.rivals(4, 1) == [(9, 3)]
    # a sure 9 with a 0.1% runner-up (say 1): compare with 4, the usual confusion
    assert CF.choose_contrast(9, 1, 0.001, table) == (4, "usual confusion",
                                                       [(4, 3), (7, 1), (0, 0)])
    # a real rival stays
    assert CF.choose_contrast(9, 1, 0.2, table)[:2] == (1, "runner-up")


def test_confusion_counts_are_the_models_own_mistakes(digits):
    m = build_model("logistic", np.random.default_rng(4))
    x, y = digits.x_test[:200], digits.y_test[:200]
    table = CF.confusions(m, x, y)
    pred = m.predict(x.astype(m.dtype)) if hasattr(m, "predict") else None
    z = m.forward(x.reshape(len(x), 1, 28, 28).astype(m.dtype))
    pred = np.argmax(z, axis=1) if pred is None else pred
    expected = np.zeros((10, 10), dtype=np.int64)
    np.add.at(expected, (y, np.asarray(pred)), 1)
    np.testing.assert_array_equal(table.counts, expected)
    assert table.n == 200


# ------------------------------------------------------------------------ plausible edits
def _two_class_model(w0: np.ndarray, w1: np.ndarray, b1: float = 0.0):
    """A linear model over 10 classes whose logits 0 and 1 have the given weight images and the
    other eight are far below (−100)."""
    m = build_model("logistic", np.random.default_rng(0)).astype(np.float64)
    W = np.zeros((784, 10))
    W[:, 0], W[:, 1] = w0.ravel(), w1.ravel()
    b = np.full(10, -100.0)
    b[0], b[1] = 0.0, b1
    m.layers[1].params["W"][...] = W
    m.layers[1].params["b"][...] = b
    return m


def _stroke():
    x = np.zeros((28, 28))
    x[8:23, 13:15] = 1.0  # a vertical stroke, rows 8..22
    return x


def test_plausible_edit_adds_a_stroke_where_the_other_class_wants_ink():
    x = _stroke()
    w0 = 0.02 * (x > 0)  # class 0 likes the stroke a little
    w1 = np.zeros((28, 28))
    w1[4:7, 8:21] = 1.0  # class 1 wants a bar across the top, above the stroke
    m = _two_class_model(w0, w1, b1=-8.0)
    assert np.argmax(m.forward(x.reshape(1, 1, 28, 28))) == 0
    pl = PL.plausible_edit(m, x, 1)
    assert pl.found and pl.method == "strokes" and pl.prediction == 1
    assert all(not s[4] for s in pl.strokes)  # strokes added, none erased
    added = np.clip(pl.delta, 0, None)
    assert added[:10].sum() > 0.95 * added.sum()  # the new ink sits at the top, at the bar
    assert pl.delta.min() >= 0 and pl.image.max() <= 1
    assert pl.ink == pytest.approx(np.abs(pl.delta).sum())


def test_plausible_edit_erases_a_stroke_the_other_class_does_not_want():
    x = _stroke()
    w0 = np.zeros((28, 28))
    w0[17:23, 13:15] = 1.0  # class 0 is carried by the stroke's lower part
    m = _two_class_model(w0, np.zeros((28, 28)), b1=4.0)  # 12 − 4 = 8 > 0: reads 0
    pl = PL.plausible_edit(m, x, 1)
    assert pl.found and pl.prediction == 1 and any(s[4] for s in pl.strokes)
    removed = np.clip(-pl.delta, 0, None)
    assert removed[15:].sum() > 0.9 * removed.sum()  # it erased the lower part


def test_morph_fallback_and_the_adversarial_verdict():
    x = _stroke()
    other = np.zeros((28, 28))
    other[5:22, 6:8] = 1.0  # a training "1" far from the stroke (no stroke near the ink helps)
    w1 = np.where(other > 0, 1.0, 0.0)
    m = _two_class_model(0.1 * (x > 0), w1, b1=-10.0)
    pl = PL.plausible_edit(m, x, 1, training=(other[None, None], np.array([1])), reach=0,
                           max_strokes=1)
    assert pl.method == "morph" and pl.found and pl.source == 0 and 0 < pl.t <= 1
    np.testing.assert_allclose(pl.image, (1 - pl.t) * x + pl.t * other)
    # a 6-pixel smallest edit next to a plausible one 10 times larger: say so plainly
    delta = np.zeros((28, 28))
    delta[0, :6] = 0.5
    cf = Counterfactual(True, 0, 1, delta, np.clip(x + delta, 0, 1), np.zeros(10), 1, 0.2, 40, 2)
    assert PL.verdict(cf, pl) == (pl.ink >= PL.MUCH_LARGER * 3.0)
    big = np.zeros((28, 28))
    big[:, :2] = 1.0
    pl.delta = big  # 56 of ink vs 3
    assert PL.verdict(cf, pl)
    note = words.adversarial(cf, pl)
    assert note.startswith("A few pixels can flip a network while a person sees no change")
    assert "6 pixels" in note and "adversarial example" in note
    cf.delta = np.ones((28, 28)) * 0.01  # 784 pixels changed: not "a few"
    assert not PL.verdict(cf, pl)
