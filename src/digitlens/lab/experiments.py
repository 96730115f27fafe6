"""The activation lab: turn rules of thumb about activation functions into measured facts.

A *study* is a list of training runs that differ in one thing at a time — the hidden activation,
the width, the depth, the output layer — on the same digits, with the same seeds and budget.
Every run is described by a frozen :class:`RunSpec`; running it (:func:`run_one`) trains a small
multi-layer perceptron with the engine (:mod:`digitlens.nn`, :func:`digitlens.training.fit`) and
measures:

- test accuracy over training (the learning curve), and epochs and seconds to a target accuracy;
- wall time per epoch, and the part of it spent inside the hidden activation's forward and
  backward (the activation layers are timed in place);
- dead units: hidden units whose activation passes no gradient for *any* test digit (for ReLU,
  ``z <= 0`` on every digit) — they can never learn again; also how often a unit outputs exactly 0
  and how often it is *saturated* (its slope below 1% of the activation's steepest slope);
- per-layer gradient norms ``||dL/dW||`` on a fixed probe batch, from initialisation to the end;
- histograms and quantiles of every hidden layer's activations on the test digits;
- for the output-layer study: dead output units over training (do they recover?), digits with
  tied top scores (an all-zero ReLU output row has no answer), whether the scores are
  probabilities, and the scores on a few example digits.

:func:`run_study` runs a :class:`Study` in parallel worker processes (``ProcessPoolExecutor``),
caches each finished run as JSON in a folder the caller gives (written atomically, so an
interrupted study resumes where it stopped), reports progress through a callback and returns a
:class:`StudyResult` — JSON-serialisable, with tidy tables and an HTML view for notebooks.
Workers are started with ``spawn`` (clean interpreters, safe with BLAS threads): in a script,
call :func:`run_study` under ``if __name__ == "__main__":``, as Python requires for any
process pool; notebooks and the ``digitlens lab`` command need nothing.

Reproducibility: a run's numbers depend only on its spec (seeded generators, BLAS limited to one
thread per run); only wall-clock timings (kept under ``"timing"`` and in the micro-benchmark)
change between repetitions.  :func:`strip_timings` removes them for comparisons.

Verdicts on the rules of thumb and the Markdown report live in :mod:`digitlens.lab.report`;
figures in :mod:`digitlens.view.lab_figures`.

Example
-------
>>> from digitlens import experiments as ex
>>> study = ex.activation_study("quick", seeds=1)          # doctest: +SKIP
>>> result = ex.run_study(study, cache_dir="lab-cache")    # doctest: +SKIP
>>> result.table("width")[:2]                              # doctest: +SKIP
"""

from __future__ import annotations

from ..errors import LabError  # noqa: F401  (re-exported)
import dataclasses
import hashlib
import html
import json
import math
import multiprocessing
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from ..nn import functional as F
from ..nn.layers import Activation, Dense, Flatten
from ..nn.model import Sequential
from ..training.fit import TrainConfig, TrainingDiverged, fit

#: Bump when what a run measures (or how) changes: cached runs of another version are recomputed.
LAB_VERSION = 1

#: The activations the rules of thumb talk about.
CORE_ACTIVATIONS = ("relu", "leaky_relu", "sigmoid", "tanh")

#: Output layers compared by the output study: name -> (title, activation after the last Dense
#: layer or None, the model's loss — which also chooses the output function).
HEADS: dict[str, tuple[str, str | None, str]] = {
    "softmax_ce": ("softmax + cross-entropy", None, "softmax_cross_entropy"),
    "sigmoid_bce": ("sigmoid + binary cross-entropy", None, "sigmoid_binary_cross_entropy"),
    "linear_mse": ("linear + mean squared error", None, "mean_squared_error"),
    "relu_mse": ("ReLU output + mean squared error", "relu", "mean_squared_error"),
    "relu_ce": ("ReLU output + softmax cross-entropy", "relu", "softmax_cross_entropy"),
}

#: Bounded activations: the range they are said to map into, used to count outputs sitting near
#: either end ("logical levels").
BOUNDED_RANGE = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}

#: A unit is *saturated* on a digit when its slope g'(z) is below this fraction of the steepest
#: slope the activation has anywhere (1 for ReLU and tanh, 1/4 for sigmoid).
SATURATION_FRACTION = 0.01

N_CLASSES = 10


# ----------------------------------------------------------------------------------- validation


