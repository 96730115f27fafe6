/* Drawing one explanation: the Explanation JSON the server sends back (see
 * digitlens/explain/result.py), panel by panel — the answer and its probabilities,
 * 1. pre-processing (preprocess.js), 2. the network (network.js), 3. attribution maps,
 * 4. the contrast (contrast.js), 5. units and filters (units.js), 6. nearest training digits.
 * Nothing is computed here but colours and layout. */
import { grayImage, mapCanvas, scaleLegend, signedMap } from "./colours.js";
import { renderContrast } from "./contrast.js";
import { $, buildSeg, el, fmt, pct } from "./dom.js";
import { scheduleUpdate } from "./live.js";
import { renderNetwork } from "./network.js";
import { renderSteps } from "./preprocess.js";
import { state } from "./state.js";
import { renderUnits } from "./units.js";

const METHODS = [
  ["saliency", "gradient"],
  ["gradient_x_input", "gradient × input"],
  ["integrated_gradients", "integrated gradients"],
  ["occlusion", "occlusion"],
];
const METHOD_TEXT = {
  saliency: "How much the digit's score would change if this one pixel got a little more ink (the gradient). It shows where the network is sensitive, whether or not there is ink there.",
  gradient_x_input: "Gradient times the pixel's ink: how much each inked pixel contributed. For the logistic model this is exactly the pixel's term w·x in the weighted sum.",
  integrated_gradients: "Fades your digit in from a blank board and adds up the gradients along the way, so the map's total equals the score of your digit minus the score of a blank board.",
  occlusion: "Covers a small patch at a time and records how much the digit's score drops — slow but model-agnostic: no gradients involved.",
};
const ALL_PANELS = ["panel-steps", "panel-network", "panel-attr", "panel-contrast", "panel-filters", "panel-nearest"];
// the panels a live update (while drawing) does not refresh
const SLOW_PANELS = ["panel-attr", "panel-contrast", "panel-filters", "panel-nearest"];

/** Say what went wrong; "no ink" is not an error, just nothing to read yet. */
export function showError(err) {
  const friendly = err.code === "no_ink";
  state.expl = null;
  $("pred-digit").textContent = friendly ? "·" : "!";
  $("pred-sure").textContent = friendly ? "Nothing to read yet." : "Something went wrong.";
  const m = $("message");
  m.textContent = err.message; m.className = "message" + (friendly ? "" : " error");
  m.dataset.code = err.code || "";
  for (const id of ALL_PANELS) $(id).classList.add("stale");
  renderProbs(null);
}

/** Draw an Explanation; a live one keeps the last full one's slow panels (faded). */
export function render(expl) {
  const live = expl.detail === "live";
  // a layer that passes its input through (flatten, dropout) names the layer whose numbers it repeats
  const layers = (expl.trace && expl.trace.layers) || [];
  for (const L of layers) {
    if (L.values == null && L.values_same_as != null) {
      const src = layers.find((x) => x.index === L.values_same_as);
      if (src) L.values = src.values;
    }
  }
  if (live && state.expl && state.expl.model === expl.model) {
    // keep the last full explanation's slow parts on screen (faded) until the next one
    expl = { ...state.expl, ...expl, attributions: state.expl.attributions, contrast: state.expl.contrast,
      counterfactual: state.expl.counterfactual, units: state.expl.units, nearest: state.expl.nearest,
      examples: state.expl.examples, stale: true };
  }
  state.expl = expl;
  for (const id of ["panel-steps", "panel-network"]) $(id).classList.remove("stale");
  for (const id of SLOW_PANELS) $(id).classList.toggle("stale", live);
  const m = $("message");
  m.textContent = (expl.notes || []).join(" "); m.className = "message"; m.dataset.code = "";
  renderAnswer(expl);
  renderSteps(expl);
  renderNetwork(expl);
  if (!live || !expl.stale) {
    renderAttributions(expl);
    renderContrast(expl);
    renderUnits(expl);
    // a model with no hidden layer (logistic): its first layer is the output, not a hidden layer
    // (units.js titles the panel "What the first hidden layer looks for" for every dense model)
    if (expl.units && expl.units.is_output) $("filters-title").textContent = "The weights of each digit's sum (this model has no hidden layer)";
    renderNearest(expl);
  }
  document.body.dataset.prediction = String(expl.prediction);
  document.body.dataset.model = expl.model;
  document.body.dataset.detail = live ? "live" : "full";
}

