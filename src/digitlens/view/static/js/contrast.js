/* 4. Why this digit and not another: the gap between two final sums, the ink and the units that
 * argue for each side, and the counterfactual (the smallest edit the server found that changes
 * the answer). */
import { lerp, grayImage, mapCanvas, paint, scaleLegend, signedMap } from "./colours.js";
import { $, buildSeg, el, fmt, pct } from "./dom.js";
import { scheduleUpdate } from "./live.js";
import { state } from "./state.js";
import { showUnit } from "./units.js";

export function renderContrast(expl) {
  const c = expl.contrast;
  const vsItems = expl.classes.filter((d) => d !== expl.prediction).map((d) => [d, String(d)]);
  buildSeg($("vs-digits"), "vs", vsItems, c ? c.b : "", (d) => { state.vs = d; scheduleUpdate(0); });
  $("why-a").textContent = expl.prediction;
  $("why-b").textContent = c ? c.b : "?";
  if (!c) {
    $("gap-sentence").textContent = "No contrast for this model.";
    $("unit-terms").replaceChildren(); $("counterfactual").hidden = true;
    return;
  }
  $("gap-caption").textContent = `ink arguing for ${c.a} (red) and for ${c.b} (blue)`;
  if (c.pixels) signedMap($("gap-map"), c.pixels.map, expl.image, c.pixels.scale && c.pixels.scale.limit);
  const legend = $("gap-legend");
  if (legend) legend.replaceChildren(c.pixels ? scaleLegend(c.pixels.scale, `for ${c.b}`, `for ${c.a}`) : "",
    c.pixels && c.pixels.meta.sum_note ? el("p", { class: "small sum-note", text: c.pixels.meta.sum_note }) : "");
  const words = (c.sentences || []).join(" ");
  $("gap-sentence").replaceChildren(el("span", { text: `The network's final sum for ${c.a} is ${fmt(c.logit_a, 2)} and for ${c.b} is ${fmt(c.logit_b, 2)}: ${c.a} wins by ` }), el("strong", { text: fmt(c.gap, 2) }),
    el("span", { text: `. Red ink on the map pushes towards ${c.a}, blue ink towards ${c.b}.` }),
    words ? el("details", { class: "words" }, el("summary", { text: "Read it in words" }), el("p", { text: words })) : "");
  renderSuggestions(expl, c);
  renderTerms(expl, c);
  renderCounterfactual(expl);
}

/** A digit (rows in [0, 1]) in gray with the box (r0, c0, r1, c1) a conv position sees, in amber. */
function boxImage(canvas, image, box) {
  return paint(canvas, image, (v, x, y) => {
    const edge = box && x >= box[1] && x <= box[3] && y >= box[0] && y <= box[2] &&
      (x === box[1] || x === box[3] || y === box[0] || y === box[2]);
    if (edge) return [245, 158, 11];
    const g = 255 * Math.max(0, Math.min(1, v)); return [g, g, g];
  });
}

/** A unit's picture with the two windows its sentence names outlined: where ink raises it
 * most (orange) and lowers it most (blue); `side` is the picture's size in pixels (28). */
function blobFrame(cv, t, side) {
  const frame = el("div", { class: "wframe blob-frame" }, cv);
  for (const [b, cls, what] of [[t.raises, "up", "raises"], [t.lowers, "down", "lowers"]]) {
    if (!b) continue;
    const [r0, c0, r1, c1] = b, pc = (v) => `${(100 * v / side).toFixed(2)}%`;
    frame.append(el("span", { class: `blob ${cls}`, title: `ink here ${what} it most (rows ${r0}–${r1}, columns ${c0}–${c1})`,
      style: `left:${pc(c0)}; top:${pc(r0)}; width:${pc(c1 - c0 + 1)}; height:${pc(r1 - r0 + 1)}` }));
  }
  return frame;
}

/** One unit (or conv-map position) of a contrast: what it looks for, what your digit gives it,
 * its share of the gap, and a click that opens it in the unit view. */
