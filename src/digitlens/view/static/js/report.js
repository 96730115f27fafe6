/* "Save report": the current drawing's explanation as one HTML file to keep, share or print.
 *
 * The server draws the report (POST /api/report, the same body as /api/explain) from the same
 * explanation the page shows; this module only asks for it and hands it to the browser as a
 * download. The file is self-contained: its pictures are embedded and it loads nothing.
 */
import { state } from "./state.js";

const hooks = { image: async () => null };

function say(text, error = false) {
  const s = document.getElementById("report-status");
  s.textContent = text; s.classList.toggle("error", error);
}

async function saveReport() {
  const btn = document.getElementById("btn-report");
  if (!state.model) return;
  btn.disabled = true; say("Preparing the report…");
  try {
    const options = { counterfactual: true };
    if (state.vs !== null) options.vs = state.vs;
    const off = Object.entries(state.steps).filter(([, on]) => on === false);
    if (off.length) options.steps = Object.fromEntries(off);
    const r = await fetch("/api/report", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ image: await hooks.image(), model: state.model, options }),
    });
    if (!r.ok) {
      let msg = `the server answered ${r.status}`;
      try { msg = (await r.json()).message || msg; } catch (_) { /* not JSON */ }
      throw new Error(msg);
    }
    const name = (r.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/);
    const url = URL.createObjectURL(await r.blob());
    const a = document.createElement("a");
    a.href = url; a.download = name ? name[1] : "digitlens-report.html";
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    say(`Saved ${a.download}: open it in any browser, even offline, or print it.`);
  } catch (err) {
    say(`No report: ${err.message}`, true);
  } finally {
    btn.disabled = false;
  }
}

/** Wire the button; `image()` gives the board's picture as a data URL (draw.js currentImage). */
export function initReport({ image }) {
  hooks.image = image;
  document.getElementById("btn-report").addEventListener("click", saveReport);
}
