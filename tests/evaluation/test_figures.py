"""The evaluation figures draw the results' own numbers."""

from __future__ import annotations

import numpy as np
import pytest

import digitlens as dl
from digitlens.evaluation import build_map, evaluate_model, robustness

pytest.importorskip("matplotlib")
from digitlens.view.figures.evaluation import (  # noqa: E402
    evaluation_figure, robustness_figure, save_figure,
)


def test_figures_show_the_results_numbers(digits, tmp_path):
    m = dl.build_model("lab", np.random.default_rng(0))
    x, y = digits.x_test[:120], digits.y_test[:120]
    ev = evaluate_model(m, x, y, name="lab")
    dmap = build_map(m, digits.x_train[:200], digits.y_train[:200], x, y)
    fig = evaluation_figure(ev, dmap)
    conf_ax, _, cal_ax, map_ax = fig.axes[:4]
    shown = {(round(t.get_position()[1]), round(t.get_position()[0])): int(t.get_text())
             for t in conf_ax.texts}
    assert shown == {(int(t), int(p)): int(ev.confusion.matrix[t, p])
                     for t, p in zip(*np.nonzero(ev.confusion.matrix))}
    heights = [b.get_height() for b in cal_ax.patches]
    filled = ev.calibration.count > 0
    np.testing.assert_allclose(heights, ev.calibration.accuracy[filled])
    pts = np.concatenate([c.get_offsets() for c in map_ax.collections])
    assert len(pts) == len(y)
    rob = robustness({"lab": m}, x[:30], y[:30], kinds=("rotation", "blur"))
    rfig = robustness_figure(rob)
    line = rfig.axes[0].lines[0]
    np.testing.assert_allclose(line.get_ydata(), 100 * rob.accuracy["lab"]["rotation"])
    out = save_figure(rfig, tmp_path / "rob.svg")
    assert out.read_text().lstrip().startswith("<?xml")
    with pytest.raises(ValueError, match="png, .svg or .pdf"):
        save_figure(rfig, tmp_path / "rob.gif")
