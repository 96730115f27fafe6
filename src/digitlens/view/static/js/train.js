/* The training tab: start a run (POST /api/train for a ladder model, POST /api/train/custom for
 * the learner's own network: activation, width, depth, learning rate), follow it as server-sent
 * events (one per mini-batch and per epoch), draw its loss and accuracy curves, show the
 * server's sentence on the train/test gap, and cancel it. */
import { api, postJSON } from "./api.js";
import { $, el, fmt, pct } from "./dom.js";
import { state } from "./state.js";

const train = { job: null, source: null, batches: [], epochs: [], total: 0 };
let onTrained = async (model) => {};   // set by initTraining
const CUSTOM = "__custom";             // the menu's "your own network" entry
let customChoices = null;              // GET /api/train's `custom`: activations, bounds, defaults

/** The models one can train (the ladder, then "your own network"), in the training form's menu. */
export function fillTrainModels() {
  const sel = $("train-model"), prev = sel.value;
  const ladder = state.models.filter((m) => m.in_ladder).map((m) => el("option", { value: m.name, text: `${m.name}${m.trained ? "" : " (untrained)"}` }));
  sel.replaceChildren(...ladder, el("option", { value: CUSTOM, text: "your own network…" }));
  const ladderModel = state.models.some((m) => m.in_ladder && m.name === state.model) ? state.model : "mlp";
  sel.value = prev || ladderModel;
  if (!$("train-epochs").value) setRecipeEpochs();
  showCustom();
}
function setRecipeEpochs() {
  if ($("train-model").value === CUSTOM) { if (customChoices) $("train-epochs").value = customChoices.default.epochs; return; }
  const m = state.models.find((x) => x.name === $("train-model").value);
  if (m) $("train-epochs").value = m.recipe.epochs;
}

/** The own-network fields: shown when "your own network" is picked; their choices come from the server. */
function showCustom() {
  $("custom-fields").hidden = $("train-model").value !== CUSTOM;
  const w = $("custom-width").value, d = parseInt($("custom-depth").value, 10);
  const hidden = Number.isFinite(d) && d > 0 && d <= 8 ? Array(d).fill(w).join(" → ") : "?";
  $("custom-shape").textContent = `784 pixels → ${hidden} ${$("custom-activation").value} units → 10 digits. It is saved as “${customName()}”, apart from the ladder's models, and joins the model switcher.`;
}
const customName = () => `${$("custom-activation").value}_${$("custom-depth").value}x${$("custom-width").value}`;

async function loadCustomChoices() {
  const info = await api("/api/train");
  customChoices = info.custom;
  const c = customChoices;
  $("custom-activation").replaceChildren(...c.activations.map((a) => el("option", { value: a, text: a.replace("_", " ") })));
  $("custom-activation").value = c.default.activation;
  $("custom-width").max = c.max_width; $("custom-depth").max = c.max_depth; $("custom-lr").max = c.max_lr;
  $("custom-width").value = c.default.width; $("custom-depth").value = c.default.depth; $("custom-lr").value = c.default.lr;
  showCustom();
}

function customBody(epochs) {
  const num = (id) => Number($(id).value);
  return { activation: $("custom-activation").value, width: num("custom-width"), depth: num("custom-depth"),
           lr: num("custom-lr"), ...(Number.isFinite(epochs) ? { epochs } : {}) };
}

/**
 * Wire the training form. `trained(model)` runs after a run completes and its model was saved
 * (main.js reloads the models and, for the model on show, the explanation).
 */
export function initTraining({ trained }) {
  onTrained = trained;
  $("train-model").addEventListener("change", () => { setRecipeEpochs(); showCustom(); });
  for (const id of ["custom-activation", "custom-width", "custom-depth"]) $(id).addEventListener("input", showCustom);
  loadCustomChoices().catch(() => {});  // training switched off: the tab is hidden anyway
  $("train-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const epochs = parseInt($("train-epochs").value, 10);
    try {
      const job = $("train-model").value === CUSTOM
        ? await postJSON("/api/train/custom", customBody(epochs))
        : await postJSON("/api/train", { model: $("train-model").value, epochs: Number.isFinite(epochs) ? epochs : null });
      follow(job);
    } catch (err) { $("train-status").textContent = err.message; }
  });
  $("btn-cancel").addEventListener("click", async () => {
    if (!train.job) return;
    try { await api(`/api/train/${train.job.id}/cancel`, { method: "POST" }); $("train-status").textContent = "Cancelling at the next mini-batch…"; }
    catch (err) { $("train-status").textContent = err.message; }
  });
}

