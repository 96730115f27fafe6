/* Live updates: the board's picture goes to POST /api/explain, the answer is drawn.
 *
 * While the learner draws, an update is sent at most every UPDATE_MS; there is never more than
 * one request in flight — if the board changes meanwhile, one more request is sent when the
 * current one returns (the newest picture wins).
 *
 * This module knows nothing of the board or of the panels: main.js connects it to them
 * (`connectLive`), so that every other module can ask for an update without importing them.
 * `document.body.dataset.busy` is "1" while an update is planned or in flight, and
 * `dataset.updates` counts the answers (the browser tests wait on both).
 */
import { postJSON } from "./api.js";
import { state } from "./state.js";

export const UPDATE_MS = 140;

const hooks = {
  image: async () => null,     // the picture to explain, as a data URL
  drawing: () => false,        // is a stroke being drawn right now?
  render: (expl) => {},        // draw an Explanation
  showError: (err) => {},      // say what went wrong
};
/** Tell the update loop where the picture comes from and who draws the answer. */
export function connectLive(h) { Object.assign(hooks, h); }

let timer = null, timerDue = Infinity, dirty = false;

/** Ask for an update in `delay` ms (unless an earlier one is already planned). */
export function scheduleUpdate(delay) {
  const due = performance.now() + delay;
  if (timer === null || timerDue > due) {          // else an earlier update is already planned
    clearTimeout(timer);
    timerDue = due;
    timer = setTimeout(() => { timer = null; timerDue = Infinity; sendUpdate(); }, delay);
  }
  setBusy();  // a planned update counts as busy (the pen may lift after the last answer came)
}

export function setBusy() {
  document.body.dataset.busy = (state.stats.inFlight > 0 || timer !== null || dirty) ? "1" : "0";
}

/** The options of one request: what the learner picked, and which steps are switched off. */
function requestOptions(detail) {
  const options = { detail, counterfactual: true };
  if (state.vs !== null) options.vs = state.vs;
  if (state.target !== null) options.target = state.target;
  if (state.method) options.method = state.method;
  const off = Object.entries(state.steps).filter(([, on]) => on === false);
  if (off.length) options.steps = Object.fromEntries(off);
  return options;
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
    const options = requestOptions(hooks.drawing() ? "live" : "full");
    const image = await hooks.image();
    const expl = await postJSON("/api/explain", { image, model: myModel, options });
    state.stats.responses++;
    if (myModel === state.model) hooks.render(expl);
    if (expl.detail === "live" && !hooks.drawing()) dirty = true;  // the stroke ended meanwhile
  } catch (err) {
    state.stats.responses++; state.stats.errors++;
    hooks.showError(err);
  } finally {
    state.stats.inFlight--;
    document.body.dataset.updates = String(state.stats.responses);
    if (dirty) sendUpdate(); else setBusy();
  }
}
