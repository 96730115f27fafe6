/* Class mode's two pages (digitlens serve --class):
 *   class.html    a learner joins with a nickname and draws digits (only their own are shown)
 *   teacher.html  the dashboard, with the token from the address (#token=...): counts per digit
 *                 and per learner, every model's confusion matrix on the class, the hardest
 *                 digits, fine-tuning on the class, export, deleting a learner.
 * Every number comes from the server (digitlens/view/server/classroom.py). */
import { api } from "./api.js";
import { $, el, pct } from "./dom.js";
import { an, fillConfusion, makePad } from "./mine.js";

const send = (path, method, headers, body) => api(path, { method, headers: { ...headers, ...(body ? { "Content-Type": "application/json" } : {}) }, body: body ? JSON.stringify(body) : undefined });

// ------------------------------------------------------------------------------ learner
let key = sessionStorage.getItem("digitlens-class-key"), pad = null, label = 0;
const mine = () => ({ "X-Learner-Key": key || "" });

function prompt() {
  $("c-prompt").textContent = `Draw ${an(label)}`; $("c-label").value = String(label);
  $("c-save").textContent = `Save as ${an(label)}`;
}

async function loadMe() {
  const m = await send("/api/class/me", "GET", mine());
  $("class-join").hidden = true; $("class-draw").hidden = false; $("me-nick").textContent = m.nickname;
  if (!pad.strokes.length) { label = m.prompt; prompt(); }
  $("c-count").textContent = m.total ? `You drew ${m.total === 1 ? "1 digit" : `${m.total} digits`}.` : "None yet.";
  $("c-grid").replaceChildren(...m.digits.slice().reverse().map((d) => el("figure", { class: "mine-tile", "data-id": String(d.id) },
    el("img", { src: d.grid, width: 56, height: 56, alt: `your ${d.label}` }),
    el("figcaption", {}, el("span", { text: String(d.label) }),
      el("button", { type: "button", class: "mine-del", text: "✕", title: "Delete for good", "aria-label": `delete your digit #${d.id}`,
        onclick: async () => { await send(`/api/class/digits/${d.id}`, "DELETE", mine()); loadMe(); } })))));
}

function initLearner() {
  pad = makePad($("c-pad"), (any) => { $("c-save").disabled = !any; });
  $("c-clear").addEventListener("click", () => pad.clear());
  $("c-label").addEventListener("change", (e) => { label = Number(e.target.value); prompt(); });
  $("c-save").addEventListener("click", async () => {
    $("c-status").textContent = "Saving…";
    try {
      const r = await send("/api/class/digits", "POST", mine(), { image: pad.png(), label });
      label = r.prompt; pad.clear(); prompt();
      $("c-status").textContent = `Saved your ${r.digit.label}. Thank you!`;
      loadMe();
    } catch (err) { $("c-status").textContent = err.message; }
  });
  $("join-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const r = await send("/api/class/join", "POST", {}, { nickname: $("join-nick").value });
      key = r.key; sessionStorage.setItem("digitlens-class-key", key); await loadMe();
    } catch (err) { $("join-status").textContent = err.message; }
  });
  if (key) loadMe().catch(() => { key = null; sessionStorage.removeItem("digitlens-class-key"); });
  prompt();
}

// ------------------------------------------------------------------------------ teacher
const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
const auth = { Authorization: `Bearer ${token}` };
let dash = null, chosen = null, ftPolling = null;

async function loadDashboard() {
  try {
    dash = await send("/api/class/dashboard", "GET", auth);
  } catch (err) { $("t-status").textContent = err.message; return; }
  $("t-status").textContent = `Updated ${new Date().toLocaleTimeString()}.`;
  document.body.dataset.total = String(dash.n);
  const count = (n, w) => `${n} ${w}${n === 1 ? "" : "s"}`;
  $("t-total").textContent = `${count(dash.n, "digit")} from ${count(Object.keys(dash.per_learner).length, "learner")} (${dash.joined.length} joined since the server started).`;
  $("t-per-digit").replaceChildren(
    el("thead", {}, el("tr", {}, el("th", { scope: "row", text: "digit" }), ...dash.per_label.map((_, k) => el("th", { scope: "col", text: String(k) })))),
    el("tbody", {}, el("tr", {}, el("th", { scope: "row", text: "drawn" }), ...dash.per_label.map((n) => el("td", { text: String(n) })))));
  $("t-per-learner").replaceChildren(el("thead", {}, el("tr", {}, ...["learner", "digits", ""].map((t) => el("th", { text: t })))),
    el("tbody", {}, ...Object.entries(dash.per_learner).map(([who, n]) => el("tr", {}, el("th", { scope: "row", text: who }), el("td", { text: String(n) }),
      el("td", {}, el("button", { type: "button", text: "Delete their digits", title: `Delete every digit of ${who} for good`,
        onclick: async () => { if (confirm(`Delete all ${n} digits of ${who} for good?`)) { await send(`/api/class/learners/${encodeURIComponent(who)}`, "DELETE", auth); loadDashboard(); } } }))))));
  $("t-models").replaceChildren(el("thead", {}, el("tr", {}, ...["model", "MNIST's writers", "the class", "what it gets wrong"].map((t) => el("th", { scope: "col", text: t })))),
    el("tbody", {}, ...dash.models.map((r) => el("tr", { class: r.model === chosen ? "chosen" : null, tabindex: "0", onclick: () => { chosen = r.model; loadDashboardView(); } },
      el("th", { scope: "row", text: r.model }), el("td", { text: pct(r.bundled_accuracy) }),
      el("td", { text: r.accuracy === null ? "–" : pct(r.accuracy) }), el("td", { text: r.n ? r.sentence.split(": ").slice(1).join(": ").replaceAll("your", "the class's") : "no digits yet" })))));
  loadDashboardView();
  fillModels();
}

