/* One unit's details (the panel under the network), and 5. the filters panel: what the first
 * hidden layer, or each convolution filter, looks for.
 *
 * A unit's numbers for this image come from the trace; what it looks for (its weights as a
 * picture, the training digits that excite it most) from POST /api/models/<model>/units/<layer>/<unit>.
 */
import { postJSON } from "./api.js";
import { actMap, grayImage, mapCanvas, signedMap } from "./colours.js";
import { activationName, networkColumns } from "./columns.js";
import { $, el, fmt, pct } from "./dom.js";
import { state } from "./state.js";
import { showWorked } from "./worked.js";

let unitInfo = null;  // {key, info}: the last unit details fetched

/** The title of a unit's panel: its name for people (digitlens/explain/names.py), never a list
 * position ("filter 7 of convolution 2", "unit 44 of hidden layer 1"). */
export function unitTitle(col, expl, layer, unit) {
  const names = expl.layer_names || [];
  const n = names[layer];
  if (col && col.kind === "output") return expl.classes.length === (n ? n.n_units : 10) ? `The output unit for the digit ${expl.classes[unit]}` : "The output unit";
  const what = n && n.type === "conv2d" ? "Filter" : "Unit";
  return n ? `${what} ${unit} of ${n.short}` : `${what} ${unit}`;
}

/** Open a unit (or a filter, at position `at` of its feature map): select it on the network,
 * show its details and its worked sum. Other views (the tour, the filters) call this. */
export function openUnit(layer, unit, { at = null } = {}) {
  return showUnit(layer, unit, true, true, at);
}

/** A filter: the same weighted sum at every position; its feature map holds all the results. */
function filterNumbers(expl, layer, unit, info, fn) {
  const view = expl.units && expl.units.kind === "conv" && expl.units.layer === layer ? expl.units.units.find((u) => u.unit === unit) : null;
  const k = info.template ? `${info.template.length}×${info.template[0].length}` : "small";
  const out = [el("div", { class: "eq", text: `at every position: z = Σ (${k} weights × pixels under them) + b` }),
    el("dl", {},
      el("dt", { text: "bias b" }), el("dd", { text: info.bias !== undefined ? fmt(info.bias, 3) : "–" }),
      el("dt", { text: `strongest response on your digit (max of ${fn}(z))` }), el("dd", { text: view ? fmt(view.activation, 3) : "–" }))];
  if (view && view.feature_map) {
    const f = mapCanvas("map mid", "its feature map for your digit");
    actMap(f, view.feature_map);
    out.push(el("figure", { class: "inline" }, f, el("figcaption", { text: "its feature map for your digit: bright where the pattern is" })));
  }
  return out;
}

/** A dense unit: its weighted sum, bias, z and activation (or probability, for an output). */
function denseNumbers(col, expl, unit, info, fn) {
  const isOut = col && col.kind === "output";
  const z = col && col.z ? col.z[unit] : null, a = col && col.values ? col.values[unit] : null;
  const dl = el("dl", {},
    el("dt", { text: "weighted sum of its inputs (without bias)" }), el("dd", { text: info.bias !== undefined && z !== null ? fmt(z - info.bias, 3) : "–" }),
    el("dt", { text: "bias b" }), el("dd", { text: info.bias !== undefined ? fmt(info.bias, 3) : "–" }),
    el("dt", { text: "z (the sum plus the bias)" }), el("dd", { text: fmt(z, 3) }),
    isOut ? el("dt", { text: "probability after softmax" }) : el("dt", { text: `activation a = ${fn}(z)` }),
    el("dd", { text: isOut ? pct(expl.probabilities[unit]) : fmt(a, 3) }));
  return [el("div", { class: "eq", text: `z = Σ wᵢ·aᵢ + b = ${fmt(z, 3)}` }), dl];
}

/** What the unit looks for: its template and the training digits that excite it most. */
function unitPictures(info) {
  const right = el("div", {});
  if (info.template) {
    const c = mapCanvas("map mid", "the unit's template");
    signedMap(c, info.template);
    const cap = info.template_caption || "its weights: red pixels raise z, blue lower it";
    // the colours always get their meaning next to the picture
    const key = /red/.test(cap) ? "" : " (red: more ink there raises it; blue: lowers it; white: no effect)";
    right.append(el("figure", {}, c, el("figcaption", { text: cap + key })));
  }
  if (info.top_examples && info.top_examples.length) {
    const ex = el("div", { class: "examples" });
    for (const t of info.top_examples.slice(0, 8)) {
      const c = mapCanvas("map small", `training digit ${t.label}`);
      grayImage(c, t.image);
      ex.append(el("figure", {}, c, el("figcaption", { text: `${t.label} · ${fmt(t.activation, 2)}` })));
    }
    right.append(el("p", { class: "small muted", text: "training digits that excite it most:" }), ex);
  }
  return right;
}

