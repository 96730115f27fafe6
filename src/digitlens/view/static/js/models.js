/* The model switcher: the ladder of models from GET /api/models, simplest first, with each one's
 * test accuracy and sentence, then the learner's own networks; picking one asks for a new
 * explanation.  On a first start the server trains the missing models in the background
 * (`status`, `pending`): the switcher shows their progress, polls until they are ready, and
 * moves to the server's default (the highest rung ready so far) until the learner picks one. */
import { api } from "./api.js";
import { $, el } from "./dom.js";
import { scheduleUpdate } from "./live.js";
import { state } from "./state.js";
import { fillTrainModels } from "./train.js";
import { hideWorked } from "./worked.js";

const POLL_MS = 1500;
let pollTimer = null;
let userPicked = false;   // the learner clicked a model: stop following the server's default
let loadedOnce = false;   // the first load only fills the switcher (main.js asks for the first answer)

/** Fetch the models and rebuild the switcher (and the training tab's list). */
export async function loadModels(keepSelection = true) {
  const info = await api("/api/models");
  state.models = info.models; state.training = info.training;
  const ladder = info.models.filter((m) => m.on_page ?? m.in_ladder);  // binary (0 or 1) and your own too
  const ready = (name) => info.models.some((m) => m.name === name && m.trained);
  const before = state.model;
  if (!keepSelection || !state.model || !ready(state.model) || (!userPicked && ready(info.default))) state.model = info.default;
  if (!ready(state.model)) state.model = null;   // nothing trained yet: wait for the first model
  const box = $("model-options");
  box.replaceChildren();
  for (const m of ladder) {
    const input = el("input", { type: "radio", name: "model", value: m.name, checked: m.name === state.model, disabled: !m.trained, "aria-describedby": "model-sentence" });
    input.addEventListener("change", () => { userPicked = true; selectModel(m.name); });
    box.append(el("label", { class: m.custom ? "custom-model" : "", title: m.trained ? m.sentence : `${m.sentence} — ${m.status ? "training now; it becomes available when it is ready" : "not trained yet: use “Train a model”"}.` },
      input, el("span", { class: "opt" }, m.name.replaceAll("_", " "), el("span", { class: "acc", text: accText(m) }))));
  }
  const cur = info.models.find((m) => m.name === state.model);
  $("model-sentence").textContent = cur ? cur.sentence : "";
  showPending(info);
  $("tab-train").hidden = !info.training;
  fillTrainModels();
  // a model became ready (or a better one): read the board with it at once
  if (loadedOnce && state.model && state.model !== before) scheduleUpdate(0);
  loadedOnce = true;
}

function accText(m) {
  if (m.trained) return m.test_accuracy != null ? `${(100 * m.test_accuracy).toFixed(1)}%` : "";
  const s = m.status;
  if (s && s.state === "training") return s.epochs ? `training ${s.epochs_completed}/${s.epochs}` : "training";
  if (s && s.state === "queued") return "queued";
  return "untrained";
}

/** The first start's progress under the switcher, and a poll while models are still training. */
function showPending(info) {
  let note = $("model-progress");
  if (!note) {
    note = el("p", { id: "model-progress", class: "model-progress", role: "status", "aria-live": "polite" });
    $("model-sentence").after(note);
  }
  const pending = info.models.filter((m) => info.pending && info.pending.includes(m.name));
  note.hidden = !pending.length;
  document.body.dataset.pending = String(pending.length);
  if (!pending.length) { note.textContent = ""; return; }
  const now = pending.find((m) => m.status.state === "training");
  const rest = pending.filter((m) => m !== now).map((m) => m.name.replaceAll("_", " "));
  const doing = now ? `Training ${now.name.replaceAll("_", " ")} (epoch ${now.status.epochs_completed} of ${now.status.epochs} done)` : "Waiting to train";
  note.textContent = `First start: the models are learning from the 4,000 bundled digits. ${doing}${rest.length ? `, then ${rest.join(", ")}` : ""}. Each model becomes clickable as soon as it is ready${state.model ? ", and the page moves up the ladder to the highest model ready, until you pick one yourself" : "; the first one takes about a second"}.`;
  clearTimeout(pollTimer);
  pollTimer = setTimeout(() => loadModels(true).catch(() => {}), POLL_MS);
}

function selectModel(name) {
  // the open unit and its worked sum belong to the old model: close both
  state.model = name; state.selected = null; $("unit-detail").hidden = true; hideWorked();
  const cur = state.models.find((m) => m.name === name);
  $("model-sentence").textContent = cur ? cur.sentence : "";
  scheduleUpdate(0);
}
