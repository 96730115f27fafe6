/* The Evaluation tab: how good each model is on the 1,000 bundled test digits, and where it fails.
 *
 * Every number comes from /api/evaluation/... (digitlens/evaluation/, the same objects that
 * `digitlens evaluate` prints); this module only draws them:
 *   - the confusion matrix (click a cell: its digits; click a digit: it opens on the Explore tab
 *     with its explanation), per-digit precision and recall, the mistakes by confidence;
 *   - the reliability diagram, the expected calibration error, what "99% sure" means;
 *   - the digits' map (PCA of the last hidden layer) with the learner's drawing placed on it;
 *   - the robustness curves of every model (computed once on the server, in the background).
 */
import { api, postJSON } from "./api.js";
import { $, el, pct } from "./dom.js";
import { board, redraw } from "./draw.js";
import { scheduleUpdate } from "./live.js";
import { resetChoices, state } from "./state.js";

// one colour per digit on the map, per model on the robustness curves
const DIGIT_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const MODEL_COLORS = { logistic: "#7f7f7f", lab: "#1f77b4", mlp: "#2ca02c", cnn_tiny: "#ff7f0e", cnn: "#d62728" };
const ev = { model: null, data: "bundled", map: null, placed: null, robustTimer: null, only49: false };

/** A 28×28 grid of 0..255 as a small canvas (white ink on dark, as the network sees it). */
function digitCanvas(pixels, size = 56) {
  const c = el("canvas", { width: 28, height: 28, class: "ev-digit" });
  c.style.width = c.style.height = `${size}px`;
  const ctx = c.getContext("2d"), img = ctx.createImageData(28, 28);
  pixels.forEach((row, y) => row.forEach((v, x) => {
    const i = 4 * (28 * y + x); img.data[i] = img.data[i + 1] = img.data[i + 2] = v; img.data[i + 3] = 255;
  }));
  ctx.putImageData(img, 0, 0);
  return c;
}

/** Put a bundled test digit on the board, switch to this model and open the Explore tab: the
 * explanation there is this digit's (the same way "Test digit" loads one, see draw.js). */
function openDigit(d, model) {
  const where = ev.data === "optdigits" ? `by another writer (optdigits #${d.index}, 8×8 pixels upscaled)` : `from the 1,000 test digits (#${d.index})`;
  const c = document.createElement("canvas"); c.width = 28; c.height = 28;
  const ctx = c.getContext("2d"), img = ctx.createImageData(28, 28);
  d.pixels.forEach((row, y) => row.forEach((v, x) => {
    const i = 4 * (28 * y + x); img.data[i] = img.data[i + 1] = img.data[i + 2] = 255; img.data[i + 3] = v;
  }));
  ctx.putImageData(img, 0, 0);
  board.undo.push({ base: board.base, strokes: board.strokes.slice() });
  resetChoices();
  board.base = { kind: "digit", image: c, label: d.label, index: d.index };
  board.strokes = []; board.current = null;
  redraw();
  $("source-note").textContent = `A handwritten ${d.label} ${where}, opened from the Evaluation tab, where ${model} read it as ${d.predicted} (${pct(d.confidence)} sure). Here it goes through the pre-processing again, like any picture on the board, so the network reads a re-cropped and re-centred copy, and its answer and certainty can differ.`;
  const radio = document.querySelector(`#model-options input[value="${model}"]`);
  if (radio && !radio.checked) radio.click();
  $("tab-explore").click();
  scheduleUpdate(0);
}

function digitButton(d, caption) {
  return el("button", { type: "button", class: "ev-thumb", title: "Open this digit and its explanation on the Explore tab",
    "data-index": d.index, onclick: () => openDigit(d, ev.model) }, digitCanvas(d.pixels), el("span", { text: caption }));
}

