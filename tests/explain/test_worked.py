"""The worked sum and the names of layers: every number equals the engine's, every name is a
person's (no list positions)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from digitlens.errors import NotAUnitLayerError, UnknownUnitError
from digitlens.explain import names as N
from digitlens.explain.worked import worked_sum
from digitlens.nn import build_model
from digitlens.nn import functional as F
from digitlens.nn import topology as T
from digitlens.nn.zoo import model_names

ZOO = model_names()


def _model(name, seed=0):
    m = build_model(name, np.random.default_rng(seed), dtype=np.float64)
    # random biases too (the zoo starts them at 0, which would hide a missing bias)
    rng = np.random.default_rng(seed + 1)
    for layer in m.layers:
        if "b" in layer.params:
            layer.params["b"][...] = rng.normal(0, 0.3, layer.params["b"].shape)
    return m


def _positions(zshape, rng):
    H, W = zshape
    return [(0, 0), (H - 1, W - 1), (0, W - 1)] + [tuple(rng.integers(0, (H, W))) for _ in range(2)]


@pytest.mark.parametrize("name", ZOO)
def test_every_worked_sum_reaches_the_engines_z_and_activation(name):
    """Every unit layer of every zoo model, random inputs, float64: the running total plus the
    bias is the engine's z, which an independent computation (x @ W + b, the plain reference
    conv) also gives; the activation is the engine's."""
    m = _model(name)
    rng = np.random.default_rng(2)
    x = rng.random((28, 28))
    tr = m.forward(x.reshape(1, 1, 28, 28), trace=True)
    for layer in T.unit_layers(m):
        L = m.layers[layer]
        n_units = L.params["b"].shape[0]
        xin = tr.layers[layer].input
        a_all = tr.layers[T.unit_output(m, layer)].output[0]
        for unit in sorted(set(rng.integers(0, n_units, 3).tolist()) | {n_units - 1}):
            if L.type == "dense":
                ws = [worked_sum(m, x, layer, unit)]
                ref = [float(xin.reshape(1, -1)[0] @ L.params["W"][:, unit] + L.params["b"][unit])]
                acts = [float(a_all[unit])]
            else:
                zref = F.conv2d_reference(xin, L.params["W"], L.params["b"], L.stride, L.padding)
                pos = _positions(zref.shape[2:], rng)
                ws = [worked_sum(m, x, layer, unit, at=p, maps=False) for p in pos]
                ref = [float(zref[0, unit, r, q]) for r, q in pos]
                acts = [float(a_all[unit, r, q]) for r, q in pos]
            for w, z_ref, a in zip(ws, ref, acts):
                scale = 1 + np.abs(w.products).sum()
                assert abs(w.total - w.z) <= 1e-12 * scale, (name, layer, unit)
                assert abs(w.z - z_ref) <= 1e-12 * scale
                assert w.a == a  # the engine's activation, not a recomputation
                np.testing.assert_array_equal(w.products, w.x * w.w)
                np.testing.assert_allclose(w.running, np.cumsum(w.products))
                assert np.all(np.diff(np.abs(w.products)) <= 0), "sorted by size"
                assert w.total == (w.running[-1] if w.running.size else 0.0) + w.bias


def test_a_dense_unit_reads_its_inputs_and_weights_in_order():
    m = _model("lab")
    x = np.zeros((28, 28))
    x[5, 7], x[20, 3] = 1.0, 0.5
    w = worked_sum(m, x, 1, 3)
    W = m.layers[1].params["W"][:, 3]
    assert w.labels == ["pixel row 5, column 7", "pixel row 20, column 3"] or \
        w.labels == ["pixel row 20, column 3", "pixel row 5, column 7"]
    got = dict(zip(w.labels, zip(w.x, w.w)))
    assert got["pixel row 5, column 7"] == (1.0, W[5 * 28 + 7])
    assert got["pixel row 20, column 3"] == (0.5, W[20 * 28 + 3])
    assert w.to_dict()["n_zero"] == 782
    assert w.reads == "the pixels of your digit"
    assert w.activation == "relu" and w.a == max(0.0, w.z)


