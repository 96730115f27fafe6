/* 2. The network: one column per layer — the input, feature maps, hidden units, the output —
 * coloured by this digit's activations, and the softmax worked out as a table. A unit (or a
 * filter's map) opens its details in units.js; the arrow keys walk a grid of units. */
import { actMap, actRamp, css, grayImage, mapCanvas, paint } from "./colours.js";
import { activationName, networkColumns } from "./columns.js";
import { $, el, fmt, pct } from "./dom.js";
import { state } from "./state.js";
import { showUnit } from "./units.js";
import { drawConnections, loadFeatureMaps } from "./worked.js";

export function renderNetwork(expl) {
  const box = $("network");
  box.replaceChildren();
  const cols = networkColumns(expl);
  const hasMaps = cols.some((c) => c.kind === "maps");
  $("network-lead").textContent = (hasMaps ? "Each small picture is a feature map: where one filter found its pattern (bright = strongly). " : "") +
    "Each square is one unit; its colour is its activation for your digit: dark = silent (0), bright = firing. Click a unit or a map (or use the arrow keys) to see the numbers behind it.";
  cols.forEach((col, ci) => {
    if (ci) box.append(el("span", { class: "layer-arrow", "aria-hidden": "true", text: "→" }));
    const wrap = el("div", { class: "layer", "data-layer": col.layer, id: `layer-${col.layer}` });
    wrap.append(el("div", { class: "lname", text: col.name }));
    if (col.kind === "input") {
      const c = mapCanvas("map mid", "the 28×28 input");
      grayImage(c, expl.image);
      wrap.append(c);
    } else if (col.kind === "maps") {
      wrap.append(renderMaps(col, expl));
    } else {
      const grid = renderUnitGrid(col, expl);
      if (grid.dataset.wide) wrap.classList.add("wide");
      wrap.append(grid);
    }
    wrap.append(el("div", { class: "ldesc", title: col.desc || "", text: shortDesc(col, expl) }));
    box.append(wrap);
  });
  if (cols.some((c) => c.kind === "dense" || c.kind === "output")) {
    const bar = el("canvas", { class: "legend-bar", width: 64, height: 1 });
    paint(bar, [Array.from({ length: 64 }, (_, i) => i / 63)], (v) => actRamp(v));
    box.append(el("div", { class: "legend", style: "align-self:flex-end" }, "0", bar, "max"));
  }
  renderSoftmax(expl);
  // convolutions whose maps the explanation does not list (too many numbers): ask for them
  if (cols.some((c) => c.kind === "maps" && c.dense && (c.dense.type === "conv2d" || c.dense.type === "maxpool2d") && !columnMaps(c, expl))) {
    loadFeatureMaps(expl).then((got) => { if (got && state.expl === expl) paintFetchedMaps(got); });
  }
  // while drawing, refresh the selected unit's numbers but not what it looks for (one request
  // per stroke end is enough)
  if (state.selected) showUnit(state.selected.layer, state.selected.unit, false, expl.detail !== "live");
  else drawConnections(null);
}

/** Paint the feature maps fetched from /api/models/<model>/maps into the filter buttons. */
function paintFetchedMaps(layers) {
  for (const L of layers) {
    let vmax = 0; for (const g of L.maps) for (const r of g) for (const v of r) vmax = Math.max(vmax, v);
    L.maps.forEach((g, c) => {
      const cv = document.querySelector(`#unit-${L.layer}-${c} canvas`);
      if (cv) { actMap(cv, g, vmax); cv.classList.remove("pending"); }
    });
    // the pooled maps: same colour scale as the maps they come from (pooling keeps maxima)
    if (L.pooled) L.pooled.forEach((g, c) => {
      const cv = document.querySelector(`#pool-${L.pool_layer}-${c} canvas`);
      if (cv) { actMap(cv, g, vmax); cv.classList.remove("pending"); }
    });
  }
  if (state.selected) drawConnections();
}

function shortDesc(col, expl) {
  const fn = activationName(col);
  if (col.kind === "input") return "784 pixel intensities";
  if (col.kind === "output") {
    // from the model's real output size: one sigmoid unit (binary) or one sum per digit
    const n = col.shape ? col.shape[0] : (col.values || []).length;
    const out = (expl && expl.output_function) || (n === 1 ? "sigmoid" : "softmax");
    if (n === 1) return `1 sum z = w·a + b, then ${out}: P(${expl ? expl.classes[expl.classes.length - 1] : 1}) = ${out}(z)`;
    return `${n} sums z = W·a + b, then ${out}`;
  }
  if (col.dense && col.dense.type === "maxpool2d") {
    const k = /(\d+×\d+) block/.exec(col.desc || "");
    return `${col.shape.join("×")}: the largest value of each ${k ? k[1] : "small"} square`;
  }
  if (col.kind === "dense") return `z = W·a + b, then ${fn || "no activation"}`;
  return `${col.shape.join("×")}${fn ? ", then " + fn : ""}`;
}

