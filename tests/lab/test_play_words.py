"""The playground's closing sentence is computed from the histories: checked on constructed ones."""

from __future__ import annotations

from digitlens.lab.play_presets import PLAY_PRESETS, play_preset
from digitlens.lab.play_words import labels, reach_epoch, summary
from digitlens.lab.playground import Budget, PlayConfig, Playground
from digitlens.lab.verdicts import RULES


def _row(epoch, test, train=None, dead=0, units=64, sat=0.0, grad=(0.1, 0.1, 0.1, 0.1)):
    return {"epoch": epoch, "test_accuracy": test, "train_accuracy": train if train else test,
            "dead_units": dead, "units": units, "dead_fraction": dead / units,
            "saturated_fraction": sat, "grad_rms": list(grad)}


def _lane(act, rows, depth=3):
    return {"config": PlayConfig.make(act, depth=depth).to_dict(), "rows": rows}


PG = Playground((PlayConfig.make("sigmoid", depth=3), PlayConfig.make("relu", depth=3)),
                Budget(epochs=8, target_accuracy=0.9))


def test_the_sentence_from_a_constructed_history():
    sigmoid = [_row(e, 0.5 + 0.06 * e, sat=0.31, grad=(0.001, 0.01, 0.05, 0.1))
               for e in range(9)]  # 0.92 at epoch 7
    relu = [_row(e, min(0.6 + 0.1 * e, 0.93), train=min(0.6 + 0.12 * e, 1.0),
                 dead=23 if e else 0, units=96, grad=(0.08, 0.09, 0.1, 0.1))
            for e in range(9)]  # 0.9 at epoch 3
    s = summary(PG, [_lane("sigmoid", sigmoid), _lane("relu", relu)])
    assert s["labels"] == ["sigmoid", "ReLU"]
    assert s["reach"] == [7, 3]
    assert s["facts"][0] == "ReLU reached 90% test accuracy after 3 epochs and sigmoid after 7 " \
                            "epochs."
    assert s["facts"][1] == "Test accuracy at the end: sigmoid 98.0% and ReLU 93.0%."
    assert "24% in ReLU (23 of 96)" in s["facts"][2]
    assert "31% in sigmoid" in s["facts"][3]
    assert s["facts"][4] == ("At the start, the first layer's gradient was 0.01x the output "
                             "layer's under sigmoid and 0.8x under ReLU.")
    assert "ReLU (100.0% against 93.0%)" in s["facts"][5] and "overfitting" in s["facts"][5]
    assert s["sentence"] == " ".join(s["facts"])


def test_a_network_that_never_reaches_the_target_says_its_best():
    flat = [_row(e, 0.1 + 0.01 * e) for e in range(9)]
    good = [_row(e, 0.5 + 0.1 * e) for e in range(9)]
    s = summary(PG, [_lane("sigmoid", flat), _lane("relu", good)])
    assert s["reach"] == [None, 4]
    assert s["facts"][0] == ("ReLU reached 90% test accuracy after 4 epochs and sigmoid "
                             "(best 18.0%) never did in 8 epochs.")
    s = summary(PG, [_lane("sigmoid", flat), _lane("relu", flat)])
    assert s["facts"][0].startswith("No network reached 90% test accuracy in 8 epochs")


def test_reach_is_the_first_checkpoint_at_the_target():
    rows = [_row(0, 0.1), _row(0.25, 0.95), _row(0.5, 0.5)]
    assert reach_epoch(rows, 0.9) == 0.25 and reach_epoch(rows, 0.99) is None


def test_labels_name_what_differs():
    cs = [PlayConfig.make("relu", depth=1, width=w).to_dict() for w in (8, 64)]
    assert labels(cs) == ["8 units", "64 units"]
    cs = [PlayConfig.make("relu", head=h).to_dict() for h in ("softmax_ce", "relu_mse")]
    assert labels(cs) == ["softmax + CE", "ReLU + MSE"]


def test_every_rule_of_thumb_has_a_preset():
    assert {p.rule for p in PLAY_PRESETS.values()} == set(RULES)
    assert play_preset("depth").playground.configs[2].activations == ("sigmoid",) * 4
