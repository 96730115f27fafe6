"""Training: mini-batch gradient descent with everything visible and nothing printed.

``fit(model, x, y, config, rng)`` loops over epochs and shuffled mini-batches, asks the model for
``loss, grads`` and hands the gradients to the optimizer.  It reports through callbacks and
returns a :class:`History`; it never prints.

Safety:

- a NaN or inf loss stops training with :class:`TrainingDiverged` (the message says when and
  suggests a fix); the model keeps the weights of the last completed epoch;
- ``KeyboardInterrupt`` (Ctrl-C) stops cleanly: the model keeps the weights of the last complete
  epoch and the history says ``stop_reason == "interrupted"``;
- with a validation set and ``patience``, training stops early and restores the best epoch.

Weight averaging (``TrainConfig(ema=0.999)``): the model that training ends with is an exponential
moving average of the weights after every gradient step instead of the last step's weights.  The
last steps jitter around a good point; their average sits nearer its middle.  Between epochs the
model holds the averaged weights (that is what validation, early stopping, the epoch callbacks and
a stopped run see); the gradient steps themselves continue from the raw weights.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import numpy as np

from .._util.checks import check_choice, check_int, check_number
from ..errors import TrainingDiverged
from ..nn.model import Sequential
from ..nn.optim import OPTIMIZERS, Optimizer, make_optimizer
from .split import SplitStep, can_split, default_threads


@dataclass(frozen=True)
class TrainConfig:
    """One training run's settings (JSON-serialisable).

    Parameters
    ----------
    epochs : passes over the training set.
    batch_size : examples per gradient step.
    optimizer : ``"adam"`` or ``"sgd"`` (with ``momentum``).
    lr : peak learning rate.
    schedule : ``"constant"``, ``"cosine"`` (decays to 0) or ``"onecycle"`` (warm up for the first
        ``warmup`` fraction of steps from lr/25 to lr, then cosine down to lr/10⁴).
    l2 : L2 penalty λ on weights (``λ/2 · ΣW²``).
    validation_fraction : fraction of the training data held out for validation when no
        validation set is given (0 = none).
    patience : stop after this many epochs without a better validation loss (None = never).
        The model ends with the best epoch's weights, whether training stopped early or ran all
        its epochs.  Needs validation data.
    label_smoothing : ε in ``[0, 1)``: train a softmax model towards ``(1-ε)·onehot + ε/K``
        instead of the one-hot labels (0 = off).  The training loss logged is the smoothed one
        (it cannot go below the entropy of that target: 0.50 for ε = 0.1 and 10 classes);
        validation and test losses stay the plain cross-entropy.
    ema : decay ``β`` in ``[0, 1)`` of an exponential moving average of the weights (0 = off).
        After every gradient step ``avg = β·avg + (1-β)·W``, started at 0 and bias-corrected as
        Adam's moments are (``avg / (1-βᵗ)`` after ``t`` steps), so it is a weighted average of
        every step's weights with weights ``∝ βᵗ⁻ⁱ``: roughly the last ``1/(1-β)`` steps
        (1,000 for 0.999).  The model ends with the averaged weights.  It holds them at the end of
        every epoch too: validation loss, ``patience`` (the best epoch restored is the best
        averaged epoch), ``on_epoch_end`` callbacks and an interrupted or stopped run all see the
        averaged model, while the next epoch's steps continue from the raw weights.  The training
        loss and accuracy logged are the raw weights' on their batches.
    """

    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    schedule: str = "constant"
    warmup: float = 0.3
    l2: float = 0.0
    validation_fraction: float = 0.0
    patience: int | None = None
    label_smoothing: float = 0.0
    ema: float = 0.0

    def __post_init__(self) -> None:
        # validation only: the fields keep the values given (a frozen dataclass)
        check_int("epochs", self.epochs, 1)
        check_int("batch_size", self.batch_size, 1)
        if self.patience is not None:
            check_int("patience", self.patience, 1)
        check_number("lr", self.lr, "a positive number", lambda v: v > 0)
        check_number("momentum", self.momentum, "in [0, 1)", lambda v: 0 <= v < 1)
        check_number("warmup", self.warmup, "in [0, 1)", lambda v: 0 <= v < 1)
        check_number("l2", self.l2, ">= 0", lambda v: v >= 0)
        check_number("validation_fraction", self.validation_fraction, "in [0, 1)",
                     lambda v: 0 <= v < 1)
        check_number("label_smoothing", self.label_smoothing, "in [0, 1)",
                     lambda v: 0 <= v < 1)
        check_number("ema", self.ema, "in [0, 1)", lambda v: 0 <= v < 1)
        check_choice("schedule", self.schedule, sorted(SCHEDULES))
        check_choice("optimizer", self.optimizer, sorted(OPTIMIZERS))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """The config :meth:`to_dict` gave; a key missing (a checkpoint saved before the field
        existed, e.g. ``label_smoothing`` or ``ema``) takes its default.  An unknown key raises."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown TrainConfig keys {unknown}; known: {sorted(known)}")
        return cls(**d)


