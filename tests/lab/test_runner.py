"""Running the lab: sane measurements, reproducibility, resuming, the run cache, workers."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from digitlens import lab
from digitlens.lab import runner


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
def test_tiny_study_measures_everything_with_sane_values(tiny_result, tiny):
    res = tiny_result
    assert set(res.parts) == {"main", "width", "depth", "depth_compare", "output"}
    _all_runs_sane(res)
    # parts share identical runs instead of recomputing them (w16 d1 is in main, width, depth)
    assert len(res.runs) < sum(len(v) for v in res.parts.values())
    assert set(res.bench["results"]) == set(tiny.activations + tiny.extra_activations)
    for shapes in res.bench["results"].values():
        assert all(t["forward_us"] > 0 and t["backward_us"] > 0 for t in shapes.values())
    assert all(v > 0 for v in res.bench["steps"]["step_us"].values())
    # every rule gets a verdict, with a valid status and the numbers behind it
    verdicts = lab.assess(res)
    assert [v.id for v in verdicts] == ["speed", "width", "range", "output", "depth"]
    for v in verdicts:
        assert v.status in lab.STATUSES and v.text.startswith(v.headline.rstrip(".")) and v.evidence
    d = res.to_dict()
    json.dumps(d, allow_nan=False)
    assert {p for p in d["summary"]} == set(res.parts)
    html = res._repr_html_()
    assert "<table" in html and "Don&#x27;t use ReLU at the output layer." in html
    rows = res.table("width")
    assert {r["width"] for r in rows} == {4, 16} and all(0 <= r["accuracy"] <= 1 for r in rows)


@pytest.mark.slow
def test_same_seed_same_numbers_in_process_in_workers_and_from_cache(tiny_result, tmp_path, tiny):
    study = lab.lab_study(tiny)
    again = lab.run_study(study, cache_dir=tmp_path / "runs", max_workers=2)
    assert len(again.computed) == len(study) and not again.cached
    reloaded = lab.run_study(study, cache_dir=tmp_path / "runs", max_workers=2)
    assert not reloaded.computed and len(reloaded.cached) == len(study)

    def numbers(r):
        return lab.strip_timings(r.to_dict(with_summary=False))

    assert numbers(again) == numbers(tiny_result)
    assert numbers(reloaded) == numbers(tiny_result)  # the JSON cache loses nothing
    # and the timings really were stripped (they differ between repetitions)
    assert "timing" not in json.dumps(numbers(again))


def test_different_seeds_give_different_runs(tiny):
    a = lab.run_one(tiny.run(activation="relu", width=4, seed=0, epochs=1))
    b = lab.run_one(tiny.run(activation="relu", width=4, seed=1, epochs=1))
    assert a["key"] != b["key"]
    assert a["grad_norms"]["values"][0] != b["grad_norms"]["values"][0]


def test_a_dead_relu_layer_stays_dead_through_training(tiny):
    # every hidden unit starts far below zero: no digit switches one on, so no gradient ever
    # reaches them and the study must count all of them dead, at every checkpoint
    r = lab.run_one(tiny.run(activation="relu", width=8, epochs=1, hidden_bias=-50.0))
    assert r["hidden"]["dead_fraction"] == 1.0
    assert r["hidden"]["zero_fraction"] == 1.0
    assert all(d == [8] for d in r["curve"]["dead_hidden"])
    assert r["final"]["accuracy"] <= 0.2  # the output sees only zeros: at best one class
    # "dead" means no gradient, not "ReLU": tanh pinned at -1 has a slope of exactly 0 in float32
    pinned = lab.run_one(tiny.run(activation="tanh", width=8, epochs=1, hidden_bias=-50.0))
    assert pinned["hidden"]["dead_fraction"] == 1.0 and pinned["hidden"]["zero_fraction"] == 0.0


# ---------------------------------------------------------------------------- caching, resume


class _Stop(Exception):
    pass


def test_an_interrupted_study_resumes_without_recomputing(tmp_path, tiny):
    study = lab.activation_study(dataclasses.replace(tiny, compare_optimizer=None,
                                                    extra_activations=()))
    cache = tmp_path / "runs"

    def stop_after_three(ev):
        if ev.done == 3:
            raise _Stop

    with pytest.raises(_Stop):
        lab.run_study(study, cache_dir=cache, max_workers=1, progress=stop_after_three)
    saved = {p.stem: p.stat().st_mtime_ns for p in cache.glob("*.json")}
    assert len(saved) == 3
    events = []
    res = lab.run_study(study, cache_dir=cache, max_workers=1, progress=events.append)
    assert set(res.cached) == set(saved)
    assert len(res.computed) == len(study) - 3 and not set(res.computed) & set(saved)
    assert [e.status for e in events[:3]] == ["cached"] * 3
    assert [e.done for e in events] == list(range(1, len(study) + 1))
    assert {p.stem: p.stat().st_mtime_ns for p in cache.glob("*.json") if p.stem in saved} == saved
    assert not list(cache.glob("*.tmp"))  # atomic writes leave no temporary files


@pytest.mark.slow
def test_interrupting_a_parallel_study_stops_its_workers(tmp_path, tiny):
    import multiprocessing

    study = lab.activation_study(dataclasses.replace(tiny, compare_optimizer=None))

    def stop_after_two(ev):
        if ev.done == 2:
            raise _Stop

    with pytest.raises(_Stop):
        lab.run_study(study, cache_dir=tmp_path, max_workers=2, progress=stop_after_two)
    assert multiprocessing.active_children() == []  # no worker keeps computing in the background
    res = lab.run_study(study, cache_dir=tmp_path, max_workers=2)
    assert len(res.cached) == 2 and len(res.computed) == len(study) - 2


def test_a_run_computed_by_other_engine_code_is_refused(tmp_path, monkeypatch, tiny):
    # a worker that imported changed engine code hashes it into a different key
    real = runner.execute

    def stale(kind, spec):
        return {**real(kind, spec), "key": "train-0000000000000000"}

    monkeypatch.setattr(runner, "execute", stale)
    study = lab.Study("one", tiny, {"main": (tiny.run(activation="relu", width=4, epochs=1),)})
    with pytest.raises(lab.LabError, match="engine code changed while the study was running"):
        lab.run_study(study, cache_dir=tmp_path, max_workers=1)
    assert not list(tmp_path.glob("*.json"))  # nothing inconsistent was cached


def test_a_corrupt_cache_file_is_recomputed(tmp_path, tiny):
    spec = tiny.run(activation="relu", width=4, epochs=1)
    study = lab.Study("one", tiny, {"main": (spec,)})
    lab.run_study(study, cache_dir=tmp_path, max_workers=1)
    path = tmp_path / f"{spec.key()}.json"
    path.write_text('{"key": "truncated')
    res = lab.run_study(study, cache_dir=tmp_path, max_workers=1)
    assert res.computed == [spec.key()]
    assert json.loads(path.read_text())["key"] == spec.key()



def test_unknown_preset_and_worker_count_are_refused(tiny):
    with pytest.raises(lab.LabError, match="preset must be one of"):
        lab.activation_study("huge")
    with pytest.raises(lab.LabError, match="max_workers must be"):
        lab.run_study(lab.output_study(tiny), max_workers=0)

