"""The lab's measurements: slopes from the engine's backward, dead units, output diagnostics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from digitlens import lab
from digitlens.nn import functional as F
from digitlens.nn.gradcheck import check_activation, check_model
from digitlens.nn.layers import Activation


# --------------------------------------------------------------------------- gradients (float64)


@pytest.mark.parametrize("fn", sorted(F.ACTIVATIONS))
def test_activation_derivatives_match_central_differences(fn):
    forward, backward = F.ACTIVATIONS[fn]
    # keep z away from the kinks of relu / leaky_relu at 0
    z = np.random.default_rng(0).uniform(0.05, 3, size=(6, 5)) \
        * np.sign(np.random.default_rng(1).standard_normal((6, 5)))
    assert check_activation(forward, backward, z) < 1e-6
    # the lab's local_slopes (used to find dead and saturated units) is that same derivative
    slope = lab.local_slopes(Activation(fn), z)
    eps = 1e-6
    numeric = (forward(z + eps) - forward(z - eps)) / (2 * eps)
    np.testing.assert_allclose(slope, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("head", list(lab.HEADS))
def test_lab_models_gradients_for_every_output_layer(head):
    spec = lab.RunSpec(activation="tanh", width=3, depth=2, head=head)
    model = lab.build_run_model(spec, np.random.default_rng(0)).astype(np.float64)
    x = np.random.default_rng(1).uniform(0, 1, size=(3, 1, 28, 28))
    errors = check_model(model, x, np.array([1, 7, 3]))
    assert max(errors.values()) < 1e-6


def test_peak_slopes_are_the_textbook_values():
    assert lab.peak_slope("relu") == pytest.approx(1.0)
    assert lab.peak_slope("sigmoid") == pytest.approx(0.25)
    assert lab.peak_slope("tanh") == pytest.approx(1.0)


# ------------------------------------------------------------------------------- dead units


def test_units_with_a_large_negative_bias_are_counted_dead(digits):
    spec = lab.RunSpec(activation="relu", width=8, depth=1)
    model = lab.build_run_model(spec, np.random.default_rng(0))
    dense = model.layers[1]
    dense.params["b"][[0, 3, 5]] = -100.0
    dead = lab.dead_units(model, digits.x_test[:200])
    assert dead[2].tolist() == [0, 3, 5]
    # a moderate bias does not kill a sigmoid unit: its slope is small but not zero
    sig = lab.build_run_model(dataclasses.replace(spec, activation="sigmoid"),
                             np.random.default_rng(0))
    sig.layers[1].params["b"][[0, 3, 5]] = -5.0
    assert lab.dead_units(sig, digits.x_test[:200])[2].tolist() == []


# ------------------------------------------------------------------------ ReLU output layers


def test_output_diagnostics_on_a_constructed_relu_output(digits):
    x, y = digits.x_test, digits.y_test
    spec = lab.RunSpec(activation="relu", width=16, depth=1, head="relu_mse")
    model = lab.build_run_model(spec, np.random.default_rng(0))
    model.layers[-2].params["b"][3] = -100.0  # output unit 3 can never switch on
    d = lab.output_diagnostics(model, x, y)
    assert d["dead_units"] == [3]
    assert 3 not in model.predict(x)
    assert d["true_off_fraction"] >= np.mean(y == 3)  # every 3 has its unit off
    assert d["score_min"] == 0.0  # ReLU scores: zeros, and not probabilities
    soft = lab.build_run_model(dataclasses.replace(spec, head="softmax_ce"),
                              np.random.default_rng(0))
    ds = lab.output_diagnostics(soft, x, y)
    assert ds["dead_units"] == [] and ds["true_off_fraction"] == 0.0
    assert ds["sum_deviation"] < 1e-5 and ds["outside_01_fraction"] == 0.0

