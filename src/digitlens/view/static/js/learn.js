/* 8. How the weights were learned: one training step on your digit.
 *
 * POST /api/models/<model>/step runs the engine's own loss_and_grads and optimizer on a copy of
 * the model (the one you explore never changes) and sends every number: the loss for the digit
 * you say it is, one unit's gradient and update, the probabilities before and after.
 * This module only draws them.
 */
import { postJSON } from "./api.js";
import { mapCanvas, signedMap } from "./colours.js";
import { currentImage } from "./draw.js";
import { $, buildSeg, el, fmt, pct } from "./dom.js";
import { state } from "./state.js";

export const learn = { label: null, optimizer: "sgd", lr: null, layer: null, unit: null, last: null };
const LRS = { sgd: ["0.01", "0.1", "0.5"], adam: ["0.001", "0.01"] };

/** Which unit's weights to show: the unit clicked in the network if it has weights, else unit 0
 * of the layer that reads the pixels. */
function chosenUnit(expl) {
  const ls = (expl.layer_names || []).filter((n) => n.n_units !== null && n.n_units !== undefined);
  const s = state.selected;
  if (s && ls.some((n) => n.index === s.layer)) return [s.layer, s.unit];
  if (learn.layer !== null && ls.some((n) => n.index === learn.layer)) return [learn.layer, learn.unit];
  return [ls.length ? ls[0].index : null, 0];
}

function unitName(expl, layer, unit) {
  const n = (expl.layer_names || []).find((x) => x.index === layer);
  if (!n) return `unit ${unit}`;
  if (n.key === "output") return `the output unit for the digit ${expl.classes[unit]}`;
  return `${n.type === "conv2d" ? "filter" : "unit"} ${unit} of ${n.short}`;
}

function renderControls(expl) {
  const box = $("learn-controls");
  const label = learn.label ?? expl.prediction;
  const digits = el("fieldset", { class: "seg digits", id: "learn-label" }, el("legend", { text: "It should be a" }));
  buildSeg(digits, "learn-label", expl.classes.map((c) => [c, String(c)]), label, (c) => { learn.label = c; },
    (c) => (c === expl.prediction ? "is-pred" : ""));
  const opt = el("fieldset", { class: "seg", id: "learn-opt" }, el("legend", { text: "Optimizer" }));
  buildSeg(opt, "learn-opt", [["sgd", "plain gradient descent"], ["adam", "Adam"]], learn.optimizer, (o) => {
    learn.optimizer = o; learn.lr = null; renderControls(state.expl);
  });
  const lrs = LRS[learn.optimizer];
  const lr = el("select", { id: "learn-lr", "aria-label": "learning rate" });
  for (const v of lrs) lr.append(el("option", { value: v, text: v, selected: (learn.lr ?? (learn.optimizer === "sgd" ? "0.1" : "0.001")) === v }));
  lr.addEventListener("change", () => { learn.lr = lr.value; });
  const go = el("button", { type: "button", class: "primary", id: "btn-step", text: "Take one training step" });
  go.addEventListener("click", () => takeStep());
  box.replaceChildren(digits, opt, el("label", {}, "learning rate ", lr), go);
}

/** Ask the server for one step and draw it. */
export async function takeStep() {
  const expl = state.expl;
  if (!expl) return null;
  const [layer, unit] = chosenUnit(expl);
  const label = learn.label ?? expl.prediction;
  const lr = +(learn.lr ?? (learn.optimizer === "sgd" ? "0.1" : "0.001"));
  const out = $("learn");
  out.replaceChildren(el("p", { class: "muted", text: "taking one step…" }));
  let d;
  try {
    d = await postJSON(`/api/models/${encodeURIComponent(expl.model)}/step`, {
      image: await currentImage(), steps: state.steps, label, layer, unit, optimizer: learn.optimizer, lr });
  } catch (err) { out.replaceChildren(el("p", { class: "muted", text: err.message })); return null; }
  if (state.expl !== expl) return null;
  learn.last = d; learn.layer = d.layer; learn.unit = d.unit;
  state.step = d;  // window.digitlens.step
  renderStep(expl, d);
  document.body.dataset.learned = String((+document.body.dataset.learned || 0) + 1);
  return d;
}

function picture(grid, label, cls = "map mid") {
  const c = mapCanvas(cls, label);
  signedMap(c, grid);
  return c;
}

/** Decimals (1 to 4) that give the largest change, in percentage points, two significant digits:
 * a step on a digit the network is already sure of moves p by hundredths of a point, which one
 * decimal would show as "nothing moved". */
export function decimalsFor(d) {
  const m = Math.max(...d.p_after.map((p, i) => Math.abs(100 * (p - d.p_before[i]))));
  if (!(m > 0)) return 1;
  return Math.min(4, Math.max(1, Math.ceil(-Math.log10(m / 10))));
}

function probTable(expl, d, digits) {
  const rows = expl.classes.map((c, i) => {
    const up = 100 * (d.p_after[i] - d.p_before[i]);
    const shown = Math.abs(up).toFixed(digits);
    const zero = Number(shown) === 0;
    return el("tr", { class: c === d.label ? "target" : "" },
      el("th", { text: String(c) }), el("td", { text: pct(d.p_before[i], digits) }), el("td", { text: pct(d.p_after[i], digits) }),
      el("td", { class: zero ? "" : up > 0 ? "up" : "down", text: zero ? shown : `${up > 0 ? "+" : "−"}${shown}` }));
  });
  return el("table", { class: "epochs learn-probs" },
    el("thead", {}, el("tr", {}, el("th", { text: "digit" }), el("th", { text: "before" }), el("th", { text: "after" }), el("th", { text: "change (points)" }))),
    el("tbody", {}, ...rows));
}

