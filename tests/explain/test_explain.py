"""digitlens.explain: attributions with known answers, exact contrasts, counterfactuals, units,
the trace, and the Explanation JSON round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

import digitlens as dl
from digitlens.explain import attribution as A
from digitlens.explain import contrast as C
from digitlens.explain import units as U
from digitlens.explain import words
from digitlens.explain.result import Explanation
from digitlens._util.jsonsafe import sig
from digitlens.explain.trace import trace
from digitlens.nn import Activation, Dense, Flatten, Sequential
from digitlens.nn import topology as T


def linear_model(seed: int = 0, dtype=np.float64) -> Sequential:
    """Logistic regression with random weights AND biases (the zoo initialises biases at 0)."""
    rng = np.random.default_rng(seed)
    m = dl.build_model("logistic", rng, dtype=dtype)
    m.set_params({"1.W": rng.normal(size=(784, 10)), "1.b": rng.normal(size=10)})
    return m


def random_biases(m: Sequential, seed: int = 1) -> Sequential:
    """Give every bias a random value so no test passes only because biases are 0."""
    rng = np.random.default_rng(seed)
    m = m.astype(np.float64)
    m.set_params({k: (rng.normal(scale=0.1, size=v.shape) if k.endswith(".b") else v)
                  for k, v in m.params().items()})
    return m


@pytest.fixture(scope="module")
def x(digits):
    return digits.x_test[0, 0].astype(np.float64)


# ------------------------------------------------------------------ toy models, known answers
def test_linear_saliency_is_the_weight_image(x):
    m = linear_model()
    W = m.params()["1.W"]
    for c in range(10):
        a = A.saliency(m, x, c)
        assert a.map.shape == (28, 28)
        np.testing.assert_allclose(a.map, W[:, c].reshape(28, 28), rtol=0, atol=1e-12)


def test_linear_gradient_x_input_sums_to_logit_minus_bias(x):
    m = linear_model()
    z = m.forward(x[None, None])[0]
    b = m.params()["1.b"]
    for c in (0, 3, 9):
        a = A.gradient_x_input(m, x, c)
        np.testing.assert_allclose(a.map, (m.params()["1.W"][:, c] * x.ravel()).reshape(28, 28),
                                   atol=1e-12)
        assert a.map.sum() == pytest.approx(z[c] - b[c], abs=1e-10)
        assert a.meta["exact"] is True and "exactly" in a.meta["note"]
        assert a.meta["bias"] == pytest.approx(b[c])


def test_gradient_x_input_is_not_called_exact_for_a_hidden_layer_model(x):
    m = random_biases(dl.build_model("lab", np.random.default_rng(0)))
    a = A.gradient_x_input(m, x, 2)
    assert a.meta["exact"] is False and "note" not in a.meta


@pytest.mark.parametrize("rule", A.IG_RULES)
def test_integrated_gradients_of_a_linear_model_are_exact(x, rule):
    m = linear_model()
    W = m.params()["1.W"]
    z = m.forward(x[None, None])[0]
    a = A.integrated_gradients(m, x, 4, n_steps=3, rule=rule, tolerance=None)
    np.testing.assert_allclose(a.map, (W[:, 4] * x.ravel()).reshape(28, 28), atol=1e-12)
    assert abs(a.meta["delta"]) < 1e-10
    assert a.meta["f_x"] == pytest.approx(z[4])
    blur = A.integrated_gradients(m, x, 4, baseline="blur", n_steps=2, rule=rule, tolerance=None)
    xb, _ = A.make_baseline(m, x[None, None], "blur")
    np.testing.assert_allclose(blur.map, (W[:, 4] * (x.ravel() - xb.ravel())).reshape(28, 28),
                               atol=1e-12)


def test_quadrature_weights_integrate_polynomials():
    for rule in A.IG_RULES:
        a, w = A.ig_weights(40, rule)
        assert w.sum() == pytest.approx(1.0)
        assert np.all((a >= 0) & (a <= 1))
        # ∫ α dα (left/right rules: O(1/n))
        assert (w * a).sum() == pytest.approx(0.5, abs=0.5 / 40 + 1e-12)
    a, w = A.ig_weights(5, "gausslegendre")
    assert (w * a ** 9).sum() == pytest.approx(0.1, abs=1e-12)  # exact to degree 2n - 1


def test_contrast_target_is_the_difference_of_two_class_targets(x):
    m = random_biases(dl.build_model("mlp", np.random.default_rng(0)))
    kw = dict(n_steps=16, tolerance=None)
    gap = A.integrated_gradients(m, x, (3, 5), **kw)
    np.testing.assert_allclose(
        gap.map,
        A.integrated_gradients(m, x, 3, **kw).map - A.integrated_gradients(m, x, 5, **kw).map,
        atol=1e-12)
    z = m.forward(x[None, None])[0]
    assert gap.meta["f_x"] == pytest.approx(z[3] - z[5])
    s = A.saliency(m, x, (3, 5)).map
    np.testing.assert_allclose(s, A.saliency(m, x, 3).map - A.saliency(m, x, 5).map, atol=1e-12)


def test_occlusion_of_a_linear_model_is_the_pixel_term(x):
    m = linear_model()
    W = m.params()["1.W"]
    a = A.occlusion(m, x, 7, patch=1, stride=1)
    np.testing.assert_allclose(a.map, (W[:, 7] * x.ravel()).reshape(28, 28), atol=1e-10)
    # a 4x4 square: each window's drop is the sum of its pixel terms; a pixel's value is the mean
    # of the drops of the windows covering it
    terms = (W[:, 7] * x.ravel()).reshape(28, 28)
    a4 = A.occlusion(m, x, 7, patch=4, stride=4)
    np.testing.assert_allclose(a4.map[:4, :4], terms[:4, :4].sum(), atol=1e-10)
    assert a4.meta["n_windows"] == 49


def test_binary_model_is_explained_through_two_logits(digits):
    rng = np.random.default_rng(0)
    m = dl.build_model("binary", rng, dtype=np.float64)
    m.set_params({"1.W": rng.normal(size=(784, 1)), "1.b": np.array([0.3])})
    x = digits.x_test[0, 0].astype(np.float64)
    z = float(m.forward(x[None, None])[0, 0])
    W = m.params()["1.W"][:, 0].reshape(28, 28)
    np.testing.assert_allclose(A.saliency(m, x, 1).map, W / 2, atol=1e-12)
    np.testing.assert_allclose(A.saliency(m, x, 0).map, -W / 2, atol=1e-12)
    uc = C.unit_contrast(m, x, 1, 0)
    assert uc.gap == pytest.approx(z)
    p = A.class_probabilities(m, m.forward(x[None, None]))[0]
    assert p[1] == pytest.approx(1 / (1 + np.exp(-z)))
    with pytest.raises(ValueError, match="classes"):
        A.saliency(m, x, 5)


def test_attribution_input_validation(x):
    m = linear_model()
    with pytest.raises(ValueError, match="target must be one of"):
        A.saliency(m, x, 10)
    with pytest.raises(ValueError, match="target must be a class label"):
        A.saliency(m, x, "3")
    with pytest.raises(ValueError, match="two different classes"):
        A.saliency(m, x, (3, 3))
    with pytest.raises(ValueError, match="NaN"):
        A.saliency(m, np.full((28, 28), np.nan), 1)
    with pytest.raises(ValueError, match="one image"):
        A.saliency(m, np.zeros((2, 28, 28)), 1)
    with pytest.raises(ValueError, match="n_steps"):
        A.integrated_gradients(m, x, 1, n_steps=1)
    with pytest.raises(ValueError, match="rule"):
        A.integrated_gradients(m, x, 1, rule="simpson")
    with pytest.raises(ValueError, match="baseline"):
        A.integrated_gradients(m, x, 1, baseline="white")
    with pytest.raises(ValueError, match="stride"):
        A.occlusion(m, x, 1, patch=3, stride=4)
    with pytest.raises(ValueError, match="method"):
        A.attribute(m, x, 1, "lime")


@pytest.mark.parametrize("name", ["logistic", "lab", "mlp", "cnn_tiny", "cnn"])
def test_shortcuts_give_the_same_numbers_as_the_plain_passes(x, name):
    """The linear-first-layer shortcuts (integrated gradients, occlusion), skipping ink-free
    occlusion windows and sharing the path between targets change no number."""
    m = random_biases(dl.build_model(name, np.random.default_rng(0)))
    assert T.linear_prefix(m) == {"logistic": 2, "lab": 2, "mlp": 2, "cnn_tiny": 1, "cnn": 1}[name]
    for baseline in ("black", "blur"):
        fast = A.integrated_gradients(m, x, (3, 5), baseline=baseline, n_steps=8, tolerance=None)
        slow = A.integrated_gradients(m, x, (3, 5), baseline=baseline, n_steps=8, tolerance=None,
                                      fast=False)
        np.testing.assert_allclose(fast.map, slow.map, atol=1e-12)
        assert fast.meta["f_x"] == pytest.approx(slow.meta["f_x"], abs=1e-12)
        assert fast.meta["f_baseline"] == pytest.approx(slow.meta["f_baseline"], abs=1e-12)
    for patch, stride, base in [(4, 2, 0.0), (5, 3, 0.5), (3, 1, 0.0)]:
        fast = A.occlusion(m, x, 3, patch=patch, stride=stride, baseline=base)
        slow = A.occlusion(m, x, 3, patch=patch, stride=stride, baseline=base, fast=False)
        np.testing.assert_allclose(fast.map, slow.map, atol=1e-12)
    # the same windows evaluated one by one, the definition itself
    wins = A.occlusion_windows((28, 28), 4, 2)
    z0 = m.forward(x[None, None])[0, 3]
    total, count = np.zeros((28, 28)), np.zeros((28, 28))
    for r, q in wins:
        xo = x.copy()
        xo[r:r + 4, q:q + 4] = 0.0
        total[r:r + 4, q:q + 4] += z0 - m.forward(xo[None, None])[0, 3]
        count[r:r + 4, q:q + 4] += 1
    np.testing.assert_allclose(A.occlusion(m, x, 3).map, total / count, atol=1e-12)
    many = A.integrated_gradients_many(m, x, [3, (3, 5)], n_steps=8, tolerance=None)
    for t, a in zip([3, (3, 5)], many):
        np.testing.assert_allclose(a.map, A.integrated_gradients(m, x, t, n_steps=8,
                                                                 tolerance=None).map, atol=1e-12)


def test_refinement_doubles_the_steps_until_the_tolerance_is_met(x):
    m = random_biases(dl.build_model("lab", np.random.default_rng(5)))
    rough = A.integrated_gradients(m, x, 1, n_steps=2, tolerance=None)
    fine = A.integrated_gradients(m, x, 1, n_steps=2, tolerance=2e-3, max_steps=4096)
    assert fine.meta["relative_delta"] <= 2e-3 < rough.meta["relative_delta"]
    assert fine.meta["n_steps"] > 2 and fine.meta["n_steps"] & (fine.meta["n_steps"] - 1) == 0
    assert fine.meta["evaluations"] == sum(2 ** k for k in range(1, fine.meta["n_steps"]
                                                                 .bit_length()))
    capped = A.integrated_gradients(m, x, 1, n_steps=2, tolerance=1e-12, max_steps=16)
    assert capped.meta["n_steps"] == 16  # gives up at max_steps and reports its error
    assert capped.meta["relative_delta"] > 1e-12


# ------------------------------------------------------------------ completeness on the zoo
COMPLETENESS_MODELS = [("logistic", None), ("binary", None), ("lab", None), ("mlp", None),
                       ("cnn_tiny", 2), ("cnn", 1)]


@pytest.mark.slow
@pytest.mark.parametrize("name,epochs", COMPLETENESS_MODELS)
def test_integrated_gradients_completeness_on_every_zoo_model(trained, digits, name, epochs):
    """|Σ attributions − (f(x) − f(0))| < 1% of |f(x) − f(0)| at the default settings (32
    Gauss–Legendre points, doubled while the error is above 1%), for the predicted class."""
    m = trained(name, epochs).astype(np.float64)
    keep = np.isin(digits.y_test, m.classes)
    xs = digits.x_test[keep][:12]
    used = []
    for xi in xs:
        t = int(m.predict(xi[None])[0])
        a = A.integrated_gradients(m, xi, t)
        assert a.meta["relative_delta"] < 0.01, (name, a.meta)
        span = a.meta["f_x"] - a.meta["f_baseline"]
        assert a.meta["delta"] == pytest.approx(a.map.sum() - span)
        used.append(a.meta["n_steps"])
    print(f"\n{name}: n_steps used {sorted(used)}")


# --------------------------------------------------------------------------------- contrast
@pytest.mark.parametrize("name", ["logistic", "lab", "mlp", "cnn_tiny", "cnn"])
def test_unit_contrast_sums_exactly_to_the_logit_gap(x, name):
    m = random_biases(dl.build_model(name, np.random.default_rng(0)))
    z = A.class_logits(m, m.forward(x[None, None]))[0]
    for a, b in [(1, 7), (9, 4)]:
        uc = C.unit_contrast(m, x, a, b)
        assert uc.gap == pytest.approx(z[a] - z[b], abs=1e-12)
        assert abs(uc.contributions.sum() + uc.bias_term - (z[a] - z[b])) < 1e-10
        assert abs(uc.sum_check) < 1e-10
        assert all(t.contribution > 0 for t in uc.for_a)
        assert all(t.contribution < 0 for t in uc.for_b)
        if uc.kind == "hidden":
            h = m.forward_range(x[None, None], 0, uc.layer)[0]
            W = m.layers[uc.layer].params["W"]
            for t in uc.for_a + uc.for_b:
                assert t.h == pytest.approx(h[t.unit])
                assert t.weight_diff == pytest.approx(W[t.unit, a] - W[t.unit, b])
    assert C.unit_contrast(linear_model(), x, 1, 2).kind == "pixels"


def test_unit_templates_are_weights_or_true_input_gradients(x):
    rng = np.random.default_rng(0)
    one_hidden = random_biases(Sequential([Flatten(), Dense(12), Activation("relu"), Dense(10)],
                                          rng=rng))
    uc = C.unit_contrast(one_hidden, x, 1, 2, top=3)
    W0 = one_hidden.layers[1].params["W"]
    for t in uc.for_a + uc.for_b:
        assert t.template_kind == "weights"
        np.testing.assert_array_equal(t.template, W0[:, t.unit].reshape(28, 28))

    m = random_biases(dl.build_model("lab", np.random.default_rng(3)))
    L = T.final_dense(m)
    g = U.unit_input_gradients(m, x, L, [0, 5])
    m64 = m.astype(np.float64)  # the differences need float64 (a 1e-6 step is lost in float32)
    # central differences of h_j with respect to a few inked pixels
    for k, j in enumerate([0, 5]):
        for (r, q) in [(14, 14), (10, 12), (20, 15)]:
            e = np.zeros_like(x)
            e[r, q] = 1e-6
            hp = m64.forward_range((x + e)[None, None], 0, L)[0, j]
            hm = m64.forward_range((x - e)[None, None], 0, L)[0, j]
            assert g[k, r, q] == pytest.approx((hp - hm) / 2e-6, abs=1e-6)
    uc = C.unit_contrast(m, x, 1, 2)
    assert all(t.template_kind == "input_gradient" for t in uc.for_a + uc.for_b)


def test_where_words_reads_a_template():
    t = np.zeros((28, 28))
    t[:8, 20:] = 1.0
    t[20:, :8] = -1.0
    assert words.where_words(t) == "likes ink at the top right, dislikes ink at the bottom left"


@pytest.mark.slow
def test_counterfactual_really_flips_and_stays_in_range(trained, digits):
    m32 = trained("mlp")
    m = m32.astype(np.float64)
    found = 0
    for i in range(8):
        xi = digits.x_test[i, 0].astype(np.float64)
        z = m.forward(xi[None, None])[0]
        a, b = (int(k) for k in np.argsort(-z)[:2])
        cf = C.counterfactual(m, xi, b, max_pixels=40, radius=2)
        assert cf.a == a and cf.b == b
        assert cf.image.min() >= 0 and cf.image.max() <= 1
        np.testing.assert_allclose(cf.image, np.clip(xi + cf.delta, 0, 1), atol=1e-12)
        assert cf.n_changed <= 40
        from scipy.ndimage import binary_dilation
        near = binary_dilation(xi > 0.2, iterations=2)
        assert not np.any((cf.delta != 0) & ~near), "edits must stay near the strokes"
        if cf.found:
            found += 1
            assert int(m.predict(cf.image[None, None])[0]) == b
            assert int(m32.predict(cf.image[None, None].astype(np.float32))[0]) == b
            assert cf.margin > 0 and cf.prediction == b
            assert cf.probabilities.argmax() == b
        else:
            assert cf.prediction != b and "No edit" in cf.sentence
    assert found >= 4  # the runner-up is usually a few strokes away


@pytest.mark.slow  # the one-by-one search it checks against takes seconds
def test_counterfactual_put_back_in_chunks_is_the_one_by_one_search(trained, digits,
                                                                    monkeypatch):
    m = trained("cnn_tiny").astype(np.float64)
    runs = {}
    for chunk in (1, 3, 8):  # 1: every trial its own forward pass, on the edit as it stands
        monkeypatch.setattr(C, "_PUT_BACK_CHUNK", chunk)
        runs[chunk] = []
        for i in range(6):
            xi = digits.x_test[i, 0].astype(np.float64)
            b = int(np.argsort(-m.forward(xi[None, None])[0])[1])
            runs[chunk].append(C.counterfactual(m, xi, b))
    assert any(cf.found for cf in runs[1])
    for chunk in (3, 8):
        for one, many in zip(runs[1], runs[chunk]):
            assert one.found == many.found
            np.testing.assert_array_equal(one.delta, many.delta)


def test_counterfactual_reports_when_no_small_edit_flips(trained, digits):
    m = trained("logistic").astype(np.float64)
    xi = digits.x_test[np.flatnonzero(digits.y_test == 1)[0], 0].astype(np.float64)
    cf = C.counterfactual(m, xi, 8, max_pixels=1)
    assert not cf.found and cf.n_changed <= 1
    assert "No edit of up to 1 pixels" in cf.sentence
    assert int(m.predict(cf.image[None, None])[0]) != 8


# -------------------------------------------------------------------------------- units
def test_hand_kernels_are_normalised_and_see_what_they_claim():
    for size in (3, 5, 7):
        for name, k in U.hand_kernels(size).items():
            assert k.shape == (size, size)
            assert abs(k.sum()) < 1e-12 and np.linalg.norm(k) == pytest.approx(1.0), name
    bar = np.zeros((28, 28))
    bar[6:22, 13:15] = 1.0  # a vertical stroke
    # response energy: a long vertical stroke has long vertical edges and two short ends
    r = {kr.name: (kr.response ** 2).sum() for kr in U.kernel_responses(bar)}
    assert r["vertical edge"] > 3 * r["horizontal edge"]
    assert r["vertical edge"] > 1.5 * r["diagonal edge /"]  # cos²45° = 1/2 for a pure edge
    hbar = bar.T.copy()
    r = {kr.name: (kr.response ** 2).sum() for kr in U.kernel_responses(hbar)}
    assert r["horizontal edge"] > 3 * r["vertical edge"]
    for size in (3, 5, 7):
        assert U.hand_kernels(size, 7)["arc (top of a loop)"].shape == (7, 7)
    # the arc: a loop's top beats a straight stroke and a cup (a loop's bottom)
    yy, xx = np.mgrid[0:28, 0:28]
    ring = (np.abs(np.hypot(yy - 14, xx - 14) - 4) < 0.8).astype(float)
    cup = ring.copy()
    cup[:14] = 0
    line = np.zeros((28, 28))
    line[13:15, 4:24] = 1.0

    def arc(img):
        return U.kernel_responses(img)[-1].response

    peak = np.unravel_index(np.argmax(arc(ring)), (28, 28))
    assert peak[0] < 14 and abs(peak[1] - 14) <= 1  # on the loop's upper half, centred
    assert arc(ring).max() > 1.3 * arc(line).max()
    assert arc(ring).max() > 1.8 * arc(cup).max()


def test_dense_units_report_templates_and_top_examples(digits, x):
    m = dl.build_model("mlp", np.random.default_rng(0))
    atlas = U.build_atlas(m, digits.x_train[:300], digits.y_train[:300], top_k=5)
    rep = U.first_layer_units(m, x, atlas=atlas, top=6, examples=3)
    assert rep.kind == "dense" and len(rep.units) == 6
    a1 = np.maximum(x.ravel() @ m.layers[1].params["W"] + m.layers[1].params["b"], 0)
    acts = [u.activation for u in rep.units]
    assert acts == sorted(acts, reverse=True) and acts[0] == pytest.approx(a1.max(), rel=1e-5)
    for u in rep.units:
        np.testing.assert_array_equal(u.template,
                                      m.layers[1].params["W"][:, u.unit].reshape(28, 28))
        assert len(u.top_examples) == 3
        best = atlas.first[:, u.unit].max()
        assert u.top_activations[0] == pytest.approx(best)
    assert [k.name for k in rep.hand_kernels][:2] == ["horizontal edge", "vertical edge"]


def test_conv_units_show_filters_feature_maps_and_matches(digits, x):
    m = dl.build_model("cnn_tiny", np.random.default_rng(0))
    # plant a perfect vertical-edge detector in filter 2
    m.layers[0].params["W"][2, 0] = U.hand_kernels(5)["vertical edge"]
    atlas = U.build_atlas(m, digits.x_train[:200], digits.y_train[:200])
    rep = U.first_layer_units(m, x, atlas=atlas)
    assert rep.kind == "conv" and len(rep.units) == 6
    tr = m.forward(x[None, None].astype(np.float32), trace=True)
    for u in rep.units:
        assert u.template.shape == (5, 5)
        np.testing.assert_allclose(u.feature_map, tr.layers[1].output[0, u.unit], atol=1e-6)
        assert u.activation == pytest.approx(float(tr.layers[1].output[0, u.unit].max()), rel=1e-6)
    assert rep.units[2].similar_kernel == "vertical edge"
    assert rep.units[2].similarity == pytest.approx(1.0)
    assert [k.kernel.shape for k in rep.hand_kernels] == [(5, 5)] * 4 + [(7, 7)]


def test_nearest_example_of_a_training_digit_is_itself(digits):
    m = dl.build_model("lab", np.random.default_rng(0))
    atlas = U.build_atlas(m, digits.x_train[:500], digits.y_train[:500])
    near = U.nearest_examples(m, digits.x_train[42, 0], atlas, k=4, contrast_class=3)
    assert near.examples[0].index == 42 and near.examples[0].distance < 1e-3
    d = [e.distance for e in near.examples]
    assert d == sorted(d)
    assert all(e.label == 3 for e in near.contrast_examples) and len(near.contrast_examples) == 3
    h = m.forward_range(digits.x_train[:500], 0, atlas.hidden_layer).reshape(500, -1)
    h0 = m.forward_range(digits.x_train[42:43], 0, atlas.hidden_layer).reshape(-1)
    brute = np.argsort(np.linalg.norm(h - h0, axis=1))[:4]
    assert [e.index for e in near.examples] == brute.tolist()


# --------------------------------------------------------------------------------- trace
def test_trace_shows_the_real_numbers(x):
    m = random_biases(dl.build_model("lab", np.random.default_rng(0)))
    tr = trace(m, x)
    assert [s.type for s in tr.layers] == [layer.type for layer in m.layers]
    full = m.forward(x[None, None], trace=True)
    for step, lt in zip(tr.layers, full.layers):
        np.testing.assert_allclose(step.values, lt.output[0].ravel())
        assert step.output_shape == list(lt.output.shape[1:])
    assert tr.layers[1].params["W"]["shape"] == [784, 25]
    sm = tr.softmax
    assert sm["shifted"].max() == 0.0
    np.testing.assert_allclose(sm["exp"], np.exp(sm["shifted"]))
    np.testing.assert_allclose(sm["probabilities"], m.predict_proba(x[None, None])[0], atol=1e-12)
    assert any("active" in s for s in tr.sentences)


# --------------------------------------------------------------------------------- JSON
def test_significant_rounding_is_idempotent():
    a = np.random.default_rng(0).normal(size=1000) * 10.0 ** np.random.default_rng(1).integers(
        -8, 4, size=1000)
    r = sig(a)
    np.testing.assert_array_equal(sig(r), r)
    assert np.all(np.abs(r - a) <= 5e-4 * np.abs(a))


def test_explanation_json_round_trip(trained, digits):
    from digitlens.recognizer import Recognizer

    rec = Recognizer({"lab": trained("lab")}, digits=digits)
    e = rec.explain(digits.x_test[3, 0], skip_preprocess=True, contrast_maps=True)
    d = e.to_dict()
    text = json.dumps(d, allow_nan=False)  # strict JSON: no NaN or Infinity
    back = Explanation.from_dict(json.loads(text))
    assert back.to_dict() == d
    assert back.prediction == e.prediction and back.runner_up == e.runner_up
    assert np.asarray(d["image"]).shape == (28, 28)
    for method, per in d["attributions"].items():
        assert set(per) == {str(e.prediction), str(e.contrast.b)}
        for a in per.values():
            assert np.asarray(a["map"]).shape == (28, 28)
    assert d["contrast"]["units"]["n_units"] == 15
    assert sum(d["contrast"]["units"]["contributions"]) + d["contrast"]["units"]["bias_term"] == \
        pytest.approx(d["contrast"]["gap"], abs=1e-4)
    refs = {i for u in d["units"]["units"] for i in u["top_examples"]}
    refs |= {n["index"] for n in d["nearest"]["examples"]}
    assert refs <= {ex["index"] for ex in d["examples"]}
    for ex in d["examples"]:  # training digits travel as 8-bit PNGs, exactly
        assert ex["image"].startswith("data:image/png;base64,") and len(ex["image"]) < 1200
        np.testing.assert_allclose(back.examples[ex["index"]].image,
                                   digits.x_train[ex["index"], 0], atol=1e-7)
        assert ex["label"] == digits.y_train[ex["index"]]
    with pytest.raises(ValueError, match="version"):
        Explanation.from_dict({**d, "version": 99})
