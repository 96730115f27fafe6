"""`--sample N` means bundled test digit number N in `predict` and `explain` alike (issue 13:
predict's --sample used to mean N random digits, now --random K), and `train --help` lists the
whole zoo, from the zoo."""

from __future__ import annotations

import re

import numpy as np
import pytest
from typer.testing import CliRunner

import digitlens as dl
from digitlens.cli import app
from digitlens.nn.checkpoint import save_model
from digitlens.nn.zoo import model_names


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def logistic(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli_sample") / "logistic.npz"
    save_model(dl.build_model("logistic", np.random.default_rng(0)), path)
    return path


def test_predict_sample_n_reads_test_digit_number_n(logistic):
    d = dl.load_digits()
    r = run("predict", "--sample", "7", "--model", logistic)
    assert r.exit_code == 0, r.output
    found = re.findall(r"test digit #(\d+): true label (\d)", r.stdout)
    assert found == [("7", str(int(d.y_test[7])))]


def test_predict_random_k_reads_k_random_test_digits(logistic):
    r = run("predict", "--random", "4", "--model", logistic, "--seed", "1")
    assert r.exit_code == 0, r.output
    assert len(re.findall(r"test digit #\d+: true label \d", r.stdout)) == 4
    assert re.search(r"^[0-4]/4 right$", r.stdout, flags=re.M)


def test_predict_and_explain_document_sample_the_same_way():
    p = run("predict", "--help").stdout
    e = run("explain", "--help").stdout
    for text in (p, e):
        assert re.search(r"test digit\s+number N", " ".join(text.split()).replace("│", " ")), \
            text


def test_train_help_lists_the_whole_zoo():
    out = " ".join(run("train", "--help").stdout.replace("│", " ").split())
    for name in model_names():
        assert name in out, name
    assert "and more as they are added" not in out
