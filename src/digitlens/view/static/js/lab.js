/* The activation lab tab: run the quick lab on the server (POST /api/lab/run), poll its progress,
 * and show each rule of thumb with its verdict, its numbers and its figures. */
import { api } from "./api.js";
import { $, el, plural } from "./dom.js";

const lab = { timer: null, shownAt: null };
const STATUS_CLASS = { "supported": "supported", "supported only when": "when", "not supported here": "not" };

/** Fetch the lab's state and show it; poll while a run is going. */
export async function loadLab() {
  let st;
  try { st = await api("/api/lab"); } catch (err) { $("lab-status").textContent = err.message; return; }
  renderLab(st);
  clearTimeout(lab.timer);
  if (st.run && st.run.state === "running") lab.timer = setTimeout(loadLab, 700);
}

/** The line under the buttons: running, failed, measured, or not run yet. */
function statusText(st, run, running) {
  if (running) return `Running: ${run.done} of ${run.total || "?"} (${run.size || "runs"})${run.label ? `, last: ${run.label}` : ""}…`;
  if (run && run.state !== "completed") return run.message;
  if (st.error) return st.error;
  if (st.report) return `${st.report.size || "Runs"}, measured on ${st.report.n_train} training digits, ${plural(st.report.epochs, "epoch")}, ${plural(st.report.seeds, "seed")} per setting${run ? ` — ${run.message}` : ""}.`;
  return st.enabled ? `No lab results yet. The quick lab trains over 200 small networks in under a minute (instantly if \`${st.command}\` already ran them).` :
    `The lab is switched off on this server. Run \`${st.command}\` in a terminal, or ask for it to be switched on.`;
}

/** One rule: its verdict, the numbers behind it (folded), its figures (click: full size) and
 * the playground preset that shows it happen. */
function verdictCard(v, report) {
  const figs = el("div", { class: "figs" }, ...(v.figures || []).map((f) => {
    const src = `/api/lab/figures/${encodeURIComponent(f)}?v=${encodeURIComponent(report.seconds)}`;
    return el("a", { href: src, target: "_blank", rel: "noopener", title: "open the figure full size" },
      el("img", { src, alt: `figure: ${f.replace(/_/g, " ")}`, loading: "lazy" }));
  }));
  return el("article", { class: "lab-verdict", "data-verdict": v.id },
    el("h3", { text: v.rule }),
    el("p", {}, el("span", { class: `status ${STATUS_CLASS[v.status] || ""}`, text: v.status }), v.headline),
    el("details", {}, el("summary", { text: "the numbers" }), el("p", { text: v.text }),
      v.measurement ? el("p", { class: "muted small", text: `Measured: ${v.measurement}` }) : null),
    el("p", { class: "small" }, el("a", { href: `#playground=${encodeURIComponent(v.id)}`, "data-preset": v.id, text: "Watch it happen in the playground →" })),
    figs);
}

/** The study's budget and what it exaggerates; then "what to use, and why" with its numbers. */
function budgetAndAdvice(report) {
  const box = $("lab-advice");
  if (!report || !report.advice) { box.replaceChildren(); return; }
  const a = report.advice;
  box.replaceChildren(
    el("p", { class: "lab-budget small" }, el("strong", { text: "Budget and caveats. " }), a.budget, " ", ...a.caveats.map((c) => `${c} `)),
    el("h3", { text: "So, which activation should I use, and why?" }),
    el("ul", {}, ...a.points.map((p) => el("li", {}, el("strong", { text: `${p.title} ` }), p.text))));
}

function renderLab(st) {
  const run = st.run, running = !!run && run.state === "running";
  $("btn-lab").disabled = !st.enabled || running;
  $("btn-lab-cancel").disabled = !st.enabled || !running;
  $("btn-lab").textContent = st.report ? "Run the quick lab again" : "Run the quick lab";
  $("lab-where").textContent = `the same runs as \`${st.command}\`; finished runs are kept, so running it again is instant`;
  $("lab-status").textContent = statusText(st, run, running);
  $("lab-status").dataset.state = running ? "running" : (run ? run.state : (st.report ? "report" : "none"));
  $("lab-bar").style.width = running && run.total ? `${(100 * run.done / run.total).toFixed(1)}%` : (st.report && !running ? "100%" : "0");
  const box = $("lab-verdicts");
  const key = st.report ? `${st.report.seconds}|${st.report.verdicts.length}|${st.report.figures.join(",")}` : null;
  if (key === lab.shownAt) return;   // unchanged: keep the figures as they are
  lab.shownAt = key;
  box.replaceChildren();
  budgetAndAdvice(st.report);
  if (!st.report) return;
  for (const v of st.report.verdicts) box.append(verdictCard(v, st.report));
}

export function initLab() {
  $("btn-lab").addEventListener("click", async () => {
    try { renderLab(await api("/api/lab/run", { method: "POST" })); } catch (err) { $("lab-status").textContent = err.message; }
    loadLab();
  });
  $("btn-lab-cancel").addEventListener("click", async () => {
    try { renderLab(await api("/api/lab/cancel", { method: "POST" })); } catch (err) { $("lab-status").textContent = err.message; }
    loadLab();
  });
}