function loadDashboardView() {
  const r = dash.models.find((m) => m.model === chosen) || dash.models[dash.models.length - 1];
  if (!r) return;
  chosen = r.model;
  for (const tr of $("t-models").querySelectorAll("tbody tr")) tr.classList.toggle("chosen", tr.firstChild.textContent === chosen);
  if (r.confusion) fillConfusion($("t-confusion"), r.model, r.confusion); else $("t-confusion").replaceChildren();
  const h = dash.hardest;
  $("t-hard-text").textContent = h.per_digit.length
    ? "The models' mean accuracy on each digit, hardest first: " + h.per_digit.slice(0, 4).map((d) => `${d.label}: ${pct(d.accuracy)} of ${d.n}`).join(" · ") + "." +
      (h.examples.length ? " Below: the digits that the most models misread." : " No model misread any of the class's digits.")
    : "No digits yet.";
  $("t-hard").replaceChildren(...h.examples.map((x) => el("figure", { class: "mine-miss", "data-id": String(x.id) },
    el("img", { "data-src": x.id, width: 42, height: 42, alt: `a ${x.label}` }),
    el("figcaption", { text: `a ${x.label}, misread by ${x.models.length === 1 ? x.models[0] : `${x.models.length} models`}` }))));
  for (const img of $("t-hard").querySelectorAll("img")) {
    send(`/api/class/digits-all/${img.dataset.src}`, "GET", auth).then((d) => { img.src = d.grid; }).catch(() => {});
  }
}

async function fillModels() {
  const sel = $("t-ft-model");
  if (sel.options.length) return;
  const { models } = await api("/api/models");
  const zoo = models.filter((m) => m.trained && !m.custom && m.in_ladder && m.sentence);
  sel.replaceChildren(...zoo.map((m) => el("option", { value: m.name, text: m.name })));
  if (zoo.some((m) => m.name === "cnn")) sel.value = "cnn";
}

function followFinetune() {
  clearInterval(ftPolling);
  const tick = async () => {
    const s = await send("/api/class/finetune", "GET", auth);
    $("t-ft-btn").disabled = s.state === "running";
    if (s.state === "running") { $("t-ft-status").textContent = `Fine-tuning ${s.model} on the class… epoch ${s.epoch || 0} done.`; return; }
    clearInterval(ftPolling);
    if (s.state === "failed") $("t-ft-status").textContent = `It failed: ${s.message}`;
    if (s.state !== "completed") return;
    const p = (v) => (v === null || v === undefined ? "–" : pct(v));
    $("t-ft-status").textContent = `Done in ${s.seconds.toFixed(1)} s: saved as “${s.name}” (the original ${s.model} is unchanged).`;
    $("t-ft-result").replaceChildren(el("thead", {}, el("tr", {}, ...["", "before", "after"].map((t) => el("th", { scope: "col", text: t })))),
      el("tbody", {},
        el("tr", {}, el("th", { scope: "row", text: `the class's ${s.n_held} digits kept aside` }), el("td", { text: p(s.before.mine_held) }), el("td", { text: p(s.after.mine_held) })),
        el("tr", {}, el("th", { scope: "row", text: "the 1,000 bundled test digits" }), el("td", { text: p(s.before.bundled_test) }), el("td", { text: p(s.after.bundled_test) }))));
    loadDashboard();
  };
  ftPolling = setInterval(tick, 800); tick();
}

function initTeacher() {
  $("t-learner-url").textContent = `${location.origin}/static/class.html` +
    (/^(localhost|127\.|\[::1\])/.test(location.host) ? " (with this computer's address on the network in place of " + location.hostname + ")" : "");
  $("t-ft-btn").addEventListener("click", async () => {
    try { await send("/api/class/finetune", "POST", auth, { model: $("t-ft-model").value }); followFinetune(); }
    catch (err) { $("t-ft-status").textContent = err.message; }
  });
  $("t-export").addEventListener("click", async () => {
    const r = await fetch("/api/class/export", { headers: auth });
    if (!r.ok) { $("t-status").textContent = `Export refused (${r.status}).`; return; }
    const a = el("a", { href: URL.createObjectURL(await r.blob()), download: "class-digits.zip" });
    document.body.append(a); a.click(); a.remove();
  });
  loadDashboard();
  setInterval(loadDashboard, 3000);
}

if (document.body.dataset.role === "teacher") initTeacher(); else initLearner();
