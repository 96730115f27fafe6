/* The "My digits" tab: collect your own digits, see how well each model reads them, and teach
 * a model your handwriting.
 *
 *   GET/POST /api/mine, POST /api/mine/{id}/label, DELETE /api/mine/{id}   the collection
 *   GET /api/mine/evaluate                                                  how well it reads me
 *   POST/GET /api/mine/finetune                                             teach it (background)
 *
 * Every number shown comes from the server (digitlens/training/mine_eval.py, finetune.py). A
 * misread digit opens in the Explore tab through the photo input, so the explanation is the
 * page's usual one, of the very image that was stored.
 */
import { api, postJSON } from "./api.js";
import { $, el, pct } from "./dom.js";

const W = 280, STROKE = 18;
let loaded = false, polling = null, lastEval = null, chosenModel = null;

// ------------------------------------------------------------------------- the drawing pad
/** A black pad with white strokes (as the Explore board); `png()` is the picture sent,
 * 140×140 like the board's. Shared with the class page (classroom.js). */
export function makePad(canvas, onChange = () => {}) {
  const pad = { strokes: [], current: null };
  const paint = () => {
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#000"; ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.strokeStyle = "#fff"; ctx.fillStyle = "#fff"; ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.lineWidth = STROKE;
    for (const s of pad.current ? [...pad.strokes, pad.current] : pad.strokes) {
      ctx.beginPath();
      s.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      if (s.length === 1) { ctx.arc(s[0][0], s[0][1], STROKE / 2, 0, 2 * Math.PI); ctx.fill(); }
      else ctx.stroke();
    }
    onChange(pad.strokes.length > 0);
  };
  const point = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * W / r.width, (e.clientY - r.top) * W / r.height];
  };
  canvas.addEventListener("pointerdown", (e) => { canvas.setPointerCapture(e.pointerId); pad.current = [point(e)]; paint(); });
  canvas.addEventListener("pointermove", (e) => { if (pad.current) { pad.current.push(point(e)); paint(); } });
  const end = () => { if (pad.current) { pad.strokes.push(pad.current); pad.current = null; paint(); } };
  canvas.addEventListener("pointerup", end); canvas.addEventListener("pointercancel", end);
  pad.clear = () => { pad.strokes = []; paint(); };
  pad.png = () => {
    const c = document.createElement("canvas"); c.width = W / 2; c.height = W / 2;
    c.getContext("2d").drawImage(canvas, 0, 0, W / 2, W / 2);
    return c.toDataURL("image/png");
  };
  paint();
  return pad;
}

let pad = null;
function initPad() {
  pad = makePad($("mine-pad"), (any) => { $("mine-save").disabled = !any; });
  pad.label = 0;
  $("mine-clear").addEventListener("click", () => pad.clear());
  $("mine-label").addEventListener("change", (e) => { pad.label = Number(e.target.value); showPrompt(); });
  $("mine-save").addEventListener("click", save);
}

export const an = (k) => (k === 8 ? `an ${k}` : `a ${k}`);

function showPrompt() {
  $("mine-prompt").textContent = `Draw ${an(pad.label)}`;
  $("mine-label").value = String(pad.label);
  $("mine-save").textContent = `Save as ${an(pad.label)}`;
}

async function save() {
  if (!pad.strokes.length) return;
  $("mine-status").textContent = "Saving…";
  try {
    const r = await postJSON("/api/mine", { image: pad.png(), label: pad.label });
    pad.label = r.prompt; pad.clear(); showPrompt();
    $("mine-status").textContent = `Saved your ${r.digit.label} (digit #${r.digit.id}).`;
    await loadMine(true);
  } catch (err) { $("mine-status").textContent = err.message; }
}

// ------------------------------------------------------------------------- the collection
function tile(d) {
  const sel = el("select", { "aria-label": `label of digit #${d.id}`, title: "Change its label",
    onchange: async (e) => {
      await postJSON(`/api/mine/${d.id}/label`, { label: Number(e.target.value) });
      $("mine-status").textContent = `Digit #${d.id} is now labelled ${e.target.value}.`; loadMine(true);
    } });
  for (let k = 0; k < 10; k++) sel.append(el("option", { value: String(k), text: String(k), selected: k === d.label }));
  const del = el("button", { type: "button", class: "mine-del", title: `Delete digit #${d.id} for good`, "aria-label": `delete digit #${d.id}`, text: "✕",
    onclick: async () => {
      await api(`/api/mine/${d.id}`, { method: "DELETE" });
      $("mine-status").textContent = `Deleted digit #${d.id} for good.`; loadMine(true);
    } });
  return el("figure", { class: "mine-tile", "data-id": String(d.id) },
    el("img", { src: d.grid, width: 56, height: 56, alt: `your digit #${d.id}, labelled ${d.label}` }),
    el("figcaption", {}, sel, del));
}

