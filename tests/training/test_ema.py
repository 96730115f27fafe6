"""Weight averaging (``TrainConfig(ema=β)``): the model ends with an exponential moving average of
its weights after every step; between epochs (validation, patience, callbacks, a stopped run) it
holds the average too, while the steps themselves continue from the raw weights."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

import digitlens as dl
from digitlens.training.fit import TrainConfig, evaluate, fit

SMALL = TrainConfig(epochs=3, batch_size=50, lr=3e-3)


@pytest.fixture(scope="module")
def small(digits):
    return digits.x_train[:600], digits.y_train[:600]


class StepRecorder:
    """A copy of the (raw) weights after every gradient step, and of the model at every epoch's
    end."""

    def __init__(self, model):
        self.model, self.steps, self.epochs = model, [], {}

    def on_batch_end(self, log):
        self.steps.append({k: v.astype(np.float64) for k, v in self.model.params().items()})

    def on_epoch_end(self, log):
        self.epochs[log["epoch"]] = {k: v.copy() for k, v in self.model.params().items()}


def run(name, data, config, seed=0, validation=None, extra=()):
    rng = np.random.default_rng(seed)
    model = dl.build_model(name, rng)
    rec = StepRecorder(model)
    h = fit(model, *data, config, rng=rng, validation=validation, callbacks=[rec, *extra])
    return model, h, rec


def by_hand(steps, beta):
    """``Σ (1-β) βᵗ⁻ⁱ Wᵢ / (1-βᵗ)`` over the steps ``i = 1..t``, in float64."""
    t = len(steps)
    w = [(1 - beta) * beta ** (t - i) for i in range(1, t + 1)]
    return {k: sum(wi * s[k] for wi, s in zip(w, steps)) / (1 - beta ** t) for k in steps[0]}


def assert_close(model_or_weights, weights, rtol=1e-5, atol=1e-6):
    got = model_or_weights.params() if hasattr(model_or_weights, "params") else model_or_weights
    for k, v in got.items():
        np.testing.assert_allclose(v, weights[k], rtol=rtol, atol=atol, err_msg=k)


def test_the_model_ends_with_the_hand_computed_average(small):
    beta = 0.9
    model, _, rec = run("logistic", small, dataclasses.replace(SMALL, ema=beta))
    assert len(rec.steps) == 3 * 12  # 600 / 50 per epoch
    assert_close(model, by_hand(rec.steps, beta))
    # a sum of positive weights that add up to 1: a true average, not the last step's weights
    assert not np.allclose(model.params()["1.W"], rec.steps[-1]["1.W"])
    # every epoch's end held the average of the steps so far
    for epoch in (1, 2):
        assert_close(rec.epochs[epoch], by_hand(rec.steps[:12 * epoch], beta))


def test_one_step_average_is_that_steps_weights(small):
    # the bias correction: after one step the average is W₁ itself, not (1-β)·W₁
    config = TrainConfig(epochs=1, batch_size=600, lr=3e-3, ema=0.999)
    model, _, rec = run("logistic", small, config)
    assert_close(model, rec.steps[0])


def test_averaging_leaves_the_training_steps_alone(small):
    # the same seed with and without averaging: the same batches, losses and raw weights
    # (dropout draws too: the mlp has dropout), and ema=0 ends with the last step's weights
    plain, h0, rec0 = run("mlp", small, SMALL)
    averaged, h1, rec1 = run("mlp", small, dataclasses.replace(SMALL, ema=0.99))
    assert [b["loss"] for b in h0.batches] == [b["loss"] for b in h1.batches]
    for s0, s1 in zip(rec0.steps, rec1.steps):
        for k in s0:
            np.testing.assert_array_equal(s0[k], s1[k])
    for k, v in plain.params().items():
        np.testing.assert_array_equal(v, rec0.steps[-1][k].astype(v.dtype))
    assert not np.array_equal(averaged.params()["1.W"], plain.params()["1.W"])


def test_ema_zero_is_the_default_and_changes_nothing(small):
    assert TrainConfig().ema == 0.0
    m1, h1, _ = run("lab", small, SMALL)
    m2, h2, _ = run("lab", small, dataclasses.replace(SMALL, ema=0.0))
    for k, v in m1.params().items():
        np.testing.assert_array_equal(v, m2.params()[k])
    assert h1.epochs[-1]["loss"] == h2.epochs[-1]["loss"]


def test_validation_and_patience_see_the_averaged_model(small, digits):
    y = np.random.default_rng(0).integers(0, 10, 300)  # random labels: the best epoch is early
    noise = (digits.x_test[:300], y)
    config = dataclasses.replace(SMALL, epochs=30, patience=2, ema=0.9)
    model, h, rec = run("lab", small, config, validation=noise)
    assert h.stop_reason == "early_stopping"
    # the restored best epoch is that epoch's averaged model, and its logged val_loss is its own
    assert_close(model, rec.epochs[h.best_epoch], rtol=0, atol=0)
    assert evaluate(model, *noise)[0] == pytest.approx(h.epochs[h.best_epoch - 1]["val_loss"])
    best_avg = by_hand(rec.steps[:12 * h.best_epoch], 0.9)
    assert_close(model, best_avg)


def test_an_interrupted_run_keeps_the_last_epochs_average(small):
    class CtrlC:
        def on_batch_end(self, log):
            if log["epoch"] == 2 and log["batch"] == 5:
                raise KeyboardInterrupt

    model, h, rec = run("lab", small, dataclasses.replace(SMALL, ema=0.9), extra=[CtrlC()])
    assert h.stop_reason == "interrupted" and len(h.epochs) == 1
    assert_close(model, rec.epochs[1], rtol=0, atol=0)
    assert_close(model, by_hand(rec.steps[:12], 0.9))


@pytest.mark.parametrize("value, shown", [(1.0, "1.0"), (-0.1, "-0.1"), (math.nan, "nan"),
                                          ("0.9", "'0.9'")])
def test_invalid_ema_rejected(value, shown):
    with pytest.raises(ValueError, match=rf"ema must be in \[0, 1\), got {shown}"):
        TrainConfig(ema=value)


def test_ema_round_trips_and_older_configs_load():
    c = TrainConfig(epochs=80, ema=0.999)
    assert TrainConfig.from_dict(c.to_dict()) == c
    old = TrainConfig(epochs=80).to_dict()
    del old["ema"]  # a checkpoint saved before the field existed
    assert TrainConfig.from_dict(old) == TrainConfig(epochs=80)