/** Why the step was big or small: the size of the loss's gradient follows how wrong p was. */
function stepSize(d, i) {
  const p = d.p_before[i];
  if (p >= 0.95) return `The network was already sure it is a ${d.label} (p = ${pct(p, 1)}), so the loss is small, its gradient is small, and so is the step: training learns least from the digits it already reads well.`;
  if (p < 0.5) {
    const turned = d.p_after[i] >= 0.5 ? ` Here one step was enough to turn the answer into a ${d.label} (p = ${pct(d.p_after[i], 1)}): one digit, a large gradient and this learning rate can overturn what the network knew, which is why real training averages the gradient over a batch and takes small steps.` : "";
    return `The network did not think it is a ${d.label} (p = ${pct(p, 1)}), so the loss is large, its gradient is large, and so is the step: training learns most from the digits it gets wrong.${turned}`;
  }
  return "";
}

function renderStep(expl, d) {
  const who = unitName(expl, d.layer, d.unit);
  const i = d.classes.indexOf(d.label);
  const digits = decimalsFor(d);
  const why = stepSize(d, i);
  const ex = d.example;
  const rule = d.optimizer === "sgd"
    ? `Plain gradient descent: every weight moves by −learning rate × its gradient, here −${d.lr} × ∂L/∂w.`
    : `Adam: on its first step it moves every weight by about the learning rate (${d.lr}) against the sign of its gradient, whatever the gradient's size; later steps scale by running averages of the gradients.`;
  const pic = d.reads_pixels && d.grad_shape.length === 1 ? "its 784 weights as a 28×28 picture" : d.grad_shape.length === 3 ? `its ${d.grad_shape[1]}×${d.grad_shape[2]} kernel${d.grad_shape[0] > 1 ? `, summed over its ${d.grad_shape[0]} input maps` : ""}` : "its weights in a row";
  $("learn").replaceChildren(
    el("p", { class: "learn-loss", text: `The loss for “this is a ${d.label}”: L = −log p(${d.label}) = −log ${fmt(d.p_before[i], 4)} = ${fmt(d.loss_before, 4)}.` }),
    el("p", { class: "small", text: `The gradient ∂L/∂w says, for every weight, how much the loss would rise if that weight grew a little. Shown for ${who} (${pic}); the length of the whole gradient, over all ${"weights"}, is ${fmt(d.grad_norm, 4)}.` }),
    el("div", { class: "learn-pics" },
      el("figure", {}, picture(d.weights, "the weights before"), el("figcaption", { text: "weights before" })),
      el("figure", {}, picture(d.grad, "the gradient"), el("figcaption", { text: `gradient ∂L/∂w (${fmt(d.grad_range[0], 4)} to ${fmt(d.grad_range[1], 4)})` })),
      el("figure", {}, picture(d.update, "the update"), el("figcaption", { text: `update Δw (${fmt(d.update_range[0], 5)} to ${fmt(d.update_range[1], 5)})` }))),
    el("p", { class: "small", text: rule }),
    el("p", { class: "small", id: "learn-example", text: `One weight, the one with the largest gradient (index ${ex.index.join(", ")}): w = ${fmt(ex.w, 5)}, ∂L/∂w = ${fmt(ex.grad, 5)}, Δw = ${fmt(ex.update, 5)}, so w becomes ${fmt(ex.w_after, 5)}. Its bias: b = ${fmt(d.bias.b, 5)}, ∂L/∂b = ${fmt(d.bias.grad, 5)}, Δb = ${fmt(d.bias.update, 5)}.` }),
    el("p", { class: "learn-loss", text: `After this one step every weight of the network has moved (not only these): the loss on your digit went from ${fmt(d.loss_before, 4)} to ${fmt(d.loss_after, 4)}, and p(${d.label}) from ${pct(d.p_before[i], digits)} to ${pct(d.p_after[i], digits)}.` }),
    ...(why ? [el("p", { class: "small", id: "learn-why", text: why })] : []),
    probTable(expl, d, digits),
    el("p", { class: "small muted", text: "Real training takes such steps on batches of 64 digits, thousands of times, with a small learning rate, so that no single digit pulls too hard. The network on this page is not changed by this step." }),
    playgroundLink());
}

/** A new explanation: new controls; a previous step is cleared (it was for another drawing). */
export function renderLearnPanel(expl) {
  if (expl.detail === "live") return;
  renderControls(expl);
  const [layer, unit] = chosenUnit(expl);
  $("learn").replaceChildren(el("p", { class: "muted", text: `Press the button to take one step towards “this is a ${learn.label ?? expl.prediction}”, showing the weights of ${unitName(expl, layer, unit)}. Click another unit in the network to follow its weights instead.` }));
}

/** Many steps, in slow motion: the playground (another tab) redraws a first-layer unit's template
 * as it learns. */
function playgroundLink() {
  const tab = $("tab-play");
  if (!tab) return null;
  const b = el("button", { type: "button", class: "linklike", text: "Watch thousands of steps in slow motion in the Playground →" });
  b.addEventListener("click", () => tab.click());
  return el("p", { class: "small" }, b);
}
