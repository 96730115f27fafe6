/* The activation playground tab: pick up to four networks (or a rule of thumb's preset), train
 * them side by side on the server (POST /api/playground/run), and watch their curves grow by
 * polling GET /api/playground. Every number drawn comes from the server's checkpoints
 * (digitlens/lab/playground.py); the closing sentence is the server's too. */
import { api, postJSON } from "./api.js";
import { $, el, fmt, pct } from "./dom.js";
import { signedMap } from "./colours.js";

export const LANE_COLOURS = ["#0f766e", "#c2410c", "#6d28d9", "#b45309"];
const pg = { options: null, session: null, timer: null, configs: [], shownKey: null };
const HEAD_NAMES = { softmax_ce: "softmax + cross-entropy", sigmoid_bce: "sigmoid (one yes/no per digit)", relu_mse: "ReLU + squared error" };
const blank = () => ({ activations: ["relu"], width: 32, head: "softmax_ce", optimizer: "sgd", lr: 0.05, init: "auto" });

/** Fetch the playground's state and show it; poll while networks are training. */
export async function loadPlayground() {
  let st;
  try { st = await api("/api/playground"); } catch (err) { $("pg-status").textContent = err.message; return; }
  if (!pg.options) { pg.options = st; buildPresets(st); if (!pg.configs.length) pg.configs = [blank(), { ...blank(), activations: ["sigmoid"] }]; buildEditor(); }
  render(st);
  clearTimeout(pg.timer);
  if (st.session && st.session.running) pg.timer = setTimeout(loadPlayground, 400);
}

// ------------------------------------------------------------------------ presets and editor
function buildPresets(st) {
  $("pg-presets").replaceChildren(...st.presets.map((p) => el("button", {
    type: "button", class: "pg-preset", "data-preset": p.name, title: p.rule_text,
    onclick: () => startPreset(p.name),
  }, el("strong", { text: p.title }), el("span", { class: "muted small", text: `“${p.rule_text}”` }))));
}

/** Fill the editor with a preset's networks and start them (the lab's verdicts link here). */
export async function startPreset(name) {
  const p = pg.options && pg.options.presets.find((x) => x.name === name);
  if (!p) return;
  pg.configs = p.playground.configs.map((c) => ({ ...c, activations: [...c.activations] }));
  buildEditor();
  $("pg-look").textContent = p.look;
  await start({ preset: name });
}

const select = (values, current, names = {}) => el("select", {}, ...values.map((v) => el("option", { value: v, text: names[v] || v.replace("_", " "), selected: v === current })));

function buildEditor() {
  const box = $("pg-configs");
  box.replaceChildren(...pg.configs.map((c, k) => configRow(c, k)));
  $("pg-add").disabled = pg.configs.length >= (pg.options ? pg.options.max_configs : 4);
}

function configRow(c, k) {
  const o = pg.options;
  const depth = el("input", { type: "number", min: 1, max: 8, value: c.activations.length, "aria-label": "hidden layers" });
  const acts = el("span", { class: "pg-acts" }, ...c.activations.map((a, i) => {
    const s = select(o.activations, a); s.setAttribute("aria-label", `activation of hidden layer ${i + 1}`);
    s.addEventListener("change", () => { c.activations[i] = s.value; if (i === 0 && c.activations.every((x, j) => j === 0 || x === a)) c.activations.fill(s.value); buildEditor(); });
    return s;
  }));
  depth.addEventListener("change", () => {
    const d = Math.max(1, Math.min(8, parseInt(depth.value, 10) || 1));
    c.activations = Array.from({ length: d }, (_, i) => c.activations[Math.min(i, c.activations.length - 1)]);
    buildEditor();
  });
  const num = (key, attrs) => { const i = el("input", { type: "number", value: c[key], ...attrs }); i.addEventListener("change", () => { c[key] = Number(i.value); }); return i; };
  const pick = (key, values, names) => { const s = select(values, c[key], names); s.addEventListener("change", () => { c[key] = s.value; }); return s; };
  return el("div", { class: "pg-config", style: `--c:${LANE_COLOURS[k]}` },
    el("span", { class: "pg-swatch", text: `${k + 1}` }),
    el("label", {}, "hidden layers", depth),
    el("label", {}, "activation per layer", acts),
    el("label", {}, "units per layer", num("width", { min: 1, max: 512 })),
    el("label", {}, "output layer", pick("head", o.heads, HEAD_NAMES)),
    el("label", {}, "optimizer", pick("optimizer", o.optimizers)),
    el("label", {}, "learning rate", num("lr", { min: 0.0001, max: 10, step: "any" })),
    el("label", {}, "initial weights", pick("init", o.inits, { auto: "auto (He before ReLU)" })),
    pg.configs.length > 1 ? el("button", { type: "button", class: "pg-remove", title: "remove this network", text: "✕", onclick: () => { pg.configs.splice(k, 1); buildEditor(); } }) : null);
}