// ------------------------------------------------------------------ confusion matrix
function renderConfusion(r) {
  const c = r.confusion, max = Math.max(...c.matrix.flat());
  const head = el("tr", {}, el("th", { class: "corner", title: "rows: the true digit; columns: the model's answer" }, "true ↓", el("br"), "answer →"), ...c.classes.map((k) => el("th", { scope: "col", text: String(k) })));
  const rows = c.matrix.map((row, t) => el("tr", {}, el("th", { scope: "row", text: String(c.classes[t]) }),
    ...row.map((n, p) => {
      const diag = t === p, a = n ? 0.12 + 0.88 * Math.sqrt(n / max) : 0;
      const td = el("td", {}, n ? el("button", { type: "button", class: diag ? "ev-cell diag" : "ev-cell off",
        "data-true": c.classes[t], "data-pred": c.classes[p],
        title: diag ? `${n} ${c.classes[t]}s read right` : `${n} ${c.classes[t]}s read as ${c.classes[p]}: click to see them`,
        onclick: () => showCell(c.classes[t], c.classes[p]), text: String(n) }) : "");
      td.style.background = diag ? `rgba(44,160,44,${a})` : n ? `rgba(214,39,40,${Math.max(0.15, a)})` : "";
      return td;
    })));
  $("ev-confusion").replaceChildren(el("table", { class: "ev-matrix" }, el("thead", {}, head), el("tbody", {}, ...rows)));
  const pr = el("table", { class: "ev-pr" },
    el("thead", {}, el("tr", {}, el("th", { text: "digit" }), el("th", { text: "precision" }), el("th", { text: "recall" }), el("th", { text: "count" }))),
    el("tbody", {}, ...c.classes.map((k, i) => el("tr", {}, el("th", { text: String(k) }),
      el("td", { text: c.precision[i] === null ? "–" : pct(c.precision[i]) }), el("td", { text: pct(c.recall[i]) }), el("td", { text: String(c.support[i]) })))));
  $("ev-pr").replaceChildren(pr);
  $("ev-confusion-words").textContent = r.words.confusion;
  $("ev-pr-words").textContent = r.words.precision_recall;
}

async function showCell(t, p) {
  const box = $("ev-cell");
  box.replaceChildren(el("p", { class: "muted", text: "loading…" }));
  const r = await api(`/api/evaluation/${ev.model}/cell?true=${t}&predicted=${p}&data=${ev.data}`);
  const what = t === p ? `${r.count} ${t}s that ${ev.model} read right` : `${r.count} ${t}s that ${ev.model} read as ${p}`;
  box.replaceChildren(el("h4", { text: `${what}${r.count > r.digits.length ? ` (the ${r.digits.length} it was surest about)` : ""}, most confident first. Click one to see why.` }),
    el("div", { class: "ev-gallery" }, ...r.digits.map((d) => digitButton(d, `${pct(d.confidence)} sure`))));
  box.hidden = false;
}

async function renderMistakes() {
  const r = await api(`/api/evaluation/${ev.model}/mistakes?limit=30&data=${ev.data}`);
  $("ev-mistakes").replaceChildren(el("div", { class: "ev-gallery" }, ...r.mistakes.map((m) =>
    digitButton({ ...m, label: m.true }, `a ${m.true} read as ${m.predicted}, ${pct(m.confidence)} sure`))));
  $("ev-mistakes-head").textContent = `${r.count} mistakes; the ${r.mistakes.length} the model was surest about, surest first`;
}

// ------------------------------------------------------------------ calibration
function axes(ctx, W, H, pad, xlab, ylab) {
  ctx.strokeStyle = "#888"; ctx.lineWidth = 1; ctx.beginPath();
  ctx.moveTo(pad.l, pad.t); ctx.lineTo(pad.l, H - pad.b); ctx.lineTo(W - pad.r, H - pad.b); ctx.stroke();
  ctx.fillStyle = "#333"; ctx.font = "12px system-ui, sans-serif"; ctx.textAlign = "center";
  ctx.fillText(xlab, (pad.l + W - pad.r) / 2, H - 6);
  ctx.save(); ctx.translate(14, (pad.t + H - pad.b) / 2); ctx.rotate(-Math.PI / 2); ctx.fillText(ylab, 0, 0); ctx.restore();
}

