"""loss_and_grads runs a ReLU followed by max-pooling as one step, pooling first
(:class:`digitlens.nn.layers.PoolThenReLU`): the loss, logits and every gradient must be exactly
those of running the layers one after the other."""

from __future__ import annotations

import numpy as np
import pytest

import digitlens as dl
from digitlens.nn import Activation, Conv2D, Dense, Flatten, MaxPool2D, Sequential
from digitlens.nn.layers import PoolThenReLU


def _layer_by_layer(model, x, y, seed):
    """The unfused step: forward_with_caches (one layer at a time) and the backward pass."""
    rng = np.random.default_rng(seed)
    z, caches = model.forward_with_caches(x, training=True, rng=rng)
    loss, dz = model.loss_from_logits(z, y, grad=True)
    _, grads = model._backward(dz, caches, need_input_grad=False)
    return loss, grads, z


def _assert_same_step(model, x, y, seed=0):
    loss, grads, z = model.loss_and_grads(x, y, training=True, rng=np.random.default_rng(seed),
                                          return_logits=True)
    ref_loss, ref_grads, ref_z = _layer_by_layer(model, x, y, seed)
    assert loss == ref_loss
    np.testing.assert_array_equal(z, ref_z)
    assert grads.keys() == ref_grads.keys()
    for k in grads:
        np.testing.assert_array_equal(grads[k], ref_grads[k], err_msg=k)


@pytest.mark.parametrize("name", ["cnn", "cnn_tiny"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_zoo_cnns_train_on_exactly_the_layer_by_layer_numbers(digits, name, dtype):
    model = dl.build_model(name, np.random.default_rng(3)).astype(dtype)
    steps = model._training_steps()
    assert any(isinstance(op, PoolThenReLU) for _, op in steps)  # the fast path is taken
    assert [i for i, _ in steps] == sorted({i for i, _ in steps})  # layer indices, in order
    _assert_same_step(model, digits.x_train[:20].astype(dtype), digits.y_train[:20], seed=5)


@pytest.mark.parametrize("pool,stride", [(2, 2), (3, 1), (2, 3), (3, 2)])
def test_all_negative_windows_ties_and_overlapping_windows(pool, stride):
    """Windows whose every z is negative (ReLU's slope 0), exact ties between positive maxima
    and overlapping or gapped windows: still the same numbers, bit for bit."""
    rng = np.random.default_rng(pool * 10 + stride)
    model = Sequential([Conv2D(3, 3, padding=1), Activation("relu"), MaxPool2D(pool, stride),
                        Flatten(), Dense(4)], input_shape=(1, 9, 9), rng=rng,
                       dtype=np.float64)
    model.layers[0].params["b"][:] = [-5.0, 0.0, 0.3]  # filter 0: all negative sums
    x = np.round(rng.random((6, 1, 9, 9)) * 3) / 3  # few distinct values: many ties
    _assert_same_step(model, x, np.arange(6) % 4)


def test_only_a_relu_right_before_max_pooling_is_combined():
    rng = np.random.default_rng(0)
    model = Sequential([Conv2D(2, 3), Activation("tanh"), MaxPool2D(2), Conv2D(2, 3),
                        Activation("relu"), Flatten(), Dense(3)], input_shape=(1, 12, 12),
                       rng=rng)
    assert not any(isinstance(op, PoolThenReLU) for _, op in model._training_steps())
    x = rng.random((4, 1, 12, 12)).astype(np.float32)
    _assert_same_step(model, x, np.arange(4) % 3)