/** Details of one unit: this image's numbers from the trace, and what the unit looks for from the server. */
export async function showUnit(layer, unit, focus, refetch = true, at = null) {
  if (at === null && state.selected && state.selected.layer === layer && state.selected.unit === unit) at = state.selected.at || null;
  state.selected = { layer, unit, at };
  showWorked(layer, unit, at, openUnit);
  const expl = state.expl;
  if (!expl) return;
  document.querySelectorAll("#network .sel").forEach((u) => u.classList.remove("sel"));
  const btn = document.getElementById(`unit-${layer}-${unit}`);
  if (btn) btn.classList.add("sel");
  const col = networkColumns(expl).find((c) => c.layer === layer);
  const box = $("unit-detail");
  box.hidden = false;
  const title = unitTitle(col, expl, layer, unit);
  const key = `${expl.model}/${layer}/${unit}`;
  let info = null;
  if (!refetch && unitInfo && unitInfo.key === key) info = unitInfo.info;
  else {
    box.replaceChildren(el("h3", { text: title }), el("p", { class: "muted", text: "loading what this unit looks for…" }));
    try {
      info = await postJSON(`/api/models/${encodeURIComponent(expl.model)}/units/${layer}/${unit}`, { image: expl.image });
    } catch (err) { info = { error: err.message }; }
    unitInfo = { key, info };
  }
  if (!state.selected || state.selected.layer !== layer || state.selected.unit !== unit || state.expl !== expl) return;
  const fn = activationName(col) || "none";
  const left = el("div", {}, ...(col && col.kind === "maps" ? filterNumbers(expl, layer, unit, info, fn)
    : denseNumbers(col, expl, unit, info, fn)));
  if (info.sentence) left.append(el("p", { class: "small", text: info.sentence }));
  if (info.error) left.append(el("p", { class: "small muted", text: info.error }));
  box.replaceChildren(el("h3", { text: title }), left, unitPictures(info));
  if (focus) box.scrollIntoView({ block: "nearest", behavior: "smooth" });
}

/** A learned filter's likeness to a hand-made kernel, in words: "like a vertical edge (0.83)"
 * only at |cosine| >= the stated threshold, else "closest: … (0.29), below 0.6". */
export function likeCaption(v) {
  if (v.similarity === null || v.similarity === undefined || !(v.closest_kernel || v.similar_kernel)) return v.where || "";
  const t = v.like_threshold != null ? v.like_threshold : 0.6, a = Math.abs(v.similarity);
  // two decimals, or three when two would round onto the threshold (0.598 is not "0.60, below 0.6")
  const cos = (+a.toFixed(2) >= t) === (a >= t) ? a.toFixed(2) : a.toFixed(3);
  const inv = v.similarity < 0 ? "inverted " : "";
  if (v.similar_kernel) return `like ${inv ? "an " + inv : /^[aeiou]/i.test(v.similar_kernel) ? "an " : "a "}${v.similar_kernel} (${cos})`;
  return `closest: ${inv}${v.closest_kernel} (${cos}), below ${fmt(t, 1)}`;
}

/** One learned filter (or first-layer unit): its template, its feature map, and a caption. */
function filterCard(u, v, conv) {
  const t = mapCanvas("map small", `filter ${v.unit}`);
  signedMap(t, v.template);
  const pair = el("div", { class: "pair" }, t);
  if (v.feature_map) { const f = mapCanvas("map small", `feature map ${v.unit}`); actMap(f, v.feature_map); pair.append(f); }
  const cap = `${conv ? "filter" : "unit"} ${v.unit} · ${conv && v.activation <= 0 ? "silent on your digit" : (conv ? "max " : "a = ") + fmt(v.activation, 2)}`;
  const sub = likeCaption(v);
  const card = el("div", { class: "filter", tabindex: "0", role: "button", title: sub, "aria-label": `${cap}${sub ? "; " + sub : ""}; show details` }, pair,
    el("span", { class: "cap", text: cap }), sub ? el("span", { class: "cap sub", text: sub }) : null);
  const open = () => showUnit(u.layer, v.unit, true);
  card.addEventListener("click", open);
  card.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(); } });
  return card;
}

// ---- 5. units / filters
export function renderUnits(expl) {
  const u = expl.units, box = $("filters"), hand = $("hand-kernels");
  box.replaceChildren(); hand.replaceChildren();
  if (!u) { $("filters-lead").textContent = "This model has no hidden units to look at."; return; }
  const conv = u.kind === "conv";
  $("filters-title").textContent = conv ? "Filters, and what they see in your digit" : "What the first hidden layer looks for";
  $("filters-lead").textContent = (u.sentences || []).join(" ") || (conv
    ? "Each filter is a small grid of weights slid over the image; its feature map lights up wherever the stroke under it matches."
    : "Each unit's 784 weights drawn as a picture: red pixels raise its sum when inked, blue lower it.");
  for (const v of u.units) box.append(filterCard(u, v, conv));
  if (u.hand_kernels && u.hand_kernels.length) {
    const row = el("div", { class: "filters" });
    for (const k of u.hand_kernels) {
      const kc = mapCanvas("map small", `hand-designed ${k.name}`); signedMap(kc, k.kernel);
      const rc = mapCanvas("map small", `response of ${k.name}`); actMap(rc, k.response);
      row.append(el("div", { class: "filter" }, el("div", { class: "pair" }, kc, rc), el("span", { class: "cap", text: k.name })));
    }
    const lead = conv ? null : "These small kernels were written by hand — a horizontal edge, a vertical edge, two diagonals, the top of a loop — and slid over your digit. This model's first layer has no small filters (each unit reads all 784 pixels), so they are here to show what an edge or curve detector does; a convolutional model (cnn) learns small filters of its own, and its panel compares them with these.";
    hand.append(el("h3", { text: "Hand-designed detectors on the same digit" }),
      lead ? el("p", { class: "lead", text: lead }) : el("p", { class: "lead", text: `These kernels were written by hand — a horizontal edge, a vertical edge, two diagonals, the top of a loop. Compare their responses with the learned filters above: a learned filter is called “like” one of them only when the cosine between their weights is at least ${fmt((u.units.find((x) => x.like_threshold != null) || { like_threshold: 0.6 }).like_threshold, 1)}; the others name the closest one and how far below that they are.` }), row);
  }
}
