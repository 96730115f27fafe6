"""What a lab run measures, and how: the network, the digits, and every measurement taken on them.

- the digits: class-balanced subsets of the bundled split (:func:`lab_data`);
- the network: ``784 -> [width, activation] x depth -> 10 -> head`` (:func:`build_run_model`);
- dead units: hidden units whose activation passes no gradient for *any* test digit (for ReLU,
  ``z <= 0`` on every digit) — they can never learn again; also how often a unit outputs exactly 0
  and how often it is *saturated* (its slope below 1% of the activation's steepest slope), all from
  the engine's own backward (:func:`local_slopes`);
- the output layer: dead output units, digits with tied top scores (an all-zero ReLU output row
  has no answer), whether the scores are probabilities (:func:`output_diagnostics`);
- during training (:class:`Monitor`, a ``fit`` callback): test accuracy and loss, dead units and
  per-layer gradient norms ``||dL/dW||`` on a fixed probe batch, at evenly spaced checkpoints
  with the clock paused;
- time: wall time per step and epoch, and the part of it spent inside the hidden activation's
  forward and backward (:class:`ActivationTimer` times the activation layers in place);
- histograms and quantiles of every hidden layer's activations (:func:`hidden_summary`).

Everything returned is plain JSON-able data (floats, ints, lists, dicts).  Only wall-clock
timings change between repetitions; every other number depends on the spec alone.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache
from typing import Any, Iterable

import numpy as np

from ..nn.layers import Activation, Dense, Flatten
from ..nn.model import Sequential
from .specs import BOUNDED_RANGE, HEADS, N_CLASSES, SATURATION_FRACTION, RunSpec

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


class Monitor:
    """``fit`` callback: at checkpoints it pauses the clock and measures on the test digits.

    Checkpoints are ``evals_per_epoch`` evenly spaced steps per epoch, plus one before training
    (:meth:`start`); each appends a row to :attr:`rows` (see :meth:`curve`)."""

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
        loss = test_loss(m, trace, self.y_test)
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
            "test_loss": loss,
            "dead_hidden": dead,
            "dead_output": out["dead_units"],
            "grad_norms": norms,
        })
        self.timing_rows.append(train_seconds)
        self.last_trace = trace
        self.timer.enabled = True
        self.overhead += time.perf_counter() - t



    def curve(self) -> dict[str, list]:
        """The checkpoints' rows as columns (the learning curve and dead units over training)."""
        return {"epoch": [r["epoch"] for r in self.rows],
                "test_accuracy": [r["test_accuracy"] for r in self.rows],
                "test_loss": [r["test_loss"] for r in self.rows],
                "dead_hidden": [r["dead_hidden"] for r in self.rows],
                "dead_output": [r["dead_output"] for r in self.rows]}

    def grad_norms(self) -> dict[str, list]:
        """Per Dense layer: its name, its weight count and ``||dL/dW||`` at every checkpoint."""
        layers = self.model.layers
        return {"layers": [f"dense {k + 1} ({layers[i].params['W'].shape[0]}"
                           f"\u2192{layers[i].units})" for k, i in enumerate(self.dense)],
                "sizes": [int(layers[i].params["W"].size) for i in self.dense],
                "values": [r["grad_norms"] for r in self.rows]}


def test_loss(model: Sequential, trace, y: np.ndarray) -> float | None:
    """The model's loss on the digits ``trace`` was computed on (None if it is NaN or inf)."""
    z = trace.logits  # (N, 10)
    loss = model.loss_from_logits(z, y)
    return _finite(loss)


def hidden_summary(model: Sequential, trace, hidden: list[int], spec: RunSpec) -> dict[str, Any]:
    """Dead, exactly-zero and saturated hidden units and a histogram per hidden layer, measured
    on the test digits of ``trace`` (the pre-activations ``z`` and activations ``a``)."""
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
    return {"dead_fraction": n_dead / n_units, "zero_fraction": n_zero / n_vals,
            "saturated_fraction": n_sat / n_vals, "peak_slope": peak, "layers": layers_out}


def output_history(dead_hist: list[list[int]], examples: dict[str, Any] | None,
                   dead_final: list[int]) -> dict[str, Any]:
    """Output units that were ever dead at a checkpoint, and those of them that came back."""
    ever = sorted({u for d in dead_hist for u in d})
    recovered = sorted(u for u in ever if any(u in d and any(u not in later
                                                             for later in dead_hist[k + 1:])
                                              for k, d in enumerate(dead_hist)))
    return {"dead_ever": ever, "recovered": recovered, "dead_final": dead_final,
            "examples": examples}


def score_examples(trace, y: np.ndarray, n: int) -> dict[str, Any] | None:
    """The scores (after the output function) and raw outputs of the first ``n`` test digits."""
    if not n:
        return None
    return {"test_index": list(range(n)),
            "label": [int(v) for v in y[:n]],
            "scores": [[float(s) for s in row] for row in trace.output[:n]],
            "raw": [[float(s) for s in row] for row in trace.logits[:n]]}


# ------------------------------------------------------------------- read back from a run's dict


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
