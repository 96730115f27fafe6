"""An explanation as one self-contained HTML page: the shareable report.

``digitlens explain IMAGE --html report.html`` and the page's "Save report" button write it.
One file, readable offline and printable: every image is embedded as a PNG data URL, the style is
inline, there is no script, and a Content-Security-Policy forbids the page any request at all
(``default-src 'none'``), so opening it never touches the network.

It is drawn from the explanation's JSON form (:meth:`Explanation.to_dict`, the web page's format),
so the report shows exactly the numbers the page shows.  Sections, in the road's order:
the answer, pre-processing, the network's numbers (every layer, then softmax worked out), which
pixels mattered, why A and not B, the smallest change, and the training digits that look alike.
Sections the explanation lacks are left out.  No numerics here: numbers are only formatted.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..explain.result import Explanation
from ..explain.words import METHOD_TITLES

#: the sections, in order: (id, heading)
SECTIONS = (("answer", "The answer"), ("preprocessing", "1. Pre-processing: from your image to "
            "28×28 numbers"), ("network", "2. The network's numbers, layer by layer"),
            ("maps", "3. Which pixels pushed the answer"), ("contrast", "4. Why {a} and not {b}"),
            ("counterfactual", "5. The smallest change that changes the answer"),
            ("nearest", "6. Training digits that look alike to the network"))

_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2430;max-width:980px;
 margin:1.5em auto;padding:0 1em}
h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.2em;border-bottom:2px solid #d8dee8;
 padding-bottom:.2em;margin-top:1.6em}
.lead{font-size:1.1em}.muted{color:#5a6475;font-size:.9em}
figure{display:inline-block;margin:.3em .5em .6em 0;vertical-align:top;text-align:center;
 max-width:150px}
figure img{width:112px;height:112px;image-rendering:pixelated;border:1px solid #c9d1dc;
 background:#000;object-fit:contain}
figure.small img{width:84px;height:84px}
figcaption{font-size:.8em;color:#384252}
table{border-collapse:collapse;margin:.5em 0;font-size:.88em}
th,td{border:1px solid #d8dee8;padding:.2em .5em;text-align:right;vertical-align:top}
th{background:#f2f5f9}td.l,th.l{text-align:left}
.bar{display:inline-block;height:.8em;background:#8a94a6;vertical-align:middle}
tr.top .bar{background:#c0392b}tr.vs .bar{background:#2c7fb8}
.key{font-size:.85em}.key span{display:inline-block;width:1em;height:1em;vertical-align:middle;
 border:1px solid #999;margin:0 .2em}
ul.says li{margin:.2em 0}
section{break-inside:avoid-page}.row{display:flex;gap:1.5em;align-items:flex-start;flex-wrap:wrap}
.row p{flex:1;min-width:260px}
.bar,.key span,figure img{-webkit-print-color-adjust:exact;print-color-adjust:exact}
@media print{body{margin:0;max-width:none;font-size:12px}h2{break-after:avoid}
 figure img{width:90px;height:90px}a{color:inherit;text-decoration:none}}
"""