async function start(body = null) {
  const speed = $("pg-full").checked ? "full" : "slow";
  try {
    render(await postJSON("/api/playground/run", { ...(body || { configs: pg.configs }), speed }));
  } catch (err) { $("pg-status").textContent = err.message; }
  loadPlayground();
}

export function initPlayground() {
  $("pg-add").addEventListener("click", () => { pg.configs.push({ ...blank(), activations: ["tanh"] }); buildEditor(); });
  $("pg-start").addEventListener("click", () => { $("pg-look").textContent = ""; start(); });
  $("pg-cancel").addEventListener("click", async () => {
    try { render(await api("/api/playground/cancel", { method: "POST" })); } catch (err) { $("pg-status").textContent = err.message; }
    loadPlayground();
  });
}

// --------------------------------------------------------------------------------- rendering
function render(st) {
  const s = st.session, running = !!(s && s.running);
  $("pg-start").disabled = !st.enabled || running;
  document.querySelectorAll(".pg-preset").forEach((b) => { b.disabled = !st.enabled || running; });
  $("pg-cancel").disabled = !running;
  document.body.dataset.playground = s ? (running ? "running" : s.state) : "none";
  if (!st.enabled) $("pg-status").textContent = "Training is switched off on this server, so the playground cannot run. Try `digitlens playground --compare relu sigmoid` in a terminal.";
  if (!s) { if (st.enabled) $("pg-status").textContent = "Pick a preset, or set up two to four networks and press Start."; drawCurves(null); return; }
  const b = s.playground.budget;
  const done = Math.max(0, ...s.lanes.map((l) => l.rows.length)), total = b.epochs * b.checks_per_epoch + 1;
  $("pg-bar").style.width = `${(100 * (running ? done / total : 1)).toFixed(1)}%`;
  $("pg-status").textContent = running
    ? `Training ${s.lanes.length} networks side by side on the same ${b.n_train.toLocaleString()} digits and the same mini-batches${s.pace ? " (slow motion)" : ""}: epoch ${fmt(Math.max(0, ...s.lanes.map((l) => (l.rows.length ? l.rows[l.rows.length - 1].epoch : 0))), 2)} of ${b.epochs}.`
    : `${s.message || s.state}. ${b.n_train.toLocaleString()} training digits, ${b.n_test} test digits, ${b.epochs} epochs, seed ${b.seed}.`;
  drawCurves(s);
  renderLanes(s);
  const sum = $("pg-summary");
  sum.hidden = !s.summary;
  if (s.summary) sum.replaceChildren(el("h3", { text: "What happened" }), ...s.summary.facts.map((f) => el("p", { text: f })));
}

function renderLanes(s) {
  const box = $("pg-lanes");
  const key = `${s.playground.configs.length}|${JSON.stringify(s.playground.configs)}`;
  if (pg.shownKey !== key) {
    pg.shownKey = key;
    box.replaceChildren(...s.lanes.map((l, k) => el("article", { class: "pg-lane", style: `--c:${LANE_COLOURS[k]}`, "data-lane": String(k) },
      el("h3", { text: s.labels[k] }),
      el("p", { class: "pg-lane-state muted small" }),
      el("div", { class: "pg-lane-body" },
        el("figure", {}, el("canvas", { class: "map pg-template", width: 28, height: 28, role: "img", "aria-label": "first-layer template" }),
          el("figcaption", { class: "small", text: "unit 1's 784 input weights (red +, blue −)" })),
        el("div", { class: "pg-grads" }),
        el("dl", { class: "pg-shares small" })))));
  }
  s.lanes.forEach((l, k) => {
    const card = box.children[k]; if (!card) return;
    const last = l.rows[l.rows.length - 1];
    card.querySelector(".pg-lane-state").textContent = `${l.state}${l.cached ? " (replayed from the lab's cache)" : ""}${l.message ? `: ${l.message}` : ""}`;
    if (!last) return;
    if (l.template) signedMap(card.querySelector(".pg-template"), chunk(l.template, 28));
    drawGrads(card.querySelector(".pg-grads"), l.layers, last.grad_rms);
    card.querySelector(".pg-shares").replaceChildren(
      ...dd("test accuracy", pct(last.test_accuracy)), ...dd("training accuracy", pct(last.train_accuracy)),
      ...dd("dead hidden units", `${last.dead_units} of ${last.units}`),
      ...dd("values in the flat tails", pct(last.saturated_fraction)),
      ...dd("values switched off (slope 0)", pct(last.off_fraction)),
      ...dd("first layer's outputs", last.activation_range ? `${fmt(last.activation_range[0], 2)} … ${fmt(last.activation_range[1], 2)}` : "–"));
  });
}
const dd = (k, v) => [el("dt", { text: k }), el("dd", { text: v })];
const chunk = (a, n) => Array.from({ length: a.length / n }, (_, i) => a.slice(i * n, i * n + n));

