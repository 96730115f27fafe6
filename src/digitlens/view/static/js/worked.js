/* The worked sum of one unit (the panel under the unit's details), and its connections drawn as
 * lines on the network.
 *
 * Every number comes from POST /api/models/<model>/worked/<layer>/<unit> (digitlens/explain/
 * worked.py): the inputs the unit reads, its weights, the products w·x sorted by size, the running
 * total, the bias and the network's own z, the activation; for a filter, the window on each input
 * map at one position, which the learner steps across the image (arrow keys, buttons or the
 * slider) while its feature map fills in, value by value. Nothing is computed here.
 *
 * Stable ids for other views: #worked (the panel), #worked-terms (the table), #worked-total,
 * #worked-z, #worked-pos (the position slider), #worked-fmap (the feature map being filled).
 * units.js's `openUnit(layer, unit, {at})` opens a unit and its worked sum.
 */
import { postJSON } from "./api.js";
import { actMap, actRamp, grayImage, paint, signedMap } from "./colours.js";
import { $, el, fmt, pct } from "./dom.js";
import { state } from "./state.js";

const hooks = { image: async () => null };
/** Where the board's picture comes from (main.js passes draw.js's `currentImage`). */
export function connectWorked(h) { Object.assign(hooks, h); }

const ROWS = 10;                 // products listed before "… n more"
const visited = new Map();       // "model/layer/unit" -> Map("r,c" -> z): the feature map filled so far
let shown = null;                // the worked sum on screen
let request = 0;

/** The request body: the board's picture and the switched-off steps, as sent to /api/explain. */
async function body(extra) {
  const b = { image: await hooks.image(), ...extra };
  const off = Object.entries(state.steps).filter(([, on]) => on === false);
  if (off.length) b.steps = Object.fromEntries(off);
  return b;
}

/** Fetch and draw the worked sum of `unit` of layer `layer` (at `at` for a filter). `open` opens
 * another unit (following a connection backwards). */
export async function showWorked(layer, unit, at, open) {
  const expl = state.expl;
  if (!expl) return;
  let box = $("worked");
  if (!box) { box = el("div", { id: "worked", class: "worked", "aria-live": "polite" }); $("unit-detail").after(box); }
  box.hidden = false;
  const mine = ++request;
  let w;
  try {
    w = await postJSON(`/api/models/${encodeURIComponent(expl.model)}/worked/${layer}/${unit}`, await body({ at: at || null }));
  } catch (err) { box.replaceChildren(el("p", { class: "muted", text: err.message })); return; }
  if (mine !== request || state.expl !== expl) return;
  shown = w;
  if (w.conv) {
    const key = `${w.model}/${w.layer}/${w.unit}`;
    if (!visited.has(key)) visited.set(key, new Map());
    visited.get(key).set(w.conv.at.join(","), w.z);
  }
  box.replaceChildren(...renderWorked(w, open));
  box.dataset.layer = w.layer; box.dataset.unit = w.unit;
  box.dataset.at = w.conv ? w.conv.at.join(",") : "";
  drawConnections(w);
}

/** Every convolution's feature maps for this explanation's drawing (POST /api/models/<model>/maps),
 * fetched once per explanation: the explanation lists only layers of at most 2,048 numbers. */
export async function loadFeatureMaps(expl) {
  if (expl._maps) return expl._maps;
  try {
    const got = await postJSON(`/api/models/${encodeURIComponent(expl.model)}/maps`, await body({}));
    expl._maps = got.layers;
  } catch (_) { return null; }
  return expl._maps;
}

/** Hide the panel and the lines (a unit without a worked sum, a new model). */
export function hideWorked() {
  const box = $("worked");
  if (box) box.hidden = true;
  const svg = $("network-lines");
  if (svg) svg.replaceChildren();
  shown = null;
}