function termCard(expl, c, t, colour, m) {
  const images = new Map((expl.examples || []).map((e) => [e.index, e]));
  const pics = el("div", { class: "term-pics" });
  if (t.box) {
    pics.append(el("figure", {}, boxImage(mapCanvas("map small", `the pixels ${t.name} sees`), expl.image, t.box), el("figcaption", { text: "what it sees" })));
  } else if (t.template) {
    const cv = mapCanvas("map small", `what ${t.name} responds to`);
    signedMap(cv, t.template);
    pics.append(el("figure", {}, blobFrame(cv, t, t.template.length),
      el("figcaption", { text: t.template_kind === "weights" ? "its weights" : "responds to" })));
  }
  const tops = t.patches && t.patches.length ? t.patches.map((p, i) => [p, (images.get(t.top_examples[i]) || {}).label])
    : (t.top_examples || []).slice(0, 3).map((i) => images.get(i)).filter(Boolean).map((e) => [e.image, e.label]);
  for (const [img, label] of tops) {
    const cv = mapCanvas("map tiny", `a training ${label} that excites it`);
    grayImage(cv, img);
    pics.append(el("figure", {}, cv, el("figcaption", { text: label === undefined ? "" : String(label) })));
  }
  const side = t.contribution >= 0 ? c.a : c.b;
  const nums = el("p", { class: "term-nums" },
    el("span", { text: `your digit gives it ${fmt(t.h, 3)} × weight difference ${t.weight_diff >= 0 ? "+" : ""}${fmt(t.weight_diff, 3)} = ` }),
    el("strong", { text: `${t.contribution >= 0 ? "+" : ""}${fmt(t.contribution, 3)}` }), el("span", { text: ` (for ${side})` }));
  const head = el("div", { class: "term-head" }, el("span", { class: "term-name", text: t.name }),
    el("span", { class: "bar", style: `width:${(60 * Math.abs(t.contribution) / m).toFixed(1)}px; background:${colour}` }));
  const openable = t.open_layer !== null && t.open_layer !== undefined;
  const card = el("div", { class: "term" + (openable ? " openable" : ""), "data-unit": String(t.unit),
    tabindex: openable ? "0" : null, role: openable ? "button" : null,
    "aria-label": openable ? `${t.name}: ${fmt(t.contribution, 3)} for ${side}; open it in the unit view` : null },
  head, pics, nums, t.sentence ? el("p", { class: "small term-says", text: t.sentence }) : null);
  if (openable) {
    const open = () => showUnit(t.open_layer, t.open_unit, true);
    card.addEventListener("click", open);
    card.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(); } });
  }
  return card;
}

/** The final layer as a logistic regression on its features: weight difference × feature. */
function coefficientTable(c) {
  const u = c.units;
  if (!u.table || !u.table.length) return null;
  const what = u.kind === "pixels" ? "pixel" : "hidden unit";
  const rows = u.table.map((r) => el("tr", {}, el("td", { text: r.name }), el("td", { text: fmt(r.feature, 3) }),
    el("td", { text: `${r.weight_diff >= 0 ? "+" : ""}${fmt(r.weight_diff, 3)}` }),
    el("td", { class: r.product >= 0 ? "pos" : "neg", text: `${r.product >= 0 ? "+" : ""}${fmt(r.product, 3)}` })));
  if (u.table_rest !== null && u.table_rest !== undefined && u.table.length < u.n_units)
    rows.push(el("tr", { class: "muted" }, el("td", { text: `the other ${u.n_units - u.table.length} ${what}s` }), el("td"), el("td"), el("td", { text: `${u.table_rest >= 0 ? "+" : ""}${fmt(u.table_rest, 3)}` })));
  rows.push(el("tr", { class: "muted" }, el("td", { text: `bias difference b${c.a} − b${c.b}` }), el("td"), el("td"), el("td", { text: `${u.bias_term >= 0 ? "+" : ""}${fmt(u.bias_term, 3)}` })));
  rows.push(el("tr", { class: "total" }, el("td", { text: `gap z${c.a} − z${c.b}` }), el("td"), el("td"), el("td", { text: fmt(u.gap, 3) })));
  return el("details", { class: "coef", open: true },
    el("summary", { text: `The last layer is a logistic regression on ${u.kind === "pixels" ? "the pixels" : `its ${u.n_units} hidden features`}: its coefficient table` }),
    el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: what }), el("th", { text: "feature (your digit)" }),
      el("th", { text: `weight difference w${c.a} − w${c.b}` }), el("th", { text: "product" }))), el("tbody", {}, ...rows)));
}

