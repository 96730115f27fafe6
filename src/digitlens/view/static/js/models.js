/* The model switcher: the ladder of models from GET /api/models, simplest first, with each one's
 * test accuracy and sentence; picking one asks for a new explanation. */
import { api } from "./api.js";
import { $, el } from "./dom.js";
import { scheduleUpdate } from "./live.js";
import { state } from "./state.js";
import { fillTrainModels } from "./train.js";

/** Fetch the models and rebuild the switcher (and the training tab's list). */
export async function loadModels(keepSelection = true) {
  const info = await api("/api/models");
  state.models = info.models; state.training = info.training;
  const ladder = info.models.filter((m) => m.on_page ?? m.in_ladder);  // binary (0 or 1) too
  if (!keepSelection || !state.model || !ladder.some((m) => m.name === state.model && m.trained)) state.model = info.default;
  const box = $("model-options");
  box.replaceChildren();
  for (const m of ladder) {
    const input = el("input", { type: "radio", name: "model", value: m.name, checked: m.name === state.model, disabled: !m.trained, "aria-describedby": "model-sentence" });
    input.addEventListener("change", () => selectModel(m.name));
    const acc = m.trained && m.test_accuracy != null ? el("span", { class: "acc", text: `${(100 * m.test_accuracy).toFixed(1)}%` }) : el("span", { class: "acc", text: m.trained ? "" : "untrained" });
    box.append(el("label", { title: m.trained ? m.sentence : `${m.sentence} — not trained yet: use “Train a model”.` }, input, el("span", { class: "opt" }, m.name.replace("_", " "), acc)));
  }
  const cur = info.models.find((m) => m.name === state.model);
  $("model-sentence").textContent = cur ? cur.sentence : "";
  $("tab-train").hidden = !info.training;
  fillTrainModels();
}

function selectModel(name) {
  state.model = name; state.selected = null; $("unit-detail").hidden = true;
  const cur = state.models.find((m) => m.name === name);
  $("model-sentence").textContent = cur ? cur.sentence : "";
  scheduleUpdate(0);
}
