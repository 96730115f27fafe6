/* digitlens web page: start-up and wiring.
 *
 * The page only draws what the server computes: it sends the board's picture to
 * POST /api/explain and paints the numbers it gets back (the Explanation JSON, see
 * digitlens/explain/result.py).  No machine learning happens here.
 *
 * The page is a handful of ES modules, loaded by the browser as they are (no build step):
 *   main.js        start-up, the tabs, and the wiring below
 *   live.js        the update loop: at most one /api/explain request in flight
 *   draw.js        the board: strokes, undo, a test digit or a photo, the 140×140 picture sent
 *   explain.js     one explanation drawn, panel by panel:
 *     preprocess.js  1. the pre-processing steps     network.js  2. the network's columns
 *     contrast.js    4. why this digit, not another  units.js    a unit's details, 5. filters
 *   columns.js     the trace grouped into columns (input, hidden layers, output)
 *   models.js      the model switcher              train.js    the training tab (SSE)
 *   lab.js         the activation lab tab
 *   functions.js, playground.js   the playground tab: the activation curves, networks side by side
 *   api.js, dom.js, colours.js, state.js           fetch, DOM helpers, colour scales, shared state
 * The imports form no cycle. Where a module needs one that imports it (the update loop needs the
 * board and the panels, which ask it for updates; a training run needs the model switcher, which
 * fills the training form), main.js connects them with callbacks: `connectLive`, `initTraining`.
 */
import { api } from "./api.js";
import { $ } from "./dom.js";
import { board, currentImage, initBoard, redraw } from "./draw.js";
import { render, renderProbs, showError } from "./explain.js";
import { initLab, loadLab } from "./lab.js";
import { loadFunctions } from "./functions.js";
import { initPlayground, loadPlayground, startPreset } from "./playground.js";
import { connectLive, scheduleUpdate, setBusy } from "./live.js";
import { loadModels } from "./models.js";
import { clearOod, renderOod } from "./ood.js";
import { initPreprocess } from "./preprocess.js";
import { initReport } from "./report.js";
import { state } from "./state.js";
import { drawCharts, follow, initTraining } from "./train.js";
import { initTrust, requestTrust } from "./trust.js";
import { connectWorked } from "./worked.js";
import { initEvaluation, loadEvaluation } from "./evaluation.js";
import { initMine, loadMine } from "./mine.js";
import { initFilters, renderLooksPanel } from "./filters.js";
import { renderLearnPanel } from "./learn.js";
import { initTour } from "./tour.js";

window.digitlens = state;  // for the curious (and for the browser tests)

// ------------------------------------------------------------------------------- tabs
function initTabs() {
  const tabs = [$("tab-explore"), $("tab-train"), $("tab-lab"), $("tab-play"), $("tab-eval"), $("tab-mine")];
  const selectTab = (tab) => {
    for (const t of tabs) {
      const on = t === tab;
      t.setAttribute("aria-selected", String(on)); t.tabIndex = on ? 0 : -1;
      $(t.getAttribute("aria-controls")).hidden = !on;
    }
    $("modelbar").hidden = tab !== tabs[0];
    if (tab === tabs[1]) drawCharts();
    if (tab === tabs[2]) loadLab();
    if (tab === tabs[3]) { loadFunctions(); loadPlayground(); }
    if (tab === tabs[4]) loadEvaluation();
    if (tab.id === "tab-mine") loadMine();
  };
  // #playground opens the playground; #playground=NAME also starts that preset (the lab's
  // verdicts and issue 12's slow-motion training link here)
  const fromHash = async () => {
    const m = /^#playground(?:=(\w+))?$/.exec(location.hash);
    if (!m) return;
    selectTab(tabs[3]);
    if (m[1]) { await loadPlayground(); startPreset(m[1]); }
  };
  window.addEventListener("hashchange", fromHash);
  fromHash();
  tabs.forEach((t, i) => {
    t.addEventListener("click", () => selectTab(t));
    t.addEventListener("keydown", (e) => {
      const d = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
      if (d) { const n = tabs[(i + d + tabs.length) % tabs.length]; selectTab(n); n.focus(); }
    });
  });
}

// ------------------------------------------------------------------------------ start
function wire() {
  connectWorked({ image: currentImage });  // the worked sum reads the same picture
  connectLive({ image: currentImage, drawing: () => !!board.current,
    // the answer, then its "I don't know" note and the checks of its map (ood.js, trust.js)
    render: (expl) => {
      render(expl); renderOod(expl); requestTrust(expl);
      renderLooksPanel(expl); renderLearnPanel(expl);  // 7. filters, 8. one training step
    },
    showError: (err) => { showError(err); clearOod(); } });
  initTrust();
  initFilters();
  initTour();
  initBoard();
  initPreprocess();
  initTabs();
  initLab();
  initPlayground();
  initEvaluation();
  initMine();
  initTraining({
    // a finished run saved its model: show it in the switcher, and explain with it if it is on show
    trained: async (model) => {
      await loadModels(true);
      if (model === state.model) scheduleUpdate(0);
    },
  });
  initReport({ image: currentImage });
}

async function start() {
  redraw(); renderProbs(null); drawCharts();
  document.body.dataset.updates = "0"; setBusy();
  try {
    await loadModels(false);
    const jobs = await api("/api/train");
    if (jobs.running) follow(jobs.jobs.find((j) => j.id === jobs.running));
  } catch (err) { showError(err); }
  document.body.dataset.ready = "1";
}

wire();
start();
