"""A batch cut into slices on several threads: the same loss, gradients and logits as the whole
batch (float64: to 1e-12; float32: to its rounding), the same random draws, and the same model
whatever the number of threads."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import digitlens as dl
from digitlens.nn.layers import Layer
from digitlens.nn.model import Sequential
from digitlens.training.fit import TrainConfig, fit
from digitlens.training.split import SplitStep, _Draws, _Replay, can_split, default_threads


@pytest.fixture(scope="module")
def batch(digits):
    return digits.x_train[:75], digits.y_train[:75]  # 75: slices of 25, 25 and 25 images


def _whole(model, x, y, seed, l2=0.0):
    rng = np.random.default_rng(seed)
    out = model.loss_and_grads(x, y, l2=l2, training=True, rng=rng, return_logits=True)
    return out, rng.random()  # the next draw tells how many numbers the step used


def _sliced(model, x, y, seed, threads, l2=0.0):
    rng = np.random.default_rng(seed)
    with SplitStep(model, threads) as step:
        out = step(x, y, l2=l2, training=True, rng=rng)
    return out, rng.random()


@pytest.mark.parametrize("threads", [1, 3])
def test_sliced_batch_equals_whole_batch_in_float64(batch, threads):
    model = dl.build_model("cnn", np.random.default_rng(0)).astype(np.float64)  # dropout too
    x, y = batch[0].astype(np.float64), batch[1]
    (loss, grads, z), after = _whole(model, x, y, seed=7, l2=1e-3)
    (loss_s, grads_s, z_s), after_s = _sliced(model, x, y, 7, threads, l2=1e-3)
    assert after_s == after  # the same random numbers were drawn, no more, no fewer
    assert loss_s == pytest.approx(loss, rel=1e-12)
    np.testing.assert_allclose(z_s, z, rtol=1e-12, atol=1e-12)
    assert grads_s.keys() == grads.keys()
    for k in grads:
        np.testing.assert_allclose(grads_s[k], grads[k], rtol=1e-10, atol=1e-13, err_msg=k)


def test_sliced_batch_equals_whole_batch_up_to_float32_rounding(digits):
    model = dl.build_model("cnn", np.random.default_rng(1))
    x, y = digits.x_train[:64], digits.y_train[:64]
    (loss, grads, z), _ = _whole(model, x, y, seed=3)
    (loss_s, grads_s, z_s), _ = _sliced(model, x, y, 3, threads=2)
    assert loss_s == pytest.approx(loss, rel=1e-5)
    np.testing.assert_allclose(z_s, z, rtol=1e-4, atol=1e-5)
    for k in grads:
        assert grads_s[k].dtype == np.float32
        scale = float(np.abs(grads[k]).max())
        np.testing.assert_allclose(grads_s[k], grads[k], rtol=0, atol=1e-5 * scale, err_msg=k)


def test_the_number_of_threads_does_not_change_the_model(digits):
    """fit slices a cnn's batches whatever ``threads`` is: 1, 2 or 3 threads give the same
    weights and history, bit for bit (the slices are added up in order)."""
    x, y = digits.x_train[:96], digits.y_train[:96]
    cfg = TrainConfig(epochs=1, batch_size=48)
    runs = []
    for threads in (1, 2, 3):
        rng = np.random.default_rng(5)
        model = dl.build_model("cnn_tiny", rng)
        history = fit(model, x, y, cfg, rng=rng, threads=threads)
        runs.append((model.params(), [b["loss"] for b in history.batches]))
    for params, losses in runs[1:]:
        assert losses == runs[0][1]
        for k, v in params.items():
            np.testing.assert_array_equal(v, runs[0][0][k])


def test_fit_default_step_is_the_whole_batch_step(digits):
    """The first step fit takes (sliced, on the default threads) equals the whole batch's:
    same loss, and the same weights after it up to float32 rounding."""
    x, y = digits.x_train[:64], digits.y_train[:64]
    cfg = TrainConfig(epochs=1, batch_size=64, optimizer="sgd", lr=0.1, momentum=0.0)
    rng = np.random.default_rng(2)
    model = dl.build_model("cnn", rng)
    h = fit(model, x, y, cfg, rng=rng)  # default threads: sliced
    # the same step by hand, on the whole batch: the same shuffle and dropout draws as fit
    rng = np.random.default_rng(2)
    ref = dl.build_model("cnn", rng)
    perm = rng.permutation(len(x))
    loss, grads = ref.loss_and_grads(x[perm], y[perm], training=True, rng=rng)
    for k, p in ref.params().items():
        p -= 0.1 * grads[k]
    assert h.batches[0]["loss"] == pytest.approx(loss, rel=1e-5)
    for k, v in model.params().items():
        np.testing.assert_allclose(v, ref.params()[k], rtol=0, atol=1e-6, err_msg=k)


def test_dense_models_take_the_whole_batch_unless_asked(small_dense):
    model = dl.build_model("mlp", np.random.default_rng(0))
    assert default_threads(model) == 1
    assert default_threads(dl.build_model("cnn", np.random.default_rng(0))) >= 1
    x, y = small_dense
    cfg = TrainConfig(epochs=1, batch_size=50)
    whole, sliced = (dl.build_model("mlp", np.random.default_rng(4)) for _ in range(2))
    fit(whole, x, y, cfg, rng=np.random.default_rng(4))
    fit(sliced, x, y, cfg, rng=np.random.default_rng(4), threads=2)
    for k, v in whole.params().items():
        np.testing.assert_allclose(sliced.params()[k], v, rtol=1e-3, atol=2e-4, err_msg=k)


@pytest.fixture(scope="module")
def small_dense(digits):
    return digits.x_train[:200], digits.y_train[:200]


class _Noisy(Layer):
    type = "noisy_test_layer"

    def forward(self, x, *, training=False, rng=None):
        return x + (rng.normal(size=x.shape) if training else 0), None

    def backward(self, dy, cache):
        return dy, {}


def test_models_with_unknown_random_layers_are_not_sliced(digits):
    model = Sequential([_Noisy(), dl.build_model("logistic", np.random.default_rng(0)).layers[0],
                        dl.build_model("logistic", np.random.default_rng(0)).layers[1]],
                       rng=np.random.default_rng(0))
    assert not can_split(model)
    with pytest.raises(ValueError, match="cannot split batches .*noisy_test_layer"):
        SplitStep(model, 2)
    # fit takes such a model's batches whole, even when asked for threads
    fit(model, digits.x_train[:40], digits.y_train[:40], TrainConfig(epochs=1, batch_size=20),
        rng=np.random.default_rng(0), threads=2)


def _ready(*draws):
    holder = _Draws()
    holder.set(list(draws))
    return holder


def test_replay_refuses_draws_the_whole_batch_did_not_make():
    u = np.arange(12, dtype=np.float32).reshape(4, 3)
    replay = _Replay(_ready(u), slice(1, 3))
    with pytest.raises(RuntimeError, match=r"shape \(2, 4\), float32"):
        replay.random((2, 4), dtype=np.float32)
    replay = _Replay(_ready(u), slice(1, 3))
    np.testing.assert_array_equal(replay.random((2, 3), dtype=np.float32), u[1:3])
    with pytest.raises(RuntimeError, match="would not have drawn"):
        replay.random((2, 3), dtype=np.float32)


def test_a_slice_waits_for_the_draws_at_its_first_dropout_layer():
    """The calling thread draws the dropout numbers while the other slices already run: a slice
    that reaches a Dropout layer first blocks until they are there, then gets its rows."""
    draws = _Draws()
    replay = _Replay(draws, slice(2, 4))
    with ThreadPoolExecutor(1) as pool:
        got = pool.submit(replay.random, (2, 5), np.float32)
        time.sleep(0.05)
        assert not got.done()  # waiting, not guessing
        u = np.random.default_rng(0).random((4, 5), dtype=np.float32)
        draws.set([u])
        np.testing.assert_array_equal(got.result(timeout=5), u[2:4])


def test_draws_that_fail_release_the_waiting_slices(digits):
    """If drawing fails, no slice thread is left waiting for ever: the step raises."""
    class Broken(np.random.Generator):
        def random(self, *a, **k):
            raise MemoryError("no room for the draws")

    model = dl.build_model("cnn", np.random.default_rng(0))  # (cnn_tiny has no dropout)
    bad = Broken(np.random.PCG64(0))
    with SplitStep(model, threads=2) as step, pytest.raises(MemoryError, match="no room"):
        step(digits.x_train[:64], digits.y_train[:64], rng=bad)
    draws = _Draws()
    draws.set(None, MemoryError("no room"))
    with pytest.raises(RuntimeError, match="dropout draws failed"):
        _Replay(draws, slice(0, 1)).random((1, 2), np.float32)


def test_map_shares_the_items_between_the_calling_thread_and_the_pool(digits):
    """``SplitStep.map`` (what fit runs the optimizer's updates through) returns fn's results in
    item order, computed on the pool's threads and the caller's; an error in any thread is
    re-raised after all have stopped; one thread maps in the caller alone."""
    import threading

    model = dl.build_model("cnn_tiny", np.random.default_rng(0))
    seen = []

    def slow_square(i):
        seen.append(threading.current_thread())
        time.sleep(0.005)  # long enough that both threads get items
        return i * i

    with SplitStep(model, threads=2) as step:
        assert step.map(slow_square, range(20)) == [i * i for i in range(20)]
        assert threading.current_thread() in seen and len(set(seen)) == 2

        def fails_on_7(i):
            if i == 7:
                raise ArithmeticError("item 7")
            return slow_square(i)

        with pytest.raises(ArithmeticError, match="item 7"):
            step.map(fails_on_7, range(20))
    seen.clear()
    with SplitStep(model, threads=1) as step:
        assert step.map(slow_square, range(5)) == [0, 1, 4, 9, 16]
    assert set(seen) == {threading.current_thread()}


def test_threads_argument_is_checked(digits):
    model = dl.build_model("cnn_tiny", np.random.default_rng(0))
    with pytest.raises(ValueError, match="threads must be a whole number >= 1, got 0"):
        fit(model, digits.x_train[:20], digits.y_train[:20], rng=np.random.default_rng(0),
            threads=0)


def test_augmenting_slice_by_slice_in_threads_trains_the_same_model(digits):
    """With an AugmentConfig, fit draws each batch's augmentation in the calling thread and each
    slice's thread transforms its own images.  The model is the one trained with the same
    augmentation applied to whole batches first (a plain function, which fit cannot split),
    bit for bit, on 1 or 2 threads."""
    from digitlens.training.augment import AugmentConfig

    aug = AugmentConfig(rotation=12, scale=0.1, shift=2, elastic=1.0, thickness=0.4)
    x, y = digits.x_train[:96], digits.y_train[:96]
    cfg = TrainConfig(epochs=1, batch_size=48)
    runs = []
    for threads, fn in ((1, aug), (2, aug), (2, lambda xb, rng: aug(xb, rng))):
        rng = np.random.default_rng(9)
        model = dl.build_model("cnn_tiny", rng)
        history = fit(model, x, y, cfg, rng=rng, threads=threads, augment=fn)
        runs.append((model.params(), [b["loss"] for b in history.batches], rng.random()))
    for params, losses, after in runs[1:]:
        assert losses == runs[0][1] and after == runs[0][2]
        for k, v in params.items():
            np.testing.assert_array_equal(v, runs[0][0][k])


def test_a_slice_thread_that_makes_bad_images_stops_fit(digits):
    """An augmentation whose transform returns NaN fails fit with the usual message, even when
    it runs inside a slice's thread."""
    from digitlens.training.augment import AugmentConfig

    class Broken(AugmentConfig):
        def apply_drawn(self, x, draws):
            return np.full_like(x, np.nan)

    rng = np.random.default_rng(0)
    model = dl.build_model("cnn_tiny", rng)
    with pytest.raises(ValueError, match="NaN or inf"):
        fit(model, digits.x_train[:64], digits.y_train[:64], TrainConfig(epochs=1),
            rng=rng, threads=2, augment=Broken())