def _constant(t: float, warmup: float) -> float:
    return 1.0


def _cosine(t: float, warmup: float) -> float:
    return 0.5 * (1.0 + math.cos(math.pi * t))


def _onecycle(t: float, warmup: float) -> float:
    lo, end = 1 / 25, 1e-4
    if t < warmup:
        return lo + (1 - lo) * 0.5 * (1 - math.cos(math.pi * t / warmup))
    u = (t - warmup) / max(1 - warmup, 1e-12)
    return end + (1 - end) * 0.5 * (1 + math.cos(math.pi * u))


SCHEDULES: dict[str, Callable[[float, float], float]] = {
    "constant": _constant, "cosine": _cosine, "onecycle": _onecycle}


def learning_rate(config: TrainConfig, step: int, total_steps: int) -> float:
    """The learning rate at ``step`` (0-based) of ``total_steps``."""
    t = step / max(total_steps, 1)
    return config.lr * SCHEDULES[config.schedule](t, config.warmup)


@dataclass
class History:
    """What happened during training, epoch by epoch and batch by batch (JSON-serialisable)."""

    config: dict[str, Any] = field(default_factory=dict)
    epochs: list[dict[str, float]] = field(default_factory=list)
    batches: list[dict[str, float]] = field(default_factory=list)
    stop_reason: str = "completed"  # completed | early_stopping | interrupted | callback | diverged
    best_epoch: int | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "History":
        return cls(**d)

    def last(self, key: str) -> float | None:
        return self.epochs[-1].get(key) if self.epochs else None

    def _repr_html_(self) -> str:
        from .history_html import history_html  # a notebook's view: loss/accuracy charts, table

        return history_html(self)


class Callback(Protocol):
    """Anything with these optional methods; returning True from either asks training to stop."""

    def on_batch_end(self, log: dict[str, float]) -> bool | None: ...
    def on_epoch_end(self, log: dict[str, float]) -> bool | None: ...


def accuracy_from_logits(model: Sequential, z: np.ndarray, y: np.ndarray) -> float:
    idx = model.class_index(y)
    pred = (z[:, 0] > 0).astype(np.int64) if z.shape[1] == 1 else z.argmax(axis=1)
    return float((pred == idx).mean())


def evaluate(model: Sequential, x: np.ndarray, y: np.ndarray, batch_size: int = 1000):
    """``(loss, accuracy)`` over a data set, in inference mode (no dropout, no L2 term)."""
    losses, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        z = model.forward(xb)  # (B, K) logits
        loss = model.loss_from_logits(z, yb)
        losses += loss * len(xb)
        correct += accuracy_from_logits(model, z, yb) * len(xb)
    n = max(len(x), 1)
    return losses / n, correct / n


def _call(callbacks, method: str, log: dict) -> bool:
    stop = False
    for cb in callbacks:
        fn = getattr(cb, method, None)
        if fn is not None and fn(log):
            stop = True
    return stop


def _snapshot(model: Sequential) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in model.params().items()}


class _WeightAverage:
    """The exponential moving average of ``TrainConfig.ema``: after every step
    ``avg = β·avg + (1-β)·W``, from ``avg = 0``; :meth:`averaged` is ``avg / (1-βᵗ)`` (the bias
    correction Adam applies to its moments: without it the first steps' average is pulled
    towards 0)."""

    def __init__(self, params: dict[str, np.ndarray], decay: float) -> None:
        self.decay, self.t = float(decay), 0
        self.avg = {k: np.zeros_like(v) for k, v in params.items()}

    def update(self, params: dict[str, np.ndarray]) -> None:
        self.t += 1
        b = self.decay
        for k, W in params.items():
            a = self.avg[k]
            a *= b
            a += np.multiply(W, 1.0 - b, dtype=a.dtype)

    def averaged(self) -> dict[str, np.ndarray]:
        c = 1.0 - self.decay ** self.t
        return {k: a / c for k, a in self.avg.items()}


