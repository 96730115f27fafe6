/* 7. What a filter (or unit) looks for, at every depth: the training digits' windows that make it
 * fire most, its window on your digit, and its response curves to lines and arcs drawn at every
 * angle, beside the hand-made kernels' curves.
 *
 * Every number comes from POST /api/models/<model>/filters/<layer>/<unit> (the engine ran the
 * strokes and the training digits); this module only draws. It follows the unit the learner
 * clicks in the network (state.selected) and has its own layer/unit picker.
 */
import { postJSON } from "./api.js";
import { grayImage, mapCanvas, signedMap } from "./colours.js";
import { currentImage } from "./draw.js";
import { $, el, fmt } from "./dom.js";
import { state } from "./state.js";

export const looks = { layer: null, unit: null, info: null, key: null, pending: null };

/** The model's layers that have units, named for people (from the explanation). */
function unitLayers(expl) {
  return (expl.layer_names || []).filter((n) => n.n_units !== null && n.n_units !== undefined);
}

/** The layer shown by default: the second convolution if there is one, else the first unit layer. */
function defaultLayer(expl) {
  const ls = unitLayers(expl);
  const convs = ls.filter((n) => n.type === "conv2d");
  return (convs[1] || convs[0] || ls[0] || {}).index;
}

/** Fetch and draw what `unit` of `layer` looks for (null unit: the one that fires most on the digit). */
export async function showLooks(layer, unit = null, focus = false) {
  const expl = state.expl;
  if (!expl) return null;
  looks.layer = layer; looks.unit = unit;
  const box = $("looks");
  const key = `${expl.model}/${layer}/${unit}/${expl.image_key || expl.prediction}`;
  box.replaceChildren(el("p", { class: "muted", text: "measuring what it looks for…" }));
  const ask = async (u) => postJSON(`/api/models/${encodeURIComponent(expl.model)}/filters/${layer}/${u}`,
    { image: await currentImage(), steps: state.steps });
  let info;
  try {
    info = await ask(unit === null ? 0 : unit);
    if (unit === null && info.digit && info.digit.strongest.length && info.digit.strongest[0].unit !== 0) {
      info = await ask(info.digit.strongest[0].unit);  // the one that fires most on this digit
    }
  } catch (err) {
    box.replaceChildren(el("p", { class: "muted", text: err.message }));
    return null;
  }
  if (state.expl !== expl || looks.layer !== layer) return null;
  looks.unit = info.unit; looks.info = info; looks.key = key;
  state.looks = info;  // what the panel shows (window.digitlens.looks, for the curious and the tests)
  renderPicker(expl);
  renderLooks(info);
  document.body.dataset.looks = `${layer}:${info.unit}`;
  if (focus) $("panel-looks").scrollIntoView({ block: "start", behavior: "smooth" });
  return info;
}

function renderPicker(expl) {
  const ls = unitLayers(expl);
  const sel = el("select", { id: "looks-layer", "aria-label": "layer" });
  for (const n of ls) sel.append(el("option", { value: n.index, text: n.name, selected: n.index === looks.layer }));
  const cur = ls.find((n) => n.index === looks.layer) || ls[0];
  const num = el("input", { id: "looks-unit", type: "number", min: 0, max: cur ? cur.n_units - 1 : 0, value: looks.unit ?? 0, "aria-label": "filter or unit number" });
  sel.addEventListener("change", () => showLooks(+sel.value, null));
  num.addEventListener("change", () => showLooks(+sel.value, Math.max(0, Math.min(+num.max, +num.value))));
  $("looks-pick").replaceChildren(el("label", {}, "Layer ", sel), el("label", {}, " filter / unit ", num));
}

/** A 28×28 digit drawn 4× with the window it was cropped to outlined in orange. */
function digitWithBox(digit, win, label) {
  const k = 4, c = el("canvas", { class: "map boxed", width: 28 * k, height: 28 * k, role: "img", "aria-label": label });
  const ctx = c.getContext("2d");
  digit.forEach((row, y) => row.forEach((v, x) => { const g = Math.round(255 * v); ctx.fillStyle = `rgb(${g},${g},${g})`; ctx.fillRect(x * k, y * k, k, k); }));
  const [t, l, b, r] = win;
  ctx.strokeStyle = "#f97316"; ctx.lineWidth = 2;
  ctx.strokeRect(l * k + 1, t * k + 1, (r - l) * k - 2, (b - t) * k - 2);
  return c;
}