/** Gradient size per layer: one bar each, on a log scale (1e-5 .. 1), with its number. */
function drawGrads(box, layers, rms) {
  box.replaceChildren(el("p", { class: "small muted", text: "gradient size per layer (RMS of dL/dW, log scale)" }),
    ...rms.map((v, i) => {
      const w = v > 0 ? Math.max(2, Math.min(100, 100 * (Math.log10(v) + 5) / 5)) : 0;
      return el("div", { class: "pg-grad" }, el("span", { class: "small", text: layers[i] || `layer ${i + 1}` }),
        el("span", { class: "pg-gradbar" }, el("span", { style: `width:${w}%` })), el("span", { class: "small", text: v === null ? "–" : v.toExponential(1) }));
    }));
}

/** Accuracy and loss of every network over epochs: test solid, training dashed. */
function drawCurves(s) {
  const b = s ? s.playground.budget : { epochs: 6 };
  const series = (key) => (s ? s.lanes.flatMap((l, k) => [
    { pts: l.rows.map((r) => [r.epoch, r[`test_${key}`]]), colour: LANE_COLOURS[k], dash: [] },
    { pts: l.rows.map((r) => [r.epoch, r[`train_${key}`]]), colour: LANE_COLOURS[k], dash: [5, 4] },
  ]) : []);
  lineChart($("pg-acc"), series("accuracy"), { xmax: b.epochs, ymin: 0, ymax: 1, percent: true });
  const losses = s ? s.lanes.flatMap((l) => l.rows.flatMap((r) => [r.test_loss, r.train_loss])).filter((v) => v !== null) : [];
  lineChart($("pg-loss"), series("loss"), { xmax: b.epochs, ymin: 0, ymax: Math.max(0.1, ...losses) * 1.05 });
}

function lineChart(cv, series, o) {
  const ctx = cv.getContext("2d"), W = cv.width, H = cv.height, L = 48, R = 12, T = 12, B = 34;
  ctx.clearRect(0, 0, W, H);
  const X = (v) => L + (W - L - R) * v / o.xmax, Y = (v) => H - B - (H - T - B) * (v - o.ymin) / (o.ymax - o.ymin);
  ctx.font = "12px system-ui, sans-serif"; ctx.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = o.ymin + (o.ymax - o.ymin) * i / 4;
    ctx.strokeStyle = "#e3e1da"; ctx.beginPath(); ctx.moveTo(L, Y(v)); ctx.lineTo(W - R, Y(v)); ctx.stroke();
    ctx.fillStyle = "#5f6b7a"; ctx.fillText(o.percent ? `${Math.round(100 * v)}%` : v.toFixed(2), 6, Y(v) + 4);
  }
  for (let e = 0; e <= o.xmax; e++) ctx.fillText(String(e), X(e) - 3, H - B + 14);
  ctx.fillText("epochs", W - R - 44, H - 6);
  for (const sr of series) {
    const pts = sr.pts.filter((p) => p[1] !== null && p[1] !== undefined);
    if (!pts.length) continue;
    ctx.strokeStyle = sr.colour; ctx.fillStyle = sr.colour; ctx.lineWidth = 2.2; ctx.setLineDash(sr.dash);
    ctx.beginPath(); pts.forEach(([x, y], i) => (i ? ctx.lineTo(X(x), Y(y)) : ctx.moveTo(X(x), Y(y)))); ctx.stroke();
  }
  ctx.setLineDash([]);
}
