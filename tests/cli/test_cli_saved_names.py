"""Saved fine-tuned and custom models are found by name everywhere: ``--model cnn_mine`` in the
CLI (``cli._common.resolve_model`` via ``training.mine_eval.saved_models``), and the page's model
list describes them with their checkpoint's own ``meta["description"]``."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

import digitlens as dl
from digitlens.nn.checkpoint import save_model

with warnings.catch_warnings():  # starlette's notice about httpx2 is not ours to fix
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TUNED = "the logistic model fine-tuned on your digits"
SHOWN = "The logistic model fine-tuned on your digits."  # as a sentence on the page


@pytest.fixture
def home(tmp_path, monkeypatch, trained):
    """A models folder with a trained zoo ``logistic``, a fine-tuned ``logistic_mine`` (saved
    where ``digitlens finetune`` saves it) and a custom ``sigmoid_2x32``."""
    from digitlens._util import paths
    from digitlens.training.finetune import default_path

    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path))
    base = trained("logistic", epochs=1)
    save_model(base, paths.model_path("logistic"), {"test_accuracy": 0.5})
    tuned = base.copy()
    tuned.params()[next(iter(tuned.params()))][...] *= 1.5  # different weights, same shape
    save_model(tuned, default_path("logistic"), {"finetuned_from": "logistic",
                                                 "test_accuracy": 0.61, "description": TUNED})
    custom = dl.build_model("lab", np.random.default_rng(1))
    save_model(custom, paths.models_dir() / "custom" / "sigmoid_2x32.npz", {"test_accuracy": 0.3})
    return {"tuned": tuned, "custom": custom, "base": base}


def test_resolve_model_finds_saved_models_by_name(home):
    from digitlens.cli._common import resolve_model

    for name, want in (("logistic_mine", home["tuned"]), ("sigmoid_2x32", home["custom"])):
        model, meta = resolve_model(name)
        for k, v in want.params().items():
            np.testing.assert_array_equal(model.params()[k], v)
    assert resolve_model("logistic_mine")[1]["description"] == TUNED
    # the zoo name still means the zoo's file, not the fine-tuned one
    base, _ = resolve_model("logistic")
    for k, v in home["base"].params().items():
        np.testing.assert_array_equal(base.params()[k], v)


def test_unknown_name_lists_the_saved_models(home):
    from digitlens.cli._common import UserError, resolve_model

    with pytest.raises(UserError, match=re.escape("['logistic_mine', 'sigmoid_2x32']")):
        resolve_model("cnn_mine")


def test_predict_accepts_a_fine_tuned_name(home):
    from digitlens.cli import app

    x = dl.load_digits().x_test[3:4]
    answer = int(home["tuned"].predict(x)[0])
    p = float(home["tuned"].predict_proba(x)[0].max())
    result = CliRunner().invoke(app, ["predict", "--model", "logistic_mine", "--sample", "3"])
    assert result.exit_code == 0, result.output
    assert f"network says {answer} ({p:.1%} sure)" in result.output


@pytest.mark.slow
def test_explain_accepts_a_fine_tuned_name(home):
    from digitlens.cli import app

    result = CliRunner().invoke(app, ["explain", "--model", "logistic_mine", "--sample", "3",
                                      "--no-counterfactual", "--ig-steps", "8"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output


def test_model_list_uses_the_checkpoint_description(home):
    from digitlens.view.server.app import create_app

    with TestClient(create_app(default_model="logistic", seed=0)) as c:
        models = {m["name"]: m for m in c.get("/api/models").json()["models"]}
    tuned = models["logistic_mine"]
    assert tuned["trained"] and tuned["sentence"] == SHOWN
    assert tuned["test_accuracy"] == 0.61
    # no description in the checkpoint: the architecture's sentence, as before
    assert models["sigmoid_2x32"]["sentence"] == home["custom"].description
    from digitlens.nn.zoo import MODELS

    assert models["logistic"]["sentence"] == MODELS["logistic"].sentence
    json.dumps(models)  # the answer is plain JSON