/** Follow a training job's events until it ends; `body[data-training]` says its state. */
export function follow(job) {
  if (train.source) train.source.close();
  train.job = job; train.batches = []; train.epochs = []; train.total = 0;
  $("epoch-table").tBodies[0].replaceChildren();
  showGap(null);
  $("btn-train").disabled = true; $("btn-cancel").disabled = false;
  $("train-status").textContent = `Training ${job.model}…`;
  document.body.dataset.training = "running";
  const es = new EventSource(`/api/train/${job.id}/events`);
  train.source = es;
  es.addEventListener("start", (e) => { const d = JSON.parse(e.data); train.total = d.epochs * d.batches; });
  es.addEventListener("batch", (e) => {
    const d = JSON.parse(e.data); train.batches.push(d);
    $("train-bar").style.width = `${train.total ? (100 * d.step / train.total).toFixed(1) : 0}%`;
    $("train-status").textContent = `Training ${job.model}: epoch ${d.epoch}, mini-batch ${d.batch}/${d.batches} — loss ${fmt(d.loss, 3)}, accuracy on this batch ${pct(d.accuracy)}`;
    scheduleCharts();
  });
  es.addEventListener("epoch", (e) => {
    const d = JSON.parse(e.data); train.epochs.push(d);
    $("epoch-table").tBodies[0].append(el("tr", {}, ...[d.epoch, fmt(d.loss, 4), pct(d.accuracy), pct(d.test_accuracy), fmt(d.seconds, 2)].map((v) => el("td", { text: String(v) }))));
    showGap(d.gap);
    scheduleCharts();
  });
  es.addEventListener("end", async (e) => {
    const d = JSON.parse(e.data);
    es.close(); train.source = null;
    $("train-status").textContent = d.message;
    $("btn-train").disabled = false; $("btn-cancel").disabled = true;
    if (d.state === "completed") {
      $("train-bar").style.width = "100%";
      showGap(d.gap ?? null);
      if (job.kind === "custom") $("train-status").textContent = `${d.message}. Saved as “${job.model}”: on the Explore tab, pick it in the Model row to watch it read your digit.`;
      await onTrained(job.model);
    }
    drawCharts();
    document.body.dataset.training = d.state;
  });
  es.onerror = () => { if (train.source === es && es.readyState === EventSource.CLOSED) $("train-status").textContent = "Lost the connection to the server."; };
}

/** The server's sentence on the gap between training and test accuracy (hidden when there is none). */
function showGap(sentence) {
  const p = $("train-gap");
  p.hidden = !sentence;
  p.textContent = sentence || "";
}

// ---- the curves: each mini-batch (thin), epoch averages (teal dots), the held-out test digits (orange)
let chartTimer = null;
const scheduleCharts = () => { if (chartTimer === null) chartTimer = requestAnimationFrame(() => { chartTimer = null; drawCharts(); }); };

export function drawCharts() {
  const per = train.batches.length ? train.batches[0].batches : 1;
  const x = (d) => (d.step !== undefined ? d.step : d.epoch * per);
  chart($("chart-loss"), [
    { pts: train.batches.map((d) => [x(d), d.loss]), colour: "#9db5b1", width: 1 },
    { pts: train.epochs.map((d) => [d.epoch * per, d.loss]), colour: "#0f766e", width: 2.5, dots: true },
    { pts: train.epochs.map((d) => [d.epoch * per, d.test_loss]), colour: "#c2410c", width: 2.5, dots: true },
  ], { ymin: 0, xmax: train.total || undefined, xlabel: "mini-batches" });
  chart($("chart-acc"), [
    { pts: train.batches.map((d) => [x(d), d.accuracy]), colour: "#9db5b1", width: 1 },
    { pts: train.epochs.map((d) => [d.epoch * per, d.accuracy]), colour: "#0f766e", width: 2.5, dots: true },
    { pts: train.epochs.map((d) => [d.epoch * per, d.test_accuracy]), colour: "#c2410c", width: 2.5, dots: true },
  ], { ymin: 0, ymax: 1, xmax: train.total || undefined, xlabel: "mini-batches", percent: true });
}

/** A line chart of `series` ({pts: [[x, y], ...], colour, width, dots}) with four grid lines. */
function chart(canvas, series, opt) {
  const ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height, L = 46, R = 12, T = 12, B = 30;
  ctx.clearRect(0, 0, W, H);
  const all = series.flatMap((s) => s.pts);
  const xmax = opt.xmax || Math.max(1, ...all.map((p) => p[0]));
  const ymin = opt.ymin ?? Math.min(...all.map((p) => p[1]));
  const ymax = opt.ymax ?? Math.max(1e-6, ...all.map((p) => p[1])) * 1.05;
  const X = (v) => L + (W - L - R) * v / xmax, Y = (v) => H - B - (H - T - B) * (v - ymin) / (ymax - ymin || 1);
  ctx.strokeStyle = "#e3e1da"; ctx.fillStyle = "#5f6b7a"; ctx.font = "11px system-ui, sans-serif"; ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = ymin + (ymax - ymin) * i / 4, y = Y(v);
    ctx.beginPath(); ctx.moveTo(L, y); ctx.lineTo(W - R, y); ctx.stroke();
    ctx.fillText(opt.percent ? `${Math.round(100 * v)}%` : v.toFixed(2), 6, y + 4);
  }
  ctx.fillText(opt.xlabel, W - R - 70, H - 8);
  if (!all.length) { ctx.fillText("start training to see the curves", L + 12, T + 24); return; }
  for (const s of series) {
    if (!s.pts.length) continue;
    ctx.strokeStyle = s.colour; ctx.fillStyle = s.colour; ctx.lineWidth = s.width;
    ctx.beginPath();
    s.pts.forEach(([px, py], i) => (i ? ctx.lineTo(X(px), Y(py)) : ctx.moveTo(X(px), Y(py))));
    ctx.stroke();
    if (s.dots) for (const [px, py] of s.pts) { ctx.beginPath(); ctx.arc(X(px), Y(py), 3, 0, 2 * Math.PI); ctx.fill(); }
  }
}