function renderWorked(w, open) {
  const out = [el("h3", { text: `The sum worked out: ${w.unit_name}` }),
    el("p", { class: "small", text: `It reads ${w.reads}. Like logistic regression, it multiplies each input x by its weight w, adds the products and its bias b: z = Σ w·x + b. ` +
      `${w.n_zero} of its ${w.n_inputs} products are 0 (${w.conv ? "an input of 0, or a window cell off the image" : "its input is 0"}) and are left out.` })];
  if (w.conv) out.push(convBlock(w, open));
  out.push(termsTable(w), resultLine(w));
  if (w.output) out.push(outputBlock(w));
  out.push(connections(w, open));
  return out;
}

function termsTable(w) {
  const rows = w.terms.slice(0, ROWS).map((t, k) => el("tr", {},
    el("td", { text: String(k + 1) }), el("td", { class: "lbl", text: t.label }), el("td", { text: fmt(t.x, 4) }),
    el("td", { text: fmt(t.w, 4) }), el("td", { class: t.product >= 0 ? "pos" : "neg", text: fmt(t.product, 4) }),
    el("td", { text: fmt(t.running, 4) })));
  const n = w.terms.length;
  if (n > ROWS) {
    const rest = w.terms[n - 1].running - w.terms[ROWS - 1].running;
    rows.push(el("tr", { class: "rest" }, el("td", {}), el("td", { class: "lbl", text: `… ${n - ROWS} smaller products` }), el("td", {}), el("td", {}),
      el("td", { text: fmt(rest, 4) }), el("td", { text: fmt(w.terms[n - 1].running, 4) })));
  }
  rows.push(el("tr", { class: "bias" }, el("td", {}), el("td", { class: "lbl", text: "+ bias b" }), el("td", {}), el("td", {}),
    el("td", { text: fmt(w.bias, 4) }), el("td", { id: "worked-total", text: fmt(w.total, 4) })));
  return el("table", { class: "worked-terms", id: "worked-terms" },
    el("thead", {}, el("tr", {}, ...["#", "input", "x (its value)", "w (weight)", "w·x", "running total"].map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, ...rows));
}

function resultLine(w) {
  const act = w.activation ? `, then ${w.activation}(z) = ${fmt(w.a, 4)}` : w.output ? "" : " (no activation function follows)";
  return el("p", { class: "worked-z" }, "= ", el("strong", { id: "worked-z", text: `z = ${fmt(w.z, 4)}` }),
    ` — the number the network computed for your digit${act}.`);
}

function outputBlock(w) {
  const o = w.output, i = o.index, d = o.classes[i];
  if (o.function === "sigmoid") {
    return el("p", { class: "small", id: "worked-softmax", text: `Sigmoid: P(${o.classes[1]}) = 1 / (1 + e^−z) = 1 / (1 + ${fmt(o.exp[0], 4)}) = ${fmt(o.probabilities[0], 4)}.` });
  }
  if (o.function !== "softmax") return el("p", { class: "small", text: "This model's output is the sum itself." });
  return el("p", { class: "small", id: "worked-softmax" },
    `Softmax turns the ten sums into probabilities: e^(z − largest z) = e^(${fmt(o.shifted[i], 4)}) = ${fmt(o.exp[i], 4)}; `,
    `the ten such numbers add up to ${fmt(o.sum_exp, 4)}; ${fmt(o.exp[i], 4)} ÷ ${fmt(o.sum_exp, 4)} = ${fmt(o.probabilities[i], 4)}, `,
    el("strong", { text: `P(${d}) = ${pct(o.probabilities[i])}` }), ".");
}

function connections(w, open) {
  const list = (title, cons, cls) => {
    if (!cons.length) return null;
    return el("div", { class: "conns " + cls }, el("h4", { text: title }),
      el("ul", {}, ...cons.map((c) => {
        const text = `${c.name}: ${c.value >= 0 ? "+" : ""}${fmt(c.value, 3)}` + (c.n_terms > 1 ? ` (${c.n_terms} products)` : "");
        if (c.layer < 0) return el("li", { text });
        return el("li", {}, el("button", { class: "link", "data-layer": c.layer, "data-unit": c.unit, onclick: () => open(c.layer, c.unit, { at: c.at }) , text }));
      })));
  };
  return el("div", { class: "worked-conns" },
    el("p", { class: "small muted", text: "Which inputs push this sum up and down most for your digit (weight × input, summed over each unit's inputs; the lines on the network above). Click one to follow it back." }),
    list("pushes it up most", w.up, "up"), list("pushes it down most", w.down, "down"));
}

// ------------------------------------------------------------------------------ a filter's window
function convBlock(w, open) {
  const c = w.conv, [r, q] = c.at;
  const H = c.feature_map.length, W = c.feature_map[0].length;
  const step = (dr, dq) => {
    const nr = Math.max(0, Math.min(H - 1, r + dr)), nq = Math.max(0, Math.min(W - 1, q + dq));
    if (nr !== r || nq !== q) open(w.layer, w.unit, { at: [nr, nq] });
  };
  const keys = (e) => {
    const d = { ArrowRight: [0, 1], ArrowLeft: [0, -1], ArrowDown: [1, 0], ArrowUp: [-1, 0] }[e.key];
    if (d) { e.preventDefault(); step(...d); }
  };
  const slider = el("input", { type: "range", id: "worked-pos", min: 0, max: H * W - 1, value: r * W + q, "aria-label": "window position (row by row)" });
  slider.addEventListener("change", () => { const v = Number(slider.value); open(w.layer, w.unit, { at: [Math.floor(v / W), v % W] }); });
  const btn = (label, dr, dq) => el("button", { class: "stepbtn", "aria-label": label, onclick: () => step(dr, dq), text: { up: "↑", down: "↓", left: "←", right: "→" }[label.split(" ")[1]] });
  const controls = el("div", { class: "worked-step", tabindex: "0", onkeydown: keys },
    btn("move up", -1, 0), btn("move left", 0, -1), btn("move right", 0, 1), btn("move down", 1, 0), slider,
    el("span", { class: "small", text: `row ${r}, column ${q} of ${H}×${W}` }));
  // the input maps the window covers, each with its kernel beside it
  const maps = el("div", { class: "worked-maps" });
  const order = c.map_sums.map((s, i) => [Math.abs(s), i]).sort((a, b) => b[0] - a[0]).map(([, i]) => i);
  for (const i of order) {
    const m = c.input_maps[i];
    const cv = el("canvas", { class: "map wmap", role: "img", "aria-label": c.map_names[i] });
    if (w.layer === 0 || c.input_maps.length === 1) grayImage(cv, m); else actMap(cv, m);
    const frame = el("div", { class: "wframe" }, cv, windowBox(c, m.length, m[0].length));
    const k = el("canvas", { class: "map kern", role: "img", "aria-label": `kernel for ${c.map_names[i]}` });
    signedMap(k, c.kernel[i]);
    maps.append(el("figure", { class: "wpair", "data-map": i }, frame, k,
      el("figcaption", { text: `${c.map_names[i]}: Σ = ${fmt(c.map_sums[i], 3)}` })));
  }
  const fm = el("canvas", { class: "map fmap", id: "worked-fmap", role: "img", "aria-label": "its feature map, filled in where you have moved the window" });
  paintVisited(fm, w);
  const seen = visited.get(`${w.model}/${w.layer}/${w.unit}`).size;
  const first = order[0];
  return el("div", { class: "worked-conv" },
    el("p", { class: "small", text: `A filter is one weighted sum slid across the image. Here its ${c.kernel[0].length}×${c.kernel[0][0].length} window sits at row ${r}, column ${q} of its feature map ` +
      `and covers rows ${c.rows[0]} to ${c.rows[1]}, columns ${c.cols[0]} to ${c.cols[1]} of each of the ${c.input_maps.length} input map${c.input_maps.length > 1 ? "s" : ""} (outside the image: zeros). ` +
      "Each map has its own kernel of weights (red raises the sum, blue lowers it); the maps are sorted by how much they add. Move the window with the arrow keys, the buttons or the slider." }),
    controls,
    el("div", { class: "worked-row" }, maps,
      el("figure", { class: "wpair" }, fm, el("figcaption", { text: `its feature map: ${seen} of ${H * W} values worked out so far (the yellow square is this one)` }))),
    numbersGrid(c, first));
}

/** The window's rectangle over an input map, in percent of the map (it may stick out: padding). */
function windowBox(c, h, w) {
  const top = (c.rows[0] / h) * 100, left = (c.cols[0] / w) * 100;
  const height = ((c.rows[1] - c.rows[0] + 1) / h) * 100, width = ((c.cols[1] - c.cols[0] + 1) / w) * 100;
  return el("span", { class: "wbox", style: `top:${top}%;left:${left}%;height:${height}%;width:${width}%` });
}

/** The feature map so far: positions the learner has visited coloured by z, the rest dark. */
function paintVisited(canvas, w) {
  const got = visited.get(`${w.model}/${w.layer}/${w.unit}`);
  const fmap = w.conv.feature_map;
  let m = 1e-12; for (const v of got.values()) m = Math.max(m, Math.abs(v));
  paint(canvas, fmap, (_, x, y) => {
    if (y === w.conv.at[0] && x === w.conv.at[1]) return [250, 204, 21];
    const v = got.get(`${y},${x}`);
    return v === undefined ? [40, 44, 52] : actRamp(Math.max(0, v) / m);
  });
}

/** One input map's window, kernel and products as numbers (the largest contributor's). */
function numbersGrid(c, i) {
  const grid = (title, g, cls) => el("table", { class: "wnum " + cls }, el("caption", { text: title }),
    el("tbody", {}, ...g.map((row) => el("tr", {}, ...row.map((v) => el("td", { text: fmt(v, 2) }))))));
  return el("div", { class: "worked-numbers" },
    el("p", { class: "small", text: `${c.map_names[i]}, the map that adds most, in numbers: each product is the window value times the weight in the same cell.` }),
    grid("window x", c.window[i], ""), el("span", { class: "op", text: "×" }), grid("kernel w", c.kernel[i], ""),
    el("span", { class: "op", text: "=" }), grid(`w·x (sum ${fmt(c.map_sums[i], 3)})`, c.products[i], "prod"));
}

// ------------------------------------------------------------------------------ lines on the network
/** Lines from the unit to the units (or pixels) that push it up (red) and down (blue) most. */
export function drawConnections(w = shown) {
  const net = $("network");
  if (!net || !w) return;
  let svg = $("network-lines");
  if (!svg) {
    svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.id = "network-lines"; svg.setAttribute("class", "network-lines"); svg.setAttribute("aria-hidden", "true");
    net.append(svg);
  }
  svg.replaceChildren();
  const base = net.getBoundingClientRect();
  const target = unitElement(w.layer, w.unit);
  if (!target) return;
  const to = centre(target.getBoundingClientRect(), base);
  const all = [...w.up, ...w.down];
  const big = Math.max(1e-12, ...all.map((c) => Math.abs(c.value)));
  for (const c of all) {
    const from = sourcePoint(c, base);
    if (!from) continue;
    const line = document.createElementNS("http://www.w3.org/2000/svg", "line");
    line.setAttribute("x1", from.x); line.setAttribute("y1", from.y); line.setAttribute("x2", to.x); line.setAttribute("y2", to.y);
    line.setAttribute("stroke", c.value > 0 ? "rgb(194,65,12)" : "rgb(29,78,216)");
    line.setAttribute("stroke-width", String(1 + 3 * Math.abs(c.value) / big));
    line.setAttribute("stroke-opacity", "0.75");
    svg.append(line);
  }
}

const centre = (r, base) => ({ x: r.left + r.width / 2 - base.left, y: r.top + r.height / 2 - base.top });

function unitElement(layer, unit) { return document.getElementById(`unit-${layer}-${unit}`); }

function sourcePoint(c, base) {
  if (c.layer >= 0) {
    const e = unitElement(c.layer, c.unit);
    return e ? centre(e.getBoundingClientRect(), base) : null;
  }
  const img = document.querySelector('#network .layer[data-layer="-1"] canvas');
  if (!img || !c.at) return null;
  const r = img.getBoundingClientRect();
  return { x: r.left + (c.at[1] + 0.5) / 28 * r.width - base.left, y: r.top + (c.at[0] + 0.5) / 28 * r.height - base.top };
}