function renderAnswer(expl) {
  const p = expl.probabilities, top = Math.max(...p);
  $("pred-digit").textContent = expl.prediction;
  const second = expl.classes.indexOf(expl.runner_up);
  $("pred-sure").textContent = `${pct(top)} sure` + (second >= 0 ? ` · next: ${expl.runner_up} (${pct(p[second])})` : "");
  renderProbs(expl);
}

/** Ten bars, one per digit (empty before the first answer). */
export function renderProbs(expl) {
  const box = $("probs");
  box.replaceChildren();
  const classes = expl ? expl.classes : [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const vs = expl && expl.contrast ? expl.contrast.b : null;
  classes.forEach((c, i) => {
    const v = expl ? expl.probabilities[i] : 0;
    const cls = "prob" + (expl && c === expl.prediction ? " top" : "") + (c === vs ? " vs" : "");
    box.append(el("div", { class: cls, role: "listitem", "aria-label": `${c}: ${expl ? pct(v) : "no answer yet"}` },
      el("span", { class: "pct", text: expl && v >= 0.005 ? `${Math.round(100 * v)}%` : "" }),
      el("span", { class: "track" }, el("span", { class: "fill", style: `height:${(100 * v).toFixed(2)}%` })),
      el("span", { class: "d", text: String(c) })));
  });
}

// ---- 3. attributions
const currentTarget = () => state.target !== null && state.expl && state.expl.classes.includes(state.target) ? state.target : state.expl.prediction;

/** What one attribution map says: the method, its total, and for integrated gradients the completeness check. */
function attributionText(a, target) {
  const meta = a.meta || {};
  const parts = [el("p", {}, el("strong", { text: `${METHODS.find(([m]) => m === state.method)[1]} for ${target}` }), ": " + METHOD_TEXT[state.method])];
  // what the values add up to, and to what — only integrated gradients and a linear model's
  // gradient × input have a total that means something (the server says which: meta.sum_note)
  if (meta.sum_note) parts.push(el("p", { class: "sum-note", "data-adds-up": meta.adds_up_to == null ? "no" : "yes", text: meta.sum_note }));
  parts.push(scaleLegend(a.scale, `pushes ${target} down`, `pushes ${target} up`));
  if (meta.patch) parts.push(el("p", { class: "small muted", text: `patch ${meta.patch}×${meta.patch}, stride ${meta.stride}` }));
  return parts;
}

function renderAttributions(expl) {
  const attrs = expl.attributions || {};
  const methods = METHODS.filter(([m]) => attrs[m]);
  if (!methods.some(([m]) => m === state.method) && methods.length) state.method = methods[0][0];
  // a map the last answer already holds is drawn at once; any other is asked for
  buildSeg($("attr-methods"), "method", METHODS.map(([m, l]) => [m, l]), state.method, (m) => {
    state.method = m; if (attrs[m] && attrs[m][String(currentTarget())]) renderAttributions(state.expl); else scheduleUpdate(0);
  });
  const target = currentTarget();
  buildSeg($("attr-target"), "target", expl.classes.map((c) => [c, String(c)]), target, (c) => {
    state.target = c;
    const have = state.expl.attributions[state.method];
    if (have && have[String(c)]) renderAttributions(state.expl); else scheduleUpdate(0);
  }, (c) => c === expl.prediction ? "is-pred" : "");
  const a = attrs[state.method] && attrs[state.method][String(target)];
  const text = $("attr-text");
  if (!a) {
    text.replaceChildren(el("p", { class: "muted", text: "computing…" }));
    return;
  }
  signedMap($("attr-map"), a.map, expl.image, a.scale && a.scale.limit);
  text.replaceChildren(...attributionText(a, target));
}

// ---- 6. nearest training examples
function renderNearest(expl) {
  const box = $("nearest"), n = expl.nearest;
  box.replaceChildren();
  if (!n) { box.append(el("p", { class: "muted", text: "Not available for this model." })); return; }
  const images = new Map((expl.examples || []).map((e) => [e.index, e]));
  const strip = (items, title) => {
    const ex = el("div", { class: "examples" });
    for (const e of items) {
      const c = mapCanvas("map mid", `training digit ${e.label}`);
      const img = images.get(e.index);
      if (img) grayImage(c, img.image);
      ex.append(el("figure", {}, c, el("figcaption", { text: `${e.label} · distance ${fmt(e.distance, 1)}` })));
    }
    return el("div", {}, el("h3", { text: title }), ex);
  };
  box.append(strip(n.examples, `Your digit looks to the network like these training digits`));
  if (n.contrast_examples && n.contrast_examples.length) box.append(strip(n.contrast_examples, `…and the closest ${expl.contrast ? expl.contrast.b : "other"}s`));
}
