/* "I don't know": the answer card's note on how unlike the training digits the input is.
 * The score, the threshold and the sentence all come from the server (expl.ood, computed by
 * digitlens/explain/ood.py); this module only shows them. While a stroke is being drawn (a live
 * answer carries no score) the last note is faded, as the slow panels are. */
import { $, el, fmt } from "./dom.js";

/** Show expl.ood under the answer: a warning when flagged, a quiet line when not. */
export function renderOod(expl) {
  const box = $("ood-note"), card = $("card-answer");
  if (!expl || expl.detail === "live") { box.classList.add("stale"); return; }
  const o = expl.ood;
  box.classList.remove("stale");
  card.classList.toggle("doubtful", !!(o && o.flagged));
  if (!o) { box.hidden = true; box.replaceChildren(); return; }
  box.hidden = false;
  box.className = "ood-note" + (o.flagged ? " flagged" : "");
  box.dataset.flagged = String(!!o.flagged);
  const numbers = el("p", { class: "small muted ood-numbers",
    text: `Unusualness ${fmt(o.score, 1)} · warning above ${fmt(o.threshold, 1)} (reached by ${Math.round(100 * o.test_flagged)}% of the 1,000 test digits) · measured against the ${o.k}th most similar of the 4,000 training digits, and the shape of the ink.` });
  if (o.flagged) {
    box.replaceChildren(
      el("p", { class: "ood-title", text: "This does not look like any digit I was trained on." }),
      el("p", { text: `The network still answers ${expl.prediction}, because it has to: ${mustPick(expl)} A high percentage here only means ${expl.prediction} fits better than ${others(expl)} — not that this is a digit at all.` }),
      numbers);
  } else {
    box.replaceChildren(el("p", { class: "small", text: "This looks like the digits the network was trained on." }), numbers);
  }
}

/** Why the network must pick a digit, for its output function and number of classes. */
function mustPick(expl) {
  const n = expl.classes.length;
  if (expl.output_function === "sigmoid") return `its one sigmoid unit gives P(${expl.classes[1]}), and P(${expl.classes[0]}) = 1 − P(${expl.classes[1]}): the two always add up to 1, so one of them always wins.`;
  return `softmax turns its ${n} final sums into ${n} probabilities that always add up to 1, so one digit always wins.`;
}
const others = (expl) => expl.classes.length === 2 ? `the other digit, ${expl.classes.find((c) => c !== expl.prediction)}` : `the other ${expl.classes.length - 1} digits`;

/** Forget the note (an error, or a blank board). */
export function clearOod() {
  $("ood-note").hidden = true;
  $("card-answer").classList.remove("doubtful");
}
