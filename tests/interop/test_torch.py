"""PyTorch export and import: the generated code with the saved state_dict computes digitlens's
numbers, export then import gives back the same weights bit for bit, and files that are not
weights only, or hold layers digitlens has not got, are refused with a message naming why."""

from __future__ import annotations

import importlib.util
import pickle

import numpy as np
import pytest

from digitlens.errors import CheckpointError
from digitlens.nn import Activation, Conv2D, Dense, GlobalAvgPool2D, Sequential, model_names

torch = pytest.importorskip("torch")

from digitlens.interop.torch import (load_torch, model_from_state_dict,  # noqa: E402
                                     save_torch, torch_code, torch_state_dict)


def load_generated(code_path):
    spec = importlib.util.spec_from_file_location(f"gen_{code_path.stem}", code_path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def torch_outputs(net, x):
    with torch.no_grad():
        return net(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


@pytest.mark.parametrize("name", model_names())
def test_pytorch_with_the_state_dict_equals_digitlens(name, zoo_model, hundred, tmp_path):
    m = zoo_model(name)
    weights, code = save_torch(m, tmp_path / f"{name}.pt")
    assert code == tmp_path / f"{name}.py"
    net = load_generated(code).load()  # reads the weights beside the code, weights only
    assert not net.training  # dropout off, as digitlens predicts
    np.testing.assert_allclose(torch_outputs(net, hundred), m.forward(hundred), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("name", model_names())
def test_export_then_import_is_exact(name, zoo_model, tmp_path):
    m = zoo_model(name)
    weights, _ = save_torch(m, tmp_path / "w.pt")
    back = load_torch(weights, name)
    assert back.config == m.config
    for k, v in m.params().items():
        assert back.params()[k].dtype == v.dtype
        assert np.array_equal(back.params()[k], v), k


def test_the_state_dict_is_pytorchs_layout(zoo_model):
    m = zoo_model("lab")
    sd = torch_state_dict(m)
    assert list(sd) == ["1.weight", "1.bias", "3.weight", "3.bias", "5.weight", "5.bias"]
    assert tuple(sd["1.weight"].shape) == (25, 784)  # nn.Linear keeps (out, in)
    assert np.array_equal(sd["1.weight"].numpy(), m.params()["1.W"].T)
    code = torch_code(m, "lab.pt")
    assert "nn.Linear(784, 25),  # 1: dense" in code and "nn.ReLU(),  # 2: relu" in code


def test_global_pooling_and_other_activations_round_trip(tmp_path, hundred, randomise):
    arch = Sequential([Conv2D(4, 3, stride=2, padding=1), Activation("gelu"), GlobalAvgPool2D(),
                       Dense(7), Activation("elu"), Dense(10)], rng=np.random.default_rng(3))
    m = randomise(arch)
    weights, code = save_torch(m, tmp_path / "gap.pt")
    np.testing.assert_allclose(torch_outputs(load_generated(code).load(), hundred),
                               m.forward(hundred), rtol=1e-5, atol=1e-5)
    back = load_torch(weights, arch)
    assert all(np.array_equal(back.params()[k], v) for k, v in m.params().items())


def test_a_network_trained_in_pytorch_comes_in(tmp_path, hundred):
    """A learner's own nn.Sequential with the zoo's layers, saved weights-only, reads the same."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 25), torch.nn.ReLU(),
                              torch.nn.Linear(25, 15), torch.nn.ReLU(), torch.nn.Linear(15, 10))
    torch.save(net.state_dict(), tmp_path / "mine.pt")
    m = load_torch(tmp_path / "mine.pt", "lab")
    np.testing.assert_allclose(m.forward(hundred), torch_outputs(net.eval(), hundred),
                               rtol=1e-5, atol=1e-5)


def test_a_pickled_network_is_refused_not_run(tmp_path):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    torch.save(net, tmp_path / "whole.pt")  # the module itself: a pickle of code
    with pytest.raises(CheckpointError, match="weights only") as e:
        load_torch(tmp_path / "whole.pt", "logistic")
    assert "torch.save(net.state_dict(), path)" in str(e.value)


def test_a_plain_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"

    class Boom:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"1.weight": Boom()}))
    with pytest.raises(CheckpointError, match="never unpickles code"):
        load_torch(tmp_path / "evil.pt", "logistic")
    assert not marker.exists()


def test_an_unknown_layer_is_named(tmp_path):
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 25),
                              torch.nn.BatchNorm1d(25), torch.nn.ReLU(), torch.nn.Linear(25, 10))
    torch.save(net.state_dict(), tmp_path / "bn.pt")
    with pytest.raises(CheckpointError) as e:
        load_torch(tmp_path / "bn.pt", "lab")
    msg = str(e.value)
    assert "unsupported layer" in msg
    assert "module 2 with" in msg and "running_mean" in msg and "BatchNorm" in msg


def test_shapes_missing_weights_and_bad_arch_are_explained(tmp_path):
    sd = {"1.weight": np.zeros((10, 100), np.float32), "1.bias": np.zeros(10, np.float32)}
    with pytest.raises(CheckpointError, match=r"1.weight has shape \(10, 100\), but logistic's "
                       r"layer 1 \(dense\) needs \(10, 784\)"):
        model_from_state_dict(sd, "logistic")
    with pytest.raises(CheckpointError, match="has no '1.bias'"):
        model_from_state_dict({"1.weight": np.zeros((10, 784), np.float32)}, "logistic")
    with pytest.raises(CheckpointError, match="--arch must be one of"):
        model_from_state_dict(sd, "resnet50")
    torch.save([torch.zeros(3)], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="not a state_dict"):
        load_torch(tmp_path / "list.pt", "logistic")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_torch(tmp_path / "nope.pt", "logistic")


@pytest.mark.slow
@pytest.mark.parametrize("name", model_names())
def test_trained_zoo_models_agree_with_pytorch(name, trained, digits, tmp_path):
    m = trained(name)
    _, code = save_torch(m, tmp_path / f"{name}.pt")
    x = digits.x_test[:100]
    np.testing.assert_allclose(torch_outputs(load_generated(code).load(), x), m.forward(x),
                               rtol=1e-5, atol=1e-5)
