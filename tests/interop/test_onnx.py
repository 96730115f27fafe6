"""ONNX export: the graph passes onnx.checker, and ONNX Runtime computes digitlens's numbers."""

from __future__ import annotations

import numpy as np
import pytest

from digitlens.nn import (Activation, Conv2D, Dense, Flatten, GlobalAvgPool2D, Layer, Sequential,
                          model_names)

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from digitlens.interop.onnx import (onnxruntime_difference, save_onnx,  # noqa: E402
                                    to_onnx)


def run(proto, x):
    s = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(["logits", "probabilities"], {"image": x.astype(np.float32)})


def assert_agrees(model, x, tol=1e-5):
    logits, probs = run(to_onnx(model), x)
    z = model.forward(x)
    assert logits.shape == z.shape == (len(x), model.shapes[-1][0])
    np.testing.assert_allclose(logits, z, rtol=tol, atol=tol)
    np.testing.assert_allclose(probs, model.output(z), rtol=0, atol=tol)


@pytest.mark.parametrize("name", model_names())
def test_onnxruntime_equals_digitlens_for_every_zoo_architecture(name, zoo_model, hundred):
    assert_agrees(zoo_model(name), hundred)


@pytest.mark.parametrize("fn", ["relu", "leaky_relu", "sigmoid", "tanh", "identity", "elu",
                                "gelu"])
def test_every_activation_and_global_pooling(fn, hundred, randomise):
    m = randomise(Sequential([Conv2D(4, 3, stride=2, padding=1), Activation(fn),
                               GlobalAvgPool2D(), Dense(7), Activation(fn), Dense(10)],
                              rng=np.random.default_rng(3)))
    assert_agrees(m, hundred)


def test_the_graph_is_the_layers_in_order(zoo_model):
    g = to_onnx(zoo_model("cnn_tiny"))
    onnx.checker.check_model(g, full_check=True)
    assert [n.op_type for n in g.graph.node] == ["Conv", "Relu", "MaxPool", "Flatten", "Gemm",
                                                 "Identity", "Softmax"]
    assert [i.name for i in g.graph.input] == ["image"]
    assert [o.name for o in g.graph.output] == ["logits", "probabilities"]
    assert sorted(i.name for i in g.graph.initializer) == ["0.W", "0.b", "4.W", "4.b"]
    assert g.opset_import[0].version == 17


def test_the_binary_model_outputs_a_sigmoid(zoo_model, hundred):
    m = zoo_model("binary")
    logits, probs = run(to_onnx(m), hundred)
    assert logits.shape == (100, 1)
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-logits.astype(np.float64))), atol=1e-6)


def test_save_writes_a_file_onnxruntime_reads(tmp_path, zoo_model, hundred):
    m = zoo_model("lab")
    path = save_onnx(m, tmp_path / "sub" / "lab.onnx")
    assert onnx.load(str(path)).graph.name == "lab"
    d = onnxruntime_difference(m, path, hundred)
    assert d["n"] == 100 and d["logits"] < 1e-5 and d["probabilities"] < 1e-5


def test_a_layer_without_an_onnx_equivalent_is_named():
    class Twice(Layer):
        type = "twice_for_test"

        def forward(self, x, *, training=False, rng=None):
            return 2 * x, None

    m = Sequential([Flatten(), Twice(), Dense(10)], rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="layer 1 \\(twice_for_test\\) has no ONNX equivalent"):
        to_onnx(m)


@pytest.mark.slow
@pytest.mark.parametrize("name", model_names())
def test_trained_zoo_models_agree_with_onnxruntime(name, trained, digits):
    assert_agrees(trained(name), digits.x_test[:100])