/** The pixels or last-layer units that argue for each side, with their exact contributions. */
function renderTerms(expl, c) {
  const terms = $("unit-terms");
  terms.replaceChildren();
  if (!c.units) return;
  const table = coefficientTable(c);
  if (c.units.kind === "pixels") { if (table) terms.append(el("div", { class: "span" }, table)); return; }
  if (!(c.units.for_a.length || c.units.for_b.length)) return;
  const pooled = c.units.for_a.concat(c.units.for_b).some((t) => t.box);
  const what = pooled ? "positions in the filters' pooled maps" : "units of the last hidden layer";
  const all = [...c.units.for_a, ...c.units.for_b];
  const m = Math.max(1e-9, ...all.map((t) => Math.abs(t.contribution)));
  const list = (items, who, colour) => el("div", {}, el("h4", { text: `${what} arguing for ${who}` }),
    ...items.slice(0, 5).map((t) => termCard(expl, c, t, colour, m)));
  if (all.some((t) => t.raises || t.lowers))
    terms.append(el("p", { class: "small muted span blob-key" }, "In each “responds to” picture, red pixels are where more ink would raise the unit on your digit, blue where it would lower it; ",
      el("span", { class: "blob-chip up" }), " the window where ink raises it most, ", el("span", { class: "blob-chip down" }), " where ink lowers it most (the rows and columns its sentence names; row 0 is the top)."));
  terms.append(list(c.units.for_a, c.a, "var(--pos)"), list(c.units.for_b, c.b, "var(--neg)"));
  terms.append(el("p", { class: "small muted span", text: `Exact: the ${c.units.n_units} contributions (what your digit gives each one × its weight difference) plus the bias difference ${fmt(c.units.bias_term, 3)} add up to the gap ${fmt(c.units.gap, 3)}. Click one to open it.` }));
  if (table) terms.append(el("div", { class: "span" }, table));
}

/** When the runner-up is hardly a rival, the digits usually confused with this one, to choose from. */
function renderSuggestions(expl, c) {
  const box = $("vs-suggest");
  if (!box) return;
  box.replaceChildren();
  if (!c.suggestions || !c.suggestions.length) return;
  // a digit never mixed up with this one is not "often confused": say so, and drop its "0×"
  const any = c.suggestions.some((s) => s.times > 0);
  const often = any ? `Digits this model often confuses with ${c.a} on the test digits:`
    : `This model never mixed up ${c.a} with another digit on the test digits; other digits to compare it with:`;
  const lead = c.reason === "usual confusion" ? `The runner-up has under 5%, so this compares with ${c.b}. ${often}` : often;
  box.append(el("span", { class: "small", text: lead + " " }));
  for (const s of c.suggestions) {
    const b = el("button", { type: "button", class: "suggest" + (s.digit === c.b ? " on" : ""), "data-digit": String(s.digit),
      text: s.times > 0 ? `${s.digit} (${s.times}×)` : String(s.digit),
      title: s.times > 0 ? `why ${c.a} and not ${s.digit}? (${s.times} mix-ups on the test digits)` : `why ${c.a} and not ${s.digit}? (never mixed up on the test digits)` });
    b.addEventListener("click", () => { state.vs = s.digit; scheduleUpdate(0); });
    box.append(b);
  }
}

