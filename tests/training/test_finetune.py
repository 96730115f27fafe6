"""Fine-tuning on the learner's digits: the held-out split, the recipe improving a style the
model misreads (European 1s with a long flag and a base, drawn here), the original untouched."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from digitlens.preprocessing import preprocess
from digitlens.training.finetune import (FinetuneConfig, default_path, finetune, hold_out,
                                         save_finetuned)


def flag_one(rng: np.random.Generator) -> np.ndarray:
    """A European 1 on white paper: a long flag from the top and a base serif (MNIST's 1s are
    mostly a single stroke; the cnn reads most of these as 2s)."""
    im = Image.new("L", (64, 64), 255)
    d = ImageDraw.Draw(im)
    w = int(rng.integers(4, 7))

    def j():
        return float(rng.uniform(-3, 3))

    top, bottom = (36 + j(), 10 + j()), (34 + j(), 54 + j())
    d.line([(16 + j(), 28 + j()), top, bottom], fill=0, width=w)
    d.line([(22 + j(), 54 + j()), (46 + j(), 54 + j())], fill=0, width=w)
    return np.asarray(im)


def flag_ones(n: int, seed: int) -> np.ndarray:
    """(n, 1, 28, 28) through the one pre-processing path, as a learner's drawings are."""
    rng = np.random.default_rng(seed)
    return np.stack([preprocess(flag_one(rng)).image for _ in range(n)])[:, None]


def test_hold_out_keeps_some_of_every_digit_aside():
    y = np.array([1] * 8 + [2] * 2 + [3])
    train, held = hold_out(y, 0.25, np.random.default_rng(0))
    assert sorted(np.concatenate([train, held]).tolist()) == list(range(len(y)))
    assert np.bincount(y[held], minlength=4).tolist() == [0, 2, 1, 0]  # 3 has one: it trains
    assert len(hold_out(y, 0.0, np.random.default_rng(0))[1]) == 0


def test_config_checks_its_values():
    with pytest.raises(ValueError, match="share"):
        FinetuneConfig(share=1.0)
    with pytest.raises(ValueError, match="epochs"):
        FinetuneConfig(epochs=0)


def _improves(model, digits, *, n_mine: int, seed: int = 0, config=None):
    x_mine = flag_ones(n_mine, seed)
    y_mine = np.ones(n_mine, np.int64)
    x_new = flag_ones(60, seed + 1)  # other drawings of the same style, never trained on
    params = {k: v.copy() for k, v in model.params().items()}
    before = float(np.mean(model.predict(x_new) == 1))
    r = finetune(model, x_mine, y_mine, digits, rng=np.random.default_rng(seed), config=config)
    after = float(np.mean(r.model.predict(x_new) == 1))
    # the original model is left exactly as it was
    assert all(np.array_equal(v, params[k]) for k, v in model.params().items())
    return before, after, r


@pytest.mark.slow  # ~2.5 s
def test_finetune_learns_a_style_the_model_misreads(trained, digits):
    model = trained("mlp", epochs=2)
    # a smaller mix than the default recipe's, to keep this test quick
    before, after, r = _improves(model, digits, n_mine=20,
                                 config=FinetuneConfig(epochs=3, n_bundled=600))
    assert r.n_held == 5 and r.n_train == 15 and len(r.held_ids) == 5
    assert after >= 0.9 and after > before + 0.2, (before, after)
    assert r.after["mine_held"] >= r.before["mine_held"]
    # a barely trained mlp on a small mix forgets a little; the 0.5-point bound of the default
    # recipe is checked on the cnn (the slow test below, and benchmarks/finetune_optdigits.py)
    assert r.after["bundled_test"] >= r.before["bundled_test"] - 0.05
    # the numbers reported are the model's own
    assert r.after["bundled_test"] == float(np.mean(r.model.predict(digits.x_test)
                                                    == digits.y_test))


@pytest.mark.slow
def test_cnn_error_on_the_new_style_at_least_halved(trained, digits):
    before, after, r = _improves(trained("cnn"), digits, n_mine=20)
    assert (1 - after) <= (1 - before) / 2, (before, after)
    assert r.after["bundled_test"] >= r.before["bundled_test"] - 0.005


def test_save_never_overwrites_a_zoo_model(tmp_path, monkeypatch, trained, digits):
    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path))
    from digitlens._util import paths
    from digitlens.nn.checkpoint import load_model, save_model

    model = trained("logistic", epochs=1)
    save_model(model, paths.model_path("logistic"))
    original = paths.model_path("logistic").read_bytes()
    r = finetune(model, flag_ones(4, 0), np.ones(4, np.int64), digits,
                 rng=np.random.default_rng(0), config=FinetuneConfig(epochs=1, n_bundled=200))
    with pytest.raises(ValueError, match="zoo model's file"):
        save_finetuned(r, paths.model_path("logistic"), base="logistic")
    path = save_finetuned(r, default_path("logistic"), base="logistic")
    assert path == tmp_path / "models" / "custom" / "logistic_mine.npz"
    assert paths.model_path("logistic").read_bytes() == original
    m, meta = load_model(path, with_meta=True)
    assert meta["finetuned_from"] == "logistic"
    assert meta["finetune"]["after"] == r.after
