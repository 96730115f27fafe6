/* 1. Pre-processing: the row of steps the server took from the picture to the 28×28 grid (each
 * one can be switched off), the picked step's numbers and sentence, and the grid's 784 numbers. */
import { grayImage, mapCanvas } from "./colours.js";
import { $, el } from "./dom.js";
import { scheduleUpdate } from "./live.js";
import { state } from "./state.js";

/** A step's number (or list, or {name: number}) as short text. */
const numText = (v) => typeof v === "number" ? (Number.isInteger(v) ? String(v) : String(+v.toFixed(3)))
  : Array.isArray(v) ? v.map(numText).join(", ") : v && typeof v === "object" ? Object.entries(v).map(([k, x]) => `${k} ${numText(x)}`).join(", ") : String(v);

let pickedStep = null;   // the step whose details are shown (default: the last one)

/** One step's tile: its picture (a button that picks it) and, but for decoding, its on/off switch. */
function stepTile(s, i) {
  const name = s.name, on = s.enabled !== false, title = s.title || name;
  let img;
  if (typeof s.image === "string") img = el("img", { class: "stepimg", src: s.image, alt: "" });
  else { img = mapCanvas("map", ""); if (s.image) grayImage(img, s.image); }
  const pick = el("button", { class: "step-pick", "aria-pressed": String(name === pickedStep), title: s.sentence || "",
    "aria-label": `step ${i + 1}: ${title}${on ? "" : " (switched off)"}; show what it did` },
    img, el("span", { class: "step-title", text: `${i + 1} · ${title}` }));
  pick.addEventListener("click", () => { pickedStep = name; renderSteps(state.expl); });
  const tile = el("div", { class: "step" + (on ? "" : " off") + (name === pickedStep ? " picked" : ""), "data-step": name }, pick);
  if (name !== "decode") {
    const sw = el("input", { type: "checkbox", checked: on });
    sw.addEventListener("change", () => { state.steps[name] = sw.checked; pickedStep = name; scheduleUpdate(0); });
    tile.append(el("label", { class: "switch" }, sw, " use"));
  }
  return tile;
}

export function renderSteps(expl) {
  const box = $("steps"), pre = expl.preprocessing;
  box.replaceChildren();
  const steps = pre && Array.isArray(pre.steps) ? pre.steps : [];
  if (!steps.length) box.append(el("p", { class: "muted", text: "The server did not report pre-processing steps for this image." }));
  if (!steps.some((s) => s.name === pickedStep)) pickedStep = steps.length ? steps[steps.length - 1].name : null;
  steps.forEach((s, i) => box.append(stepTile(s, i)));
  const s = steps.find((x) => x.name === pickedStep);
  const detail = $("step-detail");
  if (!s) { detail.replaceChildren(); } else {
    const nums = Object.entries(s.numbers || {}).map(([k, v]) => el("span", { class: "kv" }, el("span", { class: "k", text: k.replace(/_/g, " ") }), " ", el("span", { class: "v", text: numText(v) })));
    // replaceChildren() would write a null child as the text "null": pass only real nodes
    detail.replaceChildren(el("p", {}, el("strong", { text: `${s.title || s.name}${s.enabled === false ? " (switched off)" : ""}: ` }), s.sentence || ""),
      ...(nums.length ? [el("p", { class: "nums" }, ...nums)] : []));
  }
  renderGridNumbers(expl.image);
}

/** The 28×28 numbers the network reads, as a table (only when "show the numbers" is ticked). */
function renderGridNumbers(image) {
  const box = $("grid-numbers");
  box.hidden = !$("show-numbers").checked;
  if (box.hidden) return;
  const head = el("tr", {}, el("th", { text: "" }), ...image[0].map((_, x) => el("th", { scope: "col", text: String(x) })));
  const body = image.map((row, y) => el("tr", {}, el("th", { scope: "row", text: String(y) }),
    ...row.map((v) => {
      const g = Math.round(255 * (1 - v));
      return el("td", { style: `background: rgb(${g},${g},${g}); color: ${v > 0.5 ? "#fff" : v > 0 ? "#333" : "#bbb"}`, text: v === 0 ? "0" : v.toFixed(2) });
    })));
  box.replaceChildren(el("table", { "aria-label": "the 28 by 28 numbers the network reads" }, el("thead", {}, head), el("tbody", {}, ...body)));
}

export function initPreprocess() {
  $("show-numbers").addEventListener("change", () => { if (state.expl) renderGridNumbers(state.expl.image); else $("grid-numbers").hidden = !$("show-numbers").checked; });
}