def test_a_filter_window_its_kernel_and_the_padding():
    """cnn_tiny's 5×5 filters with padding 2: at (0, 0) the window starts 2 pixels above and left
    of the image (zeros); the products are window × kernel, the map sums add up to the total."""
    m = _model("cnn_tiny")
    x = np.random.default_rng(3).random((28, 28))
    w = worked_sum(m, x, 0, 4, at=(0, 0))
    c = w.conv
    assert c["rows"] == (-2, 2) and c["cols"] == (-2, 2)
    np.testing.assert_array_equal(c["window"][0, :2], 0)
    np.testing.assert_array_equal(c["window"][0, 2:, 2:], x[:3, :3])
    np.testing.assert_array_equal(c["kernel"], m.layers[0].params["W"][4])
    np.testing.assert_array_equal(c["products"], c["window"] * c["kernel"])
    assert abs(c["map_sums"].sum() + w.bias - w.z) < 1e-12
    assert len(w.labels) == 9  # only the 3×3 inside the image
    assert c["feature_map"][0, 0] == w.z and c["activation_map"].shape == (28, 28)
    # by default: where the filter fires most
    d = worked_sum(m, x, 0, 4)
    assert d.a == c["activation_map"].max()
    with pytest.raises(ValueError, match="rows 0 to 27"):
        worked_sum(m, x, 0, 4, at=(28, 0))


def test_a_second_layer_filter_reads_every_map_of_the_first():
    m = _model("cnn")
    x = np.random.default_rng(4).random((28, 28))
    w = worked_sum(m, x, 3, 7, at=(6, 5))
    c = w.conv
    assert c["window"].shape == c["kernel"].shape == (16, 3, 3)
    assert c["input_maps"].shape == (16, 14, 14)
    np.testing.assert_array_equal(c["window"], c["input_maps"][:, 5:8, 4:7])
    assert c["map_names"][2] == "map 2 (filter 2 of convolution 1)"
    assert w.unit_name == "filter 7 of convolution 2"
    assert w.layer_name == "convolution 2 (32 filters)"


@pytest.mark.parametrize("name", ["lab", "mlp", "cnn_tiny", "cnn"])
def test_connections_group_the_products_by_the_unit_they_come_from(name):
    """All connections together add up to the sum without the bias; each names a unit of the
    previous layer, and for a filter the position whose value the layer read."""
    m = _model(name)
    x = np.random.default_rng(5).random((28, 28))
    tr = m.forward(x.reshape(1, 1, 28, 28), trace=True)
    for layer in T.unit_layers(m)[1:]:
        w = worked_sum(m, x, layer, 0, top=10_000, maps=False)
        total = sum(c.value for c in w.up + w.down)
        assert abs(total - (w.total - w.bias)) < 1e-10
        assert [c.value for c in w.up] == sorted((c.value for c in w.up), reverse=True)
        assert all(c.value > 0 for c in w.up) and all(c.value < 0 for c in w.down)
        for c in w.up + w.down:
            src = m.layers[c.source.layer]
            assert src.type in T.UNIT_TYPES and c.source.layer < layer
            assert c.name == N.unit_name(m, c.source.layer, c.source.unit)
            if src.type == "conv2d":
                # the value at `at` in the source filter's activation map is one the layer read
                r, q = c.source.at
                a = tr.layers[T.unit_output(m, c.source.layer)].output[0, c.source.unit, r, q]
                assert np.any(np.isclose(tr.layers[layer].input[0], a)) or a == 0
    short = worked_sum(m, x, T.unit_layers(m)[-1], 0)
    assert len(short.up) <= 5 and len(short.down) <= 5


@pytest.mark.parametrize("name", ZOO)
def test_the_output_function_is_worked_out_and_equals_the_engine(name):
    m = _model(name)
    x = np.random.default_rng(6).random((28, 28))
    out = T.logit_layer(m)
    w = worked_sum(m, x, out, 0)
    o = w.output
    engine = m.output(m.forward(x.reshape(1, 1, 28, 28)))[0]
    np.testing.assert_array_equal(o["engine_probabilities"], engine)
    if o["function"] == "softmax":
        np.testing.assert_allclose(o["exp"], np.exp(o["logits"] - o["logits"].max()))
        assert o["sum_exp"] == pytest.approx(o["exp"].sum())
        np.testing.assert_allclose(o["probabilities"], engine, rtol=1e-12, atol=1e-15)
        assert o["logits"][0] == pytest.approx(w.z, abs=1e-12)
    else:
        assert o["function"] == "sigmoid"
        assert o["probabilities"][0] == pytest.approx(engine[0], rel=1e-12)
    hidden = [i for i in T.unit_layers(m) if i != out]
    if hidden:
        assert worked_sum(m, x, hidden[0], 0).output is None


