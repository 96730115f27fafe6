"""Confusion matrix, precision and recall against scikit-learn's; mistakes; calibration."""

from __future__ import annotations

import numpy as np
import pytest

from digitlens.evaluation import calibration, confusion, evaluate_model, mistakes

sk = pytest.importorskip("sklearn.metrics")


def _predictions(seed=0, n=600):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    # right 70% of the time, otherwise a random digit; digit 7 is never predicted (0/0 precision)
    pred = np.where(rng.random(n) < 0.7, y, rng.integers(0, 10, n))
    pred = np.where(pred == 7, 1, pred)
    return y, pred


def test_confusion_and_per_class_metrics_equal_sklearn():
    y, pred = _predictions()
    c = confusion(y, pred, classes=range(10))
    np.testing.assert_array_equal(c.matrix, sk.confusion_matrix(y, pred, labels=range(10)))
    p, r, f1, s = sk.precision_recall_fscore_support(y, pred, labels=range(10),
                                                     zero_division=np.nan)
    np.testing.assert_allclose(c.precision, p, equal_nan=True)
    np.testing.assert_allclose(c.recall, r, equal_nan=True)
    np.testing.assert_array_equal(c.support, s)
    assert np.isnan(c.precision[7]) and c.to_dict()["precision"][7] is None  # never NaN in JSON
    assert c.accuracy == pytest.approx(sk.accuracy_score(y, pred))
    assert c.to_dict()["matrix"] == c.matrix.tolist()


def test_cells_hold_their_digits_most_confident_first():
    y, pred = _predictions(1)
    conf = np.random.default_rng(2).random(len(y))
    c = confusion(y, pred, confidence=conf)
    for (t, p), idx in c.cells.items():
        assert np.all(y[idx] == t) and np.all(pred[idx] == p)
        assert np.all(np.diff(conf[idx]) <= 0)
        assert len(idx) == c.matrix[t, p]
    assert c.cell(7, 7).size == 0
    t, p, n = c.most_confused(1)[0]
    off = c.matrix - np.diag(np.diag(c.matrix))
    assert n == off.max() and c.matrix[t, p] == n and t != p


def test_confusion_refuses_unknown_labels_and_length_mismatch():
    with pytest.raises(ValueError, match="not among classes"):
        confusion([0, 11], [0, 1], classes=range(10))
    with pytest.raises(ValueError, match="same length"):
        confusion([0, 1], [0])


def test_mistakes_sorted_by_confidence():
    rng = np.random.default_rng(3)
    proba = rng.dirichlet(np.ones(10), 300)
    y = rng.integers(0, 10, 300)
    ms = mistakes(y, proba, np.arange(10))
    pred = proba.argmax(1)
    assert {m.index for m in ms} == set(np.flatnonzero(pred != y).tolist())
    confs = [m.confidence for m in ms]
    assert confs == sorted(confs, reverse=True)
    for m in ms[:5]:
        assert m.confidence == proba[m.index].max() and m.p_true == proba[m.index, m.true]
        assert m.predicted != m.true


def test_a_perfectly_calibrated_predictor_has_ece_near_zero():
    rng = np.random.default_rng(4)
    conf = rng.uniform(0.1, 1.0, 200_000)
    correct = rng.random(conf.size) < conf  # right with exactly the probability it claims
    cal = calibration(conf, correct, n_bins=10)
    assert cal.ece < 0.005
    filled = cal.count > 0
    np.testing.assert_allclose(cal.accuracy[filled], cal.confidence[filled], atol=0.01)


def test_an_overconfident_predictor_has_its_gap_as_ece():
    conf = np.full(1000, 0.995)
    correct = np.arange(1000) < 900  # says 99.5%, right 90%
    cal = calibration(conf, correct)
    assert cal.ece == pytest.approx(0.095)
    assert cal.sure_count == 1000 and cal.sure_accuracy == pytest.approx(0.9)
    d = cal.to_dict()
    assert "90.0%" in d["sentence"] and "more sure than it should be" in d["sentence"]
    assert None in d["accuracy"]  # empty bins are null, never NaN


def test_calibration_checks_its_arguments():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        calibration([1.5], [True])
    with pytest.raises(ValueError, match="n_bins"):
        calibration([0.5], [True], n_bins=0)


def test_evaluate_model_derives_everything_from_one_pass(trained, digits):
    m = trained("logistic")
    e = evaluate_model(m, digits.x_test, digits.y_test, name="logistic")
    pred = m.predict(digits.x_test)
    np.testing.assert_array_equal(e.predicted, pred)
    assert e.accuracy == pytest.approx(np.mean(pred == digits.y_test))
    assert e.confusion.matrix.sum() == len(digits.y_test)
    assert len(e.mistakes) == int(np.sum(pred != digits.y_test))
    d = e.to_dict()
    assert d["accuracy"] == pytest.approx(e.accuracy) and d["n_mistakes"] == len(e.mistakes)


def test_evaluate_model_refuses_a_two_class_model():
    import digitlens as dl

    m = dl.build_model("binary", np.random.default_rng(0)) if "binary" in \
        dl.model_names() else None
    if m is None:
        pytest.skip("no binary zoo model")
    with pytest.raises(ValueError, match="all ten digits"):
        evaluate_model(m, np.zeros((2, 1, 28, 28), np.float32), np.array([0, 1]))