def _check_int(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo \
            or (hi is not None and value > hi):
        rule = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise LabError(f"{name} must be a whole number {rule}, got {value!r}")
    return int(value)


def _check_float(name: str, value: Any, ok: Callable[[float], bool], rule: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or not ok(float(value)):
        raise LabError(f"{name} must be {rule}, got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------------- run specs


@dataclass(frozen=True)
class RunSpec:
    """One training run of the lab, fully determined by these fields (and :data:`LAB_VERSION`).

    The network is ``784 -> [width, activation] x depth -> 10 -> head``.

    Parameters
    ----------
    activation : hidden activation, one of :data:`digitlens.nn.functional.ACTIVATIONS`.
    width, depth : units per hidden layer and number of hidden layers.
    head : output layer, one of :data:`HEADS`.
    seed : seeds the initial weights and the shuffling (two separate streams).
    epochs, batch_size, optimizer, lr, momentum : the training budget (:class:`TrainConfig`).
    n_train, n_test : how many of the bundled training / test digits to use (class-balanced).
    target_accuracy : "reached" once the test accuracy is at least this.
    evals_per_epoch : test-set evaluations per epoch (the learning curve's resolution).
    probe_size : training digits in the fixed batch used to measure gradient norms.
    hist_bins : bins of the hidden-activation histograms.
    n_examples : scores kept for the first ``n_examples`` test digits (for example digits).
    hidden_bias, output_bias : initial bias of the hidden / output Dense layers (0 is the
        engine's default; a large negative value constructs dead units on purpose).
    """

    activation: str = "relu"
    width: int = 64
    depth: int = 1
    head: str = "softmax_ce"
    seed: int = 0
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    n_train: int = 4000
    n_test: int = 1000
    target_accuracy: float = 0.9
    evals_per_epoch: int = 4
    probe_size: int = 256
    hist_bins: int = 40
    n_examples: int = 0
    hidden_bias: float = 0.0
    output_bias: float = 0.0

    def __post_init__(self) -> None:
        if self.activation not in F.ACTIVATIONS:
            raise LabError(f"activation must be one of {sorted(F.ACTIVATIONS)}, "
                           f"got {self.activation!r}")
        if self.head not in HEADS:
            raise LabError(f"head must be one of {list(HEADS)}, got {self.head!r}")
        if self.optimizer not in ("sgd", "adam"):
            raise LabError(f"optimizer must be 'sgd' or 'adam', got {self.optimizer!r}")
        _check_int("width", self.width, 1, 4096)
        _check_int("depth", self.depth, 1, 16)
        _check_int("seed", self.seed, 0)
        _check_int("epochs", self.epochs, 1, 1000)
        _check_int("batch_size", self.batch_size, 1)
        _check_int("n_train", self.n_train, N_CLASSES, 4000)
        _check_int("n_test", self.n_test, N_CLASSES, 1000)
        _check_int("evals_per_epoch", self.evals_per_epoch, 1, 100)
        _check_int("probe_size", self.probe_size, 1)
        _check_int("hist_bins", self.hist_bins, 2, 1000)
        _check_int("n_examples", self.n_examples, 0, self.n_test)
        _check_float("lr", self.lr, lambda v: v > 0, "a positive number")
        _check_float("momentum", self.momentum, lambda v: 0 <= v < 1, "in [0, 1)")
        _check_float("target_accuracy", self.target_accuracy, lambda v: 0 < v <= 1, "in (0, 1]")
        _check_float("hidden_bias", self.hidden_bias, lambda v: True, "a finite number")
        _check_float("output_bias", self.output_bias, lambda v: True, "a finite number")

    kind = "train"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "RunSpec":
        return cls(**d)

    def key(self) -> str:
        """A short stable hash of the spec and :data:`LAB_VERSION`: the run's cache file name."""
        return _key("train", self.to_dict())

    def label(self) -> str:
        parts = [self.activation, f"w{self.width}", f"d{self.depth}"]
        if self.head != "softmax_ce":
            parts.append(self.head)
        if self.optimizer != "sgd":
            parts.append(self.optimizer)
        parts.append(f"seed {self.seed}")
        return " ".join(parts)

    def cost(self) -> float:
        """Rough relative cost, to start the longest runs first."""
        return self.epochs * self.n_train * (784 * self.width + (self.depth - 1) * self.width**2)


@dataclass(frozen=True)
class BenchSpec:
    """A micro-benchmark of each activation's forward and backward on ``(batch, width)`` arrays.

    Activations are measured in turn, round after round (the order rotates each round), and the
    fastest round is kept, so a burst of load on a shared machine hits every activation alike.
    """

    activations: tuple[str, ...] = CORE_ACTIVATIONS
    shapes: tuple[tuple[int, int], ...] = ((64, 64),)
    rounds: int = 5
    seconds_per_measure: float = 0.004
    seed: int = 0
    #: also time whole training steps (forward, backward, SGD update) of a network with
    #: ``step_depth`` hidden layers of ``step_width`` units on ``step_batch`` real digits
    #: (0 = skip)
    step_depth: int = 0
    step_width: int = 64
    step_batch: int = 64

    def __post_init__(self) -> None:
        for a in self.activations:
            if a not in F.ACTIVATIONS:
                raise LabError(f"bench activation must be one of {sorted(F.ACTIVATIONS)}, "
                               f"got {a!r}")
        for s in self.shapes:
            if len(s) != 2:
                raise LabError(f"bench shapes must be (batch, width) pairs, got {s!r}")
            _check_int("bench batch", s[0], 1)
            _check_int("bench width", s[1], 1)
        _check_int("rounds", self.rounds, 1, 1000)
        _check_float("seconds_per_measure", self.seconds_per_measure, lambda v: 0 < v <= 1,
                     "in (0, 1]")
        _check_int("step_depth", self.step_depth, 0, 16)
        _check_int("step_width", self.step_width, 1, 4096)
        _check_int("step_batch", self.step_batch, 1, 4000)

    kind = "bench"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["activations"] = list(self.activations)
        d["shapes"] = [list(s) for s in self.shapes]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BenchSpec":
        d = dict(d)
        d["activations"] = tuple(d["activations"])
        d["shapes"] = tuple(tuple(int(v) for v in s) for s in d["shapes"])
        return cls(**d)

    def key(self) -> str:
        return _key("bench", self.to_dict())

    def label(self) -> str:
        return "micro-benchmark of activations"

    def cost(self) -> float:
        return math.inf  # start it first: it is short and measures best on a quiet machine


#: the engine modules whose code decides a run's numbers; their source is part of every cache
#: key (this module's own changes are tracked by :data:`LAB_VERSION`)
_FINGERPRINTED = ("digitlens.nn.functional", "digitlens.nn.layers", "digitlens.nn.model",
                  "digitlens.nn.optim", "digitlens.training.fit")


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of the engine's source code, so a cached run is never reused after the code that
    computed it changed (an installed package without sources falls back to its version)."""
    import importlib

    h = hashlib.sha256()
    for name in _FINGERPRINTED:
        mod = importlib.import_module(name)
        try:
            h.update(Path(mod.__file__).read_bytes())
        except (OSError, TypeError):
            from .. import __version__

            h.update(f"{name}:{__version__}".encode())
    return h.hexdigest()[:16]


def _key(kind: str, d: dict[str, Any]) -> str:
    blob = json.dumps({"kind": kind, "lab_version": LAB_VERSION, "code": code_fingerprint(),
                       "spec": d}, sort_keys=True)
    return f"{kind}-{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


# -------------------------------------------------------------------------------------- presets


@dataclass(frozen=True)
class Preset:
    """The budget and the grid of a study (``"quick"`` and ``"full"`` are in :data:`PRESETS`)."""

    name: str
    n_train: int
    n_test: int
    epochs: int
    seeds: int
    widths: tuple[int, ...]
    depths: tuple[int, ...]
    depth_width: int
    main_width: int
    main_depth: int
    target_accuracy: float
    activations: tuple[str, ...] = CORE_ACTIVATIONS
    extra_activations: tuple[str, ...] = ("elu", "gelu")
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    batch_size: int = 64
    evals_per_epoch: int = 4
    # the depth study is repeated with this optimizer, which rescales each weight's step
    compare_optimizer: str | None = "adam"
    compare_lr: float = 1e-3
    compare_activations: tuple[str, ...] = ("relu", "sigmoid", "tanh")
    output_width: int = 64
    heads: tuple[str, ...] = tuple(HEADS)
    n_examples: int = 100
    bench_rounds: int = 5
    bench_seconds: float = 0.004

    def __post_init__(self) -> None:
        _check_int("seeds", self.seeds, 1, 100)
        for w in self.widths + (self.depth_width, self.main_width, self.output_width):
            _check_int("width", w, 1, 4096)
        for d in self.depths + (self.main_depth,):
            _check_int("depth", d, 1, 16)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Preset":
        d = dict(d)
        for k in ("widths", "depths", "activations", "extra_activations", "compare_activations",
                  "heads"):
            d[k] = tuple(d[k])
        return cls(**d)

    def run(self, **fields) -> RunSpec:
        base = dict(n_train=self.n_train, n_test=self.n_test, epochs=self.epochs,
                    optimizer=self.optimizer, lr=self.lr, momentum=self.momentum,
                    batch_size=self.batch_size, evals_per_epoch=self.evals_per_epoch,
                    target_accuracy=self.target_accuracy)
        base.update(fields)
        return RunSpec(**base)


PRESETS: dict[str, Preset] = {
    # < 1 minute on 2 cores: a quarter of the digits, 4 epochs, 4 seeds (fewer seeds leave the
    # statistical tests blind to all but huge differences)
    "quick": Preset(name="quick", n_train=1000, n_test=500, epochs=4, seeds=4,
                    widths=(4, 8, 16, 32, 64, 128), depths=(1, 2, 3, 4), depth_width=64,
                    main_width=64, main_depth=2, target_accuracy=0.85, evals_per_epoch=2,
                    bench_rounds=7, bench_seconds=0.002),
    # < 10 minutes on 2 cores: all 4,000 training and 1,000 test digits, 15 epochs, 5 seeds
    "full": Preset(name="full", n_train=4000, n_test=1000, epochs=15, seeds=5,
                   widths=(4, 8, 16, 32, 64, 128), depths=(1, 2, 3, 4), depth_width=64,
                   main_width=64, main_depth=2, target_accuracy=0.92, evals_per_epoch=2,
                   bench_rounds=15,
                   compare_activations=CORE_ACTIVATIONS),
}


def get_preset(preset: str | Preset, **overrides) -> Preset:
    """A preset by name (``"quick"``, ``"full"``) or as given, with fields replaced."""
    if isinstance(preset, str):
        if preset not in PRESETS:
            raise LabError(f"preset must be one of {list(PRESETS)}, got {preset!r}")
        preset = PRESETS[preset]
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(preset, **overrides) if overrides else preset


# --------------------------------------------------------------------------------------- studies


@dataclass(frozen=True)
class Study:
    """Named groups ("parts") of runs; a run shared by two parts (same spec) is computed once."""

    name: str
    preset: Preset
    parts: dict[str, tuple[RunSpec, ...]]
    bench: BenchSpec | None = None

    def specs(self) -> list[RunSpec]:
        """Every distinct run, in a stable order."""
        seen: dict[str, RunSpec] = {}
        for runs in self.parts.values():
            for r in runs:
                seen.setdefault(r.key(), r)
        return list(seen.values())

    def __add__(self, other: "Study") -> "Study":
        if self.preset != other.preset:
            raise LabError("cannot combine studies made with different presets")
        parts = dict(self.parts)
        parts.update(other.parts)
        return Study(f"{self.name}+{other.name}", self.preset, parts, self.bench or other.bench)

    def __len__(self) -> int:
        return len(self.specs()) + (self.bench is not None)


def activation_study(preset: str | Preset = "quick", *, seeds: int | None = None) -> Study:
    """Hidden activations compared: a main comparison, a width study and a depth study.

    Parts
    -----
    ``main``  : every activation (core + extra) at ``main_width`` x ``main_depth``.
    ``width`` : core activations, one hidden layer of each width in ``preset.widths``.
    ``depth`` : core activations, ``depth_width`` units, each depth in ``preset.depths``.
    ``depth_compare`` : the depth study for ``compare_activations`` with ``compare_optimizer``.
    """
    p = get_preset(preset, seeds=seeds)
    s = range(p.seeds)
    parts = {
        "main": tuple(p.run(activation=a, width=p.main_width, depth=p.main_depth, seed=k)
                      for a in p.activations + p.extra_activations for k in s),
        "width": tuple(p.run(activation=a, width=w, depth=1, seed=k)
                       for a in p.activations for w in p.widths for k in s),
        "depth": tuple(p.run(activation=a, width=p.depth_width, depth=d, seed=k)
                       for a in p.activations for d in p.depths for k in s),
    }
    if p.compare_optimizer:
        parts["depth_compare"] = tuple(
            p.run(activation=a, width=p.depth_width, depth=d, seed=k,
                  optimizer=p.compare_optimizer, lr=p.compare_lr)
            for a in p.compare_activations for d in p.depths for k in s)
    widths = sorted({p.main_width, *p.widths})
    bench = BenchSpec(activations=p.activations + p.extra_activations,
                      shapes=tuple((p.batch_size, w) for w in widths),
                      rounds=p.bench_rounds, seconds_per_measure=p.bench_seconds,
                      step_depth=p.main_depth, step_width=p.main_width, step_batch=p.batch_size)
    return Study("activations", p, parts, bench)


def output_study(preset: str | Preset = "quick", *, seeds: int | None = None) -> Study:
    """Output layers compared (:data:`HEADS`) on one ReLU hidden layer of ``output_width``."""
    p = get_preset(preset, seeds=seeds)
    runs = tuple(p.run(activation="relu", width=p.output_width, depth=1, head=h, seed=k,
                       n_examples=min(p.n_examples, p.n_test))
                 for h in p.heads for k in range(p.seeds))
    return Study("output", p, {"output": runs})


def lab_study(preset: str | Preset = "quick", *, seeds: int | None = None) -> Study:
    """Both studies: every rule of thumb gets its evidence."""
    s = activation_study(preset, seeds=seeds) + output_study(preset, seeds=seeds)
    return dataclasses.replace(s, name="all")


STUDIES = {"activations": activation_study, "output": output_study, "all": lab_study}


# ------------------------------------------------------------------------------------- the data


def balanced_head(y: np.ndarray, n: int) -> np.ndarray:
    """Indices of the first ``n`` examples taken class by class in turn (sorted), so any ``n``
    gives a near-equal number of each digit and a smaller ``n`` is a subset of a larger one."""
    y = np.asarray(y)
    rank = np.empty(len(y), dtype=np.int64)  # how many earlier examples share this one's label
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        rank[idx] = np.arange(len(idx))
    order = np.lexsort((np.arange(len(y)), rank))  # by rank, then by position
    return np.sort(order[:n])


@lru_cache(maxsize=4)
def lab_data(n_train: int, n_test: int):
    """``(x_train, y_train, x_test, y_test)`` subsets of the bundled split (read-only arrays)."""
    from ..data import load_digits

    d = load_digits()
    tr, te = balanced_head(d.y_train, n_train), balanced_head(d.y_test, n_test)
    arrays = (d.x_train[tr], d.y_train[tr], d.x_test[te], d.y_test[te])
    for a in arrays:
        a.setflags(write=False)
    return arrays


# ------------------------------------------------------------------------------------ the model


def build_run_model(spec: RunSpec, rng: np.random.Generator) -> Sequential:
    """``Flatten -> [Dense(width), Activation] x depth -> Dense(10) [-> head activation]``."""
    layers = [Flatten()]
    for _ in range(spec.depth):
        layers += [Dense(spec.width), Activation(spec.activation)]
    layers.append(Dense(N_CLASSES))
    title, head_act, loss = HEADS[spec.head]
    if head_act is not None:
        layers.append(Activation(head_act))
    model = Sequential(layers, loss=loss, name=f"lab-{spec.activation}-{spec.head}",
                       description=f"{spec.depth} x {spec.width} {spec.activation}, {title}",
                       rng=rng)
    dense = [layer for layer in model.layers if isinstance(layer, Dense)]
    for layer in dense[:-1]:
        layer.params["b"][...] = spec.hidden_bias
    dense[-1].params["b"][...] = spec.output_bias
    return model


def hidden_activation_indices(model: Sequential) -> list[int]:
    """Indices of the Activation layers followed by another Dense layer (not the output head)."""
    last_dense = max(i for i, layer in enumerate(model.layers) if isinstance(layer, Dense))
    return [i for i, layer in enumerate(model.layers)
            if isinstance(layer, Activation) and i < last_dense]


def dense_indices(model: Sequential) -> list[int]:
    return [i for i, layer in enumerate(model.layers) if isinstance(layer, Dense)]


def local_slopes(layer: Activation, z: np.ndarray) -> np.ndarray:
    """``g'(z)`` element-wise, from the engine's own backward (so it is the slope training uses)."""
    a, cache = layer.forward(z)
    slope, _ = layer.backward(np.ones_like(z), cache)
    return slope


@lru_cache(maxsize=None)
def peak_slope(fn: str) -> float:
    """The steepest slope of activation ``fn`` (1 for ReLU and tanh, 1/4 for sigmoid), found on a
    fine grid of z in [-10, 10] in float64."""
    z = np.linspace(-10.0, 10.0, 20001)
    return float(np.abs(local_slopes(Activation(fn), z)).max())


def dead_units(model: Sequential, x: np.ndarray, *, layers: Iterable[int] | None = None
               ) -> dict[int, np.ndarray]:
    """Per activation layer, the indices of units that pass **no gradient for any input** in ``x``.

    For ReLU that is ``z <= 0`` on every digit (the unit always outputs 0; its weights never change
    again); for sigmoid or tanh it would need every ``z`` so large that ``g'(z)`` rounds to 0.

    Parameters
    ----------
    model : a model with Activation layers after Dense layers.
    x : (N, 1, 28, 28) inputs.
    layers : Activation layer indices (default: every Activation layer, head included).

    Returns
    -------
    dict layer index -> (n_dead,) int array of unit indices.
    """
    trace = model.forward(x, trace=True)
    idx = [i for i, layer in enumerate(model.layers) if isinstance(layer, Activation)] \
        if layers is None else list(layers)
    out = {}
    for i in idx:
        z = trace.layers[i].input  # (N, units)
        slope = local_slopes(model.layers[i], z)
        out[i] = np.flatnonzero(np.all(slope == 0, axis=0))
    return out


def output_diagnostics(model: Sequential, x: np.ndarray, y: np.ndarray, *, trace=None
                       ) -> dict[str, Any]:
    """What the output layer does on ``(x, y)``: can it answer, are its scores probabilities?

    Returns a JSON-able dict:

    - ``accuracy``;
    - ``dead_units``: classes whose output unit passes no gradient on any digit (a ReLU output
      stuck at 0: that digit can never again be learned, and it only wins ties);
    - ``tie_fraction``: digits whose top score is shared by two or more classes (an all-zero ReLU
      row has no answer; ``argmax`` then silently says the first tied class);
    - ``true_off_fraction``: digits whose correct class's unit has slope 0, so their error sends
      no gradient to that unit;
    - ``score_min``, ``score_max``, ``sum_deviation`` (mean ``|sum of the 10 scores - 1|``),
      ``outside_01_fraction``: whether the scores can be read as probabilities;
    - ``raw_min``, ``raw_max``: the last layer's values before the output function.
    """
    trace = trace if trace is not None else model.forward(x, trace=True)
    raw = trace.logits  # (N, 10): the last layer's output (after a ReLU head if there is one)
    scores = trace.output  # (N, 10): after the loss's output function
    idx = model.class_index(y)
    top = scores.max(axis=1, keepdims=True)
    ties = (scores == top).sum(axis=1) > 1
    pred = scores.argmax(axis=1)
    last = model.layers[-1]
    if isinstance(last, Activation):
        slope = local_slopes(last, trace.layers[-1].input)  # (N, 10)
        dead = np.flatnonzero(np.all(slope == 0, axis=0))
        true_off = slope[np.arange(len(idx)), idx] == 0
    else:
        dead = np.zeros(0, dtype=np.int64)
        true_off = np.zeros(len(idx), dtype=bool)
    return {
        "accuracy": float((pred == idx).mean()),
        "dead_units": [int(u) for u in dead],
        "tie_fraction": float(ties.mean()),
        "true_off_fraction": float(true_off.mean()),
        "score_min": float(scores.min()),
        "score_max": float(scores.max()),
        "sum_deviation": float(np.abs(scores.sum(axis=1) - 1.0).mean()),
        "outside_01_fraction": float(((scores < 0) | (scores > 1)).mean()),
        "raw_min": float(raw.min()),
        "raw_max": float(raw.max()),
    }


# ---------------------------------------------------------------------------------- measurement


class ActivationTimer:
    """Times every forward and backward call of the given Activation layers.

    It wraps each layer's bound ``forward``/``backward`` in place (an instance attribute shadows
    the class method), so the model computes exactly as before; :meth:`detach` undoes it.  Calls
    are only timed while ``enabled`` (the lab switches it off while it evaluates).

    On a shared machine one preemption (a few milliseconds) can outweigh the activation's whole
    cost over an epoch, so besides the plain sums the timer gives a robust total: the median call
    duration times the number of calls.
    """

    def __init__(self, layers: list[Activation]) -> None:
        self.layers = list(layers)
        self.calls: dict[str, list[float]] = {"forward": [], "backward": []}
        self.enabled = True
        for layer in self.layers:
            layer.forward = self._timed(layer.forward, self.calls["forward"])
            layer.backward = self._timed(layer.backward, self.calls["backward"])

    def _timed(self, fn, record: list[float]):
        clock = time.perf_counter

        def wrapper(*args, **kwargs):
            if not self.enabled:
                return fn(*args, **kwargs)
            t = clock()
            out = fn(*args, **kwargs)
            record.append(clock() - t)
            return out

        return wrapper

    def seconds(self, direction: str) -> float:
        """Sum of the timed calls in ``direction`` (``"forward"`` or ``"backward"``)."""
        return float(sum(self.calls[direction]))

    def robust_seconds(self, direction: str) -> float:
        """Median call duration times the number of calls: insensitive to rare preemptions."""
        c = self.calls[direction]
        return float(np.median(c) * len(c)) if c else 0.0

    def detach(self) -> None:
        for layer in self.layers:
            layer.__dict__.pop("forward", None)
            layer.__dict__.pop("backward", None)


def _finite(v: float) -> float | None:
    v = float(v)
    return v if math.isfinite(v) else None


def _histogram(a: np.ndarray, bins: int) -> dict[str, Any]:
    """Histogram and summary of an activation array (any shape), JSON-able."""
    a = a.ravel()
    lo, hi = float(a.min()), float(a.max())
    if hi <= lo:  # all equal: one bin around the value
        lo, hi = lo - 0.5, hi + 0.5
    counts, edges = np.histogram(a, bins=bins, range=(lo, hi))
    q = np.quantile(a, [0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0])
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts],
            "quantiles": {k: float(v) for k, v in
                          zip(("0", "1", "5", "25", "50", "75", "95", "99", "100"), q)},
            "mean": float(a.mean()), "std": float(a.std()),
            "zero_fraction": float((a == 0).mean())}


class _Monitor:
    """fit() callback: at checkpoints it pauses the clock and measures on the test digits."""

    def __init__(self, model, spec: RunSpec, x_test, y_test, x_probe, y_probe, timer,
                 steps_per_epoch: int) -> None:
        self.model, self.spec, self.timer = model, spec, timer
        self.x_test, self.y_test = x_test, y_test
        self.x_probe, self.y_probe = x_probe, y_probe
        self.steps_per_epoch = steps_per_epoch
        self.checkpoints = {int(round((e * spec.evals_per_epoch + k) * steps_per_epoch
                                      / spec.evals_per_epoch))
                            for e in range(spec.epochs) for k in range(1, spec.evals_per_epoch + 1)}
        self.hidden = hidden_activation_indices(model)
        self.dense = dense_indices(model)
        self.step = 0
        self.overhead = 0.0
        self.t0 = 0.0
        self.t_prev = 0.0
        self.step_seconds: list[float] = []
        self.epoch_marks: list[float] = []
        self.rows: list[dict[str, Any]] = []
        self.timing_rows: list[float] = []
        self.last_trace = None

    def start(self) -> None:
        self.t0 = time.perf_counter()
        self.checkpoint()
        self.t_prev = time.perf_counter()

    def train_seconds(self) -> float:
        return time.perf_counter() - self.t0 - self.overhead

    def robust_step_seconds(self) -> float:
        """Median duration of one training step: a preemption only lengthens a few steps."""
        return float(np.median(self.step_seconds)) if self.step_seconds else 0.0

    def on_batch_end(self, log) -> None:
        self.step_seconds.append(time.perf_counter() - self.t_prev)
        self.step += 1
        if self.step in self.checkpoints:
            self.checkpoint()
        self.t_prev = time.perf_counter()

    def on_epoch_end(self, log) -> None:
        self.epoch_marks.append(self.train_seconds())

    def checkpoint(self) -> None:
        t = time.perf_counter()
        self.timer.enabled = False
        train_seconds = t - self.t0 - self.overhead
        m = self.model
        trace = m.forward(self.x_test, trace=True)
        z = trace.logits
        loss, _ = m._loss_fn(z, m.targets(self.y_test, z.shape[1]))
        out = output_diagnostics(m, self.x_test, self.y_test, trace=trace)
        dead = []
        for i in self.hidden:
            slope = local_slopes(m.layers[i], trace.layers[i].input)  # (N, width)
            dead.append(int(np.all(slope == 0, axis=0).sum()))
        _, grads = m.loss_and_grads(self.x_probe, self.y_probe, training=False)
        norms = [float(np.linalg.norm(grads[f"{i}.W"])) for i in self.dense]
        self.rows.append({
            "epoch": self.step / self.steps_per_epoch,
            "test_accuracy": out["accuracy"],
            "test_loss": _finite(loss),
            "dead_hidden": dead,
            "dead_output": out["dead_units"],
            "grad_norms": norms,
        })
        self.timing_rows.append(train_seconds)
        self.last_trace = trace
        self.timer.enabled = True
        self.overhead += time.perf_counter() - t


def run_one(spec: RunSpec) -> dict[str, Any]:
    """Train one network as ``spec`` says and measure it.  Returns a JSON-able dict.

    Everything outside the ``"timing"`` entry depends only on ``spec``.

    Raises
    ------
    KeyboardInterrupt
        if training was interrupted (an incomplete run must never be cached as finished).
    """
    x_tr, y_tr, x_te, y_te = lab_data(spec.n_train, spec.n_test)
    model = build_run_model(spec, np.random.default_rng([spec.seed, 0]))
    train_rng = np.random.default_rng([spec.seed, 1])
    hidden = hidden_activation_indices(model)
    timer = ActivationTimer([model.layers[i] for i in hidden])
    config = TrainConfig(epochs=spec.epochs, batch_size=spec.batch_size, optimizer=spec.optimizer,
                         lr=spec.lr, momentum=spec.momentum)
    steps_per_epoch = math.ceil(len(x_tr) / spec.batch_size)
    probe = slice(0, min(spec.probe_size, len(x_tr)))
    mon = _Monitor(model, spec, x_te, y_te, x_tr[probe], y_tr[probe], timer, steps_per_epoch)
    t_wall = time.perf_counter()
    mon.start()
    try:
        history = fit(model, x_tr, y_tr, config, rng=train_rng, callbacks=[mon])
    except TrainingDiverged as e:
        history = e.history
    if history.stop_reason == "interrupted":
        raise KeyboardInterrupt
    train_seconds = mon.train_seconds()
    wall_seconds = time.perf_counter() - t_wall
    timer.enabled = False
    if history.stop_reason == "diverged":
        # fit restored the last complete epoch's weights: measure those, like any checkpoint
        mon.checkpoint()
        mon.rows[-1]["epoch"] = float(len(history.epochs))

    # ---- final measurements on the test digits (the last checkpoint's forward pass)
    trace = mon.last_trace
    final = output_diagnostics(model, x_te, y_te, trace=trace)
    z = trace.logits
    loss, _ = model._loss_fn(z, model.targets(y_te, z.shape[1]))
    final["test_loss"] = _finite(loss)
    peak = peak_slope(spec.activation)
    layers_out = []
    n_units = n_dead = n_zero = n_sat = n_vals = 0
    for i in hidden:
        zi = trace.layers[i].input  # (N_test, width)
        ai = trace.layers[i].output  # (N_test, width)
        slope = np.abs(local_slopes(model.layers[i], zi))
        dead = np.all(slope == 0, axis=0)  # (width,)
        h = _histogram(ai, spec.hist_bins)
        info = {"layer": i, "units": int(ai.shape[1]), "dead": int(dead.sum()),
                "dead_fraction": float(dead.mean()),
                "zero_fraction": h["zero_fraction"],
                "saturated_fraction": float((slope < SATURATION_FRACTION * peak).mean()),
                "histogram": h}
        if spec.activation in BOUNDED_RANGE:
            lo, hi = BOUNDED_RANGE[spec.activation]
            margin = 0.05 * (hi - lo)
            info["near_ends_fraction"] = float(((ai <= lo + margin) | (ai >= hi - margin)).mean())
        layers_out.append(info)
        n_units += ai.shape[1]
        n_dead += int(dead.sum())
        n_zero += int((ai == 0).sum())
        n_sat += int((slope < SATURATION_FRACTION * peak).sum())
        n_vals += ai.size

    reach = next((k for k, r in enumerate(mon.rows) if r["test_accuracy"] >= spec.target_accuracy),
                 None)
    dead_hist = [r["dead_output"] for r in mon.rows]
    ever = sorted({u for d in dead_hist for u in d})
    recovered = sorted(u for u in ever if any(u in d and any(u not in later
                                                             for later in dead_hist[k + 1:])
                                              for k, d in enumerate(dead_hist)))
    examples = None
    if spec.n_examples:
        n = spec.n_examples
        examples = {"test_index": list(range(n)),
                    "label": [int(v) for v in y_te[:n]],
                    "scores": [[float(s) for s in row] for row in trace.output[:n]],
                    "raw": [[float(s) for s in row] for row in trace.logits[:n]]}
    timer.detach()
    act_seconds = timer.robust_seconds("forward") + timer.robust_seconds("backward")
    robust_train = mon.robust_step_seconds() * len(mon.step_seconds)
    epoch_seconds = np.diff([0.0] + mon.epoch_marks).tolist()
    return {
        "kind": "train",
        "key": spec.key(),
        "lab_version": LAB_VERSION,
        "spec": spec.to_dict(),
        "label": spec.label(),
        "n_params": model.n_params,
        "stop_reason": history.stop_reason,
        "final": final,
        "hidden": {"dead_fraction": n_dead / n_units, "zero_fraction": n_zero / n_vals,
                   "saturated_fraction": n_sat / n_vals, "peak_slope": peak,
                   "layers": layers_out},
        "curve": {"epoch": [r["epoch"] for r in mon.rows],
                  "test_accuracy": [r["test_accuracy"] for r in mon.rows],
                  "test_loss": [r["test_loss"] for r in mon.rows],
                  "dead_hidden": [r["dead_hidden"] for r in mon.rows],
                  "dead_output": dead_hist},
        "grad_norms": {"layers": [f"dense {k + 1} ({model.layers[i].params['W'].shape[0]}"
                                  f"\u2192{model.layers[i].units})"
                                  for k, i in enumerate(mon.dense)],
                       "sizes": [int(model.layers[i].params["W"].size) for i in mon.dense],
                       "values": [r["grad_norms"] for r in mon.rows]},
        "reach": {"target": spec.target_accuracy,
                  "epochs": None if reach is None else mon.rows[reach]["epoch"]},
        "output": {"dead_ever": ever, "recovered": recovered,
                   "dead_final": final["dead_units"], "examples": examples},
        "timing": {
            "train_seconds": train_seconds,
            "wall_seconds": wall_seconds,
            "epoch_seconds": epoch_seconds,
            "step_seconds_median": mon.robust_step_seconds(),
            "robust_epoch_seconds": mon.robust_step_seconds() * steps_per_epoch,
            "checkpoint_seconds": mon.timing_rows,
            "activation_calls": len(timer.calls["forward"]) + len(timer.calls["backward"]),
            "activation_forward_seconds": timer.robust_seconds("forward"),
            "activation_backward_seconds": timer.robust_seconds("backward"),
            "activation_forward_seconds_sum": timer.seconds("forward"),
            "activation_backward_seconds_sum": timer.seconds("backward"),
            # both robust (median call / median step): a ratio of like with like
            "activation_share": act_seconds / robust_train if robust_train > 0 else None,
            "seconds_to_target": None if reach is None else mon.timing_rows[reach],
        },
    }


def run_bench(spec: BenchSpec) -> dict[str, Any]:
    """Time each activation layer's forward and backward on ``(batch, width)`` float32 arrays.

    Returns ``{"kind": "bench", "results": {activation: {"BxW": {"forward_us", "backward_us"}}}}``
    with the fastest of ``rounds`` measurements (microseconds per call).
    """
    rng = np.random.default_rng(spec.seed)
    acts = list(spec.activations)
    results: dict[str, dict[str, dict[str, float]]] = {a: {} for a in acts}
    clock = time.perf_counter
    for n, w in spec.shapes:
        z = rng.standard_normal((n, w)).astype(np.float32)  # (batch, width)
        da = rng.standard_normal((n, w)).astype(np.float32)
        best = {a: [math.inf, math.inf] for a in acts}
        for r in range(spec.rounds):
            for a in acts[r % len(acts):] + acts[:r % len(acts)]:
                layer = Activation(a)
                _, cache = layer.forward(z)
                t = clock()
                layer.forward(z)
                layer.backward(da, cache)
                once = max(clock() - t, 1e-7)
                reps = int(min(max(spec.seconds_per_measure / once, 3), 20000))
                t = clock()
                for _ in range(reps):
                    layer.forward(z)
                fwd = (clock() - t) / reps
                t = clock()
                for _ in range(reps):
                    layer.backward(da, cache)
                bwd = (clock() - t) / reps
                best[a][0] = min(best[a][0], fwd)
                best[a][1] = min(best[a][1], bwd)
        for a in acts:
            results[a][f"{n}x{w}"] = {"forward_us": best[a][0] * 1e6,
                                      "backward_us": best[a][1] * 1e6}
    steps = _bench_steps(spec) if spec.step_depth else None
    return {"kind": "bench", "key": spec.key(), "lab_version": LAB_VERSION,
            "spec": spec.to_dict(), "label": spec.label(), "results": results, "steps": steps}


def _bench_steps(spec: BenchSpec) -> dict[str, Any]:
    """Fastest whole training step (forward, backward, SGD update) per activation, interleaved."""
    from ..data import load_digits
    from ..nn.optim import SGD

    d = load_digits()
    xb, yb = d.x_train[:spec.step_batch], d.y_train[:spec.step_batch]
    acts = list(spec.activations)
    nets = {}
    for a in acts:
        model = build_run_model(RunSpec(activation=a, width=spec.step_width,
                                        depth=spec.step_depth),
                                np.random.default_rng([spec.seed, 0]))
        nets[a] = (model, SGD(0.01, momentum=0.9), model.params())
    clock = time.perf_counter
    best = {a: math.inf for a in acts}
    for r in range(spec.rounds):
        for a in acts[r % len(acts):] + acts[:r % len(acts)]:
            model, opt, params = nets[a]
            t = clock()
            _, grads = model.loss_and_grads(xb, yb)
            opt.step(params, grads)
            once = max(clock() - t, 1e-7)
            reps = int(min(max(spec.seconds_per_measure / once, 3), 1000))
            t = clock()
            for _ in range(reps):
                _, grads = model.loss_and_grads(xb, yb)
                opt.step(params, grads)
            best[a] = min(best[a], (clock() - t) / reps)
    return {"network": f"784-{'-'.join([str(spec.step_width)] * spec.step_depth)}-10",
            "batch": spec.step_batch, "step_us": {a: best[a] * 1e6 for a in acts}}


def execute(kind: str, spec_dict: dict[str, Any]) -> dict[str, Any]:
    """Run one spec given as a dict (what the worker processes receive), BLAS on one thread so
    parallel runs do not fight over cores and results do not depend on the thread count."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        if kind == "bench":
            return run_bench(BenchSpec.from_dict(spec_dict))
        return run_one(RunSpec.from_dict(spec_dict))


# ------------------------------------------------------------------------------------- caching


def _cache_file(cache_dir: Path, key: str) -> Path:
    return cache_dir / f"{key}.json"


def load_cached(cache_dir: str | os.PathLike | None, key: str) -> dict[str, Any] | None:
    """A finished run from the cache, or None if absent, unreadable or from another lab version."""
    if cache_dir is None:
        return None
    p = _cache_file(Path(cache_dir), key)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(d, dict) or d.get("key") != key or d.get("lab_version") != LAB_VERSION:
        return None
    return d


def save_cached(cache_dir: str | os.PathLike, result: dict[str, Any]) -> Path:
    """Write one finished run atomically (a crash mid-write never leaves a half file)."""
    from .._util.files import atomic_write

    p = _cache_file(Path(cache_dir), result["key"])
    blob = json.dumps(result, sort_keys=True, allow_nan=False).encode("utf-8")
    atomic_write(p, lambda f: f.write(blob))
    return p


# ------------------------------------------------------------------------------------- running


@dataclass(frozen=True)
class ProgressEvent:
    """Sent to the ``progress`` callback after each run: ``status`` is ``"cached"`` (loaded,
    not recomputed) or ``"computed"``; ``done`` of ``total`` runs are finished."""

    done: int
    total: int
    key: str
    label: str
    status: str
    seconds: float | None = None


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop now: cancel queued runs and end the workers' current ones (they are not cached).

    ``shutdown(cancel_futures=True)`` alone lets the runs already handed to the workers finish,
    and the interpreter waits for them at exit; so the workers are terminated as well (Python
    3.14 has ``terminate_workers()`` for this; earlier versions only keep them in ``_processes``).
    """
    procs = list((getattr(pool, "_processes", None) or {}).values())
    # Terminate first, then let the pool's own manager thread reap the workers: joining them here
    # while that thread also joins them races on waitpid and can leave a worker looking alive.
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    pool.shutdown(wait=True, cancel_futures=True)
    for proc in procs:
        proc.join(timeout=5)


def run_study(study: Study, *, cache_dir: str | os.PathLike | None = None, max_workers: int = 2,
              progress: Callable[[ProgressEvent], Any] | None = None,
              recompute: bool = False) -> "StudyResult":
    """Run every run of ``study`` (those already in ``cache_dir`` are loaded, not recomputed).

    Parameters
    ----------
    study : from :func:`activation_study`, :func:`output_study` or :func:`lab_study`.
    cache_dir : folder for finished runs (one JSON file each, written atomically as soon as the run
        finishes); None = no cache.  Run the same study again to resume an interrupted one.
    max_workers : worker processes; 1 runs everything in this process.
    progress : called with a :class:`ProgressEvent` after each run (an exception it raises stops
        the study; finished runs stay cached).
    recompute : ignore (and overwrite) cached runs.

    Returns
    -------
    StudyResult
    """
    max_workers = _check_int("max_workers", max_workers, 1, 256)
    t0 = time.perf_counter()
    specs: list = list(study.specs())
    if study.bench is not None:
        specs.insert(0, study.bench)
    total = len(specs)
    results: dict[str, dict[str, Any]] = {}
    cached: list[str] = []
    todo = []
    for s in specs:
        hit = None if recompute else load_cached(cache_dir, s.key())
        if hit is not None:
            results[s.key()] = hit
            cached.append(s.key())
        else:
            todo.append(s)
    done = 0
    for k in cached:
        done += 1
        if progress is not None:
            progress(ProgressEvent(done, total, k, results[k]["label"], "cached"))
    todo.sort(key=lambda s: -s.cost())  # longest first keeps both workers busy to the end
    computed: list[str] = []

    def finish(spec, result, seconds):
        nonlocal done
        if result["key"] != spec.key():
            # a worker hashes the engine source it imported: a different key means the code
            # changed on disk while the study ran, and its numbers would not match the others'
            raise LabError("the digitlens engine code changed while the study was running; "
                           "run the study again (finished runs are kept)")
        if cache_dir is not None:
            save_cached(cache_dir, result)
        results[spec.key()] = result
        computed.append(spec.key())
        done += 1
        if progress is not None:
            progress(ProgressEvent(done, total, spec.key(), spec.label(), "computed", seconds))

    if max_workers == 1 or len(todo) <= 1:
        for s in todo:
            t = time.perf_counter()
            r = execute(s.kind, s.to_dict())
            finish(s, r, time.perf_counter() - t)
    elif todo:
        # "spawn" starts clean interpreters: safe with BLAS threads, the same on every platform
        ctx = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=min(max_workers, len(todo)), mp_context=ctx)
        try:
            started = {}
            futures = {}
            for s in todo:
                f = pool.submit(execute, s.kind, s.to_dict())
                futures[f] = s
                started[f] = time.perf_counter()
            pending = set(futures)
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    finish(futures[f], f.result(), time.perf_counter() - started[f])
        except BaseException:
            _stop_pool(pool)
            raise
        pool.shutdown(wait=True)
    order = [s.key() for s in specs]
    return StudyResult(
        study=study.name,
        preset=json.loads(json.dumps(study.preset.to_dict())),  # as it reads back from JSON
        parts={name: [r.key() for r in runs] for name, runs in study.parts.items()},
        runs={k: results[k] for k in order if results[k]["kind"] == "train"},
        bench=results[study.bench.key()] if study.bench is not None else None,
        cached=cached, computed=computed, seconds=time.perf_counter() - t0)


# ------------------------------------------------------------------------------------- results


def strip_timings(d: dict[str, Any]) -> dict[str, Any]:
    """A copy of a run or result dict without wall-clock measurements (for reproducibility
    checks): drops every ``"timing"`` entry, the micro-benchmark and the study's own timing and
    cache bookkeeping."""
    def strip(o):
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items()
                    if k not in ("timing", "bench", "seconds", "cached", "computed")}
        if isinstance(o, list):
            return [strip(v) for v in o]
        return o
    return strip(d)


def _median(vals: list) -> float | None:
    vals = [v for v in vals if v is not None]
    return float(np.median(vals)) if vals else None


def _mean(vals: list) -> float | None:
    vals = [v for v in vals if v is not None]
    return float(np.mean(vals)) if vals else None


def _std(vals: list) -> float | None:
    vals = [v for v in vals if v is not None]
    return float(np.std(vals, ddof=1)) if len(vals) > 1 else (0.0 if vals else None)


def _geomean(vals: list) -> float | None:
    vals = [v for v in vals if v is not None and v > 0]
    return float(np.exp(np.mean(np.log(vals)))) if vals else None


def grad_rms(run: dict[str, Any], checkpoint: int = 0) -> list[float]:
    """Root-mean-square gradient per weight, ``||dL/dW|| / sqrt(size)``, per Dense layer, at a
    checkpoint (0 = at initialisation, -1 = at the end)."""
    g = run["grad_norms"]
    return [n / math.sqrt(s) for n, s in zip(g["values"][checkpoint], g["sizes"])]


def grad_ratio(run: dict[str, Any], checkpoint: int = 0) -> float | None:
    """First Dense layer's RMS gradient divided by the output layer's: far below 1 means the
    gradient fades on its way back to the input (vanishing gradients)."""
    r = grad_rms(run, checkpoint)
    return r[0] / r[-1] if r[-1] > 0 else None


def output_example(result: "StudyResult", part: str = "output") -> dict[str, Any] | None:
    """A test digit that shows what goes wrong with a ReLU output layer, with every head's scores.

    ``test_index`` counts within the lab's test digits; ``bundled_test_index`` is the same digit in
    ``load_digits().x_test``.

    Picks, among the digits whose scores were kept (``n_examples``), the first one that the
    softmax + cross-entropy model gets right while a ReLU-output model gets wrong — preferring a
    digit where the ReLU output is all zeros (a tie with no answer).  Uses each head's
    lowest-seed run.  Returns None if the part has no such runs or no such digit.
    """
    if part not in result.parts:
        return None
    first: dict[str, dict[str, Any]] = {}
    for r in result.runs_in(part):
        h = r["spec"]["head"]
        if r["output"]["examples"] and (h not in first
                                        or r["spec"]["seed"] < first[h]["spec"]["seed"]):
            first[h] = r
    relu_heads = [h for h in first if HEADS[h][1] == "relu"]
    if "softmax_ce" not in first or not relu_heads:
        return None
    ex_ref = first["softmax_ce"]["output"]["examples"]
    n = min(len(first[h]["output"]["examples"]["label"]) for h in first)

    def pred(h, i):
        s = first[h]["output"]["examples"]["scores"][i]
        return int(np.argmax(s)), (np.asarray(s) == max(s)).sum() > 1

    candidates = []
    for i in range(n):
        label = ex_ref["label"][i]
        if pred("softmax_ce", i)[0] != label:
            continue
        for h in relu_heads:
            p, tie = pred(h, i)
            if p != label or tie:
                all_zero = max(first[h]["output"]["examples"]["raw"][i]) == 0
                candidates.append((not all_zero, not tie, i, h))
    if not candidates:
        return None
    _, _, i, h = min(candidates)
    spec = first["softmax_ce"]["spec"]
    from ..data import load_digits

    x_te = lab_data(spec["n_train"], spec["n_test"])[2]
    bundled = balanced_head(load_digits().y_test, spec["n_test"])  # lab test digit -> bundled index
    heads = {}
    for name, r in first.items():
        e = r["output"]["examples"]
        p, tie = pred(name, i)
        heads[name] = {"title": HEADS[name][0], "scores": e["scores"][i], "raw": e["raw"][i],
                       "prediction": p, "tie": bool(tie), "seed": r["spec"]["seed"]}
    return {"test_index": int(ex_ref["test_index"][i]),
            "bundled_test_index": int(bundled[ex_ref["test_index"][i]]),
            "label": int(ex_ref["label"][i]),
            "failing_head": h, "heads": heads,
            "image": [[round(float(v), 4) for v in row] for row in x_te[i, 0]]}


GROUP_FIELDS = ("activation", "width", "depth", "head", "optimizer")


def summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per configuration (runs that differ only in seed), with means over seeds.

    Columns: the :data:`GROUP_FIELDS`, ``seeds``, ``accuracy`` (mean), ``accuracy_std``,
    ``accuracy_min``, ``accuracy_max``, ``reached`` (seeds that reached the target),
    ``epochs_to_target`` / ``seconds_to_target`` (medians over the seeds that reached it),
    ``epoch_seconds`` (median), ``activation_share`` (median fraction of training time inside
    the hidden activation), ``dead_fraction``, ``zero_fraction``, ``saturated_fraction`` (means),
    ``grad_ratio_init`` / ``grad_ratio_end`` (geometric means of :func:`grad_ratio`), and for
    output heads ``dead_outputs`` (mean count), ``tie_fraction``, ``true_off_fraction``,
    ``sum_deviation``, ``outside_01_fraction``, ``score_max``.
    """
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in runs:
        groups.setdefault(tuple(r["spec"][f] for f in GROUP_FIELDS), []).append(r)
    rows = []
    for key, rs in groups.items():
        accs = [r["final"]["accuracy"] for r in rs]
        row = dict(zip(GROUP_FIELDS, key))
        row.update({
            "seeds": len(rs),
            "accuracy": _mean(accs), "accuracy_std": _std(accs),
            "accuracy_min": min(accs), "accuracy_max": max(accs),
            "target": rs[0]["reach"]["target"],
            "reached": sum(r["reach"]["epochs"] is not None for r in rs),
            "epochs_to_target": _median([r["reach"]["epochs"] for r in rs]),
            "seconds_to_target": _median([r["timing"]["seconds_to_target"] for r in rs]),
            "epoch_seconds": _median([r["timing"]["robust_epoch_seconds"] for r in rs]),
            "activation_share": _median([r["timing"]["activation_share"] for r in rs]),
            "dead_fraction": _mean([r["hidden"]["dead_fraction"] for r in rs]),
            "zero_fraction": _mean([r["hidden"]["zero_fraction"] for r in rs]),
            "saturated_fraction": _mean([r["hidden"]["saturated_fraction"] for r in rs]),
            "grad_ratio_init": _geomean([grad_ratio(r, 0) for r in rs]),
            "grad_ratio_end": _geomean([grad_ratio(r, -1) for r in rs]),
            "dead_outputs": _mean([len(r["final"]["dead_units"]) for r in rs]),
            "tie_fraction": _mean([r["final"]["tie_fraction"] for r in rs]),
            "true_off_fraction": _mean([r["final"]["true_off_fraction"] for r in rs]),
            "sum_deviation": _mean([r["final"]["sum_deviation"] for r in rs]),
            "outside_01_fraction": _mean([r["final"]["outside_01_fraction"] for r in rs]),
            "score_max": max(r["final"]["score_max"] for r in rs),
        })
        rows.append(row)
    return rows


_TABLE_COLUMNS = {
    "main": ("activation", "seeds", "accuracy", "accuracy_std", "reached", "epochs_to_target",
             "seconds_to_target", "epoch_seconds", "activation_share", "dead_fraction",
             "zero_fraction", "saturated_fraction", "grad_ratio_init"),
    "width": ("activation", "width", "seeds", "accuracy", "accuracy_std", "dead_fraction",
              "zero_fraction"),
    "depth": ("activation", "depth", "seeds", "accuracy", "accuracy_std", "reached",
              "grad_ratio_init", "grad_ratio_end", "saturated_fraction"),
    "output": ("head", "seeds", "accuracy", "accuracy_std", "dead_outputs", "tie_fraction",
               "true_off_fraction", "sum_deviation", "outside_01_fraction", "score_max"),
}
_TABLE_COLUMNS["depth_compare"] = ("optimizer",) + _TABLE_COLUMNS["depth"]


@dataclass
class StudyResult:
    """Every run of a study, keyed by run key, with the study's parts and bookkeeping.

    ``to_dict()`` is JSON-serialisable (adds per-part summaries, the verdicts and the example
    digit of the output study);
    :meth:`table` gives tidy rows; in a notebook the object shows itself as HTML tables.
    """

    study: str
    preset: dict[str, Any]
    parts: dict[str, list[str]]
    runs: dict[str, dict[str, Any]]
    bench: dict[str, Any] | None = None
    cached: list[str] = field(default_factory=list)
    computed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    # -- access --------------------------------------------------------------------------------
    def runs_in(self, part: str) -> list[dict[str, Any]]:
        if part not in self.parts:
            raise LabError(f"this {self.study!r} study has no part {part!r}; "
                           f"it has {list(self.parts)}")
        return [self.runs[k] for k in self.parts[part]]

    def summary(self, part: str) -> list[dict[str, Any]]:
        """:func:`summarise` of one part's runs."""
        return summarise(self.runs_in(part))

    def table(self, part: str = "main", columns: Iterable[str] | None = None
              ) -> list[dict[str, Any]]:
        """Tidy rows (one per configuration) with the columns that matter for ``part``."""
        cols = tuple(columns) if columns is not None else _TABLE_COLUMNS.get(part, GROUP_FIELDS)
        return [{c: row[c] for c in cols} for row in self.summary(part)]

    def figure(self, name: str):
        """One of the report's figures as a matplotlib Figure (shown inline in a notebook);
        ``name`` is one of :data:`digitlens.view.lab_figures.FIGURES`."""
        from ..view.figures.lab import FIGURES

        if name not in FIGURES:
            raise LabError(f"figure must be one of {list(FIGURES)}, got {name!r}")
        fn, needs = FIGURES[name]
        missing = [p for p in needs if p not in self.parts]
        if missing:
            raise LabError(f"figure {name!r} needs the {missing} part(s), which this "
                           f"{self.study!r} study does not have")
        return fn(self)

    def verdicts(self):
        """The rules of thumb judged on this result (:func:`digitlens.lab.report.assess`)."""
        from .report import assess

        return assess(self)

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self, *, with_summary: bool = True) -> dict[str, Any]:
        d = {"study": self.study, "lab_version": LAB_VERSION, "preset": self.preset,
             "parts": self.parts, "runs": self.runs, "bench": self.bench,
             "cached": self.cached, "computed": self.computed, "seconds": self.seconds}
        if with_summary:
            d["summary"] = {p: self.summary(p) for p in self.parts}
            d["verdicts"] = [v.to_dict() for v in self.verdicts()]
            d["output_example"] = output_example(self)  # with its 28x28 image, for a web page
        return d

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(**kwargs), allow_nan=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "StudyResult":
        if d.get("lab_version") != LAB_VERSION:
            raise LabError(f"result has lab version {d.get('lab_version')!r}; this digitlens "
                           f"reads version {LAB_VERSION}")
        return cls(study=d["study"], preset=d["preset"], parts=d["parts"], runs=d["runs"],
                   bench=d.get("bench"), cached=d.get("cached", []),
                   computed=d.get("computed", []), seconds=d.get("seconds", 0.0))

    # -- notebooks -----------------------------------------------------------------------------
    def _repr_html_(self) -> str:
        out = [f"<h4>activation lab: {html.escape(self.study)} study, "
               f"{html.escape(str(self.preset.get('name')))} preset, {len(self.runs)} runs</h4>"]
        verdicts = self.verdicts()
        if verdicts:
            out.append(_html_table([{"rule of thumb": v.rule, "verdict": v.status,
                                     "in numbers": v.text} for v in verdicts]))
        for part in self.parts:
            out.append(f"<h5>{html.escape(part)}</h5>")
            out.append(_html_table(self.table(part)))
        return "\n".join(out)

    def __repr__(self) -> str:
        return (f"StudyResult(study={self.study!r}, preset={self.preset.get('name')!r}, "
                f"runs={len(self.runs)}, parts={list(self.parts)})")


def fmt(v: Any) -> str:
    """Numbers for tables: fractions and accuracies to 3 decimals, None as a dash."""
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, np.integer)):
        return str(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if v == 0:
            return "0"
        if abs(v) >= 100 or abs(v) < 1e-3:
            return f"{v:.3g}"
        return f"{v:.3f}"
    return str(v)


def _html_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "<p>(no rows)</p>"
    cols = list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(r[c]))}</td>" for c in cols) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
