/* The guided tour: seven steps through the page with the learner's own digit, in the order a
 * learner asks — pixels, one weighted sum, a hidden layer, a conv filter and its window, layer 2
 * and curves, why this digit and not another, how the weights were learned.
 *
 * Each step opens the live view it talks about (it clicks what a learner would click) and writes
 * a short text with that view's numbers, all taken from the server's answers (the explanation,
 * the filter and training-step endpoints). The tour computes nothing; it only picks which
 * number to quote (e.g. the most active unit).
 */
import { $, el, fmt, pct } from "./dom.js";
import { showLooks } from "./filters.js";
import { decimalsFor, learn, takeStep } from "./learn.js";
import { state } from "./state.js";
import { showUnit } from "./units.js";

const tour = { step: 0, box: null, focus: null, busy: false };

const names = (expl) => expl.layer_names || [];
const unitLayers = (expl) => names(expl).filter((n) => n.n_units !== null && n.n_units !== undefined);
const convs = (expl) => unitLayers(expl).filter((n) => n.type === "conv2d");
const hiddens = (expl) => unitLayers(expl).filter((n) => n.type === "dense" && n.key !== "output");
const output = (expl) => unitLayers(expl).find((n) => n.key === "output");

/** The activations of a Dense layer's units (after its activation function), from the trace. */
function activations(expl, index) {
  const layers = (expl.trace && expl.trace.layers) || [];
  const i = layers.findIndex((L) => L.index === index);
  const next = layers.slice(i + 1).find((L) => L.type !== "dropout");
  const src = next && next.type === "activation" ? next : layers[i];
  return src && src.values ? src.values : null;
}
/** A number with 3 decimals and a true minus sign. */
const signed = (v) => fmt(v, 3).replace("-", "−");
const an = (n) => (String(n).startsWith("8") || n === 11 || n === 18 ? "an" : "a");
const argmax = (xs) => xs.reduce((b, v, i) => (v > xs[b] ? i : b), 0);

function noConv(expl) {
  return [`The ${expl.model} model has no convolution: its first layer reads all 784 pixels at once. ` +
    "Pick “cnn” (or “cnn_tiny”) in the model switcher at the top and run the tour again to see filters slide over your digit."];
}

const STEPS = [
  { title: "Pixels", target: "panel-steps", async run(expl) {
    const box = $("show-numbers");
    if (box && !box.checked) box.click();
    const ink = expl.image.flat();
    return [`Your drawing became a 28×28 grid: 784 numbers between 0 (paper) and 1 (ink). ` +
      `The brightest is ${fmt(Math.max(...ink), 3)}; ${ink.filter((v) => v > 0.5).length} of the 784 are above 0.5. ` +
      "The network never sees strokes, only these numbers, after the same steps that were applied to every training digit."];
  } },
  { title: "One weighted sum: logistic regression", target: "panel-network", async run(expl) {
    const out = output(expl);
    const i = expl.classes.indexOf(expl.prediction);
    if (out) await showUnit(out.index, i, true);
    return [`The output unit for the digit ${expl.prediction} computes one weighted sum of what reaches it, z = Σ wᵢ·xᵢ + b = ${signed(expl.logits[i])}. ` +
      "That is logistic regression: a weighted sum and a bias. Each of the ten digits has such a sum; softmax turns the ten into probabilities that add up to 1: " +
      `p(${expl.prediction}) = e^z / Σ e^z = ${pct(expl.probabilities[i])}. The worked sum below the network lists the products wᵢ·xᵢ that add up to z.`];
  } },
  { title: "A hidden layer", target: "panel-network", async run(expl) {
    const h = hiddens(expl)[0];
    if (!h) return [`The ${expl.model} model has no hidden layer: it is logistic regression on the pixels. Pick “mlp” or “cnn” to see hidden units.`];
    const a = activations(expl, h.index);
    const j = a ? argmax(a) : 0;
    await showUnit(h.index, j, true);
    const silent = a ? a.filter((v) => v <= 0).length : null;
    return [`${h.name[0].toUpperCase() + h.name.slice(1)}: each unit is its own logistic-regression-like sum of the layer before, followed by ReLU (negative sums become 0). ` +
      (a ? `For your digit, unit ${j} is the most active (a = ${fmt(a[j], 3)}); ${silent} of its ${a.length} units are silent (0). ` : "") +
      "The output sums read these activations instead of the pixels: that is the whole difference from logistic regression."];
  } },
  { title: "A convolution filter and its window", target: "panel-network", async run(expl) {
    const c = convs(expl)[0];
    if (!c) return noConv(expl);
    const info = await showLooks(c.index, null);
    if (!info) return ["(the filter could not be measured)"];
    await showUnit(c.index, info.unit, true, true, info.digit && info.digit.position);
    const d = info.digit;
    return [`A filter is a small weighted sum, ${info.receptive_field.size.join("×")} weights, slid over the image: at every position it multiplies the window under it by its weights and adds them up. ` +
      `${info.unit_name[0].toUpperCase() + info.unit_name.slice(1)} fires most on your digit: ${fmt(d.activation, 3)} at row ${d.position[0]}, column ${d.position[1]}. ` +
      "The worked sum below the network shows that window's numbers, the products and the total; the arrow keys move the window."];
  } },
  { title: "Layer 2: strokes combine into curves", target: "panel-looks", async run(expl) {
    const c = convs(expl)[1] || convs(expl)[0];
    if (!c) return noConv(expl);
    const info = await showLooks(c.index, null, true);
    if (!info) return ["(the filter could not be measured)"];
    const d = info.digit, rf = info.receptive_field.size;
    return [`${info.unit_name[0].toUpperCase() + info.unit_name.slice(1)} reads the first layer's maps, so it sees ${an(rf[0])} ${rf[0]}×${rf[1]} window of the digit; on yours it fires ${fmt(d.activation, 3)} at row ${d.position[0]}, column ${d.position[1]} of its map. ` +
      "Lines and arcs drawn by the program measure what it wants:", ...info.sentences.slice(1),
      "Beside the curves: the windows of training digits that make it fire most."];
  } },
  { title: "Why this digit and not another", target: "panel-contrast", async run(expl) {
    const c = expl.contrast;
    if (!c) return ["The contrast is computed with the full explanation; draw a digit and wait for it."];
    return [`The network says ${c.a} rather than ${c.b} because the sum for ${c.a} is larger: z(${c.a}) − z(${c.b}) = ${signed(c.logit_a)} − ${c.logit_b < 0 ? `(${signed(c.logit_b)})` : signed(c.logit_b)} = ${signed(c.gap)}. ` +
      `The map shows which ink argues for ${c.a} (red) and for ${c.b} (blue); the units beside it split the same gap over the last hidden layer.`];
  } },
  { title: "How the weights were learned", target: "panel-learn", async run(expl) {
    learn.label = null;
    const d = await takeStep();
    if (!d) return ["(the training step could not be taken)"];
    const i = d.classes.indexOf(d.label);
    const digits = decimalsFor(d);  // a sure digit moves by hundredths of a point: show them
    return [`Training asks: how wrong is the network on a digit? For “this is a ${d.label}” the loss is L = −log p(${d.label}) = ${fmt(d.loss_before, 4)}. ` +
      `The gradient says how each weight should move to lower L; one step of size ${d.lr} (${d.optimizer === "sgd" ? "plain gradient descent" : "Adam"}) moves every weight, and p(${d.label}) goes from ${pct(d.p_before[i], digits)} to ${pct(d.p_after[i], digits)}. ` +
      "Thousands of such steps on the training digits gave the weights you have explored. The Playground tab shows it in slow motion."];
  } },
];

