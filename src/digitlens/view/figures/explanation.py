"""An :class:`~digitlens.explain.result.Explanation` as a matplotlib figure, PNG or HTML.

Pictures only: every number drawn comes from the explanation (no model, no numerics here).
Attribution maps use one diverging colour scale per panel, symmetric around 0: red pixels pushed
the score up, blue pixels pushed it down, white did nothing.  Figures are built with
``matplotlib.figure.Figure`` (not pyplot), so they are safe to make from any thread.
"""

from __future__ import annotations

import base64
import html
import io
import os
import textwrap
from pathlib import Path

import numpy as np

from ...data.images import gray_from_data_url
from ...explain.result import Explanation
from ...explain.scale import COLOUR_PERCENTILE, colour_limit
from ...explain.words import METHOD_TITLES, unit_name

DIVERGING = "RdBu_r"


def _decode_data_url(url) -> np.ndarray | None:
    """A ``data:image/png;base64,...`` URL (as the pre-processing steps carry) -> gray array, read
    by the guarded decoder (size limits); None for anything that is not a data URL."""
    if not isinstance(url, str) or not url.startswith("data:"):
        return None
    return gray_from_data_url(url)


def _off(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


def _gray(ax, img, title: str = "", fontsize: int = 8) -> None:
    ax.imshow(np.asarray(img), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    _off(ax)
    if title:
        ax.set_title(title, fontsize=fontsize)


def _signed(ax, m, title: str = "", outline=None, fontsize: int = 8, scale: float | None = None,
            under=None):
    """A signed map, red positive and blue negative.  ``scale`` is where the colours saturate
    (default: the largest |value|); with ``under`` (the digit) the map is drawn over the faint
    digit, which shows through where the map is near 0 — as on the page."""
    m = np.asarray(m, dtype=np.float64)
    lim = scale if scale else (float(np.abs(m).max()) or 1.0)
    if under is not None:
        from matplotlib import colormaps

        # how strong the colour is: the square root of |m| / lim, as on the page (colours.js),
        # so a pixel at a quarter of the limit still gets half the colour
        a = np.sqrt(np.clip(np.abs(m) / lim, 0, 1))[..., None]
        rgb = colormaps[DIVERGING](np.where(m >= 0, 1.0, 0.0))[..., :3]  # the full red or blue
        shade = 1.0 - 0.27 * np.clip(np.asarray(under, dtype=np.float64), 0, 1)[..., None]
        im = ax.imshow(shade * (1 - a) + rgb * a, interpolation="nearest")
    else:
        im = ax.imshow(m, cmap=DIVERGING, vmin=-lim, vmax=lim, interpolation="nearest")
    if outline is not None:
        ax.contour(np.asarray(outline), levels=[0.3], colors="k", linewidths=0.4, alpha=0.5)
    _off(ax)
    if title:
        ax.set_title(title, fontsize=fontsize)
    return im


def _wrap(s: str, width: int = 110) -> str:
    return "\n".join(textwrap.wrap(s, width))


def explanation_figure(e: Explanation, *, width: float = 13.0, layers=None):
    """The whole explanation on one figure: pre-processing, probabilities, attribution maps,
    "why A and not B" (pixels and hidden units), the counterfactual, the first layer's units and
    the nearest training digits.  Sections the explanation lacks are left out.

    ``layers``: the model's layer names (:func:`digitlens.explain.names.layer_names`, as objects
    or dicts); layers and units are then called by them ("filter 3 of convolution 1", "unit 12
    of hidden layer 2"), never by list position.  Without them, by their role ("the first
    layer").

    Returns a ``matplotlib.figure.Figure``.
    """
    names = _Names(layers)
    from matplotlib.figure import Figure

    rows: list[str] = ["top"]
    if e.attributions:
        rows.append("attributions")
    if e.contrast is not None:
        rows.append("contrast")
    if e.counterfactual is not None:
        rows.append("counterfactual")
    if e.units is not None:
        rows.append("units")
    if e.nearest is not None and e.examples:
        rows.append("nearest")
    heights = {"top": 2.4, "attributions": 2.5, "contrast": 2.9, "counterfactual": 2.2,
               "units": 3.6 if (e.units is not None and e.units.kind == "conv") else 2.4,
               "nearest": 1.7}
    fig = Figure(figsize=(width, sum(heights[r] for r in rows) + 0.6), layout="constrained")
    p = np.asarray(e.probabilities)
    fig.suptitle(f"{e.model} reads {e.prediction} ({p[e.classes.index(e.prediction)]:.1%})"
                 + (f" — why {e.contrast.a} and not {e.contrast.b}" if e.contrast else ""),
                 fontsize=12, fontweight="bold")
    subs = fig.subfigures(len(rows), 1, height_ratios=[heights[r] for r in rows])
    subs = np.atleast_1d(subs)
    for sub, row in zip(subs, rows):
        if row in ("contrast", "units"):
            {"contrast": _row_contrast, "units": _row_units}[row](sub, e, names)
            continue
        {"top": _row_top, "attributions": _row_attributions,
         "counterfactual": _row_counterfactual, "nearest": _row_nearest}[row](sub, e)
    return fig


class _Names:
    """Layer and unit names for people, from :func:`digitlens.explain.names.layer_names`
    (objects or their dicts); without them, names by role.  Never a list index."""

    def __init__(self, layers):
        self.layers = [n if isinstance(n, dict) else n.to_dict() for n in (layers or [])]

    def short(self, index: int, fallback: str) -> str:
        if 0 <= index < len(self.layers):
            return self.layers[index]["short"]
        return fallback

    def feeding(self, index: int) -> dict | None:
        """The last layer with units before layer ``index`` (what feeds its inputs)."""
        for n in reversed(self.layers[:index]):
            if n.get("n_units") is not None:
                return n
        return None

    def first_unit(self, index: int, unit: int, conv: bool) -> str:
        """A first-layer unit: ``"filter 3 of convolution 1"``."""
        what = "filter" if conv else "unit"
        return f"{what} {unit} of {self.short(index, 'the first layer')}"

    def input_unit(self, index: int, j: int, fallback: str) -> str:
        """Input ``j`` of layer ``index``: ``"unit 12 of hidden layer 2"`` when a dense layer
        feeds it; a position in pooled maps keeps its own name (``fallback``), with the
        convolution it comes from."""
        n = self.feeding(index)
        if n is None:
            return fallback
        if n["type"] == "conv2d":
            return f"{fallback} ({n['short']})" if fallback.startswith("filter") else fallback
        return f"unit {int(j)} of {n['short']}"


def _row_top(sub, e: Explanation) -> None:
    pre = e.preprocessing
    if hasattr(pre, "steps"):  # a Preprocessed: its step images are arrays already
        steps = [(s.title, s.image) for s in pre.steps if s.enabled]
    else:  # after a JSON round trip: PNG data URLs
        steps = [(s.get("title", s.get("name", "")), s.get("image"))
                 for s in (pre or {}).get("steps", []) if s.get("enabled", True)]
    shown = steps[-5:]
    n = len(shown) + 1
    axes = sub.subplots(1, n + 2, gridspec_kw={"width_ratios": [1] * n + [0.2, 3.2]})
    for ax, (title, image) in zip(axes, shown):
        img = _decode_data_url(image) if isinstance(image, str) else image
        if img is not None:
            _gray(ax, img, _wrap(title, 18), fontsize=7)
        else:
            ax.axis("off")
    _gray(axes[n - 1], e.image, "what the network reads\n(28×28)", fontsize=7)
    axes[n].axis("off")
    ax = axes[-1]
    p = np.asarray(e.probabilities)
    colors = ["#c0392b" if c == e.prediction else
              ("#2c7fb8" if e.contrast is not None and c == e.contrast.b else "#999999")
              for c in e.classes]
    ax.bar([str(c) for c in e.classes], p, color=colors)
    for i, v in enumerate(p):
        if v >= 0.01:
            ax.text(i, v, f"{v:.0%}", ha="center", va="bottom", fontsize=7)
    ax.set_ylim(0, 1.12)
    ax.set_title(f"{e.output_function} probabilities", fontsize=9)
    ax.tick_params(labelsize=8)
    sub.suptitle("the digit and the answer", fontsize=9, x=0.01, ha="left")


def _row_attributions(sub, e: Explanation) -> None:
    items = [(m, t, a) for m, per in e.attributions.items() for t, a in per.items()]
    items = items[:8]
    axes = np.atleast_1d(sub.subplots(1, max(len(items), 1)))
    for ax, (m, t, a) in zip(axes, items):
        # a sum only where it means something (integrated gradients, a linear model's
        # gradient × input); occlusion and gradients get none
        extra = ""
        if m == "integrated_gradients" and a.meta.get("f_x") is not None:
            rd = a.meta.get("relative_delta")
            extra = (f"\nΣ={a.map.sum():.2f} = z(x)−z(blank) "
                     f"{a.meta['f_x'] - a.meta['f_baseline']:.2f}"
                     + (f", error {rd:.1%}" if rd is not None else ""))
        elif m == "gradient_x_input" and a.meta.get("exact"):
            extra = f"\nexact: Σ + b = z ({a.map.sum():.2f}{a.meta.get('bias', 0):+.2f})"
        elif m == "occlusion":
            extra = f"\n{a.meta.get('patch')}×{a.meta.get('patch')} squares, no total"
        else:
            extra = "\nno total"
        _signed(ax, a.map, f"{METHOD_TITLES.get(m, m)} → {t}{extra}", fontsize=7,
                scale=colour_limit(a.map), under=e.image)
    sub.suptitle(f"which pixels pushed the logit up (red) or down (blue); colours saturate at "
                 f"the {COLOUR_PERCENTILE:.0f}th percentile of |value|, over the faint digit",
                 fontsize=9, x=0.01, ha="left")


def _row_contrast(sub, e: Explanation, names: _Names) -> None:
    c = e.contrast
    uc = c.units
    terms = [] if uc is None else (uc.for_a[:3] + uc.for_b[:3])
    n_t = len([t for t in terms if t.template is not None])
    ratios = [1.1, 2.6] + [0.8] * n_t
    axes = sub.subplots(1, 2 + n_t, gridspec_kw={"width_ratios": ratios})
    if c.pixels is not None:
        meta = c.pixels.meta
        # integrated gradients of the gap add up to the gap on the digit minus on a blank board
        span = (f"; Σ = {c.pixels.map.sum():.2f} = gap here − gap on blank "
                f"{meta['f_x'] - meta['f_baseline']:.2f}" if meta.get("f_x") is not None else "")
        _signed(axes[0], c.pixels.map, _wrap(f"pixels: red → {c.a}, blue → {c.b}{span}", 26),
                fontsize=7,
                scale=colour_limit(c.pixels.map), under=e.image)
    else:
        axes[0].axis("off")
    ax = axes[1]
    if uc is not None and uc.kind == "hidden":
        contrib = np.asarray(uc.contributions)
        order = np.argsort(contrib)
        idx = list(order[:6]) + list(order[-6:])
        idx = sorted(set(int(i) for i in idx), key=lambda i: contrib[i])
        vals = contrib[idx]
        given = {t.unit: t.name for t in uc.for_a + uc.for_b if t.name}
        labels = [names.input_unit(uc.layer, i, given.get(i, _unit_label(e, uc, i)))
                  for i in idx]
        ax.barh(labels, vals, color=["#c0392b" if v > 0 else "#2c7fb8" for v in vals])
        ax.axvline(0, color="k", lw=0.5)
        feed = names.feeding(uc.layer)
        what = "map positions" if feed and feed["type"] == "conv2d" else "units"
        units = (f"the {uc.n_units} {what} of {feed['short']}" if feed
                 else f"all {uc.n_units} inputs")
        ax.set_title(_wrap(f"(W_{c.a}j − W_{c.b}j)·h_j over {units}: they sum to the gap "
                           f"{uc.gap:.2f} minus the bias difference {uc.bias_term:+.2f}", 70),
                     fontsize=8)
        ax.tick_params(labelsize=7)
    else:
        ax.axis("off")
        ax.text(0, 0.5, _wrap(" ".join(c.sentences), 60), fontsize=8, va="center")
    k = 2
    for t in terms:
        if t.template is None:
            continue
        side = c.a if t.contribution > 0 else c.b
        label = _wrap(names.input_unit(uc.layer, t.unit, t.name or f"unit {t.unit}"), 18)
        if t.prototype is not None:  # what its favourite training digits look like
            _gray(axes[k], t.prototype, f"{label} → {side}\n{t.contribution:+.2f}; its top digits",
                  fontsize=6)
        else:
            kind = "weights" if t.template_kind == "weights" else "∂h/∂x"
            _signed(axes[k], t.template, f"{label} → {side}\n{t.contribution:+.2f} ({kind})",
                    fontsize=6)
        k += 1
    sub.suptitle(f"why {c.a} and not {c.b}", fontsize=9, x=0.01, ha="left")


def _unit_label(e: Explanation, uc, j: int) -> str:
    """A contrast unit's name when the contrast did not detail it: a position in a conv map
    (a flattened (C, H, W) stack, told by the trace) or a unit."""
    if e.trace is not None and uc.layer > 0:
        shape = e.trace.layers[uc.layer - 1].input_shape
        if len(shape) == 3:
            return unit_name(j, tuple(shape))
    return unit_name(j, None)


def _row_counterfactual(sub, e: Explanation) -> None:
    cf = e.counterfactual
    axes = sub.subplots(1, 4, gridspec_kw={"width_ratios": [1, 1, 1, 3.5]})
    _gray(axes[0], e.image, f"your {cf.a}", fontsize=8)
    d = np.asarray(cf.delta)
    _signed(axes[1], d, "add ink (red) / remove (blue)", outline=e.image, fontsize=8, scale=1.0)
    _gray(axes[2], cf.image, f"model says {cf.prediction}", fontsize=8)
    axes[3].axis("off")
    text = " ".join(t for t in (cf.sentence, cf.plausible.sentence if cf.plausible else "",
                                cf.note) if t)
    axes[3].text(0, 0.5, _wrap(text, 80), fontsize=8, va="center")
    sub.suptitle("the smallest ink edit found that changes the answer" if cf.found else
                 "no small ink edit changes the answer", fontsize=9, x=0.01, ha="left")


def _row_units(sub, e: Explanation, names: _Names) -> None:
    u = e.units
    if u.kind == "conv":
        units = u.units[:8]
        kernels = u.hand_kernels
        cols = max(len(units), len(kernels), 1)
        axes = sub.subplots(3, cols, squeeze=False)
        for j in range(cols):
            for r in range(3):
                axes[r, j].axis("off")
        for j, v in enumerate(units):
            _signed(axes[0, j], v.template, _wrap(names.first_unit(u.layer, v.unit, True), 16)
                    + _like_caption(v), fontsize=6)
            axes[0, j].axis("on")
            _off(axes[0, j])
            if v.feature_map is not None:
                axes[1, j].axis("on")
                axes[1, j].imshow(np.asarray(v.feature_map), cmap="magma", interpolation="nearest")
                _off(axes[1, j])
                axes[1, j].set_title(f"its map (max {v.activation:.2f})", fontsize=6)
        for j, k in enumerate(kernels[:cols]):
            axes[2, j].axis("on")
            _signed(axes[2, j], k.response, f"hand-made:\n{k.name}", fontsize=6)
        sub.suptitle("learned filters, their feature maps on this digit, and hand-made kernels "
                     "on the same digit", fontsize=9, x=0.01, ha="left")
        return
    units = u.units[:6]
    kernels = u.hand_kernels
    axes = sub.subplots(1, len(units) + len(kernels) + 1,
                        gridspec_kw={"width_ratios": [1] * len(units) + [0.25]
                                     + [1] * len(kernels)})
    for ax, v in zip(axes, units):
        if u.is_output and len(u.units) == 1 and len(e.classes) == 2:
            label = f"log-odds of {e.classes[1]}: z"
        else:
            label = (f"digit {e.classes[v.unit]}: z" if u.is_output else
                     _wrap(names.first_unit(u.layer, v.unit, False), 18) + ": a")
        _signed(ax, v.template, f"{label}={v.activation:.2f}", fontsize=7)
    axes[len(units)].axis("off")
    for ax, k in zip(axes[len(units) + 1:], kernels):
        _signed(ax, k.response, f"hand-made:\n{k.name}", fontsize=6)
    what = ("each digit's weight image (no hidden layer: these are the templates)" if u.is_output
            else f"the {len(units)} first-layer units most active here (their weight images)")
    sub.suptitle(f"{what}, and hand-made kernels on this digit", fontsize=9, x=0.01, ha="left")


def _like_caption(v) -> str:
    """A filter's likeness to a hand-made kernel: "like" only at |cosine| >= the threshold, else
    the closest one and that it is below the threshold (as on the page)."""
    if v.similarity is None:
        return ""
    t = v.like_threshold if v.like_threshold is not None else 0.6
    inv = "inverted " if v.similarity < 0 else ""
    cos = cosine_text(v.similarity, t)
    if v.similar_kernel:
        return f"\nlike {_wrap(inv + v.similar_kernel, 16)} ({cos})"
    if getattr(v, "closest_kernel", None):
        return f"\nclosest: {_wrap(inv + v.closest_kernel, 14)}\n({cos}), below {t:.1f}"
    return ""


def cosine_text(cos: float, threshold: float) -> str:
    """|cos| with two decimals, or three when two would round it onto the threshold (0.598 is
    not shown as 0.60 next to "below 0.6")."""
    a = abs(float(cos))
    two = f"{a:.2f}"
    return two if (float(two) >= threshold) == (a >= threshold) else f"{a:.3f}"


def _row_nearest(sub, e: Explanation) -> None:
    nr = e.nearest
    items = [(n, "") for n in nr.examples[:7]] + [(n, "closest ") for n in
                                                  nr.contrast_examples[:2]]
    items = [(n, pre) for n, pre in items if n.index in e.examples]
    axes = np.atleast_1d(sub.subplots(1, max(len(items), 1)))
    for ax, (n, pre) in zip(axes, items):
        _gray(ax, e.examples[n.index].image, f"{pre}{n.label} (d={n.distance:.2f})", fontsize=7)
    space = "pixel space" if nr.space == "pixels" else "last hidden layer"
    sub.suptitle(f"training digits that look most alike to the network ({space})",
                 fontsize=9, x=0.01, ha="left")


def figure_png(fig, dpi: int = 100) -> bytes:
    """A figure's PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def explanation_html(e: Explanation, dpi: int = 100) -> str:
    """The summary sentences and the whole figure as an embedded PNG: what a notebook shows for
    ``explanation_html(e)`` (the explanation's own ``_repr_html_`` is a lighter card)."""
    data = base64.b64encode(figure_png(explanation_figure(e), dpi=dpi)).decode("ascii")
    items = "".join(f"<li>{html.escape(s)}</li>" for s in e.sentences)
    return (f"<div><p><b>{html.escape(e.model)}</b> reads "
            f"<b>{int(e.prediction)}</b> ({float(np.max(e.probabilities)):.1%})</p>"
            f"<ul>{items}</ul><img src='data:image/png;base64,{data}'/></div>")


def save_explanation_figure(e: Explanation, path: str | os.PathLike, dpi: int = 110, *,
                            layers=None) -> Path:
    """Write the explanation figure to ``path`` (PNG, SVG or PDF by suffix), atomically;
    ``layers``: the model's layer names (see :func:`explanation_figure`)."""
    from ..._util.files import atomic_write

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    if fmt not in ("png", "svg", "pdf"):
        raise ValueError(f"the figure file must end in .png, .svg or .pdf, got {path.name!r}")
    fig = explanation_figure(e, layers=layers)
    atomic_write(path, lambda f: fig.savefig(f, format=fmt, dpi=dpi))
    return path
