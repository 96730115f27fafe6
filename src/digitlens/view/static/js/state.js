/* What the learner chose, and the last explanation: the one state every part of the page reads.
 * main.js exposes it as `window.digitlens` (for the curious, and for the browser tests). */

export const state = {
  models: [], model: null, training: true,
  vs: null,               // contrast digit chosen by the learner (null = runner-up)
  target: null,           // attribution digit (null = the prediction)
  method: "integrated_gradients",
  steps: {},              // pre-processing switches: name -> false when switched off
  expl: null,             // the last Explanation JSON
  selected: null,         // {layer, unit} clicked in the network
  stats: { requests: 0, responses: 0, maxInFlight: 0, inFlight: 0, errors: 0 },
};

/** A new picture on the board: the learner's contrast and attribution digits start afresh. */
export function resetChoices() { state.vs = null; state.target = null; }