function renderCalibration(r) {
  const cal = r.calibration, cv = $("ev-cal"), ctx = cv.getContext("2d"), W = cv.width, H = cv.height;
  const pad = { l: 44, r: 24, t: 22, b: 40 }, X = (v) => pad.l + v * (W - pad.l - pad.r), Y = (v) => H - pad.b - v * (H - pad.t - pad.b);
  ctx.clearRect(0, 0, W, H);
  axes(ctx, W, H, pad, "how sure the model was (its answer's probability)", "share it got right");
  ctx.font = "11px system-ui, sans-serif"; ctx.fillStyle = "#555";
  for (const v of [0, 0.5, 1]) { ctx.textAlign = "center"; ctx.fillText(`${v * 100}%`, X(v), H - pad.b + 14); ctx.textAlign = "right"; ctx.fillText(`${v * 100}%`, pad.l - 4, Y(v) + 4); }
  ctx.setLineDash([4, 4]); ctx.strokeStyle = "#999"; ctx.beginPath(); ctx.moveTo(X(0), Y(0)); ctx.lineTo(X(1), Y(1)); ctx.stroke(); ctx.setLineDash([]);
  cal.count.forEach((n, b) => {
    if (!n) return;
    const x0 = X(cal.edges[b]) + 2, x1 = X(cal.edges[b + 1]) - 2;
    ctx.fillStyle = "rgba(31,119,180,0.75)"; ctx.fillRect(x0, Y(cal.accuracy[b]), x1 - x0, Y(0) - Y(cal.accuracy[b]));
    ctx.strokeStyle = "#d62728"; ctx.lineWidth = 2.5; ctx.beginPath(); ctx.moveTo(x0, Y(cal.confidence[b])); ctx.lineTo(x1, Y(cal.confidence[b])); ctx.stroke();
    ctx.fillStyle = "#333"; ctx.textAlign = "center"; ctx.fillText(String(n), (x0 + x1) / 2, Math.min(Y(cal.accuracy[b]), Y(cal.confidence[b])) - 6);
  });
  $("ev-ece").textContent = r.ece_sentence;
  $("ev-sure").textContent = cal.sentence;
  $("ev-cal-words").textContent = r.words.calibration;
}

// ------------------------------------------------------------------ the digits' map
function mapScale(points) {
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  return { x0: Math.min(...xs), x1: Math.max(...xs), y0: Math.min(...ys), y1: Math.max(...ys) };
}

function drawMap() {
  const m = ev.map; if (!m) return;
  const cv = $("ev-map"), ctx = cv.getContext("2d"), W = cv.width, H = cv.height, pad = 16;
  const s = ev.mapScale, X = (v) => pad + (v - s.x0) / (s.x1 - s.x0 || 1) * (W - 2 * pad), Y = (v) => H - pad - (v - s.y0) / (s.y1 - s.y0 || 1) * (H - 2 * pad);
  ctx.clearRect(0, 0, W, H); ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
  m.points.forEach((p, i) => {
    const lab = m.labels[i], dim = ev.only49 && lab !== 4 && lab !== 9;
    ctx.fillStyle = dim ? "rgba(200,200,200,0.35)" : DIGIT_COLORS[lab];
    ctx.fillRect(X(p[0]) - 2, Y(p[1]) - 2, 4, 4);
  });
  ctx.font = "bold 13px system-ui, sans-serif"; ctx.textAlign = "center";
  for (let d = 0; d < 10; d++) {  // each digit's label at the middle of its dots
    const pts = m.points.filter((_, i) => m.labels[i] === d); if (!pts.length) continue;
    const cx = pts.reduce((a, p) => a + p[0], 0) / pts.length, cy = pts.reduce((a, p) => a + p[1], 0) / pts.length;
    ctx.fillStyle = "#fff"; ctx.fillRect(X(cx) - 8, Y(cy) - 11, 16, 15);
    ctx.fillStyle = DIGIT_COLORS[d]; ctx.fillText(String(d), X(cx), Y(cy));
  }
  const p = ev.placed;
  if (p) {
    ctx.strokeStyle = "#000"; ctx.lineWidth = 1.5;
    for (const n of p.neighbours) { ctx.beginPath(); ctx.arc(X(n.xy[0]), Y(n.xy[1]), 6, 0, 2 * Math.PI); ctx.stroke(); }
    star(ctx, X(p.xy[0]), Y(p.xy[1]));
  }
}