/** A row of small pictures with captions. */
function strip(items) {
  const row = el("div", { class: "examples" });
  for (const [pixels, cap, label] of items) {
    const c = mapCanvas("map patch", label);
    grayImage(c, pixels);
    row.append(el("figure", {}, c, el("figcaption", { text: cap })));
  }
  return row;
}

/** A small icon of the stroke drawn for one bar: a line at `angle`° or an arc opening towards it. */
function strokeIcon(ctx, kind, angle, cx, cy, r) {
  const a = (angle * Math.PI) / 180;
  ctx.beginPath();
  if (kind === "line") {
    ctx.moveTo(cx - r * Math.cos(a), cy + r * Math.sin(a));
    ctx.lineTo(cx + r * Math.cos(a), cy - r * Math.sin(a));
  } else {
    // the half circle away from the opening (canvas angles run clockwise, y down)
    const open = -a, ox = cx + 0.5 * r * Math.cos(open), oy = cy + 0.5 * r * Math.sin(open);
    ctx.arc(ox, oy, r, open + Math.PI / 2, open + (3 * Math.PI) / 2);
  }
  ctx.stroke();
}

/** A bar chart of z per angle, each bar labelled by the stroke it measured. */
function curveChart(kind, angles, zs, best, title) {
  const w = 28 * angles.length + 40, h = 170;
  const cv = el("canvas", { class: "curve", width: w, height: h, role: "img",
    "aria-label": `${title}: ` + angles.map((a, i) => `${a}° z=${fmt(zs[i], 2)}`).join(", ") });
  const ctx = cv.getContext("2d");
  const vals = zs.map((v) => v ?? 0);
  const top = Math.max(1e-9, ...vals.map(Math.abs));
  const base = 20 + 100 * Math.max(...vals.map((v) => Math.max(0, v))) / top;
  ctx.font = "10px system-ui, sans-serif"; ctx.textAlign = "center";
  ctx.strokeStyle = "#94a3b8"; ctx.beginPath(); ctx.moveTo(30, base); ctx.lineTo(w - 4, base); ctx.stroke();
  ctx.fillStyle = "#475569"; ctx.fillText("z", 12, 14); ctx.fillText("0", 16, base + 3);
  angles.forEach((a, i) => {
    const x = 36 + 28 * i, v = vals[i], hh = (100 * v) / top;
    ctx.fillStyle = a === best ? "#c2410c" : v >= 0 ? "#0f766e" : "#1d4ed8";
    ctx.fillRect(x, Math.min(base, base - hh), 18, Math.abs(hh));
    ctx.fillStyle = "#334155"; ctx.fillText(fmt(v, 2), x + 9, v >= 0 ? base - hh - 3 : base - 3);
    ctx.strokeStyle = "#111827"; ctx.lineWidth = 2;
    strokeIcon(ctx, kind, a, x + 9, h - 28, 7);
    ctx.lineWidth = 1; ctx.fillStyle = "#64748b"; ctx.fillText(`${a}°`, x + 9, h - 6);
  });
  return el("figure", { class: "curve-fig" }, cv, el("figcaption", { text: title }));
}

/** The hand-made kernels with their measured preferences, and the likeness rule. */
function handRow(info) {
  const row = el("div", { class: "filters" });
  for (const k of info.hand) {
    const c = mapCanvas("map small", `hand-made ${k.name}`); signedMap(c, k.kernel);
    row.append(el("div", { class: "filter" }, c, el("span", { class: "cap", text: k.name }),
      el("span", { class: "cap sub", text: `best line ${k.line.best}°, arc opening ${k.arc.best}°` })));
  }
  const like = info.likeness;
  const rule = like
    ? `Cosine between this filter's weights and each hand-made kernel: ${Object.entries(like.cosines).map(([n, c]) => `${n} ${fmt(c, 2)}`).join(", ")}. We say “like” only at ${fmt(info.like_threshold, 1)} or more (1 = the same pattern).`
    : `Only a first-layer filter has weights over pixels to compare with these kernels; a deeper one is compared through its curves above. (The rule for “like”: a cosine of at least ${fmt(info.like_threshold, 1)}.)`;
  return el("div", { class: "hand-looks" }, el("h4", { text: "Hand-made kernels, measured the same way" }), row,
    el("p", { class: "small", id: "looks-like-rule", text: rule }));
}