async function loadModelChoice() {
  const { models } = await api("/api/models");
  const zoo = models.filter((m) => m.trained && !m.custom && m.in_ladder && m.sentence);
  const sel = $("mine-ft-model"), keep = sel.value;
  sel.replaceChildren(...zoo.map((m) => el("option", { value: m.name, text: m.name })));
  sel.value = zoo.some((m) => m.name === keep) ? keep : (zoo.some((m) => m.name === "cnn") ? "cnn" : (zoo[0] || {}).name || "");
  $("mine-ft-btn").disabled = !zoo.length;
}

export async function loadMine(force = false) {
  if (loaded && !force) return;
  if (!loaded) loadModelChoice().catch(() => {});
  loaded = true;
  try {
    const m = await api("/api/mine");
    if (!force || !pad.strokes.length) { pad.label = m.prompt; showPrompt(); }
    const have = m.per_label.map((n, k) => [k, n]).filter(([, n]) => n);
    const none = m.per_label.map((n, k) => [k, n]).filter(([, n]) => !n).map(([k]) => k);
    $("mine-count").textContent = m.total
      ? `${m.total === 1 ? "1 digit" : `${m.total} digits`} so far. How many of each: ` +
        have.map(([k, n]) => `${k}: ${n}`).join(" · ") + (none.length ? `. None yet of ${none.join(", ")}.` : ".")
      : "No digits yet: draw one on the pad and save it.";
    $("mine-grid").replaceChildren(...m.digits.slice().reverse().map(tile));
  } catch (err) { $("mine-count").textContent = err.message; }
}

// ------------------------------------------------------------------------- how well it reads me
async function evaluate() {
  $("mine-eval-status").textContent = "Asking every model…";
  try {
    lastEval = await api("/api/mine/evaluate");
    if (!lastEval.n) { $("mine-eval-status").textContent = "Draw and save some digits first."; return; }
    $("mine-eval-status").textContent = `Each model read your ${lastEval.n} digits and the 1,000 bundled test digits (MNIST's writers).`;
    const rows = lastEval.models.map((r) => el("tr", { class: r.model === chosenModel ? "chosen" : null, onclick: () => showModel(r.model), tabindex: "0", title: "Show this model's confusion matrix and misread digits" },
      el("th", { scope: "row", text: r.model }), el("td", { text: pct(r.bundled_accuracy) }),
      el("td", { text: pct(r.accuracy) }), el("td", { text: r.sentence.split(": ").slice(1).join(": ") })));
    $("mine-eval").replaceChildren(el("thead", {}, el("tr", {}, ...["model", "MNIST's writers", "your digits", "what it gets wrong"].map((t) => el("th", { scope: "col", text: t })))),
      el("tbody", {}, ...rows));
    const best = lastEval.models.find((r) => r.model === chosenModel) || lastEval.models[lastEval.models.length - 1];
    if (best) showModel(best.model);
  } catch (err) { $("mine-eval-status").textContent = err.message; }
}

function showModel(name) {
  chosenModel = name;
  const r = lastEval.models.find((m) => m.model === name);
  for (const tr of $("mine-eval").querySelectorAll("tbody tr")) tr.classList.toggle("chosen", tr.firstChild.textContent === name);
  $("mine-sentence").textContent = `${name}: ${r.sentence}`;
  $("mine-eval-detail").hidden = false;
  fillConfusion($("mine-confusion"), name, r.confusion);
  $("mine-misread").replaceChildren(...(r.misread.length ? r.misread.map((m) => el("button", { type: "button", class: "mine-miss", title: `Explain this one in the Explore tab`,
    onclick: () => explainDigit(m.id, m.label) },
  el("img", { src: gridOf(m.id), width: 42, height: 42, alt: `digit #${m.id}` }),
  el("span", { text: `your ${m.label} → ${m.answer} (${pct(m.probability)})` }))) : [el("p", { class: "muted", text: "No misread digits." })]));
}

