/* The drawing board: strokes from a mouse, a finger or a pen; undo and clear; a test digit or a
 * photo as the board's background; and the picture sent to the server (140×140, white on black). */
import { api } from "./api.js";
import { $ } from "./dom.js";
import { showError } from "./explain.js";
import { UPDATE_MS, scheduleUpdate } from "./live.js";
import { resetChoices } from "./state.js";

const STROKE_WIDTH = 20;          // px on the 280×280 board (MNIST strokes are ~1/10 of a digit)
// The drawing is sent at half the board's size, 140×140: five times the 28×28 grid, plenty for
// the server's pre-processing (the digit ends up 20 px tall), and a quarter of the pixels to
// upload, decode and process on every update. benchmarks/load_test.py sends the same.
const SEND_SCALE = 0.5;

export const board = {
  canvas: null, strokes: [], current: null,
  base: null,    // null | {kind: "digit"|"photo", image: CanvasImageSource, blob?, label?, index?}
  undo: [],      // earlier {base, strokes} states
};

/** Paint the board into `ctx` at `scale` (board pixels -> canvas pixels). */
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
export function redraw() {
  paintBoard(board.canvas.getContext("2d"), "#1f2a33");
  $("board-empty").classList.toggle("gone", hasInk());
  $("btn-undo").disabled = board.undo.length === 0;
}
const hasInk = () => board.strokes.length > 0 || !!board.current || !!board.base;
const snapshot = () => ({ base: board.base, strokes: board.strokes.slice() });
function pushUndo() { board.undo.push(snapshot()); if (board.undo.length > 200) board.undo.shift(); }

function boardPoint(e) {
  const r = board.canvas.getBoundingClientRect();
  return [(e.clientX - r.left) * board.canvas.width / r.width, (e.clientY - r.top) * board.canvas.height / r.height];
}

/** Pointer events: one stroke per pointer, live updates while it is drawn. */
function listenToPointers(canvas) {
  canvas.addEventListener("pointerdown", (e) => {
    if (e.pointerType === "mouse" && e.button !== 0) return;
    e.preventDefault();
    try { canvas.setPointerCapture(e.pointerId); } catch (_) { /* a pointer the browser no longer tracks */ }
    pushUndo();
    if (board.base && board.base.kind === "photo") {  // strokes are not mixed into a photo
      board.base = null;
      note("Drawing on a blank board (Undo brings the photo back).");
    }
    board.current = { points: [boardPoint(e)], width: STROKE_WIDTH, id: e.pointerId };
    redraw(); if (board.base) describeSource();  // a test digit drawn over is no longer that digit
    scheduleUpdate(UPDATE_MS);
  });
  canvas.addEventListener("pointermove", (e) => {
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
  canvas.addEventListener("pointerup", endStroke);
  canvas.addEventListener("pointercancel", endStroke);
}

function undo() {
  if (!board.undo.length) return;
  const s = board.undo.pop();
  board.base = s.base; board.strokes = s.strokes; board.current = null;
  redraw(); describeSource(); scheduleUpdate(0);
}
function clearBoard() {
  resetChoices();
  if (!hasInk()) { scheduleUpdate(0); return; }
  pushUndo();
  board.base = null; board.strokes = []; board.current = null;
  redraw(); note(""); scheduleUpdate(0);
}

const note = (t) => { $("source-note").textContent = t; };
function describeSource() {
  const b = board.base;
  if (!b) note("");
  else if (b.kind === "digit" && (board.strokes.length || board.current)) note(`Test digit #${b.index} (a handwritten ${b.label}) with your strokes on top: the picture is no longer that test digit.`);
  else if (b.kind === "digit") note(`A handwritten ${b.label} from the 1,000 test digits (#${b.index}); the models never trained on it.`);
  else note(`Your photo “${b.name}”, sent as it is: the pre-processing finds the digit in it.`);
}

/** A new background for the board (a test digit or a photo), with the strokes cleared. */
function putBase(base) {
  pushUndo(); resetChoices();
  board.base = base;
  board.strokes = [];
  redraw(); describeSource(); scheduleUpdate(0);
}

async function randomDigit() {
  try {
    const d = await api("/api/digits/random");
    // ink as white with alpha = intensity, so it sits on any background like a drawing
    const c = document.createElement("canvas"); c.width = 28; c.height = 28;
    const ctx = c.getContext("2d"), img = ctx.createImageData(28, 28);
    d.pixels.forEach((row, y) => row.forEach((v, x) => {
      const i = 4 * (28 * y + x); img.data[i] = img.data[i + 1] = img.data[i + 2] = 255; img.data[i + 3] = v;
    }));
    ctx.putImageData(img, 0, 0);
    putBase({ kind: "digit", image: c, label: d.label, index: d.index });
  } catch (err) { showError(err); }
}

async function photoChosen(e) {
  const file = e.target.files && e.target.files[0];
  e.target.value = "";
  if (!file) return;
  let image = null;
  try { image = await createImageBitmap(file); } catch (_) { image = null; }
  putBase({ kind: "photo", image: image || placeholderImage(), blob: file, name: file.name });
}
function placeholderImage() {  // the browser cannot show it; the server will say what is wrong
  const c = document.createElement("canvas"); c.width = 28; c.height = 28; return c;
}

/** The picture to explain, as a data URL: the photo's own bytes, or the board (white ink on black). */
export async function currentImage() {
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

/** Wire the board, its toolbar and its keyboard shortcuts (Ctrl+Z undoes, Delete clears). */
export function initBoard() {
  board.canvas = $("board");
  listenToPointers(board.canvas);
  $("btn-undo").addEventListener("click", undo);
  $("btn-clear").addEventListener("click", clearBoard);
  document.addEventListener("keydown", (e) => {
    const typing = /INPUT|SELECT|TEXTAREA/.test(document.activeElement?.tagName || "");
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === "z" && !typing) { e.preventDefault(); undo(); }
    if (document.activeElement === board.canvas && (e.key === "Delete" || e.key === "Backspace")) { e.preventDefault(); clearBoard(); }
  });
  $("btn-random").addEventListener("click", randomDigit);
  $("file-photo").addEventListener("change", photoChosen);
}
