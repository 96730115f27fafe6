/* The trace grouped into the columns a learner thinks in: input, hidden layers, output.
 * A pure reshaping of the server's numbers (no drawing here); network.js draws the columns and
 * units.js reads one unit's numbers from them. */

/**
 * The network's columns for an Explanation.
 * Each column: {kind: "input"|"dense"|"output"|"maps", name, desc, layer (trace index, -1 for the
 * input), shape, values (activations, flat), z (dense sums), dense (its trace layer), act (the
 * activation shown with it), stats}. Flatten and dropout are not columns: they pass their input on.
 */
export function networkColumns(expl) {
  const layers = (expl.trace && expl.trace.layers) || [];
  // every layer's name for people, from the server (digitlens/explain/names.py)
  const names = expl.layer_names || [];
  const named = (L, fallback) => (names[L.index] && names[L.index].name) || fallback;
  const cols = [{ kind: "input", name: "your digit (28×28 pixels)", desc: "784 pixel intensities", shape: [28, 28], values: expl.image.flat(), layer: -1 }];
  for (let i = 0; i < layers.length; i++) {
    const L = layers[i];
    if (L.type === "flatten" || L.type === "dropout") continue;
    const next = layers.slice(i + 1).find((n) => n.type !== "dropout");
    const isLast = !layers.slice(i + 1).some((n) => n.type === "dense" || n.type.startsWith("conv"));
    if (L.type === "dense") {
      const act = next && next.type === "activation" ? next : null;
      cols.push({ kind: isLast ? "output" : "dense", name: named(L, isLast ? "output layer" : `hidden layer (${L.output_shape[0]} units)`),
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
      cols.push({ kind: "maps", name: named(L, nice), desc: L.describe, layer: L.index,
        shape: L.output_shape, values: L.values, stats: L.stats, dense: L });
    }
  }
  return cols;
}

/** The activation function's name shown with a column ("relu"), or "" when there is none. */
export const activationName = (col) => col && col.act ? col.act.describe.split(":")[0] : "";
