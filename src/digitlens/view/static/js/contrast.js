/* 4. Why this digit and not another: the gap between two final sums, the ink and the units that
 * argue for each side, and the counterfactual (the smallest edit the server found that changes
 * the answer). */
import { lerp, grayImage, mapCanvas, paint, signedMap } from "./colours.js";
import { $, buildSeg, el, fmt, pct } from "./dom.js";
import { scheduleUpdate } from "./live.js";
import { state } from "./state.js";

export function renderContrast(expl) {
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
  renderTerms(c);
  renderCounterfactual(expl);
}

/** The pixels or last-layer units that argue for each side, with their exact contributions. */
function renderTerms(c) {
  const terms = $("unit-terms");
  terms.replaceChildren();
  if (!(c.units && (c.units.for_a.length || c.units.for_b.length))) return;
  const what = c.units.kind === "pixels" ? "pixels" : `units of the last hidden layer`;
  const all = [...c.units.for_a, ...c.units.for_b];
  const m = Math.max(1e-9, ...all.map((t) => Math.abs(t.contribution)));
  const list = (items, who, colour) => el("div", {}, el("h4", { text: `${what} arguing for ${who}` }),
    ...items.slice(0, 5).map((t) => {
      const cv = mapCanvas("map small", `template of unit ${t.unit}`);
      if (t.template) signedMap(cv, t.template);
      return el("div", { class: "term" }, cv,
        el("span", { class: "bar", style: `width:${(60 * Math.abs(t.contribution) / m).toFixed(1)}px; background:${colour}` }),
        el("span", { text: `${c.units.kind === "pixels" ? "pixel" : "unit"} ${t.unit}: ${t.contribution >= 0 ? "+" : ""}${fmt(t.contribution, 2)}${t.where ? " · " + t.where : ""}` }));
    }));
  terms.append(list(c.units.for_a, c.a, "var(--pos)"), list(c.units.for_b, c.b, "var(--neg)"));
  const kinds = new Set(all.map((t) => t.template_kind));
  const pics = kinds.has("input_gradient") ? "Pictures: what each unit responds to around your digit (how its activation changes with a little more ink on each pixel)."
    : kinds.has("weights") ? "Pictures: each unit's weights over the pixels (red: ink here raises it)." : "";
  terms.append(el("p", { class: "small muted", style: "grid-column: 1 / -1", text: `Exact: the ${c.units.n_units} contributions (weight difference × activation) plus the bias difference ${fmt(c.units.bias_term, 3)} add up to the gap ${fmt(c.units.gap, 3)}. ${pics}` }));
}

function renderCounterfactual(expl) {
  const cf = expl.counterfactual, box = $("counterfactual");
  box.hidden = !cf;
  if (!cf) return;
  $("cf-b").textContent = cf.b;
  grayImage($("cf-before"), expl.image);
  // green: ink added, red: ink removed, over the digit in dark gray
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