function star(ctx, x, y, r = 11) {
  ctx.beginPath();
  for (let k = 0; k < 10; k++) {
    const a = -Math.PI / 2 + k * Math.PI / 5, rr = k % 2 ? r * 0.45 : r;
    ctx.lineTo(x + rr * Math.cos(a), y + rr * Math.sin(a));
  }
  ctx.closePath(); ctx.fillStyle = "#000"; ctx.fill(); ctx.strokeStyle = "#fff"; ctx.lineWidth = 1.5; ctx.stroke();
}

async function loadMap() {
  $("ev-map-note").textContent = "computing the map…";
  ev.map = await api(`/api/evaluation/${ev.model}/map`);
  ev.mapScale = mapScale(ev.map.points);
  const ex = ev.map.explained;
  $("ev-map-note").textContent = `The two directions keep ${pct(ex[0] + ex[1])} of the variation of the last hidden layer's ${ev.map.hidden_size} numbers (${pct(ex[0])} and ${pct(ex[1])}). ${ev.map.overlap_sentence}`;
  $("ev-map-legend").replaceChildren(...DIGIT_COLORS.map((c, d) => el("span", { class: "ev-key" }, el("i", { style: `background:${c}` }), String(d))));
  ev.placed = null;
  drawMap();
  await placeDrawing();
}

/** Place the digit on the Explore board (the 28×28 image the network read) on the map. */
export async function placeDrawing() {
  const box = $("ev-place");
  if (!ev.map) return;
  if (!state.expl || !state.expl.image) {
    box.replaceChildren(el("p", { class: "muted", text: "Draw a digit on the Explore tab (or press Test digit there): it will appear here as a black star, with its nearest training digits circled." }));
    return;
  }
  const p = await postJSON(`/api/evaluation/${ev.model}/map/place`, { image: state.expl.image, k: 5 });
  ev.placed = p; drawMap();
  box.replaceChildren(el("p", { text: `Your digit (★) lands among these training digits, the nearest in the whole hidden layer (circled on the map):` }),
    el("div", { class: "ev-gallery" }, ...p.neighbours.map((n) => el("figure", { class: "ev-thumb" }, digitCanvas(n.pixels), el("figcaption", { text: `a ${n.label}, distance ${n.distance.toFixed(2)}` })))));
  document.body.dataset.evPlaced = String(Number(document.body.dataset.evPlaced || 0) + 1);
}

