/* "Can I trust this map?": three checks of the attribution map on show, each with its number,
 * asked of POST /api/trust after a full explanation has arrived (they take a moment longer).
 * The numbers come from digitlens/explain/trust.py; this module only draws them:
 *   1. completeness (integrated gradients only): does the map add up to the change of the score?
 *   2. the sanity check: the map again with the network's weights made random (last layer, then
 *      every layer), and the rank correlation with the original (Adebayo et al. 2018);
 *   3. the deletion curve: the probability as the map's top pixels are removed first, against
 *      random pixels, and the area between the two curves. */
import { postJSON } from "./api.js";
import { mapCanvas, signedMap } from "./colours.js";
import { $, el, fmt } from "./dom.js";
import { state } from "./state.js";

let asked = 0;          // the newest request's number: older answers are dropped
let lastExpl = null;

const badge = (ok) => el("span", { class: "badge " + (ok === null ? "na" : ok ? "pass" : "fail"), text: ok === null ? "not applicable" : ok ? "passes" : "fails" });

/** The digit whose map is on show: the one picked under "For the digit", else the answer. */
export function targetOnShow(expl) {
  return state.target !== null && state.target !== undefined && expl.classes.includes(state.target) ? state.target : expl.prediction;
}

/** Ask for the checks of the map on show (after a full explanation, a new method or a new digit). */
export async function requestTrust(expl) {
  const box = $("trust");
  if (!expl || expl.detail === "live") { box.classList.add("stale"); return; }
  lastExpl = expl;
  const mine = ++asked;
  const method = state.method || "integrated_gradients";
  box.classList.add("stale");
  box.dataset.state = "computing";
  if (!box.querySelector(".trust-row")) box.replaceChildren(el("p", { class: "muted", text: "Checking the map…" }));
  try {
    const r = await postJSON("/api/trust", { model: expl.model, image: expl.image, method, target: targetOnShow(expl) });
    if (mine !== asked) return;
    renderTrust(r, expl);
  } catch (err) {
    if (mine !== asked) return;
    box.classList.remove("stale"); box.dataset.state = "error";
    box.replaceChildren(el("p", { class: "muted", text: `The checks could not run: ${err.message}` }));
  }
}

function renderTrust(r, expl) {
  const box = $("trust");
  box.classList.remove("stale"); box.dataset.state = "done";
  box.dataset.method = r.method;
  const [s1, s2, s3] = r.sentences;
  // 1. completeness
  const c = r.completeness;
  const row1 = el("div", { class: "trust-row", "data-check": "completeness" },
    el("h4", {}, "1 · Does the map add up? ", badge(c ? c.passes : null)),
    el("p", { text: s1 }));
  // 2. the sanity check: the original map and the two randomised ones, with their correlations
  const maps = el("div", { class: "trust-maps" });
  const fig = (grid, caption) => {
    const cv = mapCanvas("map mid light", caption); signedMap(cv, grid, expl.image);
    return el("figure", {}, cv, el("figcaption", { text: caption }));
  };
  maps.append(fig(r.map, "the map"));
  for (const x of r.randomisation) maps.append(fig(x.map, `${x.what === "last layer" ? "last layer" : "every layer"} random: ρ = ${fmt(x.spearman, 2)}`));
  const row2 = el("div", { class: "trust-row", "data-check": "randomisation" },
    el("h4", {}, "2 · Does the map depend on what the network learned? ", badge(r.randomisation[0].spearman === null ? null : r.randomisation[0].passes)),
    maps, el("p", { text: s2 }));
  // 3. the deletion curve
  const chart = el("canvas", { class: "trust-chart", width: 300, height: 150, role: "img",
    "aria-label": `probability of ${r.target} as pixels are removed: the map's order against random order` });
  drawDeletion(chart, r.deletion, r.target);
  const row3 = el("div", { class: "trust-row", "data-check": "deletion" },
    el("h4", {}, "3 · Are the map's top pixels the ones that matter? ", badge(r.deletion.area_between > 0)),
    el("figure", {}, chart, el("figcaption", {}, el("span", { class: "chip pos", text: "map's order" }), " ", el("span", { class: "chip rnd", text: "random order" }), ` · area between: ${fmt(r.deletion.area_between, 3)}`)),
    el("p", { text: s3 }));
  const what = el("p", { class: "small muted trust-what", text: `Checking the map on show: ${r.method.replaceAll("_", " ")} for the digit ${r.target}.` });
  box.replaceChildren(what, row1, row2, row3);
}

/** Two curves over the removed fraction of ink: the map's order and the random orders (mean and band). */
function drawDeletion(cv, d, target) {
  const ctx = cv.getContext("2d"), W = cv.width, H = cv.height, L = 34, B = 22, T = 8, R = 8;
  const x = (f) => L + f * (W - L - R), y = (p) => T + (1 - p) * (H - T - B);
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
  ctx.strokeStyle = "#e3e1da"; ctx.fillStyle = "#5f6b7a"; ctx.font = "10px system-ui, sans-serif";
  for (const p of [0, 0.5, 1]) {
    ctx.beginPath(); ctx.moveTo(L, y(p)); ctx.lineTo(W - R, y(p)); ctx.stroke();
    ctx.fillText(`${Math.round(100 * p)}%`, 2, y(p) + 3);
  }
  ctx.fillText("0", L - 2, H - 8); ctx.fillText("all the ink removed", W - R - 92, H - 8);
  ctx.fillText("ink removed →", L + 60, H - 8);
  ctx.fillStyle = "#1f2937"; ctx.fillText(`P(${target})`, L + 4, T + 10);  // what the curves are
  const f = d.fractions;
  ctx.fillStyle = "rgba(120,130,140,.18)"; ctx.beginPath();
  f.forEach((v, i) => (i ? ctx.lineTo(x(v), y(d.random_high[i])) : ctx.moveTo(x(v), y(d.random_high[i]))));
  for (let i = f.length - 1; i >= 0; i--) ctx.lineTo(x(f[i]), y(d.random_low[i]));
  ctx.fill();
  const line = (ys, colour) => {
    ctx.strokeStyle = colour; ctx.lineWidth = 2; ctx.beginPath();
    f.forEach((v, i) => (i ? ctx.lineTo(x(v), y(ys[i])) : ctx.moveTo(x(v), y(ys[i])))); ctx.stroke();
  };
  line(d.random_order, "#7b8794"); line(d.map_order, "#c2410c");
}

/** Re-check when the learner picks another method or another digit (the map on show changes). */
export function initTrust() {
  for (const id of ["attr-methods", "attr-target"]) {
    $(id).addEventListener("change", () => {
      // the new map arrives with the next explanation when it has to be asked for; if it is
      // already there, check it now
      setTimeout(() => { if (lastExpl && state.expl === lastExpl) requestTrust(lastExpl); }, 0);
    });
  }
}
