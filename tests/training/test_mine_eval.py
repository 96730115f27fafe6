"""How well does it read me: the confusion matrix (against scikit-learn's), the misread list and
the sentence, all from the model's own answers."""

from __future__ import annotations

import numpy as np
import pytest

from digitlens.training.mine_eval import confusion_matrix, read_me, sentence


def test_confusion_matrix_counts_every_pair():
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 10, 500), rng.integers(0, 10, 500)
    want = np.zeros((10, 10), np.int64)
    for a, b in zip(t, p):  # the definition, one digit at a time
        want[a, b] += 1
    assert np.array_equal(confusion_matrix(t, p), want)
    with pytest.raises(ValueError, match="1-D of one length"):
        confusion_matrix(t, p[:3])


def test_read_me_is_the_models_own_answers(trained, digits):
    model = trained("logistic", epochs=1)
    x, y = digits.x_test[:60], digits.y_test[:60]
    ids = np.arange(100, 160)
    r = read_me(model, x, y, ids, x_test=digits.x_test, y_test=digits.y_test)
    answer = model.predict(x)
    assert r["accuracy"] == float(np.mean(answer == y))
    assert r["bundled_accuracy"] == float(np.mean(model.predict(digits.x_test) == digits.y_test))
    assert np.array_equal(np.array(r["confusion"]), confusion_matrix(y, answer))
    assert sorted(m["id"] for m in r["misread"]) == sorted(ids[answer != y].tolist())
    probs = [m["probability"] for m in r["misread"]]
    assert probs == sorted(probs, reverse=True)
    assert r["sentence"].startswith(f"{r['bundled_accuracy']:.1%} on MNIST's writers, "
                                    f"{r['accuracy']:.1%} on yours")


def test_sentence_names_the_usual_mistake():
    assert sentence(0.948, 0.71, (7, 2, 5)) == \
        "94.8% on MNIST's writers, 71.0% on yours: your 7s are read as 2s (5 times)."
    assert sentence(0.9, 1.0, None).endswith("read every one of your digits correctly.")
    assert "one of your 4s was read as a 9" in sentence(0.9, 0.8, (4, 9, 1))