function setFocus(id) {
  if (tour.focus) tour.focus.classList.remove("tour-focus");
  tour.focus = id ? $(id) : null;
  if (tour.focus) { tour.focus.classList.add("tour-focus"); tour.focus.scrollIntoView({ block: "start", behavior: "smooth" }); }
}

async function go(i) {
  const expl = state.expl;
  tour.step = Math.max(0, Math.min(STEPS.length - 1, i));
  const s = STEPS[tour.step];
  const box = tour.box;
  box.hidden = false;
  box.dataset.step = String(tour.step + 1);
  const text = el("div", { class: "tour-text", id: "tour-text" }, el("p", { class: "muted", text: "opening the view…" }));
  const back = el("button", { type: "button", id: "tour-back", text: "← Back", disabled: tour.step === 0 });
  const next = el("button", { type: "button", class: "primary", id: "tour-next", text: tour.step === STEPS.length - 1 ? "Finish" : "Next →" });
  const close = el("button", { type: "button", class: "tour-close", id: "tour-close", "aria-label": "close the tour", text: "✕" });
  back.addEventListener("click", () => go(tour.step - 1));
  next.addEventListener("click", () => (tour.step === STEPS.length - 1 ? stop() : go(tour.step + 1)));
  close.addEventListener("click", stop);
  box.replaceChildren(el("div", { class: "tour-head" }, el("strong", { text: `Step ${tour.step + 1} of ${STEPS.length}: ${s.title}` }), close),
    text, el("div", { class: "tour-nav" }, back, next));
  if (!expl) { text.replaceChildren(el("p", { text: "Draw a digit first: the tour uses your drawing." })); return; }
  setFocus(s.target);
  tour.busy = true; box.dataset.busy = "1";
  let paras;
  try { paras = await s.run(expl); } catch (err) { paras = [`(this step failed: ${err.message})`]; }
  tour.busy = false; box.dataset.busy = "0";
  if (STEPS[tour.step] !== s) return;
  text.replaceChildren(...paras.map((p) => el("p", { text: p })));
  setFocus(s.target);  // the view may have grown while the step ran
}

function stop() {
  setFocus(null);
  tour.box.hidden = true;
  delete tour.box.dataset.step;
}

export function initTour() {
  tour.box = el("aside", { class: "tour", id: "tour", role: "dialog", "aria-label": "Guided tour", "aria-live": "polite", hidden: true });
  document.body.append(tour.box);
  const btn = $("btn-tour");
  if (btn) btn.addEventListener("click", () => go(0));
  document.addEventListener("keydown", (e) => { if (e.key === "Escape" && !tour.box.hidden) stop(); });
}