def _e(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _f(v, digits: int = 4) -> str:
    """A number as the page shows it: ``digits`` significant digits, or a dash for null."""
    if v is None:
        return "–"
    return f"{float(v):.{digits}g}"


def _pct(v) -> str:
    return "–" if v is None else f"{100 * float(v):.1f}%"


def _png(rgb: np.ndarray, scale: int = 4) -> str:
    """An (H, W) uint8 gray or (H, W, 3) uint8 colour image as a PNG data URL, each pixel a
    ``scale``×``scale`` block (so it stays sharp wherever it is shown or printed)."""
    from PIL import Image

    a = np.repeat(np.repeat(np.asarray(rgb, np.uint8), scale, axis=0), scale, axis=1)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def gray_url(image) -> str:
    """A grid of numbers in [0, 1] (ink bright) as a gray PNG data URL."""
    a = np.clip(np.asarray(image, np.float64), 0, 1)
    return _png(np.rint(a * 255).astype(np.uint8))


def signed_url(m) -> str:
    """A signed map as a red (positive) / white (0) / blue (negative) PNG data URL, scaled so its
    largest magnitude is full colour (the page's colour scale)."""
    m = np.asarray(m, np.float64)
    lim = float(np.max(np.abs(m))) if m.size else 0.0
    t = np.clip(m / lim, -1, 1) if lim > 0 else np.zeros_like(m)
    red, blue, white = np.array([192, 57, 43]), np.array([44, 127, 184]), np.array([255] * 3)
    pos, neg = np.clip(t, 0, 1)[..., None], np.clip(-t, 0, 1)[..., None]
    rgb = white + pos * (red - white) + neg * (blue - white)  # (H, W, 3)
    return _png(np.rint(rgb).astype(np.uint8))


def edit_url(image, delta) -> str:
    """The digit in light gray on white with the ink an edit adds in red and removes in blue (the
    largest change in full colour, smaller ones paler), as a PNG data URL."""
    ink = np.clip(np.asarray(image, np.float64), 0, 1)[..., None]
    dlt = np.asarray(delta, np.float64)[..., None]
    lim = float(np.max(np.abs(dlt))) if dlt.size else 0.0
    dlt = dlt / lim if lim > 0 else dlt
    rgb = 255 - ink * 90 * np.ones(3)  # (H, W, 3) the digit, faint
    red, blue = np.array([192, 57, 43]), np.array([44, 127, 184])
    up, down = np.clip(dlt, 0, 1), np.clip(-dlt, 0, 1)
    rgb = rgb * (1 - up - down) + up * red + down * blue
    return _png(np.rint(np.clip(rgb, 0, 255)).astype(np.uint8))


def _fig(url: str, caption: str, cls: str = "") -> str:
    c = f' class="{cls}"' if cls else ""
    return (f'<figure{c}><img src="{url}" alt="{_e(caption)}"><figcaption>{_e(caption)}'
            "</figcaption></figure>")


def _section(key: str, body: str, **fmt) -> str:
    title = dict(SECTIONS)[key].format(**fmt)
    return f'<section id="{key}"><h2>{_e(title)}</h2>{body}</section>'


def _says(sentences) -> str:
    return ('<ul class="says">' + "".join(f"<li>{_e(s)}</li>" for s in sentences if s)
            + "</ul>") if sentences else ""


def _key(up: str = "pushed the digit's score up", down: str = "pushed it down") -> str:
    return (f'<p class="key">Colours: <span style="background:#c0392b"></span>{_e(up)}, '
            '<span style="background:#fff"></span>no effect, <span style="background:#2c7fb8">'
            f'</span>{_e(down)} (each picture scaled to its own strongest pixel).</p>')


# ----------------------------------------------------------------------------------- sections


def _answer(d: dict) -> str:
    classes, probs, logits = d["classes"], d["probabilities"], d.get("logits") or []
    top, vs = d["prediction"], (d.get("contrast") or {}).get("b")
    rows = []
    for i, c in enumerate(classes):
        p = probs[i]
        cls = "top" if c == top else ("vs" if c == vs else "")
        bar = f'<span class="bar" style="width:{max(0.0, float(p or 0)) * 240:.1f}px"></span>'
        z = _f(logits[i]) if i < len(logits) else "–"
        rows.append(f'<tr class="{cls}"><th>{_e(c)}</th><td>{z}</td><td>{_pct(p)}</td>'
                    f'<td class="l">{bar}</td></tr>')
    table = ('<table id="probabilities"><tr><th>digit</th><th>logit z</th><th>probability</th>'
             f'<th class="l">probability as a bar ({_e(d.get("output_function", ""))} of the '
             'logits)</th></tr>'
             + "".join(rows) + "</table>")
    pic = _fig(gray_url(d["image"]), "what the network reads (28×28)")
    return _section("answer", f'<div class="row">{pic}{table}</div>'
                    f'<p><b>In plain words</b></p>{_says(d.get("sentences", []))}')


def _preprocessing(d: dict) -> str:
    pre = d.get("preprocessing")
    if not pre or not pre.get("steps"):
        return _section("preprocessing", "<p>The image was used as it is: it was already a "
                        "28×28 digit, so no pre-processing step ran.</p>"
                        + _fig(gray_url(d["image"]), "the 28×28 input"))
    figs, items = [], []
    for i, s in enumerate(pre["steps"], 1):
        title = s.get("title", s.get("name", ""))
        off = "" if s.get("enabled", True) else " (switched off)"
        if isinstance(s.get("image"), str) and s["image"].startswith("data:image/png;base64,"):
            figs.append(_fig(s["image"], f"{i}. {title}{off}", "small"))
        nums = ", ".join(f"{k} = {v}" for k, v in (s.get("numbers") or {}).items()
                         if isinstance(v, (int, float, str)))
        items.append(f"<li><b>{_e(title)}{off}.</b> {_e(s.get('sentence', ''))}"
                     + (f' <span class="muted">({_e(nums)})</span>' if nums else "") + "</li>")
    return _section("preprocessing", f'<div>{"".join(figs)}</div><ol>{"".join(items)}</ol>')


def _network(d: dict) -> str:
    tr = d.get("trace")
    if not tr:
        return ""
    rows = []
    for layer in tr["layers"]:
        st = layer.get("stats") or {}
        n = sum(int(np.prod(p.get("shape", [0]))) for p in (layer.get("params") or {}).values())
        rows.append(
            f'<tr><td>{layer["index"]}</td><td class="l">{_e(layer["type"])}</td>'
            f'<td class="l">{_e(layer.get("describe", ""))}</td>'
            f'<td>{_e("×".join(map(str, layer["input_shape"])))} → '
            f'{_e("×".join(map(str, layer["output_shape"])))}</td><td>{n:,}</td>'
            f'<td>{_f(st.get("min"))}</td><td>{_f(st.get("max"))}</td><td>{_f(st.get("mean"))}</td>'
            f'<td>{_pct(st.get("fraction_zero"))}</td></tr>')
    table = ('<table id="layers"><tr><th>#</th><th class="l">layer</th><th class="l">what it '
             'does</th><th>numbers in → out</th><th>weights</th><th>smallest out</th>'
             '<th>largest out</th><th>mean out</th><th>share of zeros</th></tr>'
             + "".join(rows) + "</table>")
    sm = tr.get("softmax")
    soft = ""
    if sm:
        cells = "".join(
            f'<tr><th>{_e(c)}</th><td>{_f(z)}</td><td>{_f(s)}</td><td>{_f(x)}</td>'
            f'<td>{_pct(p)}</td></tr>'
            for c, z, s, x, p in zip(d["classes"], sm["logits"], sm["shifted"], sm["exp"],
                                     sm["probabilities"]))
        soft = ('<h3>Softmax, worked out</h3><p>Each probability is e<sup>z − max z</sup> divided '
                f'by the sum of them all, {_f(sm["sum_exp"])}. Subtracting the largest logit '
                'first changes nothing in the result and keeps the exponentials from '
                'overflowing.</p><table id="softmax"><tr><th>digit</th><th>logit z</th>'
                '<th>z − max z</th><th>e<sup>z − max z</sup></th><th>probability</th></tr>'
                + cells + "</table>")
    return _section("network", f'<p class="muted">{_e(d.get("model_description", ""))}</p>'
                    + table + _says(tr.get("sentences", [])) + soft)


def _maps(d: dict) -> str:
    atts = d.get("attributions") or {}
    figs = []
    for method, per in atts.items():
        for target, a in per.items():
            meta = a.get("meta") or {}
            extra = ""
            if method == "integrated_gradients" and meta.get("relative_delta") is not None:
                extra = f"; sum {_f(a.get('total'), 3)}, error {_pct(meta['relative_delta'])}"
            figs.append(_fig(signed_url(a["map"]), f"{METHOD_TITLES.get(method, method)} → "
                             f"digit {target}{extra}"))
    if not figs:
        return ""
    return _section("maps", _key() + "<div>" + "".join(figs) + "</div>")


def _contrast(d: dict) -> str:
    c = d.get("contrast")
    if not c:
        return ""
    parts = [f'<p>Logit of {_e(c["a"])}: {_f(c["logit_a"])}; logit of {_e(c["b"])}: '
             f'{_f(c["logit_b"])}; the gap is {_f(c["gap"])}.</p>']
    if c.get("pixels"):
        pix = c["pixels"]
        parts.append(_key(f"argued for {c['a']}", f"argued for {c['b']}"))
        note = (pix.get("meta") or {}).get("sum_note", "")
        pic = _fig(signed_url(pix["map"]), "integrated gradients of the gap")
        parts.append(f'<div class="row">{pic}<p>{_e(note)}</p></div>')
    u = c.get("units")
    if u and u.get("table"):
        rows = "".join(f'<tr><td class="l">{_e(t["name"])}</td><td>{_f(t["feature"])}</td>'
                       f'<td>{_f(t["weight_diff"])}</td><td>{_f(t["product"])}</td></tr>'
                       for t in u["table"])
        rest = (f'<tr><td class="l">all the others</td><td></td><td></td>'
                f'<td>{_f(u["table_rest"])}</td></tr>' if u.get("table_rest") else "")
        parts.append(
            f'<p>The gap split exactly over the {_e(u["n_units"])} inputs of layer {u["layer"]}: '
            f'each contributes its value h times the difference of its two weights, '
            f'(W<sub>{_e(c["a"])}</sub> − W<sub>{_e(c["b"])}</sub>) · h; with the bias '
            f'difference {_f(u["bias_term"])} they add up to the gap {_f(u["gap"])}.</p>'
            '<table id="gap"><tr><th class="l">input</th><th>h</th><th>weight difference</th>'
            f'<th>contribution</th></tr>{rows}{rest}</table>')
    parts.append(_says(c.get("sentences", [])))
    return _section("contrast", "".join(parts), a=c["a"], b=c["b"])


def _counterfactual(d: dict) -> str:
    cf = d.get("counterfactual")
    if not cf:
        return ""
    figs = (_fig(gray_url(d["image"]), f"your {cf['a']}")
            + _fig(edit_url(d["image"], cf["delta"]), "ink added (red) and removed (blue)")
            + _fig(gray_url(cf["image"]), f"the model now reads {cf['prediction']}"))
    return _section("counterfactual", f"<div>{figs}</div><p>{_e(cf.get('sentence', ''))}</p>")


def _nearest(d: dict) -> str:
    nr, ex = d.get("nearest"), {x["index"]: x for x in d.get("examples") or []}
    if not nr:
        return ""
    figs = [_fig(ex[n["index"]]["image"], f"a {n['label']}, distance {_f(n['distance'], 3)}",
                 "small") for n in nr.get("examples", []) if n["index"] in ex]
    close = [_fig(ex[n["index"]]["image"], f"closest {n['label']}, distance "
                  f"{_f(n['distance'], 3)}", "small")
             for n in nr.get("contrast_examples", []) if n["index"] in ex]
    space = "the pixels" if nr.get("space") == "pixels" else "the last hidden layer's numbers"
    if not figs and not close:
        return ""
    return _section("nearest", f"<p>Distances are measured in {space}.</p><div>"
                    + "".join(figs + close) + "</div>")


def report_html(e: Explanation | dict, *, title: str | None = None) -> str:
    """The explanation as one self-contained HTML document (a ``str``).

    Parameters
    ----------
    e : an :class:`~digitlens.explain.result.Explanation`, or its ``to_dict()`` (the web page's
        JSON).
    title : the page title (default: "digitlens: <model> reads <digit>").
    """
    d = e.to_dict() if isinstance(e, Explanation) else e
    p = d["probabilities"][d["classes"].index(d["prediction"])]
    title = title or f"digitlens: {d['model']} reads {d['prediction']}"
    body = "".join(f(d) for f in (_answer, _preprocessing, _network, _maps, _contrast,
                                  _counterfactual, _nearest))
    csp = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f'<h1>The {_e(d["model"])} model reads <b>{_e(d["prediction"])}</b></h1>'
        f'<p class="lead">with probability {_pct(p)}. This report shows every step: how the '
        "image became 28×28 numbers, what each layer computed, which pixels mattered, and what "
        "would change the answer.</p>"
        + body +
        f'<p class="muted">Made by digitlens {_e(__version__)}. Every number here is the one '
        "the digitlens engine computed; the file needs no network and prints as it is.</p>"
        "</body></html>")


def save_report(e: Explanation | dict, path: str | os.PathLike) -> Path:
    """Write :func:`report_html` of ``e`` to ``path`` (UTF-8), atomically; returns the path."""
    from .._util.files import atomic_write

    data = report_html(e).encode("utf-8")
    atomic_write(path, lambda f: f.write(data))
    return Path(path)
