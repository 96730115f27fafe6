"""Every sentence the explanations say, in one place.

The explainers compute numbers; this module turns them into the plain words a learner reads (the
CLI prints them, the page shows them, :attr:`Explanation.sentences` collects them).  Keeping the
wording here means one voice, one set of region names and one table of method titles, and a
change of phrasing touches one file.  Functions take numbers and result objects and return
strings; nothing here computes a model.
"""

from __future__ import annotations

import numpy as np

#: attribution method -> its title (figures, reports)
METHOD_TITLES = {
    "saliency": "gradient (saliency)",
    "gradient_x_input": "gradient × input",
    "integrated_gradients": "integrated gradients",
    "occlusion": "occlusion",
}

REGIONS_V = ("top", "middle", "bottom")
REGIONS_H = ("left", "centre", "right")


# ------------------------------------------------------------------------------------- where
def ninth(part: np.ndarray) -> str:
    """The name of the ninth of a 2-D array holding most of its (non-negative) mass:
    ``"top left"``, ``"top"``, ..., ``"centre"``, ..., ``"bottom right"``."""
    part = np.asarray(part, dtype=np.float64)
    h, w = part.shape
    rb, cb = [0, h // 3, 2 * h // 3, h], [0, w // 3, 2 * w // 3, w]
    # (3, 3) sums over the ninths: reduceat sums between consecutive boundaries
    sums = np.add.reduceat(np.add.reduceat(part, rb[:-1], axis=0), cb[:-1], axis=1)
    i, j = np.unravel_index(np.argmax(sums), sums.shape)
    if (i, j) == (1, 1):
        return "centre"
    if i == 1:
        return REGIONS_H[j]
    if j == 1:
        return REGIONS_V[i]
    return f"{REGIONS_V[i]} {REGIONS_H[j]}"


def where_most(m: np.ndarray) -> str:
    """Which ninth of the image holds most of the positive part of a map (``"top left"``...)."""
    return ninth(np.maximum(np.asarray(m, dtype=np.float64), 0))


def where_words(template: np.ndarray) -> str:
    """A rough reading of a pixel template: where its positive and negative weights sit.

    The 28×28 grid is cut into 3×3 regions; the region holding the most positive weight is what
    the unit "likes" ink in, the one with the most negative weight what it "dislikes".
    """
    t = np.asarray(template, dtype=np.float64)
    if t.ndim != 2 or t.shape[0] < 9 or not np.any(t):
        return ""
    pos, neg = np.maximum(t, 0), np.maximum(-t, 0)
    rp = f"the {ninth(pos)}" if pos.sum() > 0 else None
    rn = f"the {ninth(neg)}" if neg.sum() > 0 else None
    if rp is not None and rp == rn:  # a small template: an edge or stroke detector
        return f"looks at a small pattern at {rp}"
    words = []
    if rp is not None:
        words.append(f"likes ink at {rp}")
    if rn is not None:
        words.append(f"dislikes ink at {rn}")
    return ", ".join(words)


# ------------------------------------------------------------------------------ the answer
def a_digit(d: int) -> str:
    """``"a 9"``, ``"an 8"``: the article a digit takes when read aloud (eight, eighteen,
    eleven, eighty... start with a vowel sound)."""
    s = str(int(d))
    return f"{'an' if s.startswith('8') or s in ('11', '18') else 'a'} {s}"


def answer(name: str, pred: int, p_pred: float, runner: int, p_runner: float) -> str:
    return (f"The {name} model reads {a_digit(pred)} with probability {p_pred:.1%}; the "
            f"runner-up is {runner} ({p_runner:.1%}).")


def vs_is_the_answer(vs: int, instead: int, reason: str = "runner-up") -> str:
    """The note when a learner asks "why not ``vs``" and the network now reads ``vs``: the
    explanation compares with ``instead``, chosen for ``reason`` ("runner-up" or "usual
    confusion")."""
    why = ("the runner-up" if reason == "runner-up"
           else "the digit most often confused with it on the test digits")
    return (f"You asked why not {vs}, but the network now reads {vs}; this compares it with "
            f"{instead}, {why}, instead.")


# ------------------------------------------------------------------------------ attribution
def describe_target(target) -> str:
    if isinstance(target, tuple):
        return f"the gap z_{target[0]} − z_{target[1]}"
    return f"the logit z_{target}"


def linear_gradient_x_input(target, total: float, bias: float, score: float) -> str:
    return (f"This model is one weighted sum of the pixels, so gradient × input is exactly each "
            f"pixel's term W·x in {describe_target(target)}: the map sums to {total:.4g}, which "
            f"plus the bias {bias:.4g} gives the score {score:.4g}.")


BASELINE_WORDS = {"black": "a blank board", "blur": "a blurred copy of your digit"}


def map_sum(method: str, target, total: float, meta: dict) -> str:
    """What a map's values add up to, and to what — or that they add up to nothing.

    Only integrated gradients (completeness) and gradient × input of a linear model have a sum
    that means something; a gradient map, occlusion and gradient × input through hidden layers
    do not, and saying "adds up to 52.3" next to a logit of 3.19 invites a false comparison.
    """
    what = describe_target(target)
    if method == "integrated_gradients":
        base = BASELINE_WORDS.get(str(meta.get("baseline")), f"the {meta.get('baseline')} "
                                  f"baseline")
        rel = meta.get("relative_delta")
        return (f"The map adds up to {total:.3g}, which should equal {what} on your digit "
                f"({meta['f_x']:.3g}) minus {what} on {base} ({meta['f_baseline']:.3g}), that "
                f"is {meta['f_x'] - meta['f_baseline']:.3g}; the completeness error is "
                f"{meta['delta']:.2g}" + (f" ({rel:.2%})" if rel is not None else "") + ".")
    if method == "gradient_x_input" and meta.get("exact"):
        return (f"The map adds up to {total:.3g}: exactly {what} ({meta['score']:.3g}) minus the "
                f"bias ({meta['bias']:.3g}), because this model is one weighted sum.")
    if method == "gradient_x_input":
        return ("No total: through hidden layers, gradient × input is only a local estimate, "
                "so its values do not add up to the score. Compare pixels within this map.")
    if method == "occlusion":
        return ("No total: each pixel gets the average drop of the squares covering it, and the "
                "squares overlap, so the values do not add up to the score. Compare pixels "
                "within this map.")
    return ("No total: a gradient is a rate (how fast the score would change per unit of ink), "
            "and rates at different pixels do not add up to a score. Compare pixels within "
            "this map.")


def integrated_gradients(pred: int, ig) -> str:
    """``ig``: the :class:`Attribution` of integrated gradients for the predicted class."""
    return (f"Integrated gradients ({ig.meta['baseline']} baseline, {ig.meta['n_steps']} steps): "
            f"the ink moves the logit of {pred} from {ig.meta['f_baseline']:.3g} to "
            f"{ig.meta['f_x']:.3g}; the pixel map adds up to {ig.map.sum():.3g} (completeness "
            f"error {ig.meta['relative_delta'] or 0:.2%}), most of it at the {where_most(ig.map)}.")


def occlusion(pred: int, occ) -> str:
    """``occ``: the :class:`Attribution` of occlusion for the predicted class."""
    return (f"Occlusion: covering a {occ.meta['patch']}×{occ.meta['patch']} square lowers the "
            f"logit of {pred} by up to {occ.meta['largest_drop']:.3g}; the most important ink "
            f"is at the {where_most(occ.map)}.")


# --------------------------------------------------------------------------------- contrast
def contrast(a: int, b: int, gap: float, units, pixels) -> list[str]:
    """Plain words for a contrast, with the real numbers (``units``: a :class:`UnitContrast` or
    None; ``pixels``: the integrated gradients of the gap, or None)."""
    out = [f"Why {a} and not {b}: the logit of {a} is {gap:+.3g} above the logit of {b}."
           if gap >= 0 else
           f"Why not {a} but {b}: the logit of {a} is {-gap:.3g} below the logit of {b}."]
    if units is not None and units.kind == "hidden":
        def names(terms):
            return ", ".join(f"{t.name or f'unit {t.unit}'} ({t.contribution:+.2f}"
                             + (f"; {t.where}" if t.where else "") + ")" for t in terms[:3])
        if units.for_a:
            out.append(f"Hidden units feeding the output layer that argue for {a}: "
                       f"{names(units.for_a)}.")
        if units.for_b:
            out.append(f"Units arguing for {b}: {names(units.for_b)}.")
        pos = float(units.contributions[units.contributions > 0].sum())
        neg = float(units.contributions[units.contributions < 0].sum())
        out.append(f"All {units.n_units} units together: {pos:+.3g} for {a}, {neg:+.3g} for {b}, "
                   f"bias difference {units.bias_term:+.3g}; the sum is exactly the gap "
                   f"{units.gap:+.3g}.")
    elif units is not None:
        out.append(f"This model has no hidden layer: each pixel's term (W_ia − W_ib)·x_i is its "
                   f"exact share of the gap, plus a bias difference of {units.bias_term:+.3g}.")
    if pixels is not None:
        m = pixels.map
        out.append(f"Over the pixels (integrated gradients): ink worth {m[m > 0].sum():+.3g} "
                   f"argues for {a} and {m[m < 0].sum():+.3g} for {b} "
                   f"(completeness error {pixels.meta.get('relative_delta') or 0:.2%}).")
    return out


def contrast_choice(ans, reason: str, suggestions, n_test: int) -> str:
    """Why the contrast compares with ``ans.b``: the runner-up, the learner's choice, or — when
    the runner-up has under 5% — the digit most often confused with the answer."""
    usual = ", ".join(f"{d} ({n} time{'s' if n != 1 else ''})" for d, n in suggestions)
    tested = f"on the {n_test:,} test digits"
    if reason == "usual confusion":
        return (f"The runner-up, {ans.runner}, gets only {ans.p_of(ans.runner):.1%}, so it is "
                f"hardly a rival; this compares {ans.pred} with {ans.b}, the digit this model "
                f"mixes up with {ans.pred} most often {tested}. Digits often confused with "
                f"{ans.pred}: {usual}.")
    if reason == "chosen":
        return f"You chose to compare {ans.pred} with {ans.b}."
    return (f"This compares {ans.pred} with the runner-up, {ans.b} ({ans.p_of(ans.b):.1%})."
            + (f" Digits often confused with {ans.pred} {tested}: {usual}." if usual else ""))


def unit_name(j: int, maps: tuple[int, ...] | None, pooled: bool = False) -> str:
    """``"unit 12"``, or for input ``j`` of a flattened stack of ``maps`` ``(C, H, W)``
    ``"filter 5, pooled map at row 2, col 3"`` (the map's own coordinates): a position in a
    filter's map, not a unit of its own."""
    if maps is not None:
        c, r, q = np.unravel_index(int(j), maps)
        return f"filter {c}, {'pooled ' if pooled else ''}map at row {r}, col {q}"
    return f"unit {int(j)}"


def pixel_name(j: int, width: int = 28) -> str:
    """``"pixel at row 5, col 14"`` for flat pixel index ``j``."""
    return f"pixel at row {int(j) // width}, col {int(j) % width}"


def place(blob, shape: tuple[int, int] = (28, 28), paren: bool = True) -> str:
    """Where a :class:`~digitlens.explain.units.Blob` sits: ``"the top right (rows 3–9, columns
    18–24)"`` (the part of the ``shape`` image its centre falls in, then its pixels);
    ``paren=False``: ``"the top right, rows 3–9, columns 18–24"``."""
    (r0, r1), (c0, c1) = blob.rows, blob.cols
    h, w = shape
    i = min(2, int(3 * ((r0 + r1) / 2 + 0.5) / h))
    j = min(2, int(3 * ((c0 + c1) / 2 + 0.5) / w))
    part = "centre" if (i, j) == (1, 1) else (REGIONS_H[j] if i == 1 else (
        REGIONS_V[i] if j == 1 else f"{REGIONS_V[i]} {REGIONS_H[j]}"))
    pixels = f"rows {r0}–{r1}, columns {c0}–{c1}"
    return f"the {part} ({pixels})" if paren else f"the {part}, {pixels}"


def blob_short(raises, lowers=None) -> str:
    """A unit in a few words, from its template's strongest windows: ``"raised by ink at the
    top right, rows 3–9, columns 18–24; lowered by ink at the left, rows 9–15, columns 0–6"``
    (what the contrast's list says after its number)."""
    parts = []
    if raises is not None:
        parts.append(f"raised by ink at {place(raises, paren=False)}")
    if lowers is not None:
        parts.append(f"lowered by ink at {place(lowers, paren=False)}")
    return "; ".join(parts)


def unit_reading(counts: list[tuple[int, int]], n: int, extra=None,
                 raises=None, lowers=None, box: tuple[int, int, int, int] | None = None) -> str:
    """What a contrast unit looks for, from measurements.

    ``counts``: the labels of its ``n`` most exciting training digits as ``[(label, count)]``;
    ``extra``: the window (a :class:`~digitlens.explain.units.Blob`) where those digits have the
    most ink beyond the average digit, or None; ``raises``/``lowers``: the windows of the unit's
    template around the learner's digit (its input gradient, or its weights) where ink raises
    or lowers it most; ``box``: the pixels it can see ``(r0, c0, r1, c1)`` (a position in a
    conv map).  Rows and columns are pixel positions on the 28×28 digit (0 at the top left).
    """
    out = []
    if box is not None:
        out.append(f"It sees only rows {box[0]}–{box[2]}, columns {box[1]}–{box[3]} of the "
                   f"image (the box).")
    if counts:
        top, k = counts[0]
        if k == n:
            mix = f"all {top}s"
        elif 2 * k > n:
            mix = f"mostly {top}s ({k} of {n})"
        else:
            mix = "a mix: " + ", ".join(f"{c}× {lab}" for lab, c in counts[:4])
        ink = f"; they have extra ink at {place(extra)}" if extra is not None else ""
        out.append(f"The {n} training digits that excite it most are {mix}{ink}.")
    if raises is not None and lowers is not None:
        out.append(f"On your digit, ink at {place(raises)} raises it most "
                   f"({raises.mean:+.2g} per fully inked pixel); ink at {place(lowers)} "
                   f"lowers it most ({lowers.mean:+.2g}).")
    elif raises is not None:
        out.append(f"On your digit, ink at {place(raises)} raises it most "
                   f"({raises.mean:+.2g} per fully inked pixel).")
    return " ".join(out)


def counterfactual(found: bool, a: int, b: int, delta: np.ndarray, p_b: float, pred: int,
                   max_pixels: int, radius: int) -> str:
    """The counterfactual's sentence; ``delta`` = new image − old image."""
    if found:
        n = int(np.count_nonzero(delta))
        add, rem = int(np.count_nonzero(delta > 0)), int(np.count_nonzero(delta < 0))
        parts = []
        if add:
            parts.append(f"adding ink to {pixels(add)} ({ink_amount(delta[delta > 0].sum())})")
        if rem:
            parts.append(f"removing ink from {pixels(rem)} "
                         f"({ink_amount(-delta[delta < 0].sum())})")
        return (f"Changing {pixels(n)} near the strokes — "
                f"{' and '.join(parts)} — turns this {a} into {a_digit(b)} (P({b}) = {p_b:.0%}).")
    return (f"No edit of up to {max_pixels} pixels within {radius} px of the strokes turns this "
            f"{a} into {a_digit(b)}; the best one found gives P({b}) = {p_b:.1%} (the model still "
            f"says {pred}).")


def plausible(pl, a: int) -> str:
    """The plausible edit's sentence (``pl``: a :class:`PlausibleEdit`, ``a`` the answer)."""
    ink = ink_amount(pl.ink)
    if pl.method == "strokes" and pl.found:
        added = sum(1 for s in pl.strokes if not s[4])
        erased = len(pl.strokes) - added
        what = " and ".join(p for p in (
            f"adding {added} pen stroke{'s' if added != 1 else ''}" if added else "",
            f"erasing {erased} stroke{'s' if erased != 1 else ''}" if erased else "") if p)
        return (f"An edit a person could make: {what} near the ink turns this {a} into "
                f"{a_digit(pl.b)}; it moves {ink}.")
    if pl.method == "morph" and pl.found:
        return (f"No few pen strokes did it; blending in {pl.t:.0%} of the nearest training "
                f"{pl.b} turns this {a} into {a_digit(pl.b)}; it moves {ink}.")
    return (f"No edit a person could make with a few pen strokes near the ink (nor blending in "
            f"the nearest training {pl.b}) turns this {a} into {a_digit(pl.b)}; the model still "
            f"says {pl.prediction}.")


def adversarial(cf, pl) -> str:
    """The plain statement that the smallest edit flips the network, not the digit."""
    small = cf.ink_added + cf.ink_removed
    if pl.found:
        than = (f"while an edit a person could make needs {pl.ink:.1f} — "
                f"{pl.ink / max(small, 1e-9):.0f} times as much")
    else:
        than = "while no edit a person could make with a few strokes does it at all"
    return (f"A few pixels can flip a network while a person sees no change. The smallest edit "
            f"changes only {pixels(cf.n_changed)} ({small:.1f} of ink) {than}. The edited "
            f"picture still looks like {a_digit(cf.a)} to people: the network's answer moved, "
            f"not the digit. Such an edit is called an adversarial example.")


def pixels(n: int) -> str:
    """``"1 pixel"``, ``"4 pixels"``."""
    return f"{int(n)} pixel{'' if int(n) == 1 else 's'}"


def ink_amount(total: float) -> str:
    """An amount of ink in words: 1 is one fully inked pixel."""
    return f"as much ink as {total:.1f} fully inked pixel{'' if round(total, 1) == 1 else 's'}"


# ------------------------------------------------------------------------------------ units
def first_layer(kind: str, *, no_hidden: bool, binary: bool = False, act=None, classes=(),
                top=None, n_filters: int = 0, kh: int = 0, kw: int = 0,
                similar=(), threshold: float = 0.6) -> list[str]:
    """The first layer's sentences: a dense layer (``act`` the units' activations for this
    image, ``top`` the most active one) or conv filters (``similar``: the units like a
    hand-made kernel, at a cosine of at least ``threshold``)."""
    if kind == "dense":
        if no_hidden and binary:
            return [f"This model has no hidden layer: its one weighted sum of the pixels is the "
                    f"log-odds that the digit is {a_digit(classes[1])} (here z = {act[0]:.3g}), "
                    f"and its weight image is the template (red: ink here raises z, blue: "
                    f"lowers it)."]
        if no_hidden:
            return [f"This model has no hidden layer: each digit's logit is one weighted sum of "
                    f"the pixels, and its weight image is its template (red: ink here raises the "
                    f"logit, blue: lowers it). Here digit {classes[int(top)]}'s sum is largest "
                    f"({act[top]:.3g})."]
        n_on = int(np.count_nonzero(act > 0))
        return [f"{n_on} of {act.size} first-layer units respond to this digit; each one's weight "
                f"image is its template (red: ink here raises it, blue: ink here lowers it).",
                "Each unit has 784 weights, so its template looks speckled: what counts is the "
                "sum of the weights under your ink, not any single weight. Rows and columns "
                "count pixels of the 28×28 grid from 0, row 0 at the top."]
    out = [f"{n_filters} filters of {kh}×{kw} slide over the image; each feature map shows where "
           f"that filter's pattern appears."]
    if similar:
        out.append(f"Filters like a hand-made detector (a cosine of at least {threshold:g} "
                   f"between their weights): " + ", ".join(
                       f"filter {u.unit} ≈ {'inverted ' if u.similarity < 0 else ''}"
                       f"{u.similar_kernel} (cos {abs(u.similarity):.2f})" for u in similar[:4])
                   + (f", and {len(similar) - 4} more (see the captions)." if len(similar) > 4
                      else "."))
    else:
        out.append(f"No filter is like a hand-made detector: none reaches a cosine of "
                   f"{threshold:g} with one; each caption names the closest.")
    return out


def nearest(nr, b: int) -> str:
    """The nearest training digits' sentence (``nr``: a :class:`Nearest`)."""
    labs = ", ".join(str(e.label) for e in nr.examples)
    space = ("In pixel space (this model has no hidden layer)" if nr.space == "pixels"
             else "In the last hidden layer's space (the numbers the output layer reads)")
    s = f"{space} your digit is closest to training digits labelled {labs}"
    if nr.contrast_examples:
        s += (f"; the closest {b} is at distance {nr.contrast_examples[0].distance:.3g} "
              f"(vs {nr.examples[0].distance:.3g} for the closest of all)")
    return s + "."


# ------------------------------------------------------------------------------ one unit
UNIT_WEIGHTS_CAPTION = "its 784 weights: ink on red pixels raises z, on blue pixels lowers it"
UNIT_GRADIENT_CAPTION = ("how its activation changes with a little more ink on each pixel of "
                         "this digit")
FILTER_SENTENCE = ("A filter: the same small grid of weights is applied at every position of the "
                   "image.")
DEEP_UNIT_SENTENCE = ("This unit reads other units, not pixels, so it has no fixed picture; this "
                      "is what it responds to around your digit.")
DEEP_UNIT_NO_IMAGE = ("This unit reads other units, not pixels; send the image to see what it "
                      "responds to around a digit.")


def filter_caption(kh: int, kw: int) -> str:
    return f"its {kh}×{kw} filter, slid over the image"


def pixel_unit(template: np.ndarray) -> str:
    return (f"This unit reads the pixels directly; it "
            f"{where_words(template) or 'has no clear preference'}.")


# ------------------------------------------------------------------------------------ trace
def active_units(index: int, fn: str, n_on: int, size: int) -> str:
    return f"layer {index} ({fn}): {n_on} of {size} units are active (above 0) for this digit."


def softmax(z_max: float, sum_exp: float, label: int, p: float) -> str:
    return (f"softmax: subtract the largest logit ({z_max:.3g}), exponentiate, divide by the sum "
            f"({sum_exp:.4g}): digit {label} gets {p:.1%}.")


# ------------------------------------------------------------- "I don't know" (explain/ood.py)
OOD_TITLE_FLAGGED = "This does not look like any digit I was trained on."


def ood(score, prediction: int, p: float) -> str:
    """The answer's note on how unusual the input is (``score``: an
    :class:`~digitlens.explain.ood.OODScore`), next to what softmax picked."""
    share = f"{score.test_flagged:.0%}"
    if score.flagged:
        return (f"{OOD_TITLE_FLAGGED} Its unusualness score is {score.score:.1f}, above "
                f"{score.threshold:.1f}, a score only {share} of the 1,000 test digits reach. "
                f"The network still had to answer: softmax turns the ten final sums into ten "
                f"probabilities that always add up to 1, so it must pick a digit. "
                f"“{p:.0%} sure of {prediction}” says only that {prediction} fits better than "
                f"the other nine digits, not that this is a digit at all.")
    return (f"This looks like the digits I was trained on: its unusualness score is "
            f"{score.score:.1f}, below {score.threshold:.1f} (only {share} of the 1,000 test "
            f"digits score higher).")


# ---------------------------------------------------- "can I trust this map?" (explain/trust.py)
def trust_completeness(method: str, c, bound: float) -> str:
    """Check 1: does the map add up to the change of the score?"""
    if c is None:
        return (f"Completeness: {METHOD_TITLES.get(method, method)} makes no promise about "
                f"what its values add up to, so there is nothing to check.")
    rel = c["relative_delta"]
    share = "" if rel is None else f" ({'under 0.1%' if rel < 1e-3 else f'{rel:.1%}'} of it)"
    verdict = "passes" if c["passes"] else f"fails: more than {bound:.0%} off"
    return (f"Completeness {verdict}. The map adds up to {c['sum']:.3f}; the score went from "
            f"{c['f_baseline']:.3f} on a blank board to {c['f_x']:.3f} on your digit, a change "
            f"of {c['change']:.3f}. The two differ by {c['delta']:.4f}{share}.")


def trust_randomisation(rows, bound: float) -> str:
    """Check 2: does the map change when the network's weights are replaced by random ones?"""
    bits = []
    for r in rows:
        rho = r["spearman"]
        what = "the last layer" if r["what"] == "last layer" else "every layer"
        bits.append(f"with {what} made random, {'–' if rho is None else f'{rho:.2f}'}")
    first = rows[0]["spearman"] if rows else None
    if first is None:
        verdict = "cannot be measured (the maps mark too few pixels)"
    elif rows[0]["passes"]:
        verdict = (f"passes: the map changes when what the network learned is destroyed "
                   f"(a rank correlation below {bound} with the last layer made random)")
    else:
        verdict = ("fails: the map hardly changes when what the network learned is destroyed, "
                   "so it shows the image more than the network")
    return (f"Sanity check {verdict}. Rank correlation with the original map (1 = the same "
            f"order of pixels, 0 = unrelated): " + "; ".join(bits) + ".")


def trust_deletion(target: int, d) -> str:
    """Check 3: does removing the map's top pixels first make the probability fall faster?"""
    area = d["area_between"]
    verdict = ("passes: the map's top pixels matter more than random ones" if area > 0 else
               "fails: removing the map's top pixels first is no faster than random")
    q = len(d["map_order"]) // 4  # a quarter of the ink removed
    return (f"Deletion curve {verdict}. Removing ink in the map's order, the probability of "
            f"{target} falls from {d['map_order'][0]:.1%} to {d['map_order'][q]:.1%} after a "
            f"quarter of the {d['n_ink']} inked pixels; in random order, to "
            f"{d['random_order'][q]:.1%}. Area between the curves: {area:.3f} (0 = no better "
            f"than random).")


# ------------------------------------------------------------- what a filter looks for (12B)
_LINE_WORDS = {0: "a horizontal line (—)", 45: "a line rising to the right (/)",
               90: "a vertical line (|)", 135: "a line falling to the right (\\)"}
_ARC_WORDS = {0: "to the right (like C)", 90: "upwards (like ∪)", 180: "to the left (like ⊃)",
              270: "downwards (like ∩)"}


def line_words(angle: int) -> str:
    """A line at ``angle`` in words: ``"a vertical line (|)"``, or ``"a line at 30°"``."""
    return _LINE_WORDS.get(int(angle) % 180, f"a line at {int(angle)}°")


def arc_words(opening: int) -> str:
    """Where an arc opens, in words: ``"to the left (like ⊃)"``, or ``"towards 30°"``."""
    return _ARC_WORDS.get(int(opening) % 360, f"towards {int(opening)}°")


def filter_looks(unit_name: str, conv: bool, size, curves: dict, like: dict | None,
                 threshold: float) -> list[str]:
    """What a unit looks for, from its measured response curves and its likeness to the
    hand-made kernels (``like`` None: not a first-layer filter)."""
    who = unit_name[0].upper() + unit_name[1:]
    a = "an" if str(size[0]).startswith("8") or size[0] in (11, 18) else "a"
    what = (f"{who} reads {a} {size[0]}×{size[1]} window of the digit" if conv
            else f"{who} reads the whole digit")
    ln, ar = curves["line"], curves["arc"]
    zl = dict(zip(ln["angles"], ln["z"]))
    za = dict(zip(ar["openings"], ar["z"]))
    worst = min(zl, key=lambda a: zl[a] if zl[a] is not None else 0.0)
    out = [what + ".",
           f"Of straight lines, its weighted sum z is largest for {line_words(ln['best'])} "
           f"(z = {zl[ln['best']]:.3g}) and smallest for {line_words(worst)} "
           f"(z = {zl[worst]:.3g}).",
           f"Of arcs of radius {curves['radius']:g} pixels, it prefers one that opens "
           f"{arc_words(ar['best'])} (z = {za[ar['best']]:.3g})."]
    if like and like.get("best"):
        c = like["cosine"]
        if like["like"]:
            inv = "an inverted " if c < 0 else "the "
            out.append(f"Its weights are like {inv}hand-made “{like['like']}” kernel: cosine "
                       f"{c:.2f}, at least the {threshold:g} we require.")
        else:
            out.append(f"The closest hand-made kernel is “{like['best']}”, at a cosine of "
                       f"{c:.2f}: below {threshold:g}, so we do not call it like any of them.")
    return out