def _check_data(model: Sequential, x, y, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Validate a data set once, up front, and convert the images to the model's dtype."""
    x, y = np.asarray(x), np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"{what} data: x has {len(x)} examples but y has {len(y)} labels")
    if len(x) == 0:
        raise ValueError(f"{what} data: no examples")
    x = model.as_input(x)  # checks shape and dtype; float64 input is converted once, not per batch
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{what} images contain NaN or inf")
    model.class_index(y)  # labels must be this model's classes
    return x, y


def _check_augmented(xb, n: int, shape: tuple[int, ...]) -> np.ndarray:
    xb = np.asarray(xb)
    if xb.shape != (n, *shape):
        raise ValueError(f"augment must return a batch of shape {(n, *shape)}, got {xb.shape}")
    if not np.all(np.isfinite(xb)):
        raise ValueError("augment returned images containing NaN or inf")
    return xb


def _two_part(augment) -> bool:
    """Whether ``augment`` can draw its random numbers apart from applying them
    (:meth:`~digitlens.training.augment.AugmentConfig.draw` / ``apply_drawn``), so that slices of
    a batch can be transformed on several threads with the numbers one thread drew."""
    return callable(getattr(augment, "draw", None)) and \
        callable(getattr(augment, "apply_drawn", None))


class _SliceAugment:
    """``prepare`` for :class:`~digitlens.training.split.SplitStep`: transforms a slice of the
    batch with that slice's draws, and checks the result like any augmentation's."""

    def __init__(self, augment, draws, x_shape) -> None:
        self.augment, self.draws, self.sample_shape = augment, draws, x_shape[1:]

    def __call__(self, xs: np.ndarray, rows: slice) -> np.ndarray:
        out = self.augment.apply_drawn(xs, self.draws[rows])
        return _check_augmented(out, len(xs), self.sample_shape)


def fit(model: Sequential, x: np.ndarray, y: np.ndarray, config: TrainConfig | None = None, *,
        rng: np.random.Generator, validation: tuple[np.ndarray, np.ndarray] | None = None,
        callbacks: list | tuple = (),
        augment: Callable[[np.ndarray, np.random.Generator], np.ndarray] | None = None,
        blas_threads: int | None = 1, threads: int | None = None) -> History:
    """Train ``model`` in place and return its :class:`History`.

    Parameters
    ----------
    model : the model to train (its parameters are updated in place).
    x : (N, *input_shape) float images; y : (N,) labels.
    config : :class:`TrainConfig` (defaults if None).
    rng : the only source of randomness (shuffling, dropout, augmentation, validation split).
    validation : optional ``(x_val, y_val)``; else ``config.validation_fraction`` of ``x`` is held
        out.
    callbacks : objects with ``on_batch_end(log)`` / ``on_epoch_end(log)``; a True return stops.
    augment : optional ``augment(x_batch, rng) -> x_batch`` applied to each training batch.
    blas_threads : BLAS threads while training (restored afterwards); None leaves BLAS alone.
        One is the default because mini-batch matrices are small: a second thread gains at most
        ~1.3x on an idle machine, but on a busy one the threads spin waiting for each other
        and an epoch can take 20x longer (measured: 61 s instead of 3.6 s for ``mlp``).
    threads : how many slices of a batch are computed at once (see
        :mod:`digitlens.training.split`).  A sliced batch is cut into slices of 32 images whose
        gradients are added up: the whole batch's gradient up to float32 rounding, and the same
        numbers, bit for bit, whatever the number of threads.  None (the default) is
        :func:`~digitlens.training.split.default_threads`: a model with convolutions is always
        sliced, on every core (up to 4), which is measured to pay
        (``benchmarks/bench_cnn.py``); a dense model takes each batch whole, on one thread, unless
        ``threads`` is 2 or more.

    Examples
    --------
    >>> import numpy as np
    >>> from digitlens import load_digits, build_model
    >>> d = load_digits()
    >>> m = build_model("logistic", np.random.default_rng(0))
    >>> h = fit(m, d.x_train, d.y_train, TrainConfig(epochs=1), rng=np.random.default_rng(0))
    >>> len(h.batches), h.stop_reason        # 4,000 digits in batches of 64
    (63, 'completed')
    >>> loss, accuracy = evaluate(m, d.x_test, d.y_test)
    >>> accuracy > 0.75                      # after one pass over the training digits
    True
    """
    config = config or TrainConfig()
    if threads is not None:
        check_int("threads", threads, 1)
    if blas_threads is None:
        return _fit(model, x, y, config, rng, validation, callbacks, augment, threads)
    check_int("blas_threads", blas_threads, 1)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=blas_threads, user_api="blas"):
        return _fit(model, x, y, config, rng, validation, callbacks, augment, threads)


