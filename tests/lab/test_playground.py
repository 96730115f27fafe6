"""The playground: side-by-side networks, reproducible from their seeds, cached with the lab's
runs, cancellable without damaging the cache."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from digitlens.errors import LabError
from digitlens.lab.measure import lab_data
from digitlens.lab.playground import (Budget, PlayConfig, Playground, Session, build_play_model,
                                      measure)
from digitlens.lab.runner import load_cached

TINY = Budget(n_train=200, n_test=100, epochs=2, batch_size=50, checks_per_epoch=2)


def _pg(*acts, depth=3, width=16, budget=TINY):
    return Playground(tuple(PlayConfig.make(a, depth=depth, width=width) for a in acts), budget)


def _numbers(session):
    return [(lane.state, lane.rows, lane.templates) for lane in session.lanes]


def test_side_by_side_runs_with_equal_seeds_are_reproducible():
    a = Session(_pg("relu", "sigmoid")).run()
    b = Session(_pg("relu", "sigmoid")).run()
    assert [lane.state for lane in a.lanes] == ["completed", "completed"]
    assert _numbers(a) == _numbers(b)
    # checkpoints: one before training, then 2 per epoch
    assert [r["epoch"] for r in a.lanes[0].rows] == [0.0, 0.5, 1.0, 1.5, 2.0]
    # a different seed gives different numbers
    c = Session(_pg("relu", "sigmoid", budget=Budget(**{**TINY.to_dict(), "seed": 1}))).run()
    assert _numbers(c) != _numbers(a)


def test_a_lane_equals_the_same_network_trained_alone():
    both = Session(_pg("relu", "tanh")).run()
    alone = Session(_pg("tanh")).run()
    assert both.lanes[1].rows == alone.lanes[0].rows


def test_checkpoint_numbers_are_the_engines():
    cfg = PlayConfig.make("sigmoid", depth=2, width=8)
    model = build_play_model(cfg, seed=0)
    data = lab_data(200, 100)
    row, template = measure(model, data, TINY)
    from digitlens.training.fit import evaluate

    loss, acc = evaluate(model, data[2], data[3])
    assert row["test_accuracy"] == pytest.approx(acc, abs=1e-5)
    assert row["test_loss"] == pytest.approx(loss, rel=1e-4)
    W = model.layers[1].params["W"][:, 0]
    np.testing.assert_allclose(template, W, rtol=5e-3)
    assert len(row["grad_rms"]) == 3 and row["units"] == 16
    z = model.forward(data[2], trace=True).layers[2].input  # first sigmoid's sums
    s = 0.5 * (1 + np.tanh(0.5 * z))
    assert row["activation_range"][0] == pytest.approx(float(s.min()), rel=1e-3)


def test_finished_networks_are_cached_with_the_labs_runs_and_replayed(tmp_path):
    pg = _pg("relu", "sigmoid")
    first = Session(pg, cache_dir=tmp_path).run()
    files = sorted(p.name for p in tmp_path.glob("play-*.json"))
    assert len(files) == 2 and all(load_cached(tmp_path, pg.key(i)) for i in range(2))
    again = Session(pg, cache_dir=tmp_path).run()
    assert all(lane.cached for lane in again.lanes)
    assert _numbers(again) == _numbers(first)
    assert again.snapshot()["summary"] == first.snapshot()["summary"]


def test_cancelling_leaves_the_cache_usable(tmp_path):
    pg = _pg("relu", "sigmoid")
    stopped = threading.Event()

    def on_row(lane, row):
        if len(lane.rows) == 2:  # mid-run
            session.cancel()
            stopped.set()

    session = Session(pg, cache_dir=tmp_path, on_row=on_row)
    session.run()
    assert stopped.is_set() and session.state == "cancelled"
    assert all(lane.state == "cancelled" for lane in session.lanes)
    assert list(tmp_path.glob("play-*.json")) == []  # nothing unfinished was cached
    assert session.snapshot()["summary"] is None
    # the cache still works: the next run computes, caches, and equals a run without a cache
    done = Session(pg, cache_dir=tmp_path).run()
    assert [lane.state for lane in done.lanes] == ["completed", "completed"]
    assert _numbers(done) == _numbers(Session(pg).run())
    for p in tmp_path.glob("play-*.json"):
        assert json.loads(p.read_text())["state"] == "completed"


def test_slow_motion_paces_the_checkpoints_without_changing_numbers():
    import time

    pg = _pg("relu", depth=1)
    t = time.perf_counter()
    slow = Session(pg, pace=0.05).run()
    assert time.perf_counter() - t >= 5 * 0.05  # 5 checkpoints
    assert _numbers(slow) == _numbers(Session(pg).run())


def test_configs_are_checked_at_the_boundary():
    with pytest.raises(LabError, match="activation"):
        PlayConfig.make("softplus")
    with pytest.raises(LabError, match="one per hidden layer"):
        PlayConfig.make(["relu", "tanh"], depth=3)
    with pytest.raises(LabError, match="head"):
        PlayConfig(head="linear_mse")
    with pytest.raises(LabError, match="1 to 4"):
        Playground(tuple(PlayConfig() for _ in range(5)))
    with pytest.raises(LabError, match="unknown config"):
        PlayConfig.from_dict({"activation": "relu"})
    assert PlayConfig.make(["relu", "tanh"]).activation_label() == "relu-tanh"
    assert PlayConfig.make("tanh", depth=3).activations == ("tanh",) * 3
    pg = Playground((PlayConfig.make("relu", depth=2),), TINY, preset="x")
    assert Playground.from_dict(json.loads(json.dumps(pg.to_dict()))) == pg