/** A column's feature maps as C grids of H×W, or null when the server did not send them. */
function columnMaps(col, expl) {
  const [C, H, W] = col.shape;
  // the trace lists the numbers of small layers only; the first layer's maps come with the units report
  if (col.values && col.shape.length === 3) {
    const maps = [];
    for (let c = 0; c < C; c++) {
      const grid = [];
      for (let y = 0; y < H; y++) grid.push(col.values.slice((c * H + y) * W, (c * H + y + 1) * W));  // row y of map c
      maps.push(grid);
    }
    return maps;
  }
  if (expl.units && expl.units.kind === "conv" && expl.units.layer === col.layer) return expl.units.units.map((u) => u.feature_map);
  return null;
}

function renderMaps(col, expl) {
  const [C, H, W] = col.shape;
  const box = el("div", { class: "units maps", style: `grid-template-columns: repeat(${Math.min(C, 4)}, auto)` });
  const maps = columnMaps(col, expl);
  const isConv = col.dense && col.dense.type === "conv2d";
  if (isConv) return filterButtons(col, maps, box);
  if (col.dense && col.dense.type === "maxpool2d") return pooledButtons(col, maps, box, expl);
  if (!maps) {
    const stack = el("div", { class: "stack", role: "img", "aria-label": `${C} maps of ${H}×${W}` });
    for (let c = 0; c < Math.min(C, 6); c++) stack.append(el("span", { style: `left:${6 * c}px; top:${6 * c}px` }));
    box.style.gridTemplateColumns = "auto";
    box.append(stack, el("span", { class: "small muted", text: `${C} maps, largest value ${fmt(col.stats && col.stats.max, 2)}` }));
    return box;
  }
  let vmax = 0; for (const g of maps) for (const r of g) for (const v of r) vmax = Math.max(vmax, v);
  maps.slice(0, 16).forEach((g, c) => {
    const cv = mapCanvas("map tiny", `map ${c}`);
    actMap(cv, g, vmax);
    if (col.kind === "maps" && col.dense && col.dense.type === "conv2d") {
      const b = el("button", { class: "mapbtn", "aria-label": `filter ${c}: show details` }, cv);
      b.addEventListener("click", () => showUnit(col.layer, c, true));
      box.append(b);
    } else box.append(cv);
  });
  if (maps.length > 16) box.append(el("span", { class: "small muted", style: "grid-column: 1 / -1", text: `+ ${maps.length - 16} more` }));
  return box;
}

/** Every filter of a convolution as a button showing its feature map (painted when the maps
 * arrive, if the explanation did not list them); clicking one opens its worked sum. */
function filterButtons(col, maps, box) {
  const [C] = col.shape;
  let vmax = 0;
  if (maps) for (const g of maps) for (const r of g) for (const v of r) vmax = Math.max(vmax, v);
  box.classList.add("filters-grid");
  for (let c = 0; c < C; c++) {
    const cv = mapCanvas("map tiny" + (maps ? "" : " pending"), `feature map of filter ${c}`);
    if (maps) actMap(cv, maps[c], vmax);
    const sel = state.selected && state.selected.layer === col.layer && state.selected.unit === c;
    const b = el("button", { class: "mapbtn" + (sel ? " sel" : ""), id: `unit-${col.layer}-${c}`, "data-unit": c,
      title: `filter ${c}`, "aria-label": `filter ${c}: show its weighted sum` }, cv);
    b.addEventListener("click", () => showUnit(col.layer, c, true));
    box.append(b);
  }
  return box;
}

/** The pooled maps, one per filter, like feature maps (painted when they arrive from
 * /api/models/<model>/maps if the trace does not list them); a click opens the filter they
 * come from. */
function pooledButtons(col, maps, box, expl) {
  const [C, H, W] = col.shape;
  const conv = networkColumns(expl).filter((c) => c.layer < col.layer && c.dense && c.dense.type === "conv2d").pop();
  let vmax = 0;
  if (maps) for (const g of maps) for (const r of g) for (const v of r) vmax = Math.max(vmax, v);
  box.classList.add("filters-grid");
  for (let c = 0; c < C; c++) {
    const cv = mapCanvas("map tiny" + (maps ? "" : " pending"), `pooled map of filter ${c} (${H}×${W})`);
    if (maps) actMap(cv, maps[c], vmax);
    const b = el("button", { class: "mapbtn pooled", id: `pool-${col.layer}-${c}`, "data-unit": c,
      title: `filter ${c}, after max-pooling (${H}×${W})`, "aria-label": `filter ${c} after max-pooling: show the filter` }, cv);
    if (conv) b.addEventListener("click", () => showUnit(conv.layer, c, true));
    box.append(b);
  }
  return box;
}

