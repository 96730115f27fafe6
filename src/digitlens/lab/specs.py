"""What a lab run is: its spec, the presets, and the studies built from them (no computing here).

A *study* is a list of training runs that differ in one thing at a time — the hidden activation,
the width, the depth, the output layer — on the same digits, with the same seeds and budget.
Every run is described by a frozen :class:`RunSpec` (a micro-benchmark by a :class:`BenchSpec`);
a :class:`Preset` holds a study's budget and grid (``"quick"`` and ``"full"`` in :data:`PRESETS`),
and :func:`activation_study`, :func:`output_study` and :func:`lab_study` build the :class:`Study`.

A spec's :meth:`~RunSpec.key` names its cached result: a hash of the spec, :data:`LAB_VERSION`
and :func:`code_fingerprint` (the engine's source), so a cached run is reused only while the
code that computed it is unchanged.  The fingerprint lives here, beside the key that needs it
(the runner imports this module; the reverse would be a cycle).

Every field is checked when a spec is made, with :mod:`digitlens._util.checks`; a bad one raises
:class:`~digitlens.errors.LabError` naming the field, the rule and the value.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from .._util.checks import check_choice, check_int, check_number
from ..errors import LabError
from ..nn import functional as F

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



def _int(name: str, value: Any, lo: int, hi: int | None = None) -> int:
    return check_int(name, value, lo, hi, error=LabError)


def _number(name: str, value: Any, rule: str = "a finite number", ok=lambda v: True) -> float:
    return check_number(name, value, rule, ok, error=LabError)


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
        check_choice("activation", self.activation, sorted(F.ACTIVATIONS), error=LabError)
        check_choice("head", self.head, list(HEADS), error=LabError)
        check_choice("optimizer", self.optimizer, ["sgd", "adam"], error=LabError)
        _int("width", self.width, 1, 4096)
        _int("depth", self.depth, 1, 16)
        _int("seed", self.seed, 0)
        _int("epochs", self.epochs, 1, 1000)
        _int("batch_size", self.batch_size, 1)
        _int("n_train", self.n_train, N_CLASSES, 4000)
        _int("n_test", self.n_test, N_CLASSES, 1000)
        _int("evals_per_epoch", self.evals_per_epoch, 1, 100)
        _int("probe_size", self.probe_size, 1)
        _int("hist_bins", self.hist_bins, 2, 1000)
        _int("n_examples", self.n_examples, 0, self.n_test)
        _number("lr", self.lr, "a positive number", lambda v: v > 0)
        _number("momentum", self.momentum, "in [0, 1)", lambda v: 0 <= v < 1)
        _number("target_accuracy", self.target_accuracy, "in (0, 1]", lambda v: 0 < v <= 1)
        _number("hidden_bias", self.hidden_bias)
        _number("output_bias", self.output_bias)

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
            check_choice("bench activation", a, sorted(F.ACTIVATIONS), error=LabError)
        for s in self.shapes:
            if len(s) != 2:
                raise LabError(f"bench shapes must be (batch, width) pairs, got {s!r}")
            _int("bench batch", s[0], 1)
            _int("bench width", s[1], 1)
        _int("rounds", self.rounds, 1, 1000)
        _number("seconds_per_measure", self.seconds_per_measure, "in (0, 1]",
                lambda v: 0 < v <= 1)
        _int("step_depth", self.step_depth, 0, 16)
        _int("step_width", self.step_width, 1, 4096)
        _int("step_batch", self.step_batch, 1, 4000)

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


#: the code that decides a run's numbers; its source is part of every cache key.  A package
#: stands for every ``.py`` file under it, so code moved between the engine's modules (or a new
#: one they call) still counts.  The lab's own changes are tracked by :data:`LAB_VERSION`.
_FINGERPRINTED = ("digitlens.nn", "digitlens.training.fit")


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """A hash of the engine's source code, so a cached run is never reused after the code that
    computed it changed (an installed package without sources falls back to its version)."""
    import importlib

    h = hashlib.sha256()
    for name in _FINGERPRINTED:
        mod = importlib.import_module(name)
        try:
            path = Path(mod.__file__)
            files = sorted(path.parent.rglob("*.py")) if path.name == "__init__.py" else [path]
            for f in files:
                h.update(f.relative_to(path.parent).as_posix().encode())
                h.update(f.read_bytes())
        except (OSError, TypeError):
            h.update(f"{name}:{_installed_version()}".encode())
    return h.hexdigest()[:16]


def _installed_version() -> str:
    """The installed distribution's version (read from its metadata, not from the top-level
    package, which sits above this layer)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("digitlens")
    except PackageNotFoundError:
        return "unknown"


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
        _int("seeds", self.seeds, 1, 100)
        for w in self.widths + (self.depth_width, self.main_width, self.output_width):
            _int("width", w, 1, 4096)
        for d in self.depths + (self.main_depth,):
            _int("depth", d, 1, 16)

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

