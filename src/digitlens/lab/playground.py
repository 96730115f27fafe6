"""The activation playground: up to four networks trained side by side, slowly enough to watch.

A :class:`Playground` is a shared :class:`Budget` (the same digits, the same seed, so the same
initial-weight stream and the same mini-batches in the same order for every network) and one to
four :class:`PlayConfig` (activation per hidden layer, width, depth, output layer, optimizer,
learning rate, initialisation).  A :class:`Session` trains them at once, one thread per network,
each through :func:`digitlens.training.fit` (the one training loop), and measures every network
at :attr:`Budget.checks_per_epoch` evenly spaced checkpoints per epoch:

- loss and accuracy on the training digits and on the held-out test digits;
- the gradient size per Dense layer (root mean square of ``dL/dW`` on a fixed probe batch);
- the share of *dead* hidden units (slope 0 on every test digit: they can never learn again)
  and of *saturated* hidden values (slope below 1% of the activation's steepest; the lab's own
  definition, :data:`~digitlens.lab.specs.SATURATION_FRACTION`);
- the range of the first hidden layer's activations;
- a first-layer template: the 784 weights of one first-layer unit, as a 28x28 picture.

*Pace.* With ``pace > 0`` (the page's slow motion) every network waits at checkpoint ``k`` until
``k * pace`` seconds have passed since the start, so the curves grow together at a speed a
person can follow; ``pace = 0`` is full speed.  Waiting never changes a number.

*Cache.* A finished network is saved as JSON in the lab's run cache (the folder
:func:`digitlens.lab.runner.run_study` uses, through the same :func:`~digitlens.lab.runner.
load_cached` / :func:`~digitlens.lab.runner.save_cached`), keyed by its config, the budget and
the engine's code (:func:`~digitlens.lab.specs.code_fingerprint`).  A cached network is replayed
at the chosen pace instead of trained again.  A cancelled or unfinished network is never saved.

*Reproducibility.* A network's numbers depend only on its config and the budget; the clock
appears only under ``"seconds"``.

Numbers become sentences in :mod:`digitlens.lab.play_words`; the rule-of-thumb presets are in
:mod:`digitlens.lab.play_presets`.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .._util.checks import check_choice, check_int, check_number
from ..errors import LabError, TrainingDiverged
from ..nn import functional as F
from ..nn.layers import Activation, Dense, Flatten
from ..nn.model import Sequential
from .measure import dense_indices, hidden_activation_indices, lab_data, local_slopes, peak_slope
from .specs import HEADS, LAB_VERSION, N_CLASSES, SATURATION_FRACTION, _key

#: the output layers the playground offers (a subset of the lab's :data:`HEADS`)
PLAY_HEADS = ("softmax_ce", "sigmoid_bce", "relu_mse")
#: weight initialisations: "auto" = He before ReLU-like activations, Xavier otherwise
PLAY_INITS = ("auto", "he", "xavier")
MAX_CONFIGS = 4


@dataclass(frozen=True)
class PlayConfig:
    """One network of the playground: ``784 -> [width, activations[k]] for k in depth -> 10``.

    Parameters
    ----------
    activations : one activation per hidden layer (its length is the depth).
    width : units per hidden layer.
    head : output layer, one of :data:`PLAY_HEADS`.
    optimizer : ``"sgd"`` (with momentum 0.9) or ``"adam"``.
    lr : learning rate.
    init : one of :data:`PLAY_INITS`.
    """

    activations: tuple[str, ...] = ("relu",)
    width: int = 32
    head: str = "softmax_ce"
    optimizer: str = "sgd"
    lr: float = 0.05
    init: str = "auto"

    def __post_init__(self) -> None:
        if isinstance(self.activations, str) or not isinstance(self.activations, tuple):
            raise LabError(f"activations must be a tuple of names, got {self.activations!r}")
        check_int("depth", len(self.activations), 1, 8, error=LabError)
        for a in self.activations:
            check_choice("activation", a, sorted(F.ACTIVATIONS), error=LabError)
        check_int("width", self.width, 1, 512, error=LabError)
        check_choice("head", self.head, PLAY_HEADS, error=LabError)
        check_choice("optimizer", self.optimizer, ("sgd", "adam"), error=LabError)
        check_number("lr", self.lr, "in (0, 10]", lambda v: 0 < v <= 10, error=LabError)
        check_choice("init", self.init, PLAY_INITS, error=LabError)

    @classmethod
    def make(cls, activation: str | Sequence[str] = "relu", *, depth: int | None = None,
             **fields) -> "PlayConfig":
        """One activation for every hidden layer (``depth`` of them), or a list, one per layer."""
        acts = (activation,) if isinstance(activation, str) else tuple(activation)
        if depth is not None:
            depth = check_int("depth", depth, 1, 8, error=LabError)
            if len(acts) == 1:
                acts = acts * depth
            elif len(acts) != depth:
                raise LabError(f"give one activation or one per hidden layer ({depth}), got "
                               f"{len(acts)}")
        return cls(activations=acts, **fields)

    @property
    def depth(self) -> int:
        return len(self.activations)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["activations"] = list(self.activations)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PlayConfig":
        d = dict(d)
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise LabError(f"unknown config field(s): {sorted(unknown)}")
        d["activations"] = tuple(d.get("activations", ("relu",)))
        return cls(**d)

    def activation_label(self) -> str:
        names = sorted(set(self.activations), key=self.activations.index)
        return names[0] if len(names) == 1 else "-".join(self.activations)


@dataclass(frozen=True)
class Budget:
    """What every network of a playground shares: the digits, the seed, the epochs."""

    n_train: int = 2000
    n_test: int = 500
    epochs: int = 6
    batch_size: int = 64
    seed: int = 0
    checks_per_epoch: int = 4
    momentum: float = 0.9
    target_accuracy: float = 0.9
    probe_size: int = 256
    template_unit: int = 0

    def __post_init__(self) -> None:
        check_int("n_train", self.n_train, N_CLASSES, 4000, error=LabError)
        check_int("n_test", self.n_test, N_CLASSES, 1000, error=LabError)
        check_int("epochs", self.epochs, 1, 50, error=LabError)
        check_int("batch_size", self.batch_size, 1, 4000, error=LabError)
        check_int("seed", self.seed, 0, 2**31 - 1, error=LabError)
        check_int("checks_per_epoch", self.checks_per_epoch, 1, 20, error=LabError)
        check_number("momentum", self.momentum, "in [0, 1)", lambda v: 0 <= v < 1, error=LabError)
        check_number("target_accuracy", self.target_accuracy, "in (0, 1]",
                     lambda v: 0 < v <= 1, error=LabError)
        check_int("probe_size", self.probe_size, 1, 4000, error=LabError)
        check_int("template_unit", self.template_unit, 0, error=LabError)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Budget":
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise LabError(f"unknown budget field(s): {sorted(unknown)}")
        return cls(**d)


@dataclass(frozen=True)
class Playground:
    """One to :data:`MAX_CONFIGS` networks and the budget they share."""

    configs: tuple[PlayConfig, ...]
    budget: Budget = Budget()
    preset: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.configs, tuple) or not 1 <= len(self.configs) <= MAX_CONFIGS:
            raise LabError(f"a playground compares 1 to {MAX_CONFIGS} networks, got "
                           f"{len(self.configs) if isinstance(self.configs, tuple) else '?'}")
        if self.budget.template_unit >= min(c.width for c in self.configs):
            raise LabError("template_unit must be below every network's width")

    def key(self, i: int) -> str:
        """Network ``i``'s cache key (shared folder with the lab's runs)."""
        return _key("play", {"config": self.configs[i].to_dict(), "budget": self.budget.to_dict()})

    def to_dict(self) -> dict[str, Any]:
        return {"configs": [c.to_dict() for c in self.configs], "budget": self.budget.to_dict(),
                "preset": self.preset}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Playground":
        return cls(tuple(PlayConfig.from_dict(c) for c in d["configs"]),
                   Budget.from_dict(d.get("budget", {})), d.get("preset"))


# ------------------------------------------------------------------------------- the network


def build_play_model(config: PlayConfig, seed: int) -> Sequential:
    """``Flatten -> [Dense(width, init), Activation(a)] for a in activations -> Dense(10)
    [-> head activation]``, weights from ``default_rng([seed, 0])`` (as the lab's runs)."""
    layers: list = [Flatten()]
    for a in config.activations:
        layers += [Dense(config.width, init=config.init), Activation(a)]
    layers.append(Dense(N_CLASSES, init=config.init))
    title, head_act, loss = HEADS[config.head]
    if head_act is not None:
        layers.append(Activation(head_act))
    return Sequential(layers, loss=loss, name="playground",
                      description=f"{config.depth} x {config.width} "
                                  f"{config.activation_label()}, {title}",
                      rng=np.random.default_rng([seed, 0]))


def _r(v: float, digits: int = 5) -> float | None:
    """A finite float rounded to ``digits`` significant digits (None for NaN or inf)."""
    v = float(v)
    return float(f"{v:.{digits}g}") if math.isfinite(v) else None


def measure(model: Sequential, data, budget: Budget) -> tuple[dict[str, Any], list[float]]:
    """One checkpoint's numbers (see the module docstring) and the template unit's weights.

    ``data`` is ``(x_train, y_train, x_test, y_test)``.  Returns ``(row, template)``: the row is
    JSON-able; the template is 784 floats (the first Dense layer's column ``template_unit``).
    """
    from ..training.fit import evaluate

    x_tr, y_tr, x_te, y_te = data
    train_loss, train_acc = evaluate(model, x_tr, y_tr)
    trace = model.forward(x_te, trace=True)
    test_loss = model.loss_from_logits(trace.logits, y_te)
    pred = trace.output.argmax(axis=1)
    test_acc = float((pred == model.class_index(y_te)).mean())
    n_units = n_dead = n_sat = n_off = n_vals = 0
    act_range = None
    for i in hidden_activation_indices(model):
        layer = model.layers[i]
        slope = np.abs(local_slopes(layer, trace.layers[i].input))  # (N_test, width)
        n_units += slope.shape[1]
        n_dead += int(np.all(slope == 0, axis=0).sum())
        # saturated: a slope above 0 but almost flat (sigmoid's and tanh's tails); a slope of
        # exactly 0 (ReLU below zero) is "off", counted apart
        n_sat += int(((slope > 0) & (slope < SATURATION_FRACTION * peak_slope(layer.fn))).sum())
        n_off += int((slope == 0).sum())
        n_vals += slope.size
        if act_range is None:
            a = trace.layers[i].output
            act_range = [_r(a.min(), 4), _r(a.max(), 4)]
    probe = slice(0, min(budget.probe_size, len(x_tr)))
    _, grads = model.loss_and_grads(x_tr[probe], y_tr[probe], training=False)
    rms = [_r(np.linalg.norm(grads[f"{i}.W"]) / math.sqrt(grads[f"{i}.W"].size), 4)
           for i in dense_indices(model)]
    W = model.layers[dense_indices(model)[0]].params["W"]  # (784, width)
    template = [_r(v, 3) for v in W[:, budget.template_unit]]
    row = {"train_loss": _r(train_loss), "train_accuracy": _r(train_acc),
           "test_loss": _r(test_loss), "test_accuracy": _r(test_acc),
           "grad_rms": rms, "dead_units": n_dead, "units": n_units,
           "dead_fraction": _r(n_dead / n_units), "saturated_fraction": _r(n_sat / n_vals),
           "off_fraction": _r(n_off / n_vals),
           "activation_range": act_range}
    return row, template


# ----------------------------------------------------------------------------------- a lane


class Lane:
    """One network of a running :class:`Session`: its rows so far and its state.

    ``state``: ``waiting`` | ``running`` | ``replaying`` (from the cache) | ``completed`` |
    ``diverged`` | ``cancelled`` | ``failed``.
    """

    def __init__(self, index: int, config: PlayConfig, key: str) -> None:
        self.index, self.config, self.key = index, config, key
        self.state = "waiting"
        self.cached = False
        self.rows: list[dict[str, Any]] = []
        self.templates: list[list[float]] = []
        self.layers: list[str] = []
        self.message = ""
        self.seconds: float | None = None

    def result(self, budget: Budget) -> dict[str, Any]:
        """The finished network as the cache stores it."""
        return {"kind": "play", "key": self.key, "lab_version": LAB_VERSION,
                "config": self.config.to_dict(), "budget": budget.to_dict(),
                "state": self.state, "message": self.message, "layers": self.layers,
                "rows": self.rows, "templates": self.templates,
                "seconds": self.seconds}

    def snapshot(self, upto: int | None = None) -> dict[str, Any]:
        """JSON for the page: rows so far and only the latest template."""
        n = len(self.rows) if upto is None else min(upto, len(self.rows))
        return {"index": self.index, "key": self.key, "config": self.config.to_dict(),
                "state": self.state, "cached": self.cached, "message": self.message,
                "layers": self.layers, "rows": self.rows[:n],
                "template": self.templates[n - 1] if n else None}


class _Checkpoints:
    """The ``fit`` callback of one lane: measures at evenly spaced steps, then waits its turn."""

    def __init__(self, session: "Session", lane: Lane, model: Sequential, data) -> None:
        self.session, self.lane, self.model, self.data = session, lane, model, data
        b = session.playground.budget
        self.steps_per_epoch = math.ceil(b.n_train / b.batch_size)
        self.at = {int(round((e * b.checks_per_epoch + k) * self.steps_per_epoch
                             / b.checks_per_epoch))
                   for e in range(b.epochs) for k in range(1, b.checks_per_epoch + 1)}
        self.step = 0

    def check(self) -> bool:
        row, template = measure(self.model, self.data, self.session.playground.budget)
        row["epoch"] = round(self.step / self.steps_per_epoch, 4)
        with self.session.lock:
            self.lane.rows.append(row)
            self.lane.templates.append(template)
        self.session._notify(self.lane, row)
        return self.session._wait_turn(len(self.lane.rows) - 1)

    def on_batch_end(self, log) -> bool:
        self.step += 1
        if self.step in self.at:
            return self.check()
        return self.session.cancelled

    def on_epoch_end(self, log) -> bool:
        return self.session.cancelled


# -------------------------------------------------------------------------------- a session


class Session:
    """Train (or replay from the cache) every network of ``playground`` side by side.

    Parameters
    ----------
    playground : what to train.
    cache_dir : the lab's run cache (None: no cache).
    pace : seconds between checkpoints (0 = full speed).
    on_row : called as ``on_row(lane, row)`` after each checkpoint (from the lanes' threads).

    Examples
    --------
    >>> pg = Playground((PlayConfig.make("relu", depth=3), PlayConfig.make("sigmoid", depth=3)))
    >>> s = Session(pg)                 # doctest: +SKIP
    >>> s.run().snapshot()["summary"]["sentence"]   # doctest: +SKIP
    "ReLU reached 90% test accuracy after 2.75 epochs and sigmoid (best 81%) never did ..."
    """

    def __init__(self, playground: Playground, *, cache_dir=None, pace: float = 0.0,
                 on_row: Callable[[Lane, dict], Any] | None = None) -> None:
        self.playground = playground
        self.cache_dir = cache_dir
        self.pace = check_number("pace", pace, "in [0, 10]", lambda v: 0 <= v <= 10,
                                 error=LabError)
        self.on_row = on_row
        self.lock = threading.Lock()
        self._cancel = threading.Event()
        self.lanes = [Lane(i, c, playground.key(i)) for i, c in enumerate(playground.configs)]
        self.t0: float | None = None
        self.state = "ready"  # ready | running | completed | cancelled

    # ------------------------------------------------------------------------- control
    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        """Stop every network at its next mini-batch (or checkpoint); nothing unfinished is
        cached."""
        self._cancel.set()

    def _notify(self, lane: Lane, row: dict) -> None:
        if self.on_row is not None:
            self.on_row(lane, row)

    def _wait_turn(self, k: int) -> bool:
        """Wait until checkpoint ``k``'s time in slow motion; True if cancelled meanwhile."""
        if self.pace > 0 and self.t0 is not None:
            delay = self.t0 + (k + 1) * self.pace - time.perf_counter()
            if delay > 0:
                self._cancel.wait(delay)
        return self.cancelled

    def run(self) -> "Session":
        """Train every network (threads, one per network) and wait for them; returns self."""
        from threadpoolctl import threadpool_limits

        from .runner import load_cached

        self.state = "running"
        self.t0 = time.perf_counter()
        data = lab_data(self.playground.budget.n_train, self.playground.budget.n_test)
        threads = []
        # BLAS on one thread per network: the networks already run side by side
        with threadpool_limits(limits=1, user_api="blas"):
            for lane in self.lanes:
                hit = load_cached(self.cache_dir, lane.key)
                target = self._replay if hit is not None else self._train
                args = (lane, hit) if hit is not None else (lane, data)
                t = threading.Thread(target=target, args=args, daemon=True,
                                     name=f"digitlens-play-{lane.index}")
                threads.append(t)
                t.start()
            for t in threads:
                t.join()
        self.state = "cancelled" if self.cancelled else "completed"
        return self

    def _train(self, lane: Lane, data) -> None:
        from ..training.fit import TrainConfig, fit
        from .runner import save_cached

        b, c = self.playground.budget, lane.config
        t = time.perf_counter()
        try:
            lane.state = "running"
            model = build_play_model(c, b.seed)
            lane.layers = [f"dense {k + 1}" for k in range(len(dense_indices(model)))]
            cb = _Checkpoints(self, lane, model, data)
            cb.check()  # before the first step: the untrained network
            config = TrainConfig(epochs=b.epochs, batch_size=b.batch_size,
                                 optimizer=c.optimizer, lr=c.lr, momentum=b.momentum)
            try:
                history = fit(model, data[0], data[1], config,
                              rng=np.random.default_rng([b.seed, 1]), callbacks=[cb],
                              blas_threads=None)
                stop = history.stop_reason
            except TrainingDiverged as e:
                stop, lane.message = "diverged", str(e)
            if self.cancelled or stop == "callback":
                lane.state = "cancelled"
                return
            lane.state = "diverged" if stop == "diverged" else "completed"
            lane.seconds = time.perf_counter() - t
            if self.cache_dir is not None:
                save_cached(self.cache_dir, lane.result(b))
        except Exception as e:  # noqa: BLE001 - a lane reports its failure, never raises in a thread
            lane.state, lane.message = "failed", f"{type(e).__name__}: {e}"

    def _replay(self, lane: Lane, hit: dict[str, Any]) -> None:
        """Show a cached network's checkpoints at the session's pace."""
        lane.state, lane.cached, lane.layers = "replaying", True, hit["layers"]
        lane.message = hit.get("message", "")
        for k, (row, template) in enumerate(zip(hit["rows"], hit["templates"])):
            with self.lock:
                lane.rows.append(row)
                lane.templates.append(template)
            self._notify(lane, row)
            if self._wait_turn(k):
                lane.state = "cancelled"
                return
        lane.state, lane.seconds = hit["state"], hit.get("seconds")

    # --------------------------------------------------------------------------- results
    def snapshot(self) -> dict[str, Any]:
        """The session as JSON: the playground, each lane's rows so far, and, once every lane
        has finished, the sentence (:func:`digitlens.lab.play_words.summary`)."""
        from .play_words import labels, summary

        with self.lock:
            lanes = [lane.snapshot() for lane in self.lanes]
        done = self.state in ("completed", "cancelled") and all(
            lane["state"] in ("completed", "diverged") for lane in lanes)
        return {"playground": self.playground.to_dict(), "state": self.state,
                "pace": self.pace, "lanes": lanes,
                "labels": labels([c.to_dict() for c in self.playground.configs]),
                "summary": summary(self.playground, lanes) if done else None}


__all__ = ["Budget", "Lane", "MAX_CONFIGS", "PLAY_HEADS", "PLAY_INITS", "PlayConfig",
           "Playground", "Session", "build_play_model", "measure"]