def _step_for(model: Sequential, threads: int | None) -> SplitStep | None:
    """The sliced step :func:`fit` uses, or None for the whole batch at once (see ``threads``)."""
    if threads is None:
        threads = default_threads(model)
    sliced = threads > 1 or any(layer.type == "conv2d" for layer in model.layers)
    return SplitStep(model, threads) if sliced and can_split(model) else None


def _fit(model, x, y, config, rng, validation, callbacks, augment, threads) -> History:
    """The run: validated data, then epochs until done or stopped (see the module docstring)."""
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    x, y, validation = _training_data(model, x, y, config, rng, validation)
    run = _Run(model, config, rng, x, y, validation, list(callbacks), augment)
    run.split = _step_for(model, threads)
    try:
        for epoch in range(1, config.epochs + 1):
            if not run.epoch(epoch):
                break
        else:
            run.keep_the_best_epoch()
    except KeyboardInterrupt:
        model.set_params(run.good)
        run.history.stop_reason = "interrupted"
    finally:
        if run.split is not None:
            run.split.close()
    run.history.seconds = time.perf_counter() - run.t_start
    return run.history


def _training_data(model, x, y, config, rng, validation):
    """Check the data once, up front; hold out ``validation_fraction`` of it if asked (the split
    is the first draw from ``rng``).  Returns ``(x, y, validation or None)``."""
    x, y = _check_data(model, x, y, "training")
    if validation is not None:
        validation = _check_data(model, *validation, "validation")
    if config.patience is not None and validation is None and config.validation_fraction == 0:
        raise ValueError(f"patience={config.patience} needs validation data: pass "
                         "validation=(x, y) or set validation_fraction > 0")
    if validation is None and config.validation_fraction > 0:
        perm = rng.permutation(len(x))
        n_val = max(1, int(round(config.validation_fraction * len(x))))
        validation = (x[perm[:n_val]], y[perm[:n_val]])
        x, y = x[perm[n_val:]], y[perm[n_val:]]
    return x, y, validation