function renderCounterfactual(expl) {
  const cf = expl.counterfactual, box = $("counterfactual");
  box.hidden = !cf;
  if (!cf) return;
  $("cf-b").textContent = cf.b;
  grayImage($("cf-before"), expl.image);
  paintEdit($("cf-delta"), cf.delta, expl.image);
  grayImage($("cf-after"), cf.image);
  const pb = cf.probabilities[expl.classes.indexOf(cf.b)];
  $("cf-after-caption").textContent = `now reads ${cf.prediction} (${cf.b}: ${pct(pb)})`;
  $("cf-sentence").textContent = cf.sentence;
  renderPlausible(expl, cf);
}

/** Green: ink added, red: ink removed, over the digit in dark gray. */
function paintEdit(canvas, delta, image) {
  return paint(canvas, delta, (v, x, y) => {
    const ink = 40 * image[y][x];
    if (v > 0) return [lerp(20 + ink, 34, Math.min(1, 3 * v)), lerp(20 + ink, 197, Math.min(1, 3 * v)), lerp(20 + ink, 94, Math.min(1, 3 * v))];
    if (v < 0) return [lerp(20 + ink, 239, Math.min(1, -3 * v)), lerp(20 + ink, 68, Math.min(1, -3 * v)), lerp(20 + ink, 68, Math.min(1, -3 * v))];
    return [20 + ink, 20 + ink, 20 + ink];
  });
}

/** Next to the smallest edit, one a person could make (pen strokes near the ink, or the nearest
 * training digit blended in), its cost, and — when the smallest edit is tiny and the person's
 * edit much larger — the plain statement that the small one is an adversarial example. */
function renderPlausible(expl, cf) {
  let box = $("cf-plausible");
  if (!box) { box = el("div", { id: "cf-plausible", class: "cf-plausible" }); $("counterfactual").append(box); }
  box.replaceChildren();
  const pl = cf.plausible;
  if (!pl) return;
  const small = (cf.ink_added || 0) + (cf.ink_removed || 0);
  box.append(el("h4", { text: `An edit a person could make` }));
  if (pl.method !== "none") {
    const d = mapCanvas("map", "the person-like edit"), after = mapCanvas("map", "the digit after it");
    paintEdit(d, pl.delta, expl.image); grayImage(after, pl.image);
    const pb = pl.probabilities[expl.classes.indexOf(pl.b)];
    box.append(el("div", { class: "cf-row" },
      el("figure", {}, d, el("figcaption", { text: pl.method === "strokes" ? "pen strokes" : "blended in" })),
      el("span", { class: "arrow", "aria-hidden": "true", text: "→" }),
      el("figure", {}, after, el("figcaption", { text: `reads ${pl.prediction} (${pl.b}: ${pct(pb)})` })),
      el("dl", { class: "cf-costs" },
        el("dt", { text: "ink moved by the smallest edit" }), el("dd", { text: fmt(small, 1) }),
        el("dt", { text: "ink moved by the person's edit" }), el("dd", { class: "pl-ink", text: fmt(pl.ink, 1) }))));
  }
  box.append(el("p", { class: "pl-sentence", text: pl.sentence }));
  if (cf.looks_unchanged && cf.note) {
    box.append(el("div", { class: "cf-warning", role: "note" }, el("p", { text: cf.note }),
      el("details", {}, el("summary", { text: "What is an adversarial example?" }),
        el("p", { text: "A network adds up thousands of small pixel weights. Nudging many pixels a little, each in the direction its weight prefers, adds up to a big change of the sum, even though the picture barely changes. People read strokes, not sums, so they see the same digit." })),
      el("p", {}, el("a", { class: "adv-link", href: "/static/adversarial.html", target: "_blank", rel: "noopener", text: "Read the short note on adversarial examples" }), " (opens in a new tab).")));
  }
}