function renderLooks(info) {
  const box = $("looks");
  const rf = info.receptive_field.size;
  const win = info.kind === "conv" ? `the ${rf[0]}×${rf[1]} window it reads` : "the whole digit it reads";
  const parts = [el("h3", { text: info.unit_name[0].toUpperCase() + info.unit_name.slice(1) })];
  parts.push(...info.sentences.map((s) => el("p", { class: "small", text: s })));
  const d = info.digit;
  const pics = el("div", { class: "looks-pics" });
  if (d && d.pixels) {
    const mine = strip([[d.pixels, `fires ${fmt(d.activation, 2)} at row ${d.position[0]}, col ${d.position[1]}`, "your digit's window"]]);
    if (state.expl && state.expl.image) mine.firstChild.prepend(digitWithBox(state.expl.image, d.window, "your digit, window outlined"));
    pics.append(el("div", {}, el("h4", { text: "On your digit" }), mine));
  } else if (d) {
    pics.append(el("div", {}, el("h4", { text: "On your digit" }), el("p", { class: "small", text: `activation ${fmt(d.activation, 3)}` })));
  }
  const row = strip(info.patches.map((p) => [p.pixels, `a ${p.label} · ${fmt(p.activation, 2)}`, `window of a training ${p.label}`]));
  if (info.kind === "conv") {
    // above each window, the whole training digit with the window outlined
    [...row.children].forEach((fig, n) => { const p = info.patches[n]; if (p.digit) fig.prepend(digitWithBox(p.digit, p.window, `training digit ${p.label}, window outlined`)); });
  }
  pics.append(el("div", {}, el("h4", { text: `Training digits that make it fire most, and ${win}` }), row));
  parts.push(pics);
  const c = info.curves;
  parts.push(el("h4", { text: "How strongly it answers strokes drawn by the program (its sum z, before ReLU)" }),
    el("p", { class: "small muted", text: `Each stroke is ${c.width} pixels wide, centred on the window ${c.position ? `of position (${c.position[0]}, ${c.position[1]})` : "of the image"} and slid up to ${fmt(Math.max(...c.shifts), 1)} pixels across itself; each bar keeps the best slide. The orange bar is the strongest.` }),
    el("div", { class: "curves" },
      curveChart("line", c.line.angles, c.line.z, c.line.best, "straight lines, by angle"),
      curveChart("arc", c.arc.openings, c.arc.z, c.arc.best, `arcs of radius ${c.radius}, by the side they open to`)));
  parts.push(handRow(info));
  box.replaceChildren(...parts);
}

/** A new explanation: refresh the panel (the same layer/unit if the model is the same). */
export function renderLooksPanel(expl) {
  if (expl.detail === "live") return;
  const same = looks.info && looks.info.model === expl.model;
  const layer = same ? looks.layer : defaultLayer(expl);
  if (layer === undefined || layer === null) { $("looks").replaceChildren(el("p", { class: "muted", text: "This model has no units to look at." })); return; }
  showLooks(layer, same ? looks.unit : null);
}

/** Clicking a filter or unit anywhere in the network opens it here too. */
export function initFilters() {
  const follow = () => setTimeout(() => {
    const s = state.selected;
    if (!s || !state.expl) return;
    const ls = unitLayers(state.expl);
    if (ls.some((n) => n.index === s.layer) && (s.layer !== looks.layer || s.unit !== looks.unit)) showLooks(s.layer, s.unit);
  }, 0);
  for (const id of ["network", "filters"]) {
    $(id).addEventListener("click", follow);
    $(id).addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") follow(); });
  }
}
