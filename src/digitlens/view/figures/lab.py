"""Figures of the activation lab: a :class:`~digitlens.lab.result.StudyResult` -> matplotlib.

No numerics here beyond averaging over seeds for display: every number comes from the result.
Each function returns a :class:`matplotlib.figure.Figure` (no pyplot state, safe in servers and
notebooks); :func:`figure` draws one by name (in a notebook, ``figure(result, "speed")`` shows
inline) and :func:`save_figures` writes every figure the result has data for as PNG.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ...errors import LabError
from ...lab.measure import grad_ratio, grad_rms
from ...lab.result import StudyResult
from ...lab.specs import HEADS
from ...lab.verdicts import output_example

COLORS = {"relu": "#d62728", "leaky_relu": "#ff7f0e", "sigmoid": "#1f77b4", "tanh": "#2ca02c",
          "elu": "#9467bd", "gelu": "#8c564b", "identity": "#7f7f7f"}
HEAD_COLORS = {"softmax_ce": "#2ca02c", "sigmoid_bce": "#1f77b4", "linear_mse": "#7f7f7f",
               "relu_mse": "#d62728", "relu_ce": "#ff7f0e"}


def _color(a: str) -> str:
    return COLORS.get(a, "#333333")


def _by(runs: list[dict], field: str) -> dict[Any, list[dict]]:
    out: dict[Any, list[dict]] = {}
    for r in runs:
        out.setdefault(r["spec"][field], []).append(r)
    return out


def _acc_stats(runs: list[dict]) -> tuple[float, float]:
    a = [r["final"]["accuracy"] for r in runs]
    return float(np.mean(a)), float(np.std(a, ddof=1)) if len(a) > 1 else 0.0


def learning_curves(result: StudyResult, part: str = "main") -> Figure:
    """Test accuracy over training for each activation (mean over seeds, band = min..max)."""
    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for act, rs in _by(result.runs_in(part), "activation").items():
        ep = np.asarray(rs[0]["curve"]["epoch"])
        acc = np.asarray([r["curve"]["test_accuracy"] for r in rs])  # (seeds, checkpoints)
        ax.plot(ep, acc.mean(axis=0), color=_color(act), label=act, lw=2)
        ax.fill_between(ep, acc.min(axis=0), acc.max(axis=0), color=_color(act), alpha=0.15)
    target = result.preset["target_accuracy"]
    ax.axhline(target, color="k", ls=":", lw=1)
    ax.text(0, target, f" target {target:.0%}", va="bottom", fontsize=8)
    ax.set(xlabel="epoch", ylabel="test accuracy", ylim=(0, 1),
           title=f"Learning curves: {result.preset['main_depth']} hidden layers of "
                 f"{result.preset['main_width']} units")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def speed(result: StudyResult) -> Figure:
    """Cost of each activation: forward/backward alone, a whole training step, epochs to target."""
    p = result.preset
    shape = f"{p['batch_size']}x{p['main_width']}"
    bench = result.bench or {}
    acts = [a for a in bench.get("results", {}) if shape in bench["results"][a]]
    fig = Figure(figsize=(12, 4), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    x = np.arange(len(acts))
    fwd = [bench["results"][a][shape]["forward_us"] for a in acts]
    bwd = [bench["results"][a][shape]["backward_us"] for a in acts]
    # log scale and side-by-side bars: one slow activation must not flatten the others
    ax1.bar(x - 0.2, fwd, width=0.4, color=[_color(a) for a in acts], label="forward")
    ax1.bar(x + 0.2, bwd, width=0.4, color=[_color(a) for a in acts], alpha=0.45,
            label="backward")
    ax1.set_yscale("log")
    ax1.set_xticks(x, acts, rotation=30)
    ax1.set(ylabel="µs per call (log scale)", title=f"Activation alone ({shape} batch)")
    ax1.legend()
    steps = (bench.get("steps") or {}).get("step_us", {})
    main = {r["activation"]: r for r in result.summary("main")} if "main" in result.parts else {}
    sa = [a for a in acts if a in steps]
    step = [steps[a] for a in sa]
    share = [(main[a]["activation_share"] or 0) if a in main else 0 for a in sa]
    xs = np.arange(len(sa))
    ax2.bar(xs - 0.2, step, width=0.4, color="#bbbbbb", label="whole step")
    ax2.bar(xs + 0.2, [s * f for s, f in zip(step, share)], width=0.4,
            color=[_color(a) for a in sa], label="inside the activation")
    ax2.set_yscale("log")
    ax2.set_xticks(xs, sa, rotation=30)
    net = (bench.get("steps") or {}).get("network", "")
    ax2.set(ylabel="µs per training step (log scale)", title=f"Training step ({net})")
    ax2.legend()
    ma = [a for a in main]
    ep = [main[a]["epochs_to_target"] if main[a]["reached"] * 2 >= main[a]["seeds"] else np.nan
          for a in ma]
    xm = np.arange(len(ma))
    ax3.bar(xm, [0 if np.isnan(e) else e for e in ep], color=[_color(a) for a in ma])
    for i, e in enumerate(ep):
        if np.isnan(e):
            ax3.text(i, 0, "not\nreached", ha="center", va="bottom", fontsize=8)
    ax3.set_xticks(xm, ma, rotation=30)
    ax3.set(ylabel="epochs (median over seeds)",
            title=f"Epochs to {p['target_accuracy']:.0%} test accuracy")
    for ax in (ax1, ax2, ax3):
        ax.grid(axis="y", alpha=0.3)
    return fig


def accuracy_vs_width(result: StudyResult) -> Figure:
    """Mean test accuracy (± seed std) against hidden width, one line per activation."""
    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    for act, rs in _by(result.runs_in("width"), "activation").items():
        by_w = _by(rs, "width")
        ws = sorted(by_w)
        stats = [_acc_stats(by_w[w]) for w in ws]
        ax.errorbar(ws, [m for m, _ in stats], yerr=[s for _, s in stats], color=_color(act),
                    label=act, marker="o", capsize=3, lw=2)
    ax.set_xscale("log", base=2)
    ws = sorted({r["spec"]["width"] for r in result.runs_in("width")})
    ax.set_xticks(ws, [str(w) for w in ws])
    ax.set(xlabel="hidden units (one hidden layer)", ylabel="test accuracy",
           title="Accuracy vs width: do ReLU layers need more units?")
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    return fig


def dead_units(result: StudyResult) -> Figure:
    """Dead units (silent on every test digit) and exactly-zero outputs, by width and over time."""
    fig = Figure(figsize=(12, 4), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    if "width" in result.parts:
        for act, rs in _by(result.runs_in("width"), "activation").items():
            by_w = _by(rs, "width")
            ws = sorted(by_w)
            ax1.plot(ws, [np.mean([r["hidden"]["dead_fraction"] for r in by_w[w]]) for w in ws],
                     marker="o", color=_color(act), label=act)
            ax2.plot(ws, [np.mean([r["hidden"]["zero_fraction"] for r in by_w[w]]) for w in ws],
                     marker="o", color=_color(act), label=act)
        for ax in (ax1, ax2):
            ax.set_xscale("log", base=2)
            ax.set_xticks(ws, [str(w) for w in ws])
            ax.set_xlabel("hidden units")
            ax.set_ylim(-0.02, 1)
        ax1.set(ylabel="fraction of units", title="Dead units (0 on every test digit)")
        ax2.set(ylabel="fraction of outputs", title="Outputs exactly 0 (per digit)")
        ax1.legend()
    if "main" in result.parts:
        for act, rs in _by(result.runs_in("main"), "activation").items():
            units = sum(layer["units"] for layer in rs[0]["hidden"]["layers"])
            ep = rs[0]["curve"]["epoch"]
            dead = np.mean([[sum(d) / units for d in r["curve"]["dead_hidden"]] for r in rs],
                           axis=0)
            ax3.plot(ep, dead, color=_color(act), label=act)
        ax3.set(xlabel="epoch", ylabel="fraction of hidden units",
                title="Dead units during training (main network)", ylim=(-0.02, None))
        ax3.legend()
    for ax in (ax1, ax2, ax3):
        ax.grid(alpha=0.3)
    return fig


def gradient_norms(result: StudyResult) -> Figure:
    """Vanishing gradients: per-layer gradient size at initialisation, the first layer's gradient
    during training, the first/last ratio by depth, and accuracy by depth (solid: the study's
    optimizer; dashed: the comparison one).  Gradients are geometric means over seeds."""
    runs = result.runs_in("depth")
    depths = sorted({r["spec"]["depth"] for r in runs})
    dmax = depths[-1]
    fig = Figure(figsize=(16, 4), layout="constrained")
    ax1, ax4, ax2, ax3 = fig.subplots(1, 4)
    for act, rs in _by(runs, "activation").items():
        deep = [r for r in rs if r["spec"]["depth"] == dmax]
        rms = np.exp(np.mean(np.log([grad_rms(r, 0) for r in deep]), axis=0))
        ax1.plot(np.arange(1, len(rms) + 1), rms, marker="o", color=_color(act), label=act)
        first = [[grad_rms(r, k)[0] for k in range(len(r["curve"]["epoch"]))] for r in deep]
        ax4.plot(deep[0]["curve"]["epoch"], np.exp(np.mean(np.log(first), axis=0)),
                 color=_color(act), label=act)
        by_d = _by(rs, "depth")
        ax2.plot(depths, [np.exp(np.mean(np.log([grad_ratio(r, 0) for r in by_d[d]])))
                          for d in depths], marker="o", color=_color(act), label=act)
        ax3.plot(depths, [_acc_stats(by_d[d])[0] for d in depths], marker="o",
                 color=_color(act), label=f"{act} ({rs[0]['spec']['optimizer']})")
    if "depth_compare" in result.parts:
        for act, rs in _by(result.runs_in("depth_compare"), "activation").items():
            by_d = _by(rs, "depth")
            ds = sorted(by_d)
            ax3.plot(ds, [_acc_stats(by_d[d])[0] for d in ds], marker="s", ls="--",
                     color=_color(act), label=f"{act} ({rs[0]['spec']['optimizer']})")
    ax1.set_yscale("log")
    ax1.set_xticks(range(1, dmax + 2), [f"{i}" if i <= dmax else "out" for i in
                                        range(1, dmax + 2)])
    ax1.set(xlabel="layer (input side → output)", ylabel="RMS gradient per weight",
            title=f"Gradient per layer at initialisation\n({dmax} hidden layers)")
    ax4.set_yscale("log")
    ax4.set(xlabel="epoch", ylabel="RMS gradient per weight",
            title=f"First layer's gradient during training\n({dmax} hidden layers)")
    ax2.set_yscale("log")
    ax2.set_xticks(depths)
    ax2.set(xlabel="hidden layers", ylabel="first-layer / output-layer gradient",
            title="How much gradient reaches\nthe first layer (at initialisation)")
    ax3.set_xticks(depths)
    ax3.set(xlabel="hidden layers", ylabel="test accuracy", ylim=(0, 1),
            title="Accuracy by depth")
    ax3.legend(fontsize=7)
    ax1.legend(fontsize=8)
    for ax in (ax1, ax2, ax3, ax4):
        ax.grid(alpha=0.3)
    return fig


def activation_histograms(result: StudyResult, part: str = "main") -> Figure:
    """Distribution of the first hidden layer's outputs on the test digits (lowest seed)."""
    by_act = _by(result.runs_in(part), "activation")
    n = len(by_act)
    cols = min(3, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(4 * cols, 2.8 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax, (act, rs) in zip(axes, by_act.items()):
        r = min(rs, key=lambda r: r["spec"]["seed"])
        h = r["hidden"]["layers"][0]["histogram"]
        edges = np.asarray(h["edges"])
        counts = np.asarray(h["counts"], dtype=float)
        frac = counts / counts.sum()
        ax.stairs(frac, edges, fill=True, color=_color(act), alpha=0.7)
        if frac.max() > 20 * max(np.median(frac[frac > 0]), 1e-12):
            ax.set_yscale("log")  # a spike (ReLU's zeros) would hide the rest
        q = h["quantiles"]
        ax.set_title(f"{act}: range [{q['0']:.2g}, {q['100']:.2g}], mean {h['mean']:.2f}",
                     fontsize=9)
        if h["zero_fraction"] > 0.01:
            ax.text(0.98, 0.95, f"{h['zero_fraction']:.0%} exactly 0", transform=ax.transAxes,
                    ha="right", va="top", fontsize=8)
        ax.set_xlabel("activation value")
        ax.set_ylabel("fraction")
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle("Hidden activations on the test digits (first hidden layer)")
    return fig


def output_layers(result: StudyResult) -> Figure:
    """Output layers compared: accuracy, dead output units over training, one example digit."""
    runs = result.runs_in("output")
    by_head = _by(runs, "head")
    heads = list(by_head)
    fig = Figure(figsize=(13, 7), layout="constrained")
    gs = fig.add_gridspec(2, max(len(heads), 3))
    ax1 = fig.add_subplot(gs[0, 0])
    x = np.arange(len(heads))
    for i, h in enumerate(heads):
        accs = [r["final"]["accuracy"] for r in by_head[h]]
        ax1.bar(i, np.mean(accs), color=HEAD_COLORS.get(h, "#333"))
        ax1.plot([i] * len(accs), accs, "k.", ms=4)
    ax1.set_xticks(x, heads, rotation=30)
    ax1.set(ylabel="test accuracy", ylim=(0, 1), title="Accuracy (bars: mean, dots: seeds)")
    ax2 = fig.add_subplot(gs[0, 1])
    for h in heads:
        rs = by_head[h]
        if HEADS[h][1] is None:
            continue
        ep = rs[0]["curve"]["epoch"]
        ax2.plot(ep, np.mean([[len(d) for d in r["curve"]["dead_output"]] for r in rs], axis=0),
                 color=HEAD_COLORS.get(h, "#333"), label=h)
    ax2.set(xlabel="epoch", ylabel="dead output units (of 10)", ylim=(-0.2, None),
            title="ReLU output units stuck at 0")
    ax2.legend()
    ax2.grid(alpha=0.3)
    example = output_example(result)
    ax3 = fig.add_subplot(gs[0, 2])
    if example is not None:
        ax3.imshow(np.asarray(example["image"]), cmap="gray", vmin=0, vmax=1)
        ax3.set_title(f"example: a {example['label']} (lab test digit #{example['test_index']})")
    ax3.axis("off")
    if example is not None:
        for i, h in enumerate(heads):
            if h not in example["heads"]:
                continue
            ax = fig.add_subplot(gs[1, i])
            e = example["heads"][h]
            s = np.asarray(e["scores"])
            colors = ["#bbbbbb"] * 10
            colors[example["label"]] = HEAD_COLORS.get(h, "#333")
            ax.bar(np.arange(10), s, color=colors)
            ax.axhline(0, color="k", lw=0.5)
            ax.axhline(1, color="k", lw=0.5, ls=":")
            ax.set_xticks(range(10))
            verdict = "tie!" if e["tie"] else ("right" if e["prediction"] == example["label"]
                                               else "wrong")
            ax.set_title(f"{HEADS[h][0]}\nsays {e['prediction']} ({verdict}), "
                         f"sum {s.sum():.2f}", fontsize=8)
            ax.set_xlabel("digit")
    fig.suptitle("Output layers: what goes wrong with ReLU at the output")
    return fig


FIGURES = {
    "learning_curves": (learning_curves, ("main",)),
    "speed": (speed, ("main",)),
    "accuracy_vs_width": (accuracy_vs_width, ("width",)),
    "dead_units": (dead_units, ("width",)),
    "gradient_norms": (gradient_norms, ("depth",)),
    "activation_histograms": (activation_histograms, ("main",)),
    "output_layers": (output_layers, ("output",)),
}
"""figure name -> (function, parts of the study it needs)."""


def figure(result: StudyResult, name: str) -> Figure:
    """One of the report's figures as a matplotlib Figure (shown inline in a notebook).

    Parameters
    ----------
    result : the study's result.
    name : one of :data:`FIGURES`.

    Raises
    ------
    LabError
        if ``name`` is not a figure, or the study lacks the parts the figure needs.
    """
    if name not in FIGURES:
        raise LabError(f"figure must be one of {list(FIGURES)}, got {name!r}")
    fn, needs = FIGURES[name]
    missing = [p for p in needs if p not in result.parts]
    if missing:
        raise LabError(f"figure {name!r} needs the {missing} part(s), which this "
                       f"{result.study!r} study does not have")
    return fn(result)


def save_figures(result: StudyResult, out_dir: str | os.PathLike, *, dpi: int = 130
                 ) -> dict[str, Path]:
    """Write every figure the result has the parts for, as ``<name>.png``; returns their paths."""
    from ..._util.files import atomic_write

    out = Path(out_dir)
    paths = {}
    for name, (fn, needs) in FIGURES.items():
        if not all(p in result.parts for p in needs):
            continue
        fig = fn(result)
        path = out / f"{name}.png"
        atomic_write(path, lambda f, fig=fig: fig.savefig(f, format="png", dpi=dpi))
        paths[name] = path
    return paths