// ------------------------------------------------------------------ robustness
function renderRobustness(res) {
  const grid = $("ev-robust");
  grid.replaceChildren(...res.kinds.map((kind) => {
    const lv = res.levels[kind], cv = el("canvas", { width: 300, height: 190, role: "img", "aria-label": `accuracy against ${kind}` });
    const ctx = cv.getContext("2d"), W = cv.width, H = cv.height, pad = { l: 40, r: 10, t: 10, b: 22 };
    const lo = Math.min(...lv), hi = Math.max(...lv);
    const X = (v) => pad.l + (v - lo) / (hi - lo || 1) * (W - pad.l - pad.r), Y = (a) => H - pad.b - a * (H - pad.t - pad.b);
    ctx.strokeStyle = "#ddd"; ctx.fillStyle = "#555"; ctx.font = "11px system-ui, sans-serif"; ctx.textAlign = "right";
    for (const a of [0, 0.5, 1]) { ctx.beginPath(); ctx.moveTo(pad.l, Y(a)); ctx.lineTo(W - pad.r, Y(a)); ctx.stroke(); ctx.fillText(`${a * 100}%`, pad.l - 4, Y(a) + 4); }
    ctx.textAlign = "center";
    lv.forEach((v) => ctx.fillText(String(v), X(v), H - 6));
    for (const [name, per] of Object.entries(res.accuracy)) {
      ctx.strokeStyle = ctx.fillStyle = MODEL_COLORS[name] || "#333"; ctx.lineWidth = 2; ctx.beginPath();
      per[kind].forEach((a, i) => (i ? ctx.lineTo(X(lv[i]), Y(a)) : ctx.moveTo(X(lv[i]), Y(a))));
      ctx.stroke();
      per[kind].forEach((a, i) => { ctx.beginPath(); ctx.arc(X(lv[i]), Y(a), 2.5, 0, 2 * Math.PI); ctx.fill(); });
    }
    const strip = el("div", { class: "ev-strip" }, ...res.examples[kind].map((img, i) => el("figure", {},
      digitCanvas(img.map((row) => row.map((v) => Math.round(255 * v))), 34), el("figcaption", { text: String(lv[i]) }))));
    return el("figure", { class: "ev-robust-one", "data-kind": kind }, el("figcaption", { text: res.titles[kind] }), cv, strip);
  }));
  $("ev-robust-legend").replaceChildren(...Object.keys(res.accuracy).map((n) => el("span", { class: "ev-key" }, el("i", { style: `background:${MODEL_COLORS[n] || "#333"}` }), n)));
  $("ev-robust-note").textContent = `${res.n} of the bundled test digits, changed one way at a time; under each plot, test digit #0 (a ${res.example_label}) at every strength. Every model on one plot.`;
}

async function pollRobustness() {
  clearTimeout(ev.robustTimer);
  try {
    const r = await api("/api/evaluation/robustness");
    if (r.status === "ready") { renderRobustness(r.result); return; }
    if (r.status === "failed") { $("ev-robust-note").textContent = `The robustness curves failed: ${r.error}`; return; }
    $("ev-robust-note").textContent = `Measuring ${r.models.join(", ")} on changed digits (about 45 passes over 500 digits per model; this takes a minute the first time)…`;
    ev.robustTimer = setTimeout(pollRobustness, 2000);
  } catch (err) { $("ev-robust-note").textContent = err.message; }
}

// ------------------------------------------------------------------ the tab
async function loadModel(name) {
  ev.model = name;
  $("ev-status").textContent = `Evaluating ${name} on ${$("ev-data").selectedOptions[0].textContent}…`;
  $("ev-cell").hidden = true;
  try {
    const r = await api(`/api/evaluation/${name}?data=${ev.data}`);
    $("ev-status").textContent = `${name} reads ${pct(r.accuracy)} right, with ${r.n_mistakes} mistakes, on ${r.description}.`;
    renderConfusion(r); renderCalibration(r);
    await renderMistakes();
    if (ev.mapModel !== name) { ev.mapModel = name; await loadMap(); }
    document.body.dataset.evReady = `${name}:${ev.data}`;
  } catch (err) { $("ev-status").textContent = err.message; }
}

/** Called when the Evaluation tab opens: fill the model menu, then everything for its model. */
export async function loadEvaluation() {
  const sel = $("ev-model");
  const ten = state.models.filter((m) => m.trained && (!m.classes || m.classes.length === 10));
  if (!ten.length) { $("ev-status").textContent = "No model is trained yet: train one on the Train tab first."; return; }
  const want = ev.model && ten.some((m) => m.name === ev.model) ? ev.model : (ten.some((m) => m.name === state.model) ? state.model : ten[0].name);
  sel.replaceChildren(...ten.map((m) => el("option", { value: m.name, text: m.name, selected: m.name === want })));
  pollRobustness();
  if (want !== ev.model || !document.body.dataset.evReady) await loadModel(want);
  else await placeDrawing();
}

export function initEvaluation() {
  $("ev-model").addEventListener("change", (e) => loadModel(e.target.value));
  $("ev-data").addEventListener("change", (e) => { ev.data = e.target.value; loadModel(ev.model); });
  $("ev-only49").addEventListener("change", (e) => { ev.only49 = e.target.checked; drawMap(); });
  $("ev-place-btn").addEventListener("click", placeDrawing);
}
