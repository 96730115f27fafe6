/* Small DOM helpers and the number formats every part of the page shares. */

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/**
 * Build an element: `el("p", {class: "muted", text: "hi"}, child, ...)`.
 * Attributes that are null, undefined or false are left out; `on<event>` adds a listener;
 * `true` sets an empty (boolean) attribute. Null and undefined children are skipped.
 */
export function el(tag, attrs = {}, ...kids) {
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
}

/** A number with `d` decimals, or an en dash when there is none. */
export const fmt = (v, d = 3) => (v === null || v === undefined || Number.isNaN(v)) ? "–" : Number(v).toFixed(d);
/** A probability in [0, 1] as a percentage with `digits` decimals (one unless asked). */
export const pct = (v, digits = 1) => `${(100 * v).toFixed(digits)}%`;
/** "1 seed", "3 seeds". */
export const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

/**
 * Fill a fieldset with one radio button per `[value, label]` of `items` (its legend stays);
 * `onPick(value)` runs when the learner picks one, and `extra(value)` gives a label's class.
 */
export function buildSeg(fieldset, name, items, current, onPick, extra = () => "") {
  const legend = fieldset.querySelector("legend");
  fieldset.replaceChildren(legend);
  for (const [value, label] of items) {
    const input = el("input", { type: "radio", name, value: String(value), checked: String(current) === String(value) });
    input.addEventListener("change", () => onPick(value));
    fieldset.append(el("label", {}, input, el("span", { class: extra(value), text: label })));
  }
}
