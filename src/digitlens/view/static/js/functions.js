/* The activation functions panel (playground tab): each function a = g(z) (solid) and its slope
 * g'(z) (dashed) on one set of axes, as the engine computes them (GET /api/functions: the
 * engine's forward and backward on z = -6..6 in steps of 0.05). Hovering reads the numbers at
 * the nearest grid point (never interpolated here). The learner's own digit's sums for one layer
 * (the last explanation's trace) are placed under the curve by POST /api/functions/rug. */
import { api, postJSON } from "./api.js";
import { $, el, fmt } from "./dom.js";
import { state } from "./state.js";

export const FN_COLOURS = { relu: "#0f766e", leaky_relu: "#0891b2", sigmoid: "#c2410c", tanh: "#6d28d9",
  gelu: "#b45309", elu: "#1d4ed8", identity: "#64748b" };
const fx = { data: null, shown: new Set(["relu", "sigmoid", "tanh"]), focus: "sigmoid", hover: null, rug: null };
const Y0 = -1.5, Y1 = 2.5;   // the y range drawn (ReLU and identity leave it beyond |z| > 2.5)

/** Fetch the curves once, then (re)draw; the layer menu follows the last explanation. */
export async function loadFunctions() {
  if (!fx.data) {
    try { fx.data = await api("/api/functions"); } catch (err) { $("fn-note").textContent = err.message; return; }
    buildControls();
  }
  fillLayers();
  drawFunctions();
}

function buildControls() {
  const box = $("fn-pick");
  box.replaceChildren(...Object.keys(fx.data.functions).map((name) => {
    const input = el("input", { type: "checkbox", value: name, checked: fx.shown.has(name) });
    input.addEventListener("change", () => { input.checked ? fx.shown.add(name) : fx.shown.delete(name); drawFunctions(); });
    return el("label", { class: "fn-chip", style: `--c:${FN_COLOURS[name] || "#333"}` }, input, el("span", { text: name.replace("_", " ") }));
  }));
  const focus = $("fn-focus");
  focus.replaceChildren(...Object.keys(fx.data.functions).map((n) => el("option", { value: n, text: n.replace("_", " ") })));
  focus.value = fx.focus;
  focus.addEventListener("change", () => { fx.focus = focus.value; fx.shown.add(fx.focus); syncChecks(); fx.rug = null; drawFunctions(); placeRug(); });
  const cv = $("fn-canvas");
  cv.addEventListener("mousemove", (e) => {
    const r = cv.getBoundingClientRect(), x = (e.clientX - r.left) * cv.width / r.width;
    fx.hover = indexAt(x); drawFunctions();
  });
  cv.addEventListener("mouseleave", () => { fx.hover = null; drawFunctions(); });
  $("fn-layer").addEventListener("change", placeRug);
}

function syncChecks() { for (const i of $("fn-pick").querySelectorAll("input")) i.checked = fx.shown.has(i.value); }

/** Dense layers of the last explanation whose sums feed an activation: [index, label, z values]. */
function digitLayers() {
  const layers = (state.expl && state.expl.trace && state.expl.trace.layers) || [];
  const out = [];
  layers.forEach((l, i) => {
    const next = layers[i + 1];
    if (l.type === "dense" && next && next.type === "activation" && l.values)
      out.push([i, `layer ${i}: ${l.values.length} sums, into ${(next.describe || next.name).split(":")[0]}`, l.values]);
  });
  return out;
}

function fillLayers() {
  const sel = $("fn-layer"), prev = sel.value, opts = digitLayers();
  sel.replaceChildren(...opts.map(([i, label]) => el("option", { value: String(i), text: label })));
  sel.disabled = !opts.length;
  if (opts.some(([i]) => String(i) === prev)) sel.value = prev;
  $("fn-rug-hint").textContent = opts.length ? "" : "Draw a digit on the Explore tab (with a model that has dense hidden layers) to see its sums here.";
  placeRug();
}

async function placeRug() {
  const layer = digitLayers().find(([i]) => String(i) === $("fn-layer").value);
  if (!layer || !fx.data) { fx.rug = null; $("fn-rug-text").textContent = ""; drawFunctions(); return; }
  try {
    fx.rug = await postJSON("/api/functions/rug", { activation: fx.focus, z: layer[2] });
    $("fn-rug-text").textContent = fx.rug.sentence;
  } catch (err) { fx.rug = null; $("fn-rug-text").textContent = err.message; }
  drawFunctions();
}