def test_json_holds_the_same_numbers():
    m = _model("cnn")
    x = np.random.default_rng(7).random((28, 28))
    w = worked_sum(m, x, 3, 2, at=(4, 4), name="cnn")
    d = w.to_dict()
    assert d["z"] == pytest.approx(w.z, rel=1e-9) and d["total"] == pytest.approx(w.total, rel=1e-9)
    assert [t["product"] for t in d["terms"]] == pytest.approx(list(w.products), rel=1e-9)
    assert d["conv"]["at"] == [4, 4] and len(d["conv"]["kernel"]) == 16
    assert d["n_zero"] == 144 - len(d["terms"])
    assert d["model"] == "cnn" and d["unit_name"] == "filter 2 of convolution 2"


def test_errors_name_the_problem():
    m = _model("lab")
    x = np.zeros((28, 28))
    with pytest.raises(UnknownUnitError, match="units 0 to 24"):
        worked_sum(m, x, 1, 25)
    with pytest.raises(NotAUnitLayerError):
        worked_sum(m, x, 2, 0)


# ---------------------------------------------------------------------------------- names
_INDEX_LEAK = re.compile(r"(?<!hidden )\blayer \d")


@pytest.mark.parametrize("name", ZOO)
def test_every_layer_has_a_persons_name(name):
    m = _model(name)
    names = N.layer_names(m)
    assert [n.index for n in names] == list(range(len(m.layers)))
    for n in names:
        assert not _INDEX_LEAK.search(n.name), n.name
    keys = N.unit_keys(m)
    assert keys[-1] == "output" and len(keys) == len(T.unit_layers(m)) == len(set(keys))
    for layer in T.unit_layers(m):
        n_units = m.layers[layer].params["b"].shape[0]
        for unit in (0, n_units - 1):
            s = N.unit_name(m, layer, unit)
            assert not _INDEX_LEAK.search(s), s
            key = names[layer].key
            number = m.classes[unit] if key == "output" and n_units == len(m.classes) else unit
            assert N.parse_unit(m, f"{key}:{number}") == (layer, unit)


def test_names_of_the_cnn():
    m = _model("cnn")
    got = {n.key: n.name for n in N.layer_names(m) if n.key}
    assert got == {"conv1": "convolution 1 (16 filters)", "pool1": "max-pooling after "
                   "convolution 1 (16×14×14)", "conv2": "convolution 2 (32 filters)",
                   "pool2": "max-pooling after convolution 2 (32×7×7)",
                   "conv3": "convolution 3 (64 filters)",
                   "hidden1": "hidden layer 1 (128 units)", "output": "output layer (10 digits)"}
    assert N.unit_name(m, 13, 3) == "the output unit for the digit 3"
    assert N.layer_name(m, 4) == "ReLU of convolution 2"
    b = _model("binary")
    assert N.layer_name(b, 1) == "output layer (1 unit)"
    assert N.unit_name(b, 1, 0) == "the output unit (the chance of a 1)"
    assert N.parse_unit(b, "output:0") == (1, 0)


def test_parse_unit_says_what_is_wrong():
    m = _model("cnn")
    assert N.parse_unit(m, " Conv2 : 7 ") == (3, 7)
    with pytest.raises(UnknownUnitError, match=r"no layer 'hidden2'.*'conv1', 'conv2'"):
        N.parse_unit(m, "hidden2:1")
    with pytest.raises(UnknownUnitError, match="units 0 to 31, not 32"):
        N.parse_unit(m, "conv2:32")
    with pytest.raises(UnknownUnitError, match="LAYER:NUMBER"):
        N.parse_unit(m, "conv2")
    with pytest.raises(UnknownUnitError, match="one unit per digit"):
        N.parse_unit(m, "output:10")
