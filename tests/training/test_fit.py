"""Training: accuracy of the zoo recipes, determinism, divergence, Ctrl-C, early stopping,
callbacks, schedules, config validation -- and the bundled split it all runs on."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

import digitlens as dl
from digitlens.data.bundled import N_TRAIN_PER_CLASS, load_raw, split_indices
from digitlens.nn.layers import Dense
from digitlens.errors import TrainingDiverged
from digitlens.training.fit import History, TrainConfig, evaluate, fit, learning_rate

# ------------------------------------------------------------------------------ bundled split


def test_bundled_split_is_exactly_class_balanced(digits):
    assert digits.x_train.shape == (4000, 1, 28, 28) and digits.x_test.shape == (1000, 1, 28, 28)
    assert digits.x_train.dtype == np.float32 and digits.y_train.dtype == np.int64
    assert np.bincount(digits.y_train).tolist() == [400] * 10
    assert np.bincount(digits.y_test).tolist() == [100] * 10
    assert 0.0 <= digits.x_train.min() and digits.x_train.max() <= 1.0
    # classes are interleaved, not in blocks (the raw file is sorted by class)
    assert len(set(digits.y_test[:50].tolist())) == 10


def test_bundled_split_is_disjoint_and_fixed():
    images, labels = load_raw()
    assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
    tr, te = split_indices(labels)
    assert len(tr) == 4000 and len(te) == 1000
    assert not set(tr.tolist()) & set(te.tolist())
    assert sorted(tr.tolist() + te.tolist()) == list(range(5000))
    tr2, te2 = split_indices(labels)
    np.testing.assert_array_equal(tr, tr2)
    np.testing.assert_array_equal(te, te2)
    assert N_TRAIN_PER_CLASS == 400
    # no test image is a pixel-for-pixel copy of a training image
    train_bytes = {images[i].tobytes() for i in tr}
    assert not any(images[i].tobytes() in train_bytes for i in te)


def test_bundled_images_match_the_split(digits):
    images, labels = load_raw()
    tr, te = split_indices(labels)
    np.testing.assert_array_equal(digits.x_test[:, 0], images[te].astype(np.float32) / 255)
    np.testing.assert_array_equal(digits.y_test, labels[te])


# -------------------------------------------------------------------------------- accuracy


@pytest.mark.slow
def test_default_mlp_reaches_92_percent(trained, digits):
    model = trained("mlp")
    _, acc = evaluate(model, digits.x_test, digits.y_test)
    assert acc >= 0.92, f"mlp test accuracy {acc:.3f}"


@pytest.mark.slow
def test_logistic_reaches_87_percent(trained, digits):
    model = trained("logistic")
    _, acc = evaluate(model, digits.x_test, digits.y_test)
    assert acc >= 0.87, f"logistic test accuracy {acc:.3f}"
    # and it is what it says: one dense layer, 784 x 10 weights
    assert [type(layer).__name__ for layer in model.layers] == ["Flatten", "Dense"]


# ------------------------------------------------------------------------ small fast runs

SMALL = TrainConfig(epochs=3, batch_size=50, lr=3e-3)


@pytest.fixture(scope="module")
def small(digits):
    return digits.x_train[:600], digits.y_train[:600]


def train_small(name, data, config=SMALL, seed=0, **kwargs):
    rng = np.random.default_rng(seed)
    model = dl.build_model(name, rng)
    history = fit(model, *data, config, rng=rng, **kwargs)
    return model, history


def test_same_seed_gives_identical_weights(small):
    m1, h1 = train_small("mlp", small, seed=3)  # dropout included: its masks come from rng too
    m2, h2 = train_small("mlp", small, seed=3)
    for k, v in m1.params().items():
        np.testing.assert_array_equal(v, m2.params()[k])
    assert [b["loss"] for b in h1.batches] == [b["loss"] for b in h2.batches]
    m3, _ = train_small("mlp", small, seed=4)
    assert not np.array_equal(m1.params()["1.W"], m3.params()["1.W"])


def test_history_records_every_batch_and_epoch(small):
    _, h = train_small("lab", small)
    assert h.stop_reason == "completed"
    assert [e["epoch"] for e in h.epochs] == [1, 2, 3]
    assert len(h.batches) == 3 * 12  # 600 / 50
    assert h.epochs[-1]["loss"] < h.epochs[0]["loss"]
    assert h.seconds > 0
    # the epoch loss is the mean of its batch losses (equal batch sizes here)
    first = [b["loss"] for b in h.batches if b["epoch"] == 1]
    assert h.epochs[0]["loss"] == pytest.approx(np.mean(first))
    again = History.from_dict(json.loads(h.to_json()))
    assert again == h


def test_validation_fraction_holds_data_out(small):
    config = dataclasses.replace(SMALL, validation_fraction=0.25)
    _, h = train_small("lab", small, config)
    assert "val_accuracy" in h.epochs[0]
    assert len([b for b in h.batches if b["epoch"] == 1]) == 9  # 450 training examples / 50


class Recorder:
    """Keeps a copy of the weights after every epoch."""

    def __init__(self, model):
        self.model = model
        self.weights = {}

    def on_epoch_end(self, log):
        self.weights[log["epoch"]] = {k: v.copy() for k, v in self.model.params().items()}


def assert_same_weights(model, weights):
    for k, v in model.params().items():
        np.testing.assert_array_equal(v, weights[k], err_msg=k)


# ------------------------------------------------------------------------------ divergence


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the overflow that causes the divergence
def test_divergence_raises_and_keeps_finite_weights(small):
    rng = np.random.default_rng(0)
    model = dl.build_model("mlp", rng)
    initial = {k: v.copy() for k, v in model.params().items()}
    config = TrainConfig(epochs=3, batch_size=50, optimizer="sgd", lr=1e4)
    with pytest.raises(TrainingDiverged) as info:
        fit(model, *small, config, rng=rng)
    msg = str(info.value)
    assert "training diverged: the loss became nan at epoch 1" in msg
    assert "learning rate 1e+04" in msg and "Try a smaller learning rate" in msg
    assert "keeps its initial weights" in msg
    assert info.value.history.stop_reason == "diverged"
    assert all(np.all(np.isfinite(v)) for v in model.params().values())
    assert_same_weights(model, initial)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_divergence_in_a_later_epoch_keeps_the_last_complete_epoch(small):
    rng = np.random.default_rng(0)
    model = dl.build_model("lab", rng)
    rec = Recorder(model)
    calls = {"n": 0}

    def poison_second_epoch(xb, rng):  # an "augmentation" that blows up in epoch 2, batch 4
        calls["n"] += 1
        # finite pixels (float32 reaches 3.4e38), but their weighted sums overflow to inf
        return xb * 1e38 if calls["n"] == 12 + 4 else xb

    with pytest.raises(TrainingDiverged, match="at epoch 2, batch 4.*the weights of epoch 1"):
        fit(model, *small, SMALL, rng=rng, callbacks=[rec], augment=poison_second_epoch)
    assert_same_weights(model, rec.weights[1])


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_infinite_gradient_with_finite_loss_is_caught_at_epoch_end(small):
    """A finite loss whose gradient overflows leaves inf weights after the step; those must never
    become the "last good" weights."""

    class Saboteur(Dense):
        calls = 0

        def param_grads(self, dz, x):
            Saboteur.calls += 1
            grads = super().param_grads(dz, x)
            if Saboteur.calls == 24:  # the last batch of epoch 2
                grads["W"] = grads["W"] * np.inf
            return grads

    rng = np.random.default_rng(0)
    model = dl.Sequential([dl.nn.Flatten(), Saboteur(10)], rng=rng)
    rec = Recorder(model)
    with pytest.raises(TrainingDiverged,
                       match="parameter 1.W became NaN or inf at the end of epoch 2"):
        fit(model, *small, SMALL, rng=rng, callbacks=[rec])
    assert_same_weights(model, rec.weights[1])


# ----------------------------------------------------------------- interrupts and callbacks


def test_keyboard_interrupt_keeps_the_last_complete_epoch(small):
    rng = np.random.default_rng(0)
    model = dl.build_model("lab", rng)
    rec = Recorder(model)

    class CtrlC:
        def on_batch_end(self, log):
            if log["epoch"] == 2 and log["batch"] == 5:
                raise KeyboardInterrupt

    h = fit(model, *small, SMALL, rng=rng, callbacks=[rec, CtrlC()])
    assert h.stop_reason == "interrupted"
    assert len(h.epochs) == 1
    assert_same_weights(model, rec.weights[1])


def test_keyboard_interrupt_in_the_first_epoch_keeps_the_initial_weights(small):
    rng = np.random.default_rng(0)
    model = dl.build_model("logistic", rng)
    initial = {k: v.copy() for k, v in model.params().items()}

    class CtrlC:
        def on_batch_end(self, log):
            raise KeyboardInterrupt

    h = fit(model, *small, SMALL, rng=rng, callbacks=[CtrlC()])
    assert h.stop_reason == "interrupted" and h.epochs == []
    assert_same_weights(model, initial)


def test_callback_can_stop_after_an_epoch(small):
    class StopAfterTwo:
        def on_epoch_end(self, log):
            return log["epoch"] == 2

    model, h = train_small("lab", small, dataclasses.replace(SMALL, epochs=5),
                           callbacks=[StopAfterTwo()])
    assert h.stop_reason == "callback" and len(h.epochs) == 2


def test_callback_stopping_mid_epoch_restores_the_last_complete_epoch(small):
    rng = np.random.default_rng(0)
    model = dl.build_model("lab", rng)
    rec = Recorder(model)

    class StopMidEpoch:
        def on_batch_end(self, log):
            return log["epoch"] == 3 and log["batch"] == 2

    h = fit(model, *small, SMALL, rng=rng, callbacks=[rec, StopMidEpoch()])
    assert h.stop_reason == "callback" and len(h.epochs) == 2
    assert_same_weights(model, rec.weights[2])


# -------------------------------------------------------------------------- early stopping


@pytest.fixture(scope="module")
def noise_validation(digits):
    """Validation digits with random labels: the better the model fits real labels, the worse its
    loss on these gets, so the best validation epoch is guaranteed to be an early one."""
    y = np.random.default_rng(0).integers(0, 10, 300)
    return digits.x_test[:300], y


def test_early_stopping_restores_the_best_epoch(small, noise_validation):
    rng = np.random.default_rng(0)
    model = dl.build_model("lab", rng)
    rec = Recorder(model)
    config = dataclasses.replace(SMALL, epochs=30, patience=2)
    h = fit(model, *small, config, rng=rng, validation=noise_validation, callbacks=[rec])
    assert h.stop_reason == "early_stopping"
    assert len(h.epochs) == h.best_epoch + 2  # stopped after `patience` epochs without progress
    val_losses = [e["val_loss"] for e in h.epochs]
    assert h.best_epoch == 1 + int(np.argmin(val_losses))
    assert_same_weights(model, rec.weights[h.best_epoch])
    assert evaluate(model, *noise_validation)[0] == pytest.approx(min(val_losses))


def test_patience_keeps_the_best_epoch_even_when_all_epochs_run(small, noise_validation):
    rng = np.random.default_rng(0)
    model = dl.build_model("lab", rng)
    rec = Recorder(model)
    config = dataclasses.replace(SMALL, epochs=4, patience=10)
    h = fit(model, *small, config, rng=rng, validation=noise_validation, callbacks=[rec])
    assert h.stop_reason == "completed" and len(h.epochs) == 4 and h.best_epoch < 4
    assert_same_weights(model, rec.weights[h.best_epoch])


def test_without_patience_the_last_epoch_is_kept(small, noise_validation):
    rng = np.random.default_rng(0)
    model = dl.build_model("lab", rng)
    rec = Recorder(model)
    h = fit(model, *small, SMALL, rng=rng, validation=noise_validation, callbacks=[rec])
    assert_same_weights(model, rec.weights[3])
    assert h.best_epoch is not None


# ------------------------------------------------------------------------------- schedules


def test_cosine_schedule_endpoints():
    c = TrainConfig(lr=0.2, schedule="cosine")
    assert learning_rate(c, 0, 100) == pytest.approx(0.2)
    assert learning_rate(c, 50, 100) == pytest.approx(0.1)  # halfway: half the peak
    assert learning_rate(c, 100, 100) == pytest.approx(0.0, abs=1e-15)
    lrs = [learning_rate(c, s, 100) for s in range(101)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))  # never goes back up


def test_onecycle_schedule_endpoints():
    c = TrainConfig(lr=0.5, schedule="onecycle", warmup=0.2)
    assert learning_rate(c, 0, 100) == pytest.approx(0.5 / 25)  # starts at lr/25
    assert learning_rate(c, 20, 100) == pytest.approx(0.5)  # peak at the end of the warm-up
    assert learning_rate(c, 100, 100) == pytest.approx(0.5 * 1e-4)  # ends at lr/10⁴
    lrs = [learning_rate(c, s, 100) for s in range(101)]
    assert max(lrs) == pytest.approx(0.5)
    assert all(a <= b for a, b in zip(lrs[:21], lrs[1:21]))  # rising during warm-up
    assert all(a >= b for a, b in zip(lrs[20:], lrs[21:]))  # then falling


def test_constant_schedule_and_fit_follows_the_schedule(small):
    assert learning_rate(TrainConfig(lr=0.01), 7, 10) == 0.01
    config = dataclasses.replace(SMALL, schedule="cosine")
    _, h = train_small("logistic", small, config)
    total = len(h.batches)
    for step, b in enumerate(h.batches):
        assert b["lr"] == pytest.approx(learning_rate(config, step, total))


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "epochs must be a whole number >= 1, got 0"),
    ({"epochs": 2.5}, "epochs must be a whole number >= 1, got 2.5"),
    ({"batch_size": -8}, "batch_size must be a whole number >= 1, got -8"),
    ({"lr": 0.0}, "lr must be a positive number, got 0.0"),
    ({"lr": math.inf}, "lr must be a positive number, got inf"),
    ({"lr": "0.1"}, "lr must be a positive number, got '0.1'"),
    ({"momentum": 1.5}, r"momentum must be in \[0, 1\), got 1.5"),
    ({"warmup": 1.0}, r"warmup must be in \[0, 1\), got 1.0"),
    ({"l2": -1e-4}, "l2 must be >= 0, got -0.0001"),
    ({"l2": math.nan}, "l2 must be >= 0, got nan"),
    ({"validation_fraction": 1.0}, r"validation_fraction must be in \[0, 1\), got 1.0"),
    ({"patience": 0}, "patience must be a whole number >= 1, got 0"),
    ({"schedule": "step"},
     "schedule must be one of \\['constant', 'cosine', 'onecycle'\\], got 'step'"),
    ({"optimizer": "lbfgs"}, r"optimizer must be one of \['adam', 'sgd'\], got 'lbfgs'"),
])
def test_invalid_config_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_augment_output_is_checked(small):
    model = dl.build_model("logistic", np.random.default_rng(0))
    with pytest.raises(ValueError, match="augment returned images containing NaN or inf"):
        fit(model, *small, SMALL, rng=np.random.default_rng(0),
            augment=lambda xb, rng: np.full_like(xb, np.nan))
    with pytest.raises(ValueError, match=r"augment must return a batch of shape \(50, 1, 28, 28\)"):
        fit(model, *small, SMALL, rng=np.random.default_rng(0), augment=lambda xb, rng: xb[:, 0])


def test_blas_threads_do_not_change_the_result(small):
    m1, _ = train_small("lab", small, blas_threads=1)
    m2, _ = train_small("lab", small, blas_threads=None)
    for k, v in m1.params().items():
        np.testing.assert_allclose(v, m2.params()[k], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="blas_threads must be a whole number >= 1, got 0"):
        train_small("lab", small, blas_threads=0)


def test_invalid_fit_arguments_rejected(small, digits):
    x, y = small
    model = dl.build_model("logistic", np.random.default_rng(0))
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="x has 600 examples but y has 599 labels"):
        fit(model, x, y[:-1], SMALL, rng=rng)
    bad = x.copy()
    bad[3, 0, 5, 5] = np.inf
    with pytest.raises(ValueError, match="training images contain NaN or inf"):
        fit(model, bad, y, SMALL, rng=rng)
    with pytest.raises(ValueError, match="divide uint8 pixels by 255"):
        fit(model, (x * 255).astype(np.uint8), y, SMALL, rng=rng)
    with pytest.raises(ValueError, match=r"labels must be in"):
        fit(model, x, y + 5, SMALL, rng=rng)
    with pytest.raises(ValueError, match="patience=2 needs validation data"):
        fit(model, x, y, dataclasses.replace(SMALL, patience=2), rng=rng)
    with pytest.raises(ValueError, match="rng must be a numpy.random.Generator, got int"):
        fit(model, x, y, SMALL, rng=0)
    with pytest.raises(ValueError, match="validation data: x has 10 examples but y has 9"):
        fit(model, x, y, SMALL, rng=rng, validation=(x[:10], y[:9]))