// ---- drawing: x is z in [z0, z1], y in [Y0, Y1]
const PAD = { l: 44, r: 14, t: 12, b: 46 };
function geometry(cv) {
  const z = fx.data.z, z0 = z[0], z1 = z[z.length - 1], W = cv.width, H = cv.height;
  const X = (v) => PAD.l + (W - PAD.l - PAD.r) * (v - z0) / (z1 - z0);
  const Y = (v) => PAD.t + (H - PAD.t - PAD.b) * (Y1 - v) / (Y1 - Y0);
  return { z, z0, z1, W, H, X, Y };
}
function indexAt(px) {
  const { z, X } = geometry($("fn-canvas"));
  let best = 0;
  for (let i = 1; i < z.length; i++) if (Math.abs(X(z[i]) - px) < Math.abs(X(z[best]) - px)) best = i;
  return best;
}

export function drawFunctions() {
  const cv = $("fn-canvas");
  if (!fx.data || !cv) return;
  const ctx = cv.getContext("2d"), g = geometry(cv);
  ctx.clearRect(0, 0, g.W, g.H);
  ctx.font = "12px system-ui, sans-serif"; ctx.lineWidth = 1;
  for (let v = Math.ceil(Y0); v <= Y1; v += 0.5) {   // grid
    ctx.strokeStyle = v === 0 ? "#9aa3ad" : "#ebe9e3"; ctx.beginPath(); ctx.moveTo(PAD.l, g.Y(v)); ctx.lineTo(g.W - PAD.r, g.Y(v)); ctx.stroke();
    if (Number.isInteger(v)) { ctx.fillStyle = "#5f6b7a"; ctx.fillText(String(v), 14, g.Y(v) + 4); }
  }
  for (let v = Math.ceil(g.z0); v <= g.z1; v += 1) {
    ctx.strokeStyle = v === 0 ? "#9aa3ad" : "#ebe9e3"; ctx.beginPath(); ctx.moveTo(g.X(v), PAD.t); ctx.lineTo(g.X(v), g.H - PAD.b); ctx.stroke();
    ctx.fillStyle = "#5f6b7a"; ctx.fillText(String(v), g.X(v) - 4, g.H - PAD.b + 14);
  }
  ctx.fillText("z (the unit's weighted sum)", g.W - PAD.r - 170, g.H - PAD.b + 30);
  ctx.save(); ctx.beginPath(); ctx.rect(PAD.l, PAD.t, g.W - PAD.l - PAD.r, g.H - PAD.t - PAD.b); ctx.clip();
  for (const name of fx.shown) {
    const f = fx.data.functions[name];
    if (!f) continue;
    const bold = name === fx.focus ? 3 : 1.8;
    for (const [key, dash] of [["a", []], ["slope", [6, 4]]]) {
      ctx.strokeStyle = FN_COLOURS[name] || "#333"; ctx.lineWidth = bold; ctx.setLineDash(dash);
      ctx.beginPath(); f[key].forEach((v, i) => (i ? ctx.lineTo(g.X(g.z[i]), g.Y(v)) : ctx.moveTo(g.X(g.z[i]), g.Y(v)))); ctx.stroke();
    }
  }
  ctx.setLineDash([]); ctx.restore();
  drawRug(ctx, g);
  drawHover(ctx, g);
  const f = fx.data.functions[fx.focus];
  $("fn-note").replaceChildren(el("strong", { text: f.title }), ` — ${f.note}`);
}

/** The learner's sums: one tick per unit under the axis (clamped to the ends, with a count). */
function drawRug(ctx, g) {
  if (!fx.rug) return;
  const y = g.H - PAD.b + 20, tail = fx.data.saturation_fraction * fx.data.functions[fx.focus].peak_slope;
  let left = 0, right = 0;
  fx.rug.z.forEach((v, i) => {
    if (v < g.z0) { left++; return; } if (v > g.z1) { right++; return; }
    ctx.strokeStyle = Math.abs(fx.rug.slope[i]) < tail ? "#b91c1c" : "#0f766e"; ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.moveTo(g.X(v), y - 9); ctx.lineTo(g.X(v), y); ctx.stroke();
  });
  ctx.fillStyle = "#b91c1c";
  if (left) ctx.fillText(`◀ ${left}`, PAD.l + 2, y + 12);
  if (right) ctx.fillText(`${right} ▶`, g.W - PAD.r - 34, y + 12);
}

function drawHover(ctx, g) {
  const out = $("fn-readout");
  if (fx.hover === null) { out.textContent = "Move the mouse over the curves to read a(z) and its slope at any z."; return; }
  const i = fx.hover, z = g.z[i];
  ctx.strokeStyle = "#1d2530"; ctx.lineWidth = 1; ctx.beginPath(); ctx.moveTo(g.X(z), PAD.t); ctx.lineTo(g.X(z), g.H - PAD.b); ctx.stroke();
  out.replaceChildren(el("strong", { text: `z = ${fmt(z, 2)}` }), ...[...fx.shown].map((n) => {
    const f = fx.data.functions[n];
    return el("span", { class: "fn-read", style: `--c:${FN_COLOURS[n]}` }, `${n.replace("_", " ")}: a = ${fmt(f.a[i], 4)}, slope = ${fmt(f.slope[i], 4)}`);
  }));
}
