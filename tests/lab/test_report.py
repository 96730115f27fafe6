"""The lab's report (view.report, view.figures.lab) and the ``digitlens lab`` command."""

from __future__ import annotations

import dataclasses

import pytest

from digitlens import lab
from digitlens.lab import load_result
from digitlens.view.figures.lab import figure
from digitlens.view.report import to_markdown, write_report


@pytest.mark.slow
def test_report_is_written_with_figures_and_reloads(tiny_result, tmp_path):
    path = write_report(tiny_result, tmp_path / "report")
    text = path.read_text()
    for rule in ("ReLU trains faster", "need more ReLU units", "logical levels",
                 "Don't use ReLU at the output layer", "vanish"):
        assert rule in text
    for fig in ("learning_curves", "speed", "accuracy_vs_width", "dead_units", "gradient_norms",
                "activation_histograms", "output_layers"):
        png = tmp_path / "report" / f"{fig}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({fig}.png)" in text
    assert figure(tiny_result, "gradient_norms").axes  # the notebook route to the same figures
    with pytest.raises(lab.LabError, match="figure must be one of"):
        figure(tiny_result, "nope")
    back = load_result(tmp_path / "report" / "result.json")
    assert lab.strip_timings(back.to_dict(with_summary=False)) == \
        lab.strip_timings(tiny_result.to_dict(with_summary=False))
    assert to_markdown(back) == to_markdown(tiny_result)


@pytest.mark.slow
def test_cli_runs_a_study_writes_the_report_and_resumes(tmp_path, monkeypatch, tiny):
    from typer.testing import CliRunner

    from digitlens.cli import app

    monkeypatch.setitem(lab.PRESETS, "quick", dataclasses.replace(tiny, name="quick"))
    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path / "home"))   # a fresh run cache
    out = tmp_path / "lab"
    runner = CliRunner()
    first = runner.invoke(app, ["lab", "output", "--quick", "--out", str(out), "--workers", "1"])
    assert first.exit_code == 0, first.output
    assert (out / "report.md").exists() and (out / "output_layers.png").exists()
    assert "Don't use ReLU at the output layer" in (out / "report.md").read_text()

    def words(text):  # the terminal table wraps lines
        return " ".join(text.replace("│", " ").split())

    assert "verdicts" in first.output and "supported" in first.output
    n = len(lab.output_study(tiny))
    assert f"{n} runs computed, 0 taken from the cache" in words(first.output)
    assert len(list((tmp_path / "home" / "lab" / "runs").glob("*.json"))) == n
    second = runner.invoke(app, ["lab", "output", "--quick", "--out", str(out)])
    assert second.exit_code == 0, second.output
    assert f"0 runs computed, {n} taken from the cache" in words(second.output)
    bad = runner.invoke(app, ["lab", "output", "--quick", "--seeds", "0", "--out", str(out)])
    assert bad.exit_code == 1 and "--seeds must be between 1 and 100" in words(bad.output)