class _Run:
    """One call of :func:`fit`: the model, its optimizer, the history so far and the weights to
    fall back on.  :meth:`epoch` runs one pass over the data, :meth:`batch` one gradient step.

    ``rng`` is drawn from in a fixed order -- each epoch's shuffle, then per batch the
    augmentation and the dropout masks -- so the same seed gives the same model.
    """

    def __init__(self, model: Sequential, config: TrainConfig, rng: np.random.Generator,
                 x: np.ndarray, y: np.ndarray, validation, callbacks: list,
                 augment: Callable | None) -> None:
        self.model, self.config, self.rng = model, config, rng
        self.x, self.y, self.validation = x, y, validation
        self.callbacks, self.augment = callbacks, augment
        self.history = History(config=config.to_dict())
        self.opt: Optimizer = make_optimizer(config.optimizer, config.lr, config.momentum)
        self.params = model.params()  # live references: the optimizer updates them in place
        self.n, self.bs = len(x), int(config.batch_size)
        self.steps_per_epoch = math.ceil(self.n / self.bs)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.step = 0  # gradient steps taken, for the learning-rate schedule
        self.split: SplitStep | None = None  # set by _fit: slices of each batch, or None
        self.good = _snapshot(model)  # weights at the end of the last complete epoch
        self.best_loss, self.best_params, self.bad_epochs = math.inf, None, 0
        # weight averaging: the average, and the raw weights the next epoch continues from while
        # the model holds the averaged ones between epochs (None: off / not between epochs)
        self.ema = _WeightAverage(self.params, config.ema) if config.ema > 0 else None
        self.raw: dict[str, np.ndarray] | None = None
        self.t_start = time.perf_counter()

    def epoch(self, epoch: int) -> bool:
        """Train one epoch and log it; False when training should stop (a callback, early
        stopping)."""
        t0 = time.perf_counter()
        if self.raw is not None:  # the steps continue from the raw weights, not the average
            self.model.set_params(self.raw)
            self.raw = None
        perm = self.rng.permutation(self.n)
        sum_loss, sum_correct = 0.0, 0.0
        for b in range(self.steps_per_epoch):
            idx = perm[b * self.bs:(b + 1) * self.bs]
            loss, acc, stop = self.batch(epoch, b, idx)
            sum_loss += loss * len(idx)
            sum_correct += acc * len(idx)
            if stop:  # a callback asked mid-epoch: back to the last complete epoch
                self.model.set_params(self.good)
                self.history.stop_reason = "callback"
                return False
        self._check_weights(epoch)
        if self.ema is not None:  # between epochs the model is the averaged one
            self.raw = _snapshot(self.model)
            self.model.set_params(self.ema.averaged())
        log = {"epoch": epoch, "epochs": self.config.epochs, "loss": sum_loss / self.n,
               "accuracy": sum_correct / self.n, "lr": self.opt.lr,
               "seconds": time.perf_counter() - t0}
        if self.validation is not None:
            log["val_loss"], log["val_accuracy"] = evaluate(self.model, *self.validation)
        self.history.epochs.append(log)
        self.good = _snapshot(self.model)
        self._track_best(epoch, log)
        if _call(self.callbacks, "on_epoch_end", log):
            self.history.stop_reason = "callback"
            return False
        if self.config.patience is not None and self.validation is not None \
                and self.bad_epochs >= self.config.patience:
            self.model.set_params(self.best_params)
            self.history.stop_reason = "early_stopping"
            return False
        return True

    def batch(self, epoch: int, b: int, idx: np.ndarray) -> tuple[float, float, bool]:
        """One gradient step on the examples ``idx``; returns ``(loss, accuracy, stop)``."""
        xb, yb = np.take(self.x, idx, axis=0), self.y[idx]  # take: ~2x faster than x[idx] for 4-D x
        prepare = None
        if self.augment is not None and self.split is not None and _two_part(self.augment):
            # draw here, in batch order; each slice's thread transforms its own images
            prepare = _SliceAugment(self.augment, self.augment.draw(xb, self.rng), self.x.shape)
        elif self.augment is not None:
            xb = _check_augmented(self.augment(xb, self.rng), len(idx), self.x.shape[1:])
        self.opt.lr = learning_rate(self.config, self.step, self.total_steps)
        if self.split is not None:  # slices of the batch, on several threads
            loss, grads, z = self.split(xb, yb, l2=self.config.l2, training=True, rng=self.rng,
                                        prepare=prepare,
                                        label_smoothing=self.config.label_smoothing)
        else:
            loss, grads, z = self.model.loss_and_grads(
                xb, yb, l2=self.config.l2, training=True, rng=self.rng, return_logits=True,
                label_smoothing=self.config.label_smoothing)
        if not math.isfinite(loss):
            self._diverged(f"the loss became {loss} at epoch {epoch}, batch {b + 1} "
                           f"(learning rate {self.opt.lr:.3g})", epoch)
        self.opt.step(self.params, grads,  # the update shared by the slices' threads, if any
                      map=map if self.split is None else self.split.map)
        if self.ema is not None:
            self.ema.update(self.params)
        acc = accuracy_from_logits(self.model, z, yb)
        self.step += 1
        blog = {"epoch": epoch, "batch": b + 1, "batches": self.steps_per_epoch,
                "loss": loss, "accuracy": acc, "lr": self.opt.lr}
        self.history.batches.append(blog)
        return loss, acc, _call(self.callbacks, "on_batch_end", blog)

    def _check_weights(self, epoch: int) -> None:
        # a finite loss can still come with an infinite gradient on the epoch's last batch:
        # never keep non-finite weights as "good"
        bad = [k for k, v in self.params.items() if not np.all(np.isfinite(v))]
        if bad:
            self._diverged(f"parameter {bad[0]} became NaN or inf at the end of epoch {epoch} "
                           f"(learning rate {self.opt.lr:.3g})", epoch)

    def _diverged(self, what: str, epoch: int):
        """Restore the last complete epoch's weights and raise :class:`TrainingDiverged`."""
        self.model.set_params(self.good)
        self.history.stop_reason = "diverged"
        self.history.seconds = time.perf_counter() - self.t_start
        kept = "its initial weights" if epoch == 1 else f"the weights of epoch {epoch - 1}"
        raise TrainingDiverged(f"training diverged: {what}; the model keeps {kept}. "
                               "Try a smaller learning rate.", self.history)

    def _track_best(self, epoch: int, log: dict) -> None:
        """Remember the epoch with the lowest validation loss, and count epochs since."""
        if self.validation is None:
            return
        if log["val_loss"] < self.best_loss - 1e-12:
            self.best_loss, self.best_params, self.bad_epochs = log["val_loss"], self.good, 0
            self.history.best_epoch = epoch
        else:
            self.bad_epochs += 1

    def keep_the_best_epoch(self) -> None:
        """After all epochs ran: with ``patience``, a better epoch that came earlier wins (early
        stopping keeps the best)."""
        if self.config.patience is not None and self.best_params is not None \
                and self.history.best_epoch != len(self.history.epochs):
            self.model.set_params(self.best_params)
