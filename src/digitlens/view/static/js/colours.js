/* Colour scales and painting grids of numbers into canvases (one canvas pixel per value; CSS
 * scales it up). Only drawing happens here: every number comes from the server. */
import { el } from "./dom.js";

export const lerp = (a, b, t) => a + (b - a) * t;

/** A colour scale through `stops`: [[t, [r,g,b]], ...] sorted by t in [0, 1]. */
function ramp(stops) {
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
export const actRamp = ramp([[0, [27, 36, 48]], [0.45, [20, 128, 118]], [0.8, [150, 200, 120]], [1, [253, 230, 138]]]);
// signed maps: blue (negative) <- white -> red (positive)
const NEG = [29, 78, 216], POS = [194, 65, 12];
/** [r, g, b] as a CSS colour. */
export const css = (c) => `rgb(${c[0] | 0},${c[1] | 0},${c[2] | 0})`;
const maxAbs = (grid) => { let m = 0; for (const row of grid) for (const v of row) m = Math.max(m, Math.abs(v)); return m; };
const rows2d = (a) => Array.isArray(a[0]) ? a : [a];

/** Paint a 2-D array into a canvas, one canvas pixel per value (CSS scales it up). */
export function paint(canvas, grid, colour) {
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
export function grayImage(canvas, grid) {
  if (typeof grid !== "string") return paint(canvas, grid, (v) => { const g = 255 * Math.max(0, Math.min(1, v)); return [g, g, g]; });
  const im = new Image();
  im.onload = () => { canvas.width = im.width; canvas.height = im.height; canvas.getContext("2d").drawImage(im, 0, 0); };
  im.src = grid;
  return canvas;
}

/**
 * A signed map (red positive, blue negative), optionally over the digit `under` (rows in [0, 1]).
 * `limit` is where the colour saturates: the server's `scale.limit` (a stated percentile of
 * |value|, digitlens/explain/scale.py) for attribution maps; the largest |value| when omitted.
 */
export function signedMap(canvas, grid, under = null, limit = null) {
  const m = limit > 0 ? limit : maxAbs(grid);
  return paint(canvas, grid, (v, x, y) => signedColour(v, m, under ? under[y][x] : 0));
}

/**
 * The colour of value `v` on a scale saturating at ±`lim`, over a pixel with `ink` in [0, 1]
 * (drawn as a faint gray, which shows through where the value is near 0). The colour's strength
 * is the square root of |v| / lim, so a pixel at a quarter of the limit still gets half the
 * colour (the same curve as the legend's bar and the figures, view/figures/explanation.py).
 */
export function signedColour(v, lim, ink = 0) {
  const c = v >= 0 ? POS : NEG, a = lim > 0 ? Math.sqrt(Math.min(1, Math.abs(v) / lim)) : 0;
  const shade = 255 - 70 * Math.max(0, Math.min(1, ink));
  return [lerp(shade, c[0], a), lerp(shade, c[1], a), lerp(shade, c[2], a)];
}

/** Activations (0 = dark, `vmax` = bright); `vmax` defaults to the grid's largest value. */
export function actMap(canvas, grid, vmax = null) {
  const m = vmax ?? Math.max(1e-12, ...rows2d(grid).map((r) => Math.max(...r)));
  return paint(canvas, grid, (v) => actRamp(m > 0 ? Math.max(0, v) / m : 0));
}

/** An empty 28×28 canvas for a map, with a name a screen reader can read. */
export const mapCanvas = (cls = "map", label = "") => el("canvas", { class: cls, width: 28, height: 28, role: "img", "aria-label": label });

/**
 * The legend of a signed map's colour scale: a bar from blue through white to red, its end
 * values, and the percentile it is clipped at (all numbers from the server's `scale`).
 */
export function scaleLegend(scale, lowWord = "pushes down", highWord = "pushes up") {
  if (!scale) return el("span");
  const lim = Number(scale.limit), d = lim >= 10 ? 1 : lim >= 1 ? 2 : 3;
  const bar = el("canvas", { class: "scale-bar", width: 64, height: 1, "aria-hidden": "true" });
  paint(bar, [Array.from({ length: 64 }, (_, i) => -lim + (2 * lim * i) / 63)], (v) => signedColour(v, lim));
  const beyond = scale.saturated ? `; the ${scale.saturated} strongest pixel${scale.saturated === 1 ? "" : "s"} go beyond it and are drawn at full colour` : "";
  return el("div", { class: "scale-legend", "data-limit": String(scale.limit) },
    el("span", { class: "end", text: `−${lim.toFixed(d)} ${lowWord}` }), bar,
    el("span", { class: "end", text: `+${lim.toFixed(d)} ${highWord}` }),
    el("span", { class: "small muted note", text: `Colours stop getting darker at ±${lim.toFixed(d)}, the ${ordinal(scale.percentile)} percentile of the map's sizes${beyond}. Faint gray: your digit.` }));
}

const ordinal = (p) => { const n = Math.round(p); const s = n % 10 === 1 && n !== 11 ? "st" : n % 10 === 2 && n !== 12 ? "nd" : n % 10 === 3 && n !== 13 ? "rd" : "th"; return `${n}${s}`; };
