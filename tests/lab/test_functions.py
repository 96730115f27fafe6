"""The functions panel: each curve and slope is the engine's own forward and backward, checked
against float64 central differences of the curve itself and against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest

from digitlens.errors import LabError
from digitlens.lab import functions
from digitlens.nn import functional as F
from digitlens.nn.layers import Activation


def test_every_engine_activation_is_on_the_panel():
    assert set(functions.FUNCTIONS) == set(F.ACTIVATIONS)
    assert set(functions.TITLES) == set(F.ACTIVATIONS) == set(functions.SLOPE_NOTES)


@pytest.mark.parametrize("fn", functions.FUNCTIONS)
def test_plotted_slope_is_the_engines_backward_pass(fn):
    c = functions.curves([fn], z_min=-6, z_max=6, points=241)
    z = np.array(c["z"])
    layer = Activation(fn)
    a, cache = layer.forward(z)
    da = np.ones_like(z)
    dz, _ = layer.backward(da, cache)
    assert c["functions"][fn]["a"] == [float(v) for v in a]
    assert c["functions"][fn]["slope"] == [float(v) for v in dz]


@pytest.mark.parametrize("fn", functions.FUNCTIONS)
def test_plotted_slope_matches_central_differences_of_the_curve(fn):
    z = np.linspace(-6, 6, 241)
    z = z[np.abs(z) > 0.01]  # ReLU-family kinks at 0
    eps = 1e-6
    a_plus, _ = functions.evaluate(fn, z + eps)
    a_minus, _ = functions.evaluate(fn, z - eps)
    _, slope = functions.evaluate(fn, z)
    np.testing.assert_allclose(slope, (a_plus - a_minus) / (2 * eps), atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("fn", functions.FUNCTIONS)
def test_curve_and_slope_match_pytorch(fn):
    torch = pytest.importorskip("torch")
    z = torch.linspace(-6, 6, 241, dtype=torch.float64, requires_grad=True)
    ops = {"relu": torch.relu, "leaky_relu": lambda t: torch.nn.functional.leaky_relu(t, 0.01),
           "sigmoid": torch.sigmoid, "tanh": torch.tanh,
           "gelu": lambda t: torch.nn.functional.gelu(t, approximate="tanh"),
           "elu": torch.nn.functional.elu, "identity": lambda t: t}
    a = ops[fn](z)
    a.sum().backward()
    ours_a, ours_slope = functions.evaluate(fn, z.detach().numpy())
    np.testing.assert_allclose(ours_a, a.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(ours_slope, z.grad.numpy(), atol=1e-12)


def test_sigmoid_slope_is_at_most_a_quarter():
    c = functions.curves(["sigmoid", "tanh"])
    assert max(c["functions"]["sigmoid"]["slope"]) == pytest.approx(0.25)
    assert c["functions"]["sigmoid"]["peak_slope"] == pytest.approx(0.25)
    assert c["functions"]["tanh"]["peak_slope"] == pytest.approx(1.0)
    assert c["functions"]["sigmoid"]["range"][0] > 0 and c["functions"]["sigmoid"]["range"][1] < 1


def test_rug_counts_the_units_in_the_flat_tails():
    z = [-12.0, -7.0, -0.5, 0.0, 0.5, 7.0, 12.0]
    r = functions.rug("sigmoid", z)
    # slope below 1% of 0.25: |z| > ~6.0 (sigma'(6) = 0.0025)
    assert r["saturated"] == 4 and r["flat"] == 0 and r["units"] == 7
    assert "4 of your digit's 7 sums" in r["sentence"]
    relu = functions.rug("relu", z)
    assert relu["flat"] == 4 and relu["saturated"] == 4  # z <= 0: slope exactly 0
    assert relu["slope"] == [0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]


def test_bad_arguments_name_the_parameter():
    with pytest.raises(LabError, match="activation"):
        functions.curves(["softplus"])
    with pytest.raises(LabError, match="z_max"):
        functions.curves(z_min=1, z_max=0)
    with pytest.raises(LabError, match="finite"):
        functions.rug("relu", [float("nan")])