function renderUnitGrid(col, expl) {
  const vals = col.values || [];
  const n = vals.length;
  const isOut = col.kind === "output";
  const ncol = isOut ? 2 : n <= 16 ? 1 : n <= 64 ? 4 : n <= 150 ? 8 : 16;
  const grid = el("div", { class: "units" + (isOut ? " out" : ""), role: "grid", "aria-label": `${col.name}: ${n} units`, style: isOut ? "" : `grid-template-columns: repeat(${ncol}, 14px)` });
  if (!isOut && ncol * 16 > 180) grid.dataset.wide = "1";  // wider than a column: see style.css "worked"
  let vmax = 0; for (const v of vals) vmax = Math.max(vmax, v);
  const probs = expl.probabilities;
  // one output unit (binary): its sigmoid is the probability of the last class, P(1)
  const single = isOut && n === 1 && expl.classes.length === 2;
  const outClass = (j) => single ? expl.classes[1] : expl.classes[j];
  const outProb = (j) => single ? probs[1] : probs[j];
  vals.forEach((v, j) => {
    const colour = isOut ? actRamp(outProb(j)) : actRamp(vmax > 0 ? Math.max(0, v) / vmax : 0);
    const label = isOut ? String(outClass(j)) : "";
    const b = el("button", { class: "unit" + (state.selected && state.selected.layer === col.layer && state.selected.unit === j ? " sel" : ""),
      style: `background:${css(colour)}`, tabindex: j === 0 ? "0" : "-1", "data-unit": j, id: `unit-${col.layer}-${j}`,
      "aria-label": isOut ? `output ${label}: sum ${fmt(col.z[j], 2)}, probability ${pct(outProb(j))}` : `unit ${j}: activation ${fmt(v, 3)}`,
      text: label });
    b.addEventListener("click", () => showUnit(col.layer, j, true));
    b.addEventListener("keydown", (e) => gridKeys(e, grid, ncol));
    grid.append(b);
    if (isOut) grid.append(el("span", { class: "val", text: single ? `z=${fmt(col.z[j], 2)} · P(${label}) = ${pct(outProb(j))}` : `z=${fmt(col.z[j], 2)} · ${pct(probs[j])}` }));
  });
  return grid;
}

/** Arrow keys, Home and End move the focus within a grid of units (one tab stop per grid). */
function gridKeys(e, grid, ncol) {
  const units = [...grid.querySelectorAll(".unit")];
  const i = units.indexOf(e.target);
  const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: ncol === 2 ? 1 : ncol, ArrowUp: ncol === 2 ? -1 : -ncol, Home: -i, End: units.length - 1 - i }[e.key];
  if (step === undefined) return;
  e.preventDefault();
  const j = Math.max(0, Math.min(units.length - 1, i + step));
  units[i].tabIndex = -1; units[j].tabIndex = 0; units[j].focus();
}

function renderSoftmax(expl) {
  const sm = expl.trace && expl.trace.softmax;
  const box = $("softmax-table");
  // the summary names the model's real last step: softmax over the digits, or one sigmoid
  const summary = document.querySelector("#softmax-detail summary");
  const sigmoid = expl.output_function === "sigmoid";
  if (summary) summary.textContent = !sigmoid
    ? `How the last ${expl.classes.length === 10 ? "ten" : expl.classes.length} sums become probabilities (softmax)`
    : `How the one sum becomes a probability (${expl.output_function || "sigmoid"})`;
  if (!sm || sigmoid) {
    // one sigmoid unit (the engine's trace also writes it as a softmax over ±z/2, which gives the
    // same numbers, but the network has one sum): the engine's z and probabilities
    const out = networkColumns(expl).find((c) => c.kind === "output");
    if (out && out.z && out.z.length === 1 && expl.classes.length === 2) {
      const [c0, c1] = expl.classes, p = expl.probabilities;
      box.replaceChildren(el("p", { text: `P(${c1}) = sigmoid(z) = 1 / (1 + e^(−z)) with z = ${fmt(out.z[0], 3)}: ${pct(p[1])}. P(${c0}) = 1 − P(${c1}) = ${pct(p[0])}. A sigmoid turns any sum into a number between 0 and 1, so it must pick ${c0} or ${c1}.` }));
    } else box.replaceChildren(el("p", { class: "muted", text: "This model has no softmax step." }));
    return;
  }
  const rows = [["sum z", sm.logits], ["z − max z", sm.shifted], ["e^(z − max z)", sm.exp], ["÷ " + fmt(sm.sum_exp, 4) + " (the sum)", sm.probabilities]];
  box.replaceChildren(el("table", {},
    el("thead", {}, el("tr", {}, el("th", { text: "digit" }), ...expl.classes.map((c) => el("th", { scope: "col", text: String(c) })))),
    el("tbody", {}, ...rows.map(([name, vals]) => el("tr", {}, el("td", { text: name }), ...vals.map((v) => el("td", { text: fmt(v, 3) })))))),
    el("p", { class: "small muted", text: "Subtracting the largest sum first changes nothing in the result but keeps e^z from overflowing." }));
}
