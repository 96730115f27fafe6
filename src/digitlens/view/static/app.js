/* digitlens web page.
 *
 * This script only draws what the server computes: it sends the board's picture to
 * POST /api/explain and paints the numbers it gets back (the Explanation JSON, see
 * digitlens/explain/explanation.py).  No machine learning happens here.
 *
 * Live updates: while the learner draws, an update is sent at most every UPDATE_MS; there is
 * never more than one request in flight — if the board changes meanwhile, one more request is
 * sent when the current one returns (the newest picture wins).
 */
"use strict";
(() => {
  const UPDATE_MS = 140;
  const STROKE_WIDTH = 20;          // px on the 280×280 board (MNIST strokes are ~1/10 of a digit)
  // The drawing is sent at half the board's size, 140×140: five times the 28×28 grid, plenty for
  // the server's pre-processing (the digit ends up 20 px tall), and a quarter of the pixels to
  // upload, decode and process on every update. benchmarks/load_test.py sends the same.
  const SEND_SCALE = 0.5;
  const METHODS = [
    ["saliency", "gradient"],
    ["gradient_x_input", "gradient × input"],
    ["integrated_gradients", "integrated gradients"],
    ["occlusion", "occlusion"],
  ];
  const METHOD_TEXT = {
    saliency: "How much the digit's score would change if this one pixel got a little more ink (the gradient). It shows where the network is sensitive, whether or not there is ink there.",
    gradient_x_input: "Gradient times the pixel's ink: how much each inked pixel contributed. For the logistic model this is exactly the pixel's term w·x in the weighted sum.",
    integrated_gradients: "Fades your digit in from a blank board and adds up the gradients along the way, so the map's total equals the score of your digit minus the score of a blank board.",
    occlusion: "Covers a small patch at a time and records how much the digit's score drops — slow but model-agnostic: no gradients involved.",
  };

  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs = {}, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const kid of kids) if (kid !== null && kid !== undefined) e.append(kid);
    return e;
  };
  const fmt = (v, d = 3) => (v === null || v === undefined || Number.isNaN(v)) ? "–" : Number(v).toFixed(d);
  const pct = (v) => `${(100 * v).toFixed(v >= 0.995 || v < 0.001 ? 1 : 1)}%`;

  // ------------------------------------------------------------------------- state
  const state = {
    models: [], model: null, training: true,
    vs: null,               // contrast digit chosen by the learner (null = runner-up)
    target: null,           // attribution digit (null = the prediction)
    method: "integrated_gradients",
    steps: {},              // pre-processing switches: name -> false when switched off
    expl: null,             // the last Explanation JSON
    selected: null,         // {layer, unit} clicked in the network
    stats: { requests: 0, responses: 0, maxInFlight: 0, inFlight: 0, errors: 0 },
  };
  window.digitlens = state;  // for the curious (and for the browser tests)

  async function api(path, opts = {}) {
    const r = await fetch(path, opts);
    let body = null;
    try { body = await r.json(); } catch (_) { body = null; }
    if (!r.ok) {
      const err = new Error((body && body.message) || `the server answered ${r.status}`);
      err.code = body && body.error; err.status = r.status;
      throw err;
    }
    return body;
  }

  // ---------------------------------------------------------------------- colours
  const lerp = (a, b, t) => a + (b - a) * t;
  function ramp(stops) {  // stops: [[t, [r,g,b]], ...] sorted by t in [0, 1]
    return (t) => {
      t = Math.max(0, Math.min(1, t));
      for (let i = 1; i < stops.length; i++) {
        if (t <= stops[i][0]) {
          const [t0, c0] = stops[i - 1], [t1, c1] = stops[i];
          const u = (t - t0) / (t1 - t0 || 1);
          return [lerp(c0[0], c1[0], u), lerp(c0[1], c1[1], u), lerp(c0[2], c1[2], u)];
        }
      }
      return stops[stops.length - 1][1];
    };
  }
  // activations: dark (silent) -> teal -> warm yellow (firing)
  const actRamp = ramp([[0, [27, 36, 48]], [0.45, [20, 128, 118]], [0.8, [150, 200, 120]], [1, [253, 230, 138]]]);
  // signed maps: blue (negative) <- white -> red (positive)
  const NEG = [29, 78, 216], POS = [194, 65, 12], WHITE = [255, 255, 255];
  function diverging(v, vmax) {
    const t = vmax > 0 ? Math.max(-1, Math.min(1, v / vmax)) : 0;
    const c = t >= 0 ? POS : NEG, a = Math.abs(t);
    return [lerp(255, c[0], a), lerp(255, c[1], a), lerp(255, c[2], a)];
  }
  const css = (c) => `rgb(${c[0] | 0},${c[1] | 0},${c[2] | 0})`;
  const maxAbs = (grid) => { let m = 0; for (const row of grid) for (const v of row) m = Math.max(m, Math.abs(v)); return m; };
  const rows2d = (a) => Array.isArray(a[0]) ? a : [a];

  /** Paint a 2-D array into a canvas, one canvas pixel per value (CSS scales it up). */
  function paint(canvas, grid, colour) {
    grid = rows2d(grid);
    const h = grid.length, w = grid[0].length;
    canvas.width = w; canvas.height = h;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(w, h);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const c = colour(grid[y][x], x, y), i = 4 * (y * w + x);
      img.data[i] = c[0]; img.data[i + 1] = c[1]; img.data[i + 2] = c[2]; img.data[i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    return canvas;
  }
  /** A gray image into a canvas: rows of intensities in [0, 1], or a PNG data URL (training digits). */
  function grayImage(canvas, grid) {
    if (typeof grid !== "string") return paint(canvas, grid, (v) => { const g = 255 * Math.max(0, Math.min(1, v)); return [g, g, g]; });
    const im = new Image();
    im.onload = () => { canvas.width = im.width; canvas.height = im.height; canvas.getContext("2d").drawImage(im, 0, 0); };
    im.src = grid;
    return canvas;
  }
  function signedMap(canvas, grid, under = null) {
    const m = maxAbs(grid);
    return paint(canvas, grid, (v, x, y) => {
      const c = diverging(v, m);
      if (!under) return c;
      // the digit shows through faintly where the map is near zero
      const ink = Math.max(0, Math.min(1, under[y][x])), a = m > 0 ? Math.min(1, Math.abs(v) / m) : 0;
      const shade = 255 - 70 * ink;
      return [lerp(shade, c[0], Math.min(1, 1.4 * a)), lerp(shade, c[1], Math.min(1, 1.4 * a)), lerp(shade, c[2], Math.min(1, 1.4 * a))];
    });
  }
  function actMap(canvas, grid, vmax = null) {
    const m = vmax ?? Math.max(1e-12, ...rows2d(grid).map((r) => Math.max(...r)));
    return paint(canvas, grid, (v) => actRamp(m > 0 ? Math.max(0, v) / m : 0));
  }
  const mapCanvas = (cls = "map", label = "") => el("canvas", { class: cls, width: 28, height: 28, role: "img", "aria-label": label });

  // ------------------------------------------------------------------------ board
  const board = {
    canvas: $("board"), strokes: [], current: null,
    base: null,    // null | {kind: "digit"|"photo", image: CanvasImageSource, blob?, label?, index?}
    undo: [],      // earlier {base, strokes} states
  };
  const bctx = board.canvas.getContext("2d");

  function paintBoard(ctx, background, scale = 1) {
    const W = ctx.canvas.width / scale, H = ctx.canvas.height / scale;  // in board pixels
    ctx.save();
    ctx.setTransform(scale, 0, 0, scale, 0, 0);
    ctx.fillStyle = background; ctx.fillRect(0, 0, W, H);
    if (board.base) {
      const img = board.base.image;
      const iw = img.width, ih = img.height, s = Math.min(W / iw, H / ih);
      ctx.imageSmoothingEnabled = true; ctx.imageSmoothingQuality = "high";
      ctx.drawImage(img, (W - iw * s) / 2, (H - ih * s) / 2, iw * s, ih * s);
    }
    ctx.strokeStyle = "#fff"; ctx.fillStyle = "#fff"; ctx.lineCap = "round"; ctx.lineJoin = "round";
    for (const s of board.current ? [...board.strokes, board.current] : board.strokes) {
      ctx.lineWidth = s.width;
      if (s.points.length === 1) {
        const [x, y] = s.points[0];
        ctx.beginPath(); ctx.arc(x, y, s.width / 2, 0, 2 * Math.PI); ctx.fill();
        continue;
      }
      ctx.beginPath(); ctx.moveTo(...s.points[0]);
      for (let i = 1; i < s.points.length; i++) ctx.lineTo(...s.points[i]);
      ctx.stroke();
    }
    ctx.restore();
  }
  const redraw = () => {
    paintBoard(bctx, "#1f2a33");
    $("board-empty").classList.toggle("gone", hasInk());
    $("btn-undo").disabled = board.undo.length === 0;
  };
  const hasInk = () => board.strokes.length > 0 || !!board.current || !!board.base;
  const snapshot = () => ({ base: board.base, strokes: board.strokes.slice() });
  function pushUndo() { board.undo.push(snapshot()); if (board.undo.length > 200) board.undo.shift(); }

  function boardPoint(e) {
    const r = board.canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * board.canvas.width / r.width, (e.clientY - r.top) * board.canvas.height / r.height];
  }
  board.canvas.addEventListener("pointerdown", (e) => {
    if (e.pointerType === "mouse" && e.button !== 0) return;
    e.preventDefault();
    try { board.canvas.setPointerCapture(e.pointerId); } catch (_) { /* a pointer the browser no longer tracks */ }
    pushUndo();
    if (board.base && board.base.kind === "photo") {  // strokes are not mixed into a photo
      board.base = null;
      note("Drawing on a blank board (Undo brings the photo back).");
    }
    board.current = { points: [boardPoint(e)], width: STROKE_WIDTH, id: e.pointerId };
    redraw();
    scheduleUpdate(UPDATE_MS);
  });
  board.canvas.addEventListener("pointermove", (e) => {
    if (!board.current || board.current.id !== e.pointerId) return;
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
    for (const ev of events.length ? events : [e]) board.current.points.push(boardPoint(ev));
    redraw();
    scheduleUpdate(UPDATE_MS);
  });
  const endStroke = (e) => {
    if (!board.current || board.current.id !== e.pointerId) return;
    board.strokes.push(board.current); board.current = null;
    redraw();
    scheduleUpdate(0);
  };
  board.canvas.addEventListener("pointerup", endStroke);
  board.canvas.addEventListener("pointercancel", endStroke);

  function undo() {
    if (!board.undo.length) return;
    const s = board.undo.pop();
    board.base = s.base; board.strokes = s.strokes; board.current = null;
    redraw(); describeSource(); scheduleUpdate(0);
  }
  function resetChoices() { state.vs = null; state.target = null; }
  function clearBoard() {
    resetChoices();
    if (!hasInk()) { scheduleUpdate(0); return; }
    pushUndo();
    board.base = null; board.strokes = []; board.current = null;
    redraw(); note(""); scheduleUpdate(0);
  }
  $("btn-undo").addEventListener("click", undo);
  $("btn-clear").addEventListener("click", clearBoard);
  document.addEventListener("keydown", (e) => {
    const typing = /INPUT|SELECT|TEXTAREA/.test(document.activeElement?.tagName || "");
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "z" && !typing) { e.preventDefault(); undo(); }
    if (document.activeElement === board.canvas && (e.key === "Delete" || e.key === "Backspace")) { e.preventDefault(); clearBoard(); }
  });

  const note = (t) => { $("source-note").textContent = t; };
  function describeSource() {
    const b = board.base;
    if (!b) note("");
    else if (b.kind === "digit") note(`A handwritten ${b.label} from the 1,000 test digits (#${b.index}); the models never trained on it.`);
    else note(`Your photo “${b.name}”, sent as it is: the pre-processing finds the digit in it.`);
  }

  $("btn-random").addEventListener("click", async () => {
    try {
      const d = await api("/api/digits/random");
      // ink as white with alpha = intensity, so it sits on any background like a drawing
      const c = document.createElement("canvas"); c.width = 28; c.height = 28;
      const ctx = c.getContext("2d"), img = ctx.createImageData(28, 28);
      d.pixels.forEach((row, y) => row.forEach((v, x) => {
        const i = 4 * (28 * y + x); img.data[i] = img.data[i + 1] = img.data[i + 2] = 255; img.data[i + 3] = v;
      }));
      ctx.putImageData(img, 0, 0);
      pushUndo(); resetChoices();
      board.base = { kind: "digit", image: c, label: d.label, index: d.index };
      board.strokes = [];
      redraw(); describeSource(); scheduleUpdate(0);
    } catch (err) { showError(err); }
  });

  $("file-photo").addEventListener("change", async (e) => {
    const file = e.target.files && e.target.files[0];
    e.target.value = "";
    if (!file) return;
    let image = null;
    try { image = await createImageBitmap(file); } catch (_) { image = null; }
    pushUndo(); resetChoices();
    board.base = { kind: "photo", image: image || placeholderImage(), blob: file, name: file.name };
    board.strokes = [];
    redraw(); describeSource(); scheduleUpdate(0);
  });
  function placeholderImage() {  // the browser cannot show it; the server will say what is wrong
    const c = document.createElement("canvas"); c.width = 28; c.height = 28; return c;
  }

  /** The picture to explain, as a data URL: the photo's own bytes, or the board (white ink on black). */
  async function currentImage() {
    if (board.base && board.base.kind === "photo" && !board.strokes.length) {
      return await new Promise((resolve, reject) => {
        const fr = new FileReader();
        fr.onload = () => resolve(fr.result); fr.onerror = () => reject(fr.error);
        fr.readAsDataURL(board.base.blob);
      });
    }
    const c = document.createElement("canvas");
    c.width = Math.round(board.canvas.width * SEND_SCALE); c.height = Math.round(board.canvas.height * SEND_SCALE);
    paintBoard(c.getContext("2d"), "#000", SEND_SCALE);
    return c.toDataURL("image/png");
  }

  // ---------------------------------------------------------------- live updates
  let timer = null, timerDue = Infinity, dirty = false;
  function scheduleUpdate(delay) {
    const due = performance.now() + delay;
    if (timer === null || timerDue > due) {          // else an earlier update is already planned
      clearTimeout(timer);
      timerDue = due;
      timer = setTimeout(() => { timer = null; timerDue = Infinity; sendUpdate(); }, delay);
    }
    setBusy();  // a planned update counts as busy (the pen may lift after the last answer came)
  }
  function setBusy() {
    document.body.dataset.busy = (state.stats.inFlight > 0 || timer !== null || dirty) ? "1" : "0";
  }

  async function sendUpdate() {
    if (state.stats.inFlight > 0) { dirty = true; setBusy(); return; }
    if (!state.model) { setBusy(); return; }
    dirty = false;
    state.stats.inFlight++; state.stats.requests++;
    state.stats.maxInFlight = Math.max(state.stats.maxInFlight, state.stats.inFlight);
    setBusy();
    const myModel = state.model;
    try {
      // while a stroke is being drawn only the fast part (answer, steps, layers) is asked for
      const detail = board.current ? "live" : "full";
      const options = { detail, counterfactual: true };
      if (state.vs !== null) options.vs = state.vs;
      if (state.target !== null) options.target = state.target;
      if (state.method) options.method = state.method;
      const off = Object.entries(state.steps).filter(([, on]) => on === false);
      if (off.length) options.steps = Object.fromEntries(off);
      const image = await currentImage();
      const expl = await api("/api/explain", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ image, model: myModel, options }),
      });
      state.stats.responses++;
      if (myModel === state.model) render(expl);
      if (expl.detail === "live" && !board.current) dirty = true;  // the stroke ended meanwhile
    } catch (err) {
      state.stats.responses++; state.stats.errors++;
      showError(err);
    } finally {
      state.stats.inFlight--;
      document.body.dataset.updates = String(state.stats.responses);
      if (dirty) sendUpdate(); else setBusy();
    }
  }

  // ------------------------------------------------------------------- rendering
  function showError(err) {
    const friendly = err.code === "no_ink";
    state.expl = null;
    $("pred-digit").textContent = friendly ? "·" : "!";
    $("pred-sure").textContent = friendly ? "Nothing to read yet." : "Something went wrong.";
    const m = $("message");
    m.textContent = err.message; m.className = "message" + (friendly ? "" : " error");
    m.dataset.code = err.code || "";
    for (const id of ["panel-steps", "panel-network", "panel-attr", "panel-contrast", "panel-filters", "panel-nearest"]) $(id).classList.add("stale");
    renderProbs(null);
  }

  const SLOW_PANELS = ["panel-attr", "panel-contrast", "panel-filters", "panel-nearest"];
  function render(expl) {
    const live = expl.detail === "live";
    // a layer that passes its input through (flatten, dropout) names the layer whose numbers it repeats
    const layers = (expl.trace && expl.trace.layers) || [];
    for (const L of layers) {
      if (L.values == null && L.values_same_as != null) {
        const src = layers.find((x) => x.index === L.values_same_as);
        if (src) L.values = src.values;
      }
    }
    if (live && state.expl && state.expl.model === expl.model) {
      // keep the last full explanation's slow parts on screen (faded) until the next one
      expl = { ...state.expl, ...expl, attributions: state.expl.attributions, contrast: state.expl.contrast,
        counterfactual: state.expl.counterfactual, units: state.expl.units, nearest: state.expl.nearest,
        examples: state.expl.examples, stale: true };
    }
    state.expl = expl;
    for (const id of ["panel-steps", "panel-network"]) $(id).classList.remove("stale");
    for (const id of SLOW_PANELS) $(id).classList.toggle("stale", live);
    const m = $("message");
    m.textContent = (expl.notes || []).join(" "); m.className = "message"; m.dataset.code = "";
    renderAnswer(expl);
    renderSteps(expl);
    renderNetwork(expl);
    if (!live || !expl.stale) {
      renderAttributions(expl);
      renderContrast(expl);
      renderUnits(expl);
      renderNearest(expl);
    }
    document.body.dataset.prediction = String(expl.prediction);
    document.body.dataset.model = expl.model;
    document.body.dataset.detail = live ? "live" : "full";
  }

  function renderAnswer(expl) {
    const p = expl.probabilities, top = Math.max(...p);
    $("pred-digit").textContent = expl.prediction;
    const second = expl.classes.indexOf(expl.runner_up);
    $("pred-sure").textContent = `${pct(top)} sure` + (second >= 0 ? ` · next: ${expl.runner_up} (${pct(p[second])})` : "");
    renderProbs(expl);
  }

  function renderProbs(expl) {
    const box = $("probs");
    box.replaceChildren();
    const classes = expl ? expl.classes : [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    const vs = expl && expl.contrast ? expl.contrast.b : null;
    classes.forEach((c, i) => {
      const v = expl ? expl.probabilities[i] : 0;
      const cls = "prob" + (expl && c === expl.prediction ? " top" : "") + (c === vs ? " vs" : "");
      box.append(el("div", { class: cls, role: "listitem", "aria-label": `${c}: ${expl ? pct(v) : "no answer yet"}` },
        el("span", { class: "pct", text: expl && v >= 0.005 ? `${Math.round(100 * v)}%` : "" }),
        el("span", { class: "track" }, el("span", { class: "fill", style: `height:${(100 * v).toFixed(2)}%` })),
        el("span", { class: "d", text: String(c) })));
    });
  }

  // ---- 1. pre-processing
  const numText = (v) => typeof v === "number" ? (Number.isInteger(v) ? String(v) : String(+v.toFixed(3)))
    : Array.isArray(v) ? v.map(numText).join(", ") : v && typeof v === "object" ? Object.entries(v).map(([k, x]) => `${k} ${numText(x)}`).join(", ") : String(v);
  let pickedStep = null;
  function renderSteps(expl) {
    const box = $("steps"), pre = expl.preprocessing;
    box.replaceChildren();
    const steps = pre && Array.isArray(pre.steps) ? pre.steps : [];
    if (!steps.length) box.append(el("p", { class: "muted", text: "The server did not report pre-processing steps for this image." }));
    if (!steps.some((s) => s.name === pickedStep)) pickedStep = steps.length ? steps[steps.length - 1].name : null;
    steps.forEach((s, i) => {
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
      box.append(tile);
    });
    const s = steps.find((x) => x.name === pickedStep);
    const detail = $("step-detail");
    if (!s) { detail.replaceChildren(); } else {
      const nums = Object.entries(s.numbers || {}).map(([k, v]) => el("span", { class: "kv" }, el("span", { class: "k", text: k.replace(/_/g, " ") }), " ", el("span", { class: "v", text: numText(v) })));
      detail.replaceChildren(el("p", {}, el("strong", { text: `${s.title || s.name}${s.enabled === false ? " (switched off)" : ""}: ` }), s.sentence || ""),
        nums.length ? el("p", { class: "nums" }, ...nums) : null);
    }
    renderGridNumbers(expl.image);
  }
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
  $("show-numbers").addEventListener("change", () => { if (state.expl) renderGridNumbers(state.expl.image); else $("grid-numbers").hidden = !$("show-numbers").checked; });

  // ---- 2. the network
  /** Group the trace into the columns a learner thinks in: input, hidden layers, output. */
  function networkColumns(expl) {
    const layers = (expl.trace && expl.trace.layers) || [];
    const cols = [{ kind: "input", name: "input", desc: "784 pixel intensities", shape: [28, 28], values: expl.image.flat(), layer: -1 }];
    for (let i = 0; i < layers.length; i++) {
      const L = layers[i];
      if (L.type === "flatten" || L.type === "dropout") continue;
      const next = layers.slice(i + 1).find((n) => n.type !== "dropout");
      const isLast = !layers.slice(i + 1).some((n) => n.type === "dense" || n.type.startsWith("conv"));
      if (L.type === "dense") {
        const act = next && next.type === "activation" ? next : null;
        cols.push({ kind: isLast ? "output" : "dense", name: isLast ? "output" : `hidden layer (${L.output_shape[0]} units)`,
          desc: L.describe, dense: L, act, layer: L.index, shape: L.output_shape,
          values: act && act.values ? act.values : L.values, z: L.values });
        if (act) i = layers.indexOf(act);
      } else if (L.type === "activation") {
        // an activation after a conv/pool: shown with that layer
        const prev = cols[cols.length - 1];
        if (prev && prev.kind === "maps") { prev.values = L.values; prev.act = L; prev.desc += "; " + L.describe; }
      } else {
        const C = L.output_shape[0];
        const nice = { conv2d: `convolution · ${C} filters`, maxpool2d: "max-pooling", global_avg_pool2d: "average of each map" }[L.type] || L.type;
        cols.push({ kind: "maps", name: nice, desc: L.describe, layer: L.index,
          shape: L.output_shape, values: L.values, stats: L.stats, dense: L });
      }
    }
    return cols;
  }

  function renderNetwork(expl) {
    const box = $("network");
    box.replaceChildren();
    const cols = networkColumns(expl);
    const hasMaps = cols.some((c) => c.kind === "maps");
    $("network-lead").textContent = (hasMaps ? "Each small picture is a feature map: where one filter found its pattern (bright = strongly). " : "") +
      "Each square is one unit; its colour is its activation for your digit: dark = silent (0), bright = firing. Click a unit or a map (or use the arrow keys) to see the numbers behind it.";
    cols.forEach((col, ci) => {
      if (ci) box.append(el("span", { class: "layer-arrow", "aria-hidden": "true", text: "→" }));
      const wrap = el("div", { class: "layer", "data-layer": col.layer });
      wrap.append(el("div", { class: "lname", text: col.name }));
      if (col.kind === "input") {
        const c = mapCanvas("map mid", "the 28×28 input");
        grayImage(c, expl.image);
        wrap.append(c);
      } else if (col.kind === "maps") {
        wrap.append(renderMaps(col, expl));
      } else {
        wrap.append(renderUnitGrid(col, expl));
      }
      wrap.append(el("div", { class: "ldesc", title: col.desc || "", text: shortDesc(col) }));
      box.append(wrap);
    });
    if (cols.some((c) => c.kind === "dense" || c.kind === "output")) {
      const bar = el("canvas", { class: "legend-bar", width: 64, height: 1 });
      paint(bar, [Array.from({ length: 64 }, (_, i) => i / 63)], (v) => actRamp(v));
      box.append(el("div", { class: "legend", style: "align-self:flex-end" }, "0", bar, "max"));
    }
    renderSoftmax(expl);
    // while drawing, refresh the selected unit's numbers but not what it looks for (one request
    // per stroke end is enough)
    if (state.selected) showUnit(state.selected.layer, state.selected.unit, false, expl.detail !== "live");
  }

  function shortDesc(col) {
    const fn = col.act ? col.act.describe.split(":")[0] : "";
    if (col.kind === "input") return "784 pixel intensities";
    if (col.kind === "output") return "10 sums z = W·a + b";
    if (col.kind === "dense") return `z = W·a + b, then ${fn || "no activation"}`;
    return `${col.shape.join("×")}${fn ? ", then " + fn : ""}`;
  }
  function renderMaps(col, expl) {
    const [C, H, W] = col.shape;
    const box = el("div", { class: "units maps", style: `grid-template-columns: repeat(${Math.min(C, 4)}, auto)` });
    // the trace lists the numbers of small layers only; the first layer's maps come with the units report
    let maps = null;
    if (col.values && col.shape.length === 3) {
      maps = [];
      for (let c = 0; c < C; c++) {
        const grid = [];
        for (let y = 0; y < H; y++) grid.push(col.values.slice((c * H + y) * W, (c * H + y + 1) * W));
        maps.push(grid);
      }
    } else if (expl.units && expl.units.kind === "conv" && expl.units.layer === col.layer) {
      maps = expl.units.units.map((u) => u.feature_map);
    }
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

  function renderUnitGrid(col, expl) {
    const vals = col.values || [];
    const n = vals.length;
    const isOut = col.kind === "output";
    const ncol = isOut ? 2 : n <= 16 ? 1 : n <= 64 ? 4 : n <= 150 ? 8 : 16;
    const grid = el("div", { class: "units" + (isOut ? " out" : ""), role: "grid", "aria-label": `${col.name}: ${n} units`, style: isOut ? "" : `grid-template-columns: repeat(${ncol}, 14px)` });
    let vmax = 0; for (const v of vals) vmax = Math.max(vmax, v);
    const probs = expl.probabilities;
    vals.forEach((v, j) => {
      const colour = isOut ? actRamp(probs[j]) : actRamp(vmax > 0 ? Math.max(0, v) / vmax : 0);
      const label = isOut ? String(expl.classes[j]) : "";
      const b = el("button", { class: "unit" + (state.selected && state.selected.layer === col.layer && state.selected.unit === j ? " sel" : ""),
        style: `background:${css(colour)}`, tabindex: j === 0 ? "0" : "-1", "data-unit": j,
        "aria-label": isOut ? `output ${label}: sum ${fmt(col.z[j], 2)}, probability ${pct(probs[j])}` : `unit ${j}: activation ${fmt(v, 3)}`,
        text: label });
      b.addEventListener("click", () => showUnit(col.layer, j, true));
      b.addEventListener("keydown", (e) => gridKeys(e, grid, ncol));
      grid.append(b);
      if (isOut) grid.append(el("span", { class: "val", text: `z=${fmt(col.z[j], 2)} · ${pct(probs[j])}` }));
    });
    return grid;
  }
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
    if (!sm) { box.replaceChildren(el("p", { class: "muted", text: "This model has no softmax step." })); return; }
    const rows = [["sum z", sm.logits], ["z − max z", sm.shifted], ["e^(z − max z)", sm.exp], ["÷ " + fmt(sm.sum_exp, 4) + " (the sum)", sm.probabilities]];
    box.replaceChildren(el("table", {},
      el("thead", {}, el("tr", {}, el("th", { text: "digit" }), ...expl.classes.map((c) => el("th", { scope: "col", text: String(c) })))),
      el("tbody", {}, ...rows.map(([name, vals]) => el("tr", {}, el("td", { text: name }), ...vals.map((v) => el("td", { text: fmt(v, 3) })))))),
      el("p", { class: "small muted", text: "Subtracting the largest sum first changes nothing in the result but keeps e^z from overflowing." }));
  }

  /** Details of one unit: this image's numbers from the trace, and what the unit looks for from the server. */
  let unitInfo = null;  // {key, info}: the last unit details fetched
  async function showUnit(layer, unit, focus, refetch = true) {
    state.selected = { layer, unit };
    const expl = state.expl;
    if (!expl) return;
    document.querySelectorAll(".unit.sel").forEach((u) => u.classList.remove("sel"));
    const btn = document.querySelector(`.layer[data-layer="${layer}"] .unit[data-unit="${unit}"]`);
    if (btn) btn.classList.add("sel");
    const col = networkColumns(expl).find((c) => c.layer === layer);
    const box = $("unit-detail");
    box.hidden = false;
    const isOut = col && col.kind === "output";
    const title = isOut ? `Output unit for the digit ${expl.classes[unit]}`
      : col && col.kind === "maps" ? `Filter ${unit} of layer ${layer} (${col.name})` : `Unit ${unit} of layer ${layer}`;
    const z = col && col.z ? col.z[unit] : null, a = col && col.values ? col.values[unit] : null;
    const fn = col && col.act ? col.act.describe.split(":")[0] : "none";
    const key = `${expl.model}/${layer}/${unit}`;
    let info = null;
    if (!refetch && unitInfo && unitInfo.key === key) info = unitInfo.info;
    else {
      box.replaceChildren(el("h3", { text: title }), el("p", { class: "muted", text: "loading what this unit looks for…" }));
      try {
        info = await api(`/api/models/${encodeURIComponent(expl.model)}/units/${layer}/${unit}`, {
          method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ image: expl.image }) });
      } catch (err) { info = { error: err.message }; }
      unitInfo = { key, info };
    }
    if (!state.selected || state.selected.layer !== layer || state.selected.unit !== unit || state.expl !== expl) return;
    const left = el("div", {});
    const right = el("div", {});
    if (col && col.kind === "maps") {
      // a filter: the same weighted sum at every position; its feature map holds all the results
      const view = expl.units && expl.units.kind === "conv" && expl.units.layer === layer ? expl.units.units.find((u) => u.unit === unit) : null;
      const k = info.template ? `${info.template.length}×${info.template[0].length}` : "small";
      left.append(el("div", { class: "eq", text: `at every position: z = Σ (${k} weights × pixels under them) + b` }),
        el("dl", {},
          el("dt", { text: "bias b" }), el("dd", { text: info.bias !== undefined ? fmt(info.bias, 3) : "–" }),
          el("dt", { text: `strongest response on your digit (max of ${fn}(z))` }), el("dd", { text: view ? fmt(view.activation, 3) : "–" })));
      if (view && view.feature_map) {
        const f = mapCanvas("map mid", "its feature map for your digit");
        actMap(f, view.feature_map);
        left.append(el("figure", { class: "inline" }, f, el("figcaption", { text: "its feature map for your digit: bright where the pattern is" })));
      }
    } else {
      const eq = `z = Σ wᵢ·aᵢ + b = ${fmt(z, 3)}`;
      const dl = el("dl", {},
        el("dt", { text: "weighted sum of its inputs (without bias)" }), el("dd", { text: info.bias !== undefined && z !== null ? fmt(z - info.bias, 3) : "–" }),
        el("dt", { text: "bias b" }), el("dd", { text: info.bias !== undefined ? fmt(info.bias, 3) : "–" }),
        el("dt", { text: "z (the sum plus the bias)" }), el("dd", { text: fmt(z, 3) }),
        isOut ? el("dt", { text: "probability after softmax" }) : el("dt", { text: `activation a = ${fn}(z)` }),
        el("dd", { text: isOut ? pct(expl.probabilities[unit]) : fmt(a, 3) }));
      left.append(el("div", { class: "eq", text: eq }), dl);
    }
    if (info.sentence) left.append(el("p", { class: "small", text: info.sentence }));
    if (info.error) left.append(el("p", { class: "small muted", text: info.error }));
    if (info.template) {
      const c = mapCanvas("map mid", "the unit's template");
      signedMap(c, info.template);
      right.append(el("figure", {}, c, el("figcaption", { text: info.template_caption || "its weights: red pixels raise z, blue lower it" })));
    }
    if (info.top_examples && info.top_examples.length) {
      const ex = el("div", { class: "examples" });
      for (const t of info.top_examples.slice(0, 8)) {
        const c = mapCanvas("map small", `training digit ${t.label}`);
        grayImage(c, t.image);
        ex.append(el("figure", {}, c, el("figcaption", { text: `${t.label} · ${fmt(t.activation, 2)}` })));
      }
      right.append(el("p", { class: "small muted", text: "training digits that excite it most:" }), ex);
    }
    box.replaceChildren(el("h3", { text: title }), left, right);
    if (focus) box.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }

  // ---- 3. attributions
  function buildSeg(fieldset, name, items, current, onPick, extra = () => "") {
    const legend = fieldset.querySelector("legend");
    fieldset.replaceChildren(legend);
    for (const [value, label] of items) {
      const input = el("input", { type: "radio", name, value: String(value), checked: String(current) === String(value) });
      input.addEventListener("change", () => onPick(value));
      fieldset.append(el("label", {}, input, el("span", { class: extra(value), text: label })));
    }
  }

  function renderAttributions(expl) {
    const attrs = expl.attributions || {};
    const methods = METHODS.filter(([m]) => attrs[m]);
    if (!methods.some(([m]) => m === state.method) && methods.length) state.method = methods[0][0];
    buildSeg($("attr-methods"), "method", METHODS.map(([m, l]) => [m, l]), state.method, (m) => {
      state.method = m; if (attrs[m] && attrs[m][String(currentTarget())]) renderAttributions(state.expl); else scheduleUpdate(0);
    });
    const target = currentTarget();
    buildSeg($("attr-target"), "target", expl.classes.map((c) => [c, String(c)]), target, (c) => {
      state.target = c;
      const have = state.expl.attributions[state.method];
      if (have && have[String(c)]) renderAttributions(state.expl); else scheduleUpdate(0);
    }, (c) => c === expl.prediction ? "is-pred" : "");
    const a = attrs[state.method] && attrs[state.method][String(target)];
    const text = $("attr-text");
    if (!a) {
      text.replaceChildren(el("p", { class: "muted", text: "computing…" }));
      return;
    }
    signedMap($("attr-map"), a.map, expl.image);
    const meta = a.meta || {};
    const parts = [el("p", {}, el("strong", { text: `${METHODS.find(([m]) => m === state.method)[1]} for ${target}` }), ": " + METHOD_TEXT[state.method])];
    parts.push(el("p", { text: `The map adds up to ${fmt(a.total, 3)}${state.method === "integrated_gradients" && meta.f_x !== undefined ? `; the score went from ${fmt(meta.f_baseline, 3)} on a blank board to ${fmt(meta.f_x, 3)} on yours (difference ${fmt(meta.f_x - meta.f_baseline, 3)}, completeness gap ${fmt(meta.delta, 4)} with ${meta.n_steps} steps).` : "."}` }));
    if (meta.note) parts.push(el("p", { class: "small", text: meta.note }));
    if (meta.patch) parts.push(el("p", { class: "small muted", text: `patch ${meta.patch}×${meta.patch}, stride ${meta.stride}` }));
    text.replaceChildren(...parts);
  }
  const currentTarget = () => state.target !== null && state.expl && state.expl.classes.includes(state.target) ? state.target : state.expl.prediction;

  // ---- 4. contrast + counterfactual
  function renderContrast(expl) {
    const c = expl.contrast;
    const vsItems = expl.classes.filter((d) => d !== expl.prediction).map((d) => [d, String(d)]);
    buildSeg($("vs-digits"), "vs", vsItems, c ? c.b : "", (d) => { state.vs = d; scheduleUpdate(0); });
    $("why-a").textContent = expl.prediction;
    $("why-b").textContent = c ? c.b : "?";
    if (!c) {
      $("gap-sentence").textContent = "No contrast for this model.";
      $("unit-terms").replaceChildren(); $("counterfactual").hidden = true;
      return;
    }
    $("gap-caption").textContent = `ink arguing for ${c.a} (red) and for ${c.b} (blue)`;
    if (c.pixels) signedMap($("gap-map"), c.pixels.map, expl.image);
    const words = (c.sentences || []).join(" ");
    $("gap-sentence").replaceChildren(el("span", { text: `The network's final sum for ${c.a} is ${fmt(c.logit_a, 2)} and for ${c.b} is ${fmt(c.logit_b, 2)}: ${c.a} wins by ` }), el("strong", { text: fmt(c.gap, 2) }),
      el("span", { text: `. Red ink on the map pushes towards ${c.a}, blue ink towards ${c.b}.` }),
      words ? el("details", { class: "words" }, el("summary", { text: "Read it in words" }), el("p", { text: words })) : "");
    const terms = $("unit-terms");
    terms.replaceChildren();
    if (c.units && (c.units.for_a.length || c.units.for_b.length)) {
      const what = c.units.kind === "pixels" ? "pixels" : `units of the last hidden layer`;
      const all = [...c.units.for_a, ...c.units.for_b];
      const m = Math.max(1e-9, ...all.map((t) => Math.abs(t.contribution)));
      const list = (items, who, colour) => el("div", {}, el("h4", { text: `${what} arguing for ${who}` }),
        ...items.slice(0, 5).map((t) => {
          const cv = mapCanvas("map small", `template of unit ${t.unit}`);
          if (t.template) signedMap(cv, t.template);
          const row = el("div", { class: "term" }, cv,
            el("span", { class: "bar", style: `width:${(60 * Math.abs(t.contribution) / m).toFixed(1)}px; background:${colour}` }),
            el("span", { text: `${c.units.kind === "pixels" ? "pixel" : "unit"} ${t.unit}: ${t.contribution >= 0 ? "+" : ""}${fmt(t.contribution, 2)}${t.where ? " · " + t.where : ""}` }));
          return row;
        }));
      terms.append(list(c.units.for_a, c.a, "var(--pos)"), list(c.units.for_b, c.b, "var(--neg)"));
      const kinds = new Set(all.map((t) => t.template_kind));
      const pics = kinds.has("input_gradient") ? "Pictures: what each unit responds to around your digit (how its activation changes with a little more ink on each pixel)."
        : kinds.has("weights") ? "Pictures: each unit's weights over the pixels (red: ink here raises it)." : "";
      terms.append(el("p", { class: "small muted", style: "grid-column: 1 / -1", text: `Exact: the ${c.units.n_units} contributions (weight difference × activation) plus the bias difference ${fmt(c.units.bias_term, 3)} add up to the gap ${fmt(c.units.gap, 3)}. ${pics}` }));
    }
    renderCounterfactual(expl);
  }

  function renderCounterfactual(expl) {
    const cf = expl.counterfactual, box = $("counterfactual");
    box.hidden = !cf;
    if (!cf) return;
    $("cf-b").textContent = cf.b;
    grayImage($("cf-before"), expl.image);
    paint($("cf-delta"), cf.delta, (v, x, y) => {
      const ink = 40 * expl.image[y][x];
      if (v > 0) return [lerp(20 + ink, 34, Math.min(1, 3 * v)), lerp(20 + ink, 197, Math.min(1, 3 * v)), lerp(20 + ink, 94, Math.min(1, 3 * v))];
      if (v < 0) return [lerp(20 + ink, 239, Math.min(1, -3 * v)), lerp(20 + ink, 68, Math.min(1, -3 * v)), lerp(20 + ink, 68, Math.min(1, -3 * v))];
      return [20 + ink, 20 + ink, 20 + ink];
    });
    grayImage($("cf-after"), cf.image);
    const pb = cf.probabilities[expl.classes.indexOf(cf.b)];
    $("cf-after-caption").textContent = `now reads ${cf.prediction} (${cf.b}: ${pct(pb)})`;
    $("cf-sentence").textContent = cf.sentence || (cf.found ? `Changing ${cf.n_changed} pixels turns the answer into ${cf.b}.` : `No small edit found that makes it a ${cf.b}.`);
  }

  // ---- 5. units / filters
  function renderUnits(expl) {
    const u = expl.units, box = $("filters"), hand = $("hand-kernels");
    box.replaceChildren(); hand.replaceChildren();
    if (!u) { $("filters-lead").textContent = "This model has no hidden units to look at."; return; }
    const conv = u.kind === "conv";
    $("filters-title").textContent = conv ? "Filters, and what they see in your digit" : "What the first hidden layer looks for";
    $("filters-lead").textContent = (u.sentences || []).join(" ") || (conv
      ? "Each filter is a small grid of weights slid over the image; its feature map lights up wherever the stroke under it matches."
      : "Each unit's 784 weights drawn as a picture: red pixels raise its sum when inked, blue lower it.");
    for (const v of u.units) {
      const t = mapCanvas(conv ? "map small" : "map small", `filter ${v.unit}`);
      signedMap(t, v.template);
      const pair = el("div", { class: "pair" }, t);
      if (v.feature_map) { const f = mapCanvas("map small", `feature map ${v.unit}`); actMap(f, v.feature_map); pair.append(f); }
      const cap = `${conv ? "filter" : "unit"} ${v.unit} · ${conv ? "max " : "a = "}${fmt(v.activation, 2)}`;
      const sub = v.similar_kernel ? `like ${v.similarity < 0 ? "an inverted " : "a "}${v.similar_kernel} (${fmt(Math.abs(v.similarity), 2)})` : (v.where || "");
      const card = el("div", { class: "filter", tabindex: "0", role: "button", title: sub, "aria-label": `${cap}${sub ? "; " + sub : ""}; show details` }, pair,
        el("span", { class: "cap", text: cap }), sub ? el("span", { class: "cap sub", text: sub }) : null);
      const open = () => showUnit(u.layer, v.unit, true);
      card.addEventListener("click", open);
      card.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(); } });
      box.append(card);
    }
    if (u.hand_kernels && u.hand_kernels.length) {
      const row = el("div", { class: "filters" });
      for (const k of u.hand_kernels) {
        const kc = mapCanvas("map small", `hand-designed ${k.name}`); signedMap(kc, k.kernel);
        const rc = mapCanvas("map small", `response of ${k.name}`); actMap(rc, k.response);
        row.append(el("div", { class: "filter" }, el("div", { class: "pair" }, kc, rc), el("span", { class: "cap", text: k.name })));
      }
      hand.append(el("h3", { text: "Hand-designed detectors on the same digit" }),
        el("p", { class: "lead", text: "These kernels were written by hand — a vertical edge, a horizontal edge, diagonals, a curve. Compare their responses with the learned filters above: the network found detectors like them on its own." }), row);
    }
  }

  // ---- 6. nearest training examples
  function renderNearest(expl) {
    const box = $("nearest"), n = expl.nearest;
    box.replaceChildren();
    if (!n) { box.append(el("p", { class: "muted", text: "Not available for this model." })); return; }
    const images = new Map((expl.examples || []).map((e) => [e.index, e]));
    const strip = (items, title) => {
      const ex = el("div", { class: "examples" });
      for (const e of items) {
        const c = mapCanvas("map mid", `training digit ${e.label}`);
        const img = images.get(e.index);
        if (img) grayImage(c, img.image);
        ex.append(el("figure", {}, c, el("figcaption", { text: `${e.label} · distance ${fmt(e.distance, 1)}` })));
      }
      return el("div", {}, el("h3", { text: title }), ex);
    };
    box.append(strip(n.examples, `Your digit looks to the network like these training digits`));
    if (n.contrast_examples && n.contrast_examples.length) box.append(strip(n.contrast_examples, `…and the closest ${expl.contrast ? expl.contrast.b : "other"}s`));
  }

  // ------------------------------------------------------------------- models
  async function loadModels(keepSelection = true) {
    const info = await api("/api/models");
    state.models = info.models; state.training = info.training;
    const ladder = info.models.filter((m) => m.in_ladder);
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

  // --------------------------------------------------------------------- tabs
  const tabs = [$("tab-explore"), $("tab-train"), $("tab-lab")];
  function selectTab(tab) {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on)); t.tabIndex = on ? 0 : -1;
      $(t.getAttribute("aria-controls")).hidden = !on;
    }
    $("modelbar").hidden = tab !== tabs[0];
    if (tab === tabs[1]) drawCharts();
    if (tab === tabs[2]) loadLab();
  }
  tabs.forEach((t, i) => {
    t.addEventListener("click", () => selectTab(t));
    t.addEventListener("keydown", (e) => {
      const d = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
      if (d) { const n = tabs[(i + d + tabs.length) % tabs.length]; selectTab(n); n.focus(); }
    });
  });

  // ------------------------------------------------------------------ the activation lab
  const lab = { timer: null, shownAt: null };
  const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const STATUS_CLASS = { "supported": "supported", "supported only when": "when", "not supported here": "not" };
  async function loadLab() {
    let st;
    try { st = await api("/api/lab"); } catch (err) { $("lab-status").textContent = err.message; return; }
    renderLab(st);
    clearTimeout(lab.timer);
    if (st.run && st.run.state === "running") lab.timer = setTimeout(loadLab, 700);
  }
  function renderLab(st) {
    const run = st.run, running = !!run && run.state === "running";
    $("btn-lab").disabled = !st.enabled || running;
    $("btn-lab-cancel").disabled = !st.enabled || !running;
    $("btn-lab").textContent = st.report ? "Run the quick lab again" : "Run the quick lab";
    $("lab-where").textContent = `the same runs as \`${st.command}\`; finished runs are kept, so running it again is instant`;
    let status;
    if (running) status = `Running: ${run.done} of ${run.total || "?"} networks trained${run.label ? ` (last: ${run.label})` : ""}…`;
    else if (run && run.state !== "completed") status = run.message;
    else if (st.error) status = st.error;
    else if (st.report) status = `Measured on ${st.report.n_train} training digits, ${plural(st.report.epochs, "epoch")}, ${plural(st.report.seeds, "seed")} per setting${run ? ` — ${run.message}` : ""}.`;
    else status = st.enabled ? `No lab results yet. The quick lab trains about 200 small networks in under a minute (instantly if \`${st.command}\` already ran them).` :
      `The lab is switched off on this server. Run \`${st.command}\` in a terminal, or ask for it to be switched on.`;
    $("lab-status").textContent = status;
    $("lab-status").dataset.state = running ? "running" : (run ? run.state : (st.report ? "report" : "none"));
    $("lab-bar").style.width = running && run.total ? `${(100 * run.done / run.total).toFixed(1)}%` : (st.report && !running ? "100%" : "0");
    const box = $("lab-verdicts");
    const key = st.report ? `${st.report.seconds}|${st.report.verdicts.length}|${st.report.figures.join(",")}` : null;
    if (key === lab.shownAt) return;   // unchanged: keep the figures as they are
    lab.shownAt = key;
    box.replaceChildren();
    if (!st.report) return;
    for (const v of st.report.verdicts) {
      const figs = el("div", { class: "figs" }, ...(v.figures || []).map((f) =>
        el("img", { src: `/api/lab/figures/${encodeURIComponent(f)}?v=${encodeURIComponent(st.report.seconds)}`, alt: `figure: ${f.replace(/_/g, " ")}`, loading: "lazy" })));
      box.append(el("article", { class: "verdict", "data-verdict": v.id },
        el("h3", { text: v.rule }),
        el("p", {}, el("span", { class: `status ${STATUS_CLASS[v.status] || ""}`, text: v.status }), v.headline),
        el("details", {}, el("summary", { text: "the numbers" }), el("p", { text: v.text }),
          v.measurement ? el("p", { class: "muted small", text: `Measured: ${v.measurement}` }) : null),
        figs));
    }
  }
  $("btn-lab").addEventListener("click", async () => {
    try { renderLab(await api("/api/lab/run", { method: "POST" })); } catch (err) { $("lab-status").textContent = err.message; }
    loadLab();
  });
  $("btn-lab-cancel").addEventListener("click", async () => {
    try { renderLab(await api("/api/lab/cancel", { method: "POST" })); } catch (err) { $("lab-status").textContent = err.message; }
    loadLab();
  });

  // ------------------------------------------------------------------ training
  const train = { job: null, source: null, batches: [], epochs: [], total: 0 };
  function fillTrainModels() {
    const sel = $("train-model"), prev = sel.value;
    sel.replaceChildren(...state.models.filter((m) => m.in_ladder).map((m) => el("option", { value: m.name, text: `${m.name}${m.trained ? "" : " (untrained)"}` })));
    sel.value = prev || state.model || "mlp";
    if (!$("train-epochs").value) setRecipeEpochs();
  }
  function setRecipeEpochs() {
    const m = state.models.find((x) => x.name === $("train-model").value);
    if (m) $("train-epochs").value = m.recipe.epochs;
  }
  $("train-model").addEventListener("change", setRecipeEpochs);

  $("train-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const epochs = parseInt($("train-epochs").value, 10);
    try {
      const job = await api("/api/train", { method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ model: $("train-model").value, epochs: Number.isFinite(epochs) ? epochs : null }) });
      follow(job);
    } catch (err) { $("train-status").textContent = err.message; }
  });
  $("btn-cancel").addEventListener("click", async () => {
    if (!train.job) return;
    try { await api(`/api/train/${train.job.id}/cancel`, { method: "POST" }); $("train-status").textContent = "Cancelling at the next mini-batch…"; }
    catch (err) { $("train-status").textContent = err.message; }
  });

  function follow(job) {
    if (train.source) train.source.close();
    train.job = job; train.batches = []; train.epochs = []; train.total = 0;
    $("epoch-table").tBodies[0].replaceChildren();
    $("btn-train").disabled = true; $("btn-cancel").disabled = false;
    $("train-status").textContent = `Training ${job.model}…`;
    document.body.dataset.training = "running";
    const es = new EventSource(`/api/train/${job.id}/events`);
    train.source = es;
    es.addEventListener("start", (e) => { const d = JSON.parse(e.data); train.total = d.epochs * d.batches; });
    es.addEventListener("batch", (e) => {
      const d = JSON.parse(e.data); train.batches.push(d);
      $("train-bar").style.width = `${train.total ? (100 * d.step / train.total).toFixed(1) : 0}%`;
      $("train-status").textContent = `Training ${job.model}: epoch ${d.epoch}, mini-batch ${d.batch}/${d.batches} — loss ${fmt(d.loss, 3)}, accuracy on this batch ${pct(d.accuracy)}`;
      scheduleCharts();
    });
    es.addEventListener("epoch", (e) => {
      const d = JSON.parse(e.data); train.epochs.push(d);
      $("epoch-table").tBodies[0].append(el("tr", {}, ...[d.epoch, fmt(d.loss, 4), pct(d.accuracy), pct(d.test_accuracy), fmt(d.seconds, 2)].map((v) => el("td", { text: String(v) }))));
      scheduleCharts();
    });
    es.addEventListener("end", async (e) => {
      const d = JSON.parse(e.data);
      es.close(); train.source = null;
      $("train-status").textContent = d.message;
      $("btn-train").disabled = false; $("btn-cancel").disabled = true;
      if (d.state === "completed") {
        $("train-bar").style.width = "100%";
        await loadModels(true);
        if (job.model === state.model) scheduleUpdate(0);
      }
      drawCharts();
      document.body.dataset.training = d.state;
    });
    es.onerror = () => { if (train.source === es && es.readyState === EventSource.CLOSED) $("train-status").textContent = "Lost the connection to the server."; };
  }

  let chartTimer = null;
  const scheduleCharts = () => { if (chartTimer === null) chartTimer = requestAnimationFrame(() => { chartTimer = null; drawCharts(); }); };
  function drawCharts() {
    const per = train.batches.length ? train.batches[0].batches : 1;
    const x = (d) => (d.step !== undefined ? d.step : d.epoch * per);
    chart($("chart-loss"), [
      { pts: train.batches.map((d) => [x(d), d.loss]), colour: "#9db5b1", width: 1 },
      { pts: train.epochs.map((d) => [d.epoch * per, d.loss]), colour: "#0f766e", width: 2.5, dots: true },
      { pts: train.epochs.map((d) => [d.epoch * per, d.test_loss]), colour: "#c2410c", width: 2.5, dots: true },
    ], { ymin: 0, xmax: train.total || undefined, xlabel: "mini-batches" });
    chart($("chart-acc"), [
      { pts: train.batches.map((d) => [x(d), d.accuracy]), colour: "#9db5b1", width: 1 },
      { pts: train.epochs.map((d) => [d.epoch * per, d.accuracy]), colour: "#0f766e", width: 2.5, dots: true },
      { pts: train.epochs.map((d) => [d.epoch * per, d.test_accuracy]), colour: "#c2410c", width: 2.5, dots: true },
    ], { ymin: 0, ymax: 1, xmax: train.total || undefined, xlabel: "mini-batches", percent: true });
  }
  function chart(canvas, series, opt) {
    const ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height, L = 46, R = 12, T = 12, B = 30;
    ctx.clearRect(0, 0, W, H);
    const all = series.flatMap((s) => s.pts);
    const xmax = opt.xmax || Math.max(1, ...all.map((p) => p[0]));
    const ymin = opt.ymin ?? Math.min(...all.map((p) => p[1]));
    const ymax = opt.ymax ?? Math.max(1e-6, ...all.map((p) => p[1])) * 1.05;
    const X = (v) => L + (W - L - R) * v / xmax, Y = (v) => H - B - (H - T - B) * (v - ymin) / (ymax - ymin || 1);
    ctx.strokeStyle = "#e3e1da"; ctx.fillStyle = "#5f6b7a"; ctx.font = "11px system-ui, sans-serif"; ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const v = ymin + (ymax - ymin) * i / 4, y = Y(v);
      ctx.beginPath(); ctx.moveTo(L, y); ctx.lineTo(W - R, y); ctx.stroke();
      ctx.fillText(opt.percent ? `${Math.round(100 * v)}%` : v.toFixed(2), 6, y + 4);
    }
    ctx.fillText(opt.xlabel, W - R - 70, H - 8);
    if (!all.length) { ctx.fillText("start training to see the curves", L + 12, T + 24); return; }
    for (const s of series) {
      if (!s.pts.length) continue;
      ctx.strokeStyle = s.colour; ctx.fillStyle = s.colour; ctx.lineWidth = s.width;
      ctx.beginPath();
      s.pts.forEach(([px, py], i) => (i ? ctx.lineTo(X(px), Y(py)) : ctx.moveTo(X(px), Y(py))));
      ctx.stroke();
      if (s.dots) for (const [px, py] of s.pts) { ctx.beginPath(); ctx.arc(X(px), Y(py), 3, 0, 2 * Math.PI); ctx.fill(); }
    }
  }

  // --------------------------------------------------------------------- start
  async function start() {
    redraw(); renderProbs(null); drawCharts();
    document.body.dataset.updates = "0"; setBusy();
    try {
      await loadModels(false);
      const jobs = await api("/api/train");
      if (jobs.running) follow(jobs.jobs.find((j) => j.id === jobs.running));
    } catch (err) { showError(err); }
    document.body.dataset.ready = "1";
  }
  start();
})();
