"""The activation lab: sane measurements, reproducibility, dead units, ReLU outputs, caching."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from digitlens.lab import experiments as ex
from digitlens.lab.report import STATUSES, assess, compare, load_result, to_markdown, write_report
from digitlens.nn import functional as F
from digitlens.nn.gradcheck import check_activation, check_model
from digitlens.nn.layers import Activation

TINY = ex.Preset(name="tiny", n_train=200, n_test=100, epochs=2, seeds=1, widths=(4, 16),
                 depths=(1, 2), depth_width=16, main_width=16, main_depth=1,
                 target_accuracy=0.5, extra_activations=("elu",), compare_activations=("sigmoid",),
                 evals_per_epoch=2, n_examples=20, bench_rounds=1, bench_seconds=0.0005)


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def tiny_result():
    return ex.run_study(ex.lab_study(TINY), max_workers=1)


# --------------------------------------------------------------------------- gradients (float64)


@pytest.mark.parametrize("fn", sorted(F.ACTIVATIONS))
def test_activation_derivatives_match_central_differences(fn):
    forward, backward = F.ACTIVATIONS[fn]
    # keep z away from the kinks of relu / leaky_relu at 0
    z = np.random.default_rng(0).uniform(0.05, 3, size=(6, 5)) \
        * np.sign(np.random.default_rng(1).standard_normal((6, 5)))
    assert check_activation(forward, backward, z) < 1e-6
    # the lab's local_slopes (used to find dead and saturated units) is that same derivative
    slope = ex.local_slopes(Activation(fn), z)
    eps = 1e-6
    numeric = (forward(z + eps) - forward(z - eps)) / (2 * eps)
    np.testing.assert_allclose(slope, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("head", list(ex.HEADS))
def test_lab_models_gradients_for_every_output_layer(head):
    spec = ex.RunSpec(activation="tanh", width=3, depth=2, head=head)
    model = ex.build_run_model(spec, np.random.default_rng(0)).astype(np.float64)
    x = np.random.default_rng(1).uniform(0, 1, size=(3, 1, 28, 28))
    errors = check_model(model, x, np.array([1, 7, 3]))
    assert max(errors.values()) < 1e-6


def test_peak_slopes_are_the_textbook_values():
    assert ex.peak_slope("relu") == pytest.approx(1.0)
    assert ex.peak_slope("sigmoid") == pytest.approx(0.25)
    assert ex.peak_slope("tanh") == pytest.approx(1.0)


# ------------------------------------------------------------------------------ a tiny study


def _all_runs_sane(result):
    assert result.runs, "no runs"
    for r in result.runs.values():
        spec = r["spec"]
        assert 0.0 <= r["final"]["accuracy"] <= 1.0
        assert all(0.0 <= a <= 1.0 for a in r["curve"]["test_accuracy"])
        assert r["curve"]["epoch"][0] == 0 and r["curve"]["epoch"][-1] == spec["epochs"]
        h = r["hidden"]
        assert 0.0 <= h["dead_fraction"] <= 1.0
        assert 0.0 <= h["zero_fraction"] <= 1.0 and 0.0 <= h["saturated_fraction"] <= 1.0
        if spec["activation"] in ("sigmoid", "tanh", "leaky_relu", "elu"):
            assert h["dead_fraction"] == 0.0, r["label"]
            assert all(sum(d) == 0 for d in r["curve"]["dead_hidden"]), r["label"]
        for layer in h["layers"]:
            hist = layer["histogram"]
            assert sum(hist["counts"]) == spec["n_test"] * spec["width"]
            assert hist["quantiles"]["0"] <= hist["quantiles"]["50"] <= hist["quantiles"]["100"]
            if spec["activation"] == "sigmoid":
                assert 0.0 <= hist["quantiles"]["0"] and hist["quantiles"]["100"] <= 1.0
        norms = np.asarray(r["grad_norms"]["values"])
        assert norms.shape == (len(r["curve"]["epoch"]), spec["depth"] + 1)
        assert np.all(np.isfinite(norms)) and np.all(norms >= 0)
        assert len(r["grad_norms"]["layers"]) == spec["depth"] + 1
        reach = r["reach"]["epochs"]
        assert reach is None or 0 <= reach <= spec["epochs"]
        t = r["timing"]
        assert t["train_seconds"] > 0 and len(t["epoch_seconds"]) == spec["epochs"]
        assert 0 < t["activation_share"] < 1
        assert (t["seconds_to_target"] is None) == (reach is None)
        json.dumps(r, allow_nan=False)  # strictly JSON-serialisable


@pytest.mark.slow
def test_tiny_study_measures_everything_with_sane_values(tiny_result):
    res = tiny_result
    assert set(res.parts) == {"main", "width", "depth", "depth_compare", "output"}
    _all_runs_sane(res)
    # parts share identical runs instead of recomputing them (w16 d1 is in main, width, depth)
    assert len(res.runs) < sum(len(v) for v in res.parts.values())
    assert set(res.bench["results"]) == set(TINY.activations + TINY.extra_activations)
    for shapes in res.bench["results"].values():
        assert all(t["forward_us"] > 0 and t["backward_us"] > 0 for t in shapes.values())
    assert all(v > 0 for v in res.bench["steps"]["step_us"].values())
    # every rule gets a verdict, with a valid status and the numbers behind it
    verdicts = assess(res)
    assert [v.id for v in verdicts] == ["speed", "width", "range", "output", "depth"]
    for v in verdicts:
        assert v.status in STATUSES and v.text.startswith(v.headline.rstrip(".")) and v.evidence
    d = res.to_dict()
    json.dumps(d, allow_nan=False)
    assert {p for p in d["summary"]} == set(res.parts)
    html = res._repr_html_()
    assert "<table" in html and "Don&#x27;t use ReLU at the output layer." in html
    rows = res.table("width")
    assert {r["width"] for r in rows} == {4, 16} and all(0 <= r["accuracy"] <= 1 for r in rows)


@pytest.mark.slow
def test_same_seed_same_numbers_in_process_in_workers_and_from_cache(tiny_result, tmp_path):
    study = ex.lab_study(TINY)
    again = ex.run_study(study, cache_dir=tmp_path / "runs", max_workers=2)
    assert len(again.computed) == len(study) and not again.cached
    reloaded = ex.run_study(study, cache_dir=tmp_path / "runs", max_workers=2)
    assert not reloaded.computed and len(reloaded.cached) == len(study)

    def numbers(r):
        return ex.strip_timings(r.to_dict(with_summary=False))

    assert numbers(again) == numbers(tiny_result)
    assert numbers(reloaded) == numbers(tiny_result)  # the JSON cache loses nothing
    # and the timings really were stripped (they differ between repetitions)
    assert "timing" not in json.dumps(numbers(again))


def test_different_seeds_give_different_runs():
    a = ex.run_one(TINY.run(activation="relu", width=4, seed=0, epochs=1))
    b = ex.run_one(TINY.run(activation="relu", width=4, seed=1, epochs=1))
    assert a["key"] != b["key"]
    assert a["grad_norms"]["values"][0] != b["grad_norms"]["values"][0]


# ------------------------------------------------------------------------------- dead units


def test_units_with_a_large_negative_bias_are_counted_dead(digits):
    spec = ex.RunSpec(activation="relu", width=8, depth=1)
    model = ex.build_run_model(spec, np.random.default_rng(0))
    dense = model.layers[1]
    dense.params["b"][[0, 3, 5]] = -100.0
    dead = ex.dead_units(model, digits.x_test[:200])
    assert dead[2].tolist() == [0, 3, 5]
    # a moderate bias does not kill a sigmoid unit: its slope is small but not zero
    sig = ex.build_run_model(dataclasses.replace(spec, activation="sigmoid"),
                             np.random.default_rng(0))
    sig.layers[1].params["b"][[0, 3, 5]] = -5.0
    assert ex.dead_units(sig, digits.x_test[:200])[2].tolist() == []


def test_a_dead_relu_layer_stays_dead_through_training():
    # every hidden unit starts far below zero: no digit switches one on, so no gradient ever
    # reaches them and the study must count all of them dead, at every checkpoint
    r = ex.run_one(TINY.run(activation="relu", width=8, epochs=1, hidden_bias=-50.0))
    assert r["hidden"]["dead_fraction"] == 1.0
    assert r["hidden"]["zero_fraction"] == 1.0
    assert all(d == [8] for d in r["curve"]["dead_hidden"])
    assert r["final"]["accuracy"] <= 0.2  # the output sees only zeros: at best one class
    # "dead" means no gradient, not "ReLU": tanh pinned at -1 has a slope of exactly 0 in float32
    pinned = ex.run_one(TINY.run(activation="tanh", width=8, epochs=1, hidden_bias=-50.0))
    assert pinned["hidden"]["dead_fraction"] == 1.0 and pinned["hidden"]["zero_fraction"] == 0.0


# ------------------------------------------------------------------------ ReLU output layers


def test_output_diagnostics_on_a_constructed_relu_output(digits):
    x, y = digits.x_test, digits.y_test
    spec = ex.RunSpec(activation="relu", width=16, depth=1, head="relu_mse")
    model = ex.build_run_model(spec, np.random.default_rng(0))
    model.layers[-2].params["b"][3] = -100.0  # output unit 3 can never switch on
    d = ex.output_diagnostics(model, x, y)
    assert d["dead_units"] == [3]
    assert 3 not in model.predict(x)
    assert d["true_off_fraction"] >= np.mean(y == 3)  # every 3 has its unit off
    assert d["score_min"] == 0.0  # ReLU scores: zeros, and not probabilities
    soft = ex.build_run_model(dataclasses.replace(spec, head="softmax_ce"),
                              np.random.default_rng(0))
    ds = ex.output_diagnostics(soft, x, y)
    assert ds["dead_units"] == [] and ds["true_off_fraction"] == 0.0
    assert ds["sum_deviation"] < 1e-5 and ds["outside_01_fraction"] == 0.0


def test_output_study_detects_a_failing_relu_output_layer():
    # constructed: the ReLU output layers start with every unit switched off (bias -50), so they
    # can never learn; the softmax reference is normal
    runs = [TINY.run(activation="relu", width=16, head="softmax_ce", n_examples=30, seed=s)
            for s in (0, 1)]
    runs += [TINY.run(activation="relu", width=16, head=h, n_examples=30, seed=s,
                      output_bias=-50.0) for h in ("relu_mse", "relu_ce") for s in (0, 1)]
    study = ex.Study("output", TINY, {"output": tuple(runs)})
    res = ex.run_study(study, max_workers=1)
    for r in res.runs_in("output"):
        if r["spec"]["head"] == "softmax_ce":
            assert r["output"]["dead_ever"] == []
        else:
            assert r["final"]["dead_units"] == list(range(10))
            assert r["output"]["recovered"] == []  # stuck at 0, never recovering
            assert r["final"]["tie_fraction"] == 1.0  # all-zero rows: no answer at all
    (v,) = [v for v in assess(res) if v.id == "output"]
    assert v.status == "supported"
    for h in ("relu_mse", "relu_ce"):
        e = v.evidence["heads"][h]
        assert e["significant"] and e["accuracy_gap"] < 0 and e["dead_ever"] == 20
    example = v.evidence["example"]
    assert example is not None and example["heads"]["softmax_ce"]["prediction"] == example["label"]
    assert example["heads"][example["failing_head"]]["tie"]


# ---------------------------------------------------------------------------- caching, resume


class _Stop(Exception):
    pass


def test_an_interrupted_study_resumes_without_recomputing(tmp_path):
    study = ex.activation_study(dataclasses.replace(TINY, compare_optimizer=None,
                                                    extra_activations=()))
    cache = tmp_path / "runs"

    def stop_after_three(ev):
        if ev.done == 3:
            raise _Stop

    with pytest.raises(_Stop):
        ex.run_study(study, cache_dir=cache, max_workers=1, progress=stop_after_three)
    saved = {p.stem: p.stat().st_mtime_ns for p in cache.glob("*.json")}
    assert len(saved) == 3
    events = []
    res = ex.run_study(study, cache_dir=cache, max_workers=1, progress=events.append)
    assert set(res.cached) == set(saved)
    assert len(res.computed) == len(study) - 3 and not set(res.computed) & set(saved)
    assert [e.status for e in events[:3]] == ["cached"] * 3
    assert [e.done for e in events] == list(range(1, len(study) + 1))
    assert {p.stem: p.stat().st_mtime_ns for p in cache.glob("*.json") if p.stem in saved} == saved
    assert not list(cache.glob("*.tmp"))  # atomic writes leave no temporary files


@pytest.mark.slow
def test_interrupting_a_parallel_study_stops_its_workers(tmp_path):
    import multiprocessing

    study = ex.activation_study(dataclasses.replace(TINY, compare_optimizer=None))

    def stop_after_two(ev):
        if ev.done == 2:
            raise _Stop

    with pytest.raises(_Stop):
        ex.run_study(study, cache_dir=tmp_path, max_workers=2, progress=stop_after_two)
    assert multiprocessing.active_children() == []  # no worker keeps computing in the background
    res = ex.run_study(study, cache_dir=tmp_path, max_workers=2)
    assert len(res.cached) == 2 and len(res.computed) == len(study) - 2


def test_a_run_computed_by_other_engine_code_is_refused(tmp_path, monkeypatch):
    # a worker that imported changed engine code hashes it into a different key
    real = ex.execute

    def stale(kind, spec):
        return {**real(kind, spec), "key": "train-0000000000000000"}

    monkeypatch.setattr(ex, "execute", stale)
    study = ex.Study("one", TINY, {"main": (TINY.run(activation="relu", width=4, epochs=1),)})
    with pytest.raises(ex.LabError, match="engine code changed while the study was running"):
        ex.run_study(study, cache_dir=tmp_path, max_workers=1)
    assert not list(tmp_path.glob("*.json"))  # nothing inconsistent was cached


def test_a_corrupt_cache_file_is_recomputed(tmp_path):
    spec = TINY.run(activation="relu", width=4, epochs=1)
    study = ex.Study("one", TINY, {"main": (spec,)})
    ex.run_study(study, cache_dir=tmp_path, max_workers=1)
    path = tmp_path / f"{spec.key()}.json"
    path.write_text('{"key": "truncated')
    res = ex.run_study(study, cache_dir=tmp_path, max_workers=1)
    assert res.computed == [spec.key()]
    assert json.loads(path.read_text())["key"] == spec.key()


# ------------------------------------------------------------------------ validation, report


@pytest.mark.parametrize("field, value, words", [
    ("activation", "softplus", "activation must be one of"),
    ("width", 0, "width must be a whole number"),
    ("head", "relu", "head must be one of"),
    ("n_train", 5000, "n_train must be a whole number in [10, 4000]"),
    ("target_accuracy", math.nan, "target_accuracy must be in (0, 1]"),
    ("hidden_bias", math.inf, "hidden_bias must be a finite number"),
])
def test_bad_specs_are_refused_with_a_clear_message(field, value, words):
    with pytest.raises(ex.LabError, match=r"^" + words.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)").replace("]", r"\]")):
        ex.RunSpec(**{field: value})


def test_unknown_preset_and_worker_count_are_refused():
    with pytest.raises(ex.LabError, match="preset must be one of"):
        ex.activation_study("huge")
    with pytest.raises(ex.LabError, match="max_workers must be"):
        ex.run_study(ex.output_study(TINY), max_workers=0)


def test_presets_fit_their_budgets_on_paper():
    quick, full = ex.lab_study("quick"), ex.lab_study("full")
    assert len(quick) < len(full)
    assert ex.PRESETS["quick"].n_train < ex.PRESETS["full"].n_train
    assert ex.PRESETS["quick"].epochs < ex.PRESETS["full"].epochs


def test_compare_needs_a_gap_larger_than_the_seed_noise():
    c = compare([0.90, 0.91, 0.92], [0.80, 0.81, 0.79])
    assert c.diff == pytest.approx(0.11) and c.differs
    assert not compare([0.90, 0.80], [0.86, 0.85]).differs  # seeds 10 points apart
    assert not compare([0.900], [0.950]).differs  # one seed each: no noise estimate
    assert not compare([0.900, 0.900], [0.905, 0.905]).differs  # below the 1-point minimum
    assert compare([0.1, 0.1], [0.8, 0.82]).differs  # stuck at chance: no spread, big gap
    a, b = [0.90, 0.91, 0.92, 0.91, 0.90], [0.885, 0.895, 0.89, 0.90, 0.88]
    assert compare(a, b, m=1).threshold < compare(a, b, m=12).threshold  # Bonferroni


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
    assert tiny_result.figure("gradient_norms").axes  # the notebook route to the same figures
    with pytest.raises(ex.LabError, match="figure must be one of"):
        tiny_result.figure("nope")
    back = load_result(tmp_path / "report" / "result.json")
    assert ex.strip_timings(back.to_dict(with_summary=False)) == \
        ex.strip_timings(tiny_result.to_dict(with_summary=False))
    assert to_markdown(back) == to_markdown(tiny_result)


@pytest.mark.slow
def test_cli_runs_a_study_writes_the_report_and_resumes(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from digitlens.cli import app

    monkeypatch.setitem(ex.PRESETS, "quick", dataclasses.replace(TINY, name="quick"))
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
    n = len(ex.output_study(TINY))
    assert f"{n} runs computed, 0 taken from the cache" in words(first.output)
    assert len(list((tmp_path / "home" / "lab" / "runs").glob("*.json"))) == n
    second = runner.invoke(app, ["lab", "output", "--quick", "--out", str(out)])
    assert second.exit_code == 0, second.output
    assert f"0 runs computed, {n} taken from the cache" in words(second.output)
    bad = runner.invoke(app, ["lab", "output", "--quick", "--seeds", "0", "--out", str(out)])
    assert bad.exit_code == 1 and "--seeds must be between 1 and 100" in words(bad.output)