/** Fill `table` with a 10×10 confusion matrix (rows: the digit drawn, columns: the answer). */
export function fillConfusion(table, name, confusion) {
  const head = el("tr", {}, el("th", { class: "corner", text: "drawn ↓ read →" }), ...[...Array(10).keys()].map((k) => el("th", { scope: "col", text: String(k) })));
  const max = Math.max(1, ...confusion.flat());
  const body = confusion.map((row, t) => el("tr", {}, el("th", { scope: "row", text: String(t) }),
    ...row.map((v, p) => el("td", { text: v ? String(v) : "", class: v ? (p === t ? "ok" : "bad") : null,
      style: v ? `--a:${(0.15 + 0.85 * v / max).toFixed(2)}` : null, title: `${v} of the ${t}s drawn read as ${p}` }))));
  table.replaceChildren(el("caption", { text: `${name}: rows are the digit drawn, columns what the model answered` }), el("thead", {}, head), el("tbody", {}, ...body));
}

const grids = new Map();
function gridOf(id) { return grids.get(id) || ""; }

/** Put the stored drawing on the Explore board (through its photo input) and switch tabs. */
async function explainDigit(id, label) {
  const d = await api(`/api/mine/${id}`);
  // decoded here: the page's Content Security Policy does not let it fetch data: URLs
  const [head, b64] = d.original.split(",", 2), bin = atob(b64);
  const bytes = Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
  const blob = new Blob([bytes], { type: /^data:([^;]+)/.exec(head)?.[1] || "image/png" });
  const dt = new DataTransfer();
  dt.items.add(new File([blob], `your ${label}, digit #${id}.png`, { type: blob.type || "image/png" }));
  const input = $("file-photo"); input.files = dt.files;
  $("tab-explore").click();
  input.dispatchEvent(new Event("change"));
}

// ------------------------------------------------------------------------- teach it
async function finetune() {
  const model = $("mine-ft-model").value;
  try {
    await postJSON("/api/mine/finetune", { model });
    follow();
  } catch (err) { $("mine-ft-status").textContent = err.message; }
}

function follow() {
  clearInterval(polling);
  const tick = async () => {
    const s = await api("/api/mine/finetune");
    $("mine-ft-btn").disabled = s.state === "running";
    if (s.state === "running") $("mine-ft-status").textContent = `Fine-tuning ${s.model} on the bundled digits plus yours… epoch ${s.epoch || 0} done.`;
    else { clearInterval(polling); polling = null; showFinetune(s); }
  };
  polling = setInterval(tick, 700); tick();
}

function showFinetune(s) {
  if (s.state === "failed") { $("mine-ft-status").textContent = `It failed: ${s.message}`; return; }
  if (s.state !== "completed") return;
  const p = (v) => (v === null || v === undefined ? "–" : pct(v));
  $("mine-ft-status").textContent = `Done in ${s.seconds.toFixed(1)} s: saved as “${s.name}” (the original ${s.model} is unchanged). Choose it in the model list like any other.`;
  $("mine-ft-result").replaceChildren(
    el("thead", {}, el("tr", {}, ...["", "before", "after"].map((t) => el("th", { scope: "col", text: t })))),
    el("tbody", {},
      el("tr", {}, el("th", { scope: "row", text: `your ${s.n_held} digits kept aside (not trained on)` }), el("td", { text: p(s.before.mine_held) }), el("td", { text: p(s.after.mine_held) })),
      el("tr", {}, el("th", { scope: "row", text: "the 1,000 bundled test digits (did it forget?)" }), el("td", { text: p(s.before.bundled_test) }), el("td", { text: p(s.after.bundled_test) }))));
}

export function initMine() {
  initPad();
  $("mine-eval-btn").addEventListener("click", async () => {
    const m = await api("/api/mine"); m.digits.forEach((d) => grids.set(d.id, d.grid)); evaluate();
  });
  $("mine-ft-btn").addEventListener("click", finetune);
  api("/api/mine/finetune").then((s) => { if (s.state === "running") follow(); else showFinetune(s); }).catch(() => {});
}
