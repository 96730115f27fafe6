"""``digitlens train``, ``predict`` and ``info`` through typer's CliRunner, with the user cache
redirected to a temporary directory."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import digitlens as dl
from digitlens.cli import app
from digitlens.cli import train as cli_train


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def run(*args):
    # wide terminal so tables don't wrap; stdout and stderr are kept apart by click >= 8.2
    return CliRunner().invoke(app, list(map(str, args)), env={"COLUMNS": "200"})


def assert_one_line_error(result, message):
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0]
    assert "Traceback" not in result.output + result.stderr


@pytest.fixture(scope="module")
def logistic_file(tmp_path_factory):
    """A logistic model trained for 2 epochs through the CLI (shared by the tests below)."""
    path = tmp_path_factory.mktemp("cli") / "logistic.npz"
    r = CliRunner().invoke(app, ["train", "--model", "logistic", "--epochs", "2", "--out",
                                 str(path)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output + r.stderr
    return path, r


# ------------------------------------------------------------------------------------ train


def test_train_reports_epochs_accuracy_and_saves(logistic_file):
    path, r = logistic_file
    out = r.stdout
    assert "Multinomial logistic regression" in out  # the zoo sentence
    assert re.search(r"epoch\s+1/2\s+loss \d\.\d{4}\s+acc 0\.\d{4}", out)
    assert re.search(r"epoch\s+2/2\s+loss", out)
    acc = float(re.search(r"test accuracy (\d+\.\d+)% on 1,000 held-out digits after 2 epochs",
                          out).group(1))
    assert f"saved 7,850 parameters to {path}" in " ".join(out.split())
    model, meta = dl.load_model(path, with_meta=True)
    assert meta["epochs_completed"] == 2 and meta["stop_reason"] == "completed"
    assert meta["test_accuracy"] == pytest.approx(acc / 100, abs=5e-5)
    d = dl.load_digits()
    _, real_acc = dl.evaluate(model, d.x_test, d.y_test)
    assert real_acc == pytest.approx(meta["test_accuracy"])
    assert real_acc > 0.7  # two epochs of logistic regression


def test_train_without_out_saves_to_the_cache(home):
    r = run("train", "--model", "binary", "--epochs", "1")
    assert r.exit_code == 0, r.output + r.stderr
    cached = home / "models" / "binary.npz"
    assert cached.is_file()
    assert dl.load_model(cached).classes == (0, 1)
    # ... where `--model NAME` finds it
    r = run("info", "binary")
    assert r.exit_code == 0 and "total parameters: 785" in r.stdout


def test_ctrl_c_keeps_the_last_complete_epoch(tmp_path, monkeypatch):
    original = cli_train.EpochProgress.on_batch_end

    def ctrl_c_in_epoch_2(self, log):
        if log["epoch"] == 2 and log["batch"] == 3:
            raise KeyboardInterrupt
        return original(self, log)

    monkeypatch.setattr(cli_train.EpochProgress, "on_batch_end", ctrl_c_in_epoch_2)
    path = tmp_path / "m.npz"
    r = run("train", "--model", "logistic", "--epochs", "3", "--out", path)
    assert r.exit_code == 0, r.output + r.stderr
    assert "after 1 epochs" in r.stdout and "interrupted: kept the last complete epoch" in r.stdout
    meta = dl.load_model(path, with_meta=True)[1]
    assert meta["stop_reason"] == "interrupted" and meta["epochs_completed"] == 1


def test_ctrl_c_in_the_first_epoch_saves_nothing(tmp_path, monkeypatch):
    def ctrl_c(self, log):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_train.EpochProgress, "on_batch_end", ctrl_c)
    path = tmp_path / "m.npz"
    r = run("train", "--model", "logistic", "--out", path)
    assert_one_line_error(r, "stopped before the first epoch finished; nothing was saved")
    assert not path.exists()


@pytest.mark.parametrize("args, message", [
    (["--model", "resnet"], "unknown model 'resnet'; choose one of"),
    (["--model", "logistic", "--epochs", "0"], "epochs must be a whole number >= 1, got 0"),
    (["--model", "logistic", "--lr", "-1"], "lr must be a positive number, got -1.0"),
    (["--model", "logistic", "--batch-size", "0"], "batch_size must be a whole number >= 1"),
])
def test_train_bad_options_are_one_line_errors(args, message, tmp_path):
    r = run("train", *args, "--out", tmp_path / "m.npz")
    assert_one_line_error(r, message)
    assert not (tmp_path / "m.npz").exists()


# ---------------------------------------------------------------------------------- predict


def digit_png(tmp_path, image, name="digit.png", invert=True):
    """A bundled 28×28 digit as a PNG, scaled up and (by default) as dark ink on white paper."""
    img = (image[0] * 255).astype(np.uint8)
    if invert:
        img = 255 - img
    path = tmp_path / name
    Image.fromarray(img).resize((112, 112), Image.NEAREST).save(path)
    return path


def parse_probabilities(out: str) -> dict[int, float]:
    return {int(m.group(1)): float(m.group(2))
            for m in re.finditer(r"^\s*(\d)\s+([01]\.\d{4})\b", out, flags=re.M)}


def test_predict_prints_a_digit_and_ten_probabilities(logistic_file, tmp_path, digits):
    path, _ = logistic_file
    model = dl.load_model(path)
    # pick a test digit the model gets right with some confidence
    p = model.predict_proba(digits.x_test[:200])
    i = int(np.flatnonzero((p.argmax(1) == digits.y_test[:200]) & (p.max(1) > 0.8))[0])
    png = digit_png(tmp_path, digits.x_test[i])
    r = run("predict", png, "--model", path)
    assert r.exit_code == 0, r.output + r.stderr
    said = re.search(r"^(\d)\s+\(logistic, (\d+\.\d)% sure\)", r.stdout, flags=re.M)
    assert said, r.stdout
    assert int(said.group(1)) == digits.y_test[i]
    probs = parse_probabilities(r.stdout)
    assert sorted(probs) == list(range(10))
    assert sum(probs.values()) == pytest.approx(1.0, abs=5e-3)
    assert max(probs, key=probs.get) == int(said.group(1))
    assert probs[int(said.group(1))] == pytest.approx(float(said.group(2)) / 100, abs=1e-3)


def test_predict_sample_reads_bundled_test_digits(logistic_file):
    path, _ = logistic_file
    r = run("predict", "--random", "3", "--model", path)
    assert r.exit_code == 0, r.output + r.stderr
    assert len(re.findall(r"test digit #\d+: true label \d, network says \d", r.stdout)) == 3
    assert re.search(r"^[0-3]/3 right$", r.stdout, flags=re.M)


def test_predict_bad_inputs_are_one_line_errors(logistic_file, tmp_path):
    path, _ = logistic_file
    png = digit_png(tmp_path, np.zeros((1, 28, 28), np.float32) + 0.5, "grey.png")
    text = tmp_path / "notes.png"
    text.write_text("not really a picture")
    broken = tmp_path / "broken.npz"
    broken.write_bytes(path.read_bytes()[:1000])

    assert_one_line_error(run("predict", tmp_path / "missing.png", "--model", path),
                          "file not found")
    assert_one_line_error(run("predict", text, "--model", path), "not an image")
    assert_one_line_error(run("predict", png, "--model", broken), "truncated")
    assert_one_line_error(run("predict", png, "--model", tmp_path / "nope.npz"),
                          "does not exist")
    assert_one_line_error(run("predict", png, "--model", "mlp"),
                          "no trained 'mlp' model yet: run `digitlens train --model mlp`")
    assert_one_line_error(run("predict", png, "--model", "vgg"),
                          "'vgg' is neither a model file nor one of")
    assert_one_line_error(run("predict", "--model", path),
                          "give an IMAGE to read, --sample N")


# ------------------------------------------------------------------------------------- info


def test_info_shows_layers_and_parameter_counts(logistic_file):
    path, _ = logistic_file
    r = run("info", path)
    assert r.exit_code == 0, r.output + r.stderr
    out = r.stdout
    assert "total parameters: 7,850" in out
    assert re.search(r"dense\(units=10, init=xavier\).*\b10\b.*7,850", out)
    assert re.search(r"test accuracy when saved: \d+\.\d\d%", out)


def test_info_lists_the_zoo(home):
    r = run("info")
    assert r.exit_code == 0, r.output + r.stderr
    for name, count in [("logistic", "7,850"), ("binary", "785"), ("lab", "20,175"),
                        ("mlp", "235,146")]:
        assert re.search(rf"{name}\s.*{count}", r.stdout), name


def test_info_bad_file_is_a_one_line_error(tmp_path):
    foreign = tmp_path / "foreign.npz"
    foreign.write_text("hello")
    assert_one_line_error(run("info", foreign), "is not a digitlens model file")


@pytest.mark.parametrize("command", ["train", "predict", "info"])
def test_help_is_clear(command):
    r = run(command, "--help")
    assert r.exit_code == 0
    assert "Usage:" in r.stdout
    first_doc_line = {"train": "Train a model", "predict": "Read the digit in IMAGE",
                      "info": "Show a model's layers and parameter counts"}[command]
    assert first_doc_line in r.stdout


# ------------------------------------------------------------- a good model is never lost (#15)
def _cached(home, name="logistic"):
    path = home / "models" / f"{name}.npz"
    return dl.load_model(path, with_meta=True)[1]["test_accuracy"] if path.exists() else None


def test_a_run_at_chance_is_not_saved_over_the_cache(home):
    assert run("train", "--model", "logistic", "--epochs", "2").exit_code == 0
    good = _cached(home)
    r = run("train", "--model", "logistic", "--epochs", "1", "--lr", "1e6")
    assert_one_line_error(r, "training went wrong")
    assert "The cached model was kept" in r.stderr and "Try a smaller --lr" in r.stderr
    assert _cached(home) == good
    assert not (home / "models" / "logistic.previous.npz").exists()


def test_an_interrupted_run_saves_beside_the_cache(home, monkeypatch):
    assert run("train", "--model", "logistic", "--epochs", "2").exit_code == 0
    good = _cached(home)
    original = cli_train.EpochProgress.on_batch_end

    def ctrl_c_in_epoch_2(self, log):
        if log["epoch"] == 2 and log["batch"] == 3:
            raise KeyboardInterrupt
        return original(self, log)

    monkeypatch.setattr(cli_train.EpochProgress, "on_batch_end", ctrl_c_in_epoch_2)
    r = run("train", "--model", "logistic", "--epochs", "3", "--seed", "1")
    assert r.exit_code == 0, r.output
    partial = home / "models" / "logistic.partial.npz"
    assert "is unchanged" in r.stdout and str(partial) in r.stdout.replace("\n", "")
    assert _cached(home) == good
    meta = dl.load_model(partial, with_meta=True)[1]
    assert meta["stop_reason"] == "interrupted" and meta["epochs_completed"] == 1


def test_the_replaced_model_is_kept_and_restore_swaps_it_back(home):
    assert run("train", "--model", "logistic", "--epochs", "1").exit_code == 0
    first = _cached(home)
    r = run("train", "--model", "logistic", "--epochs", "2")
    assert r.exit_code == 0 and "logistic.previous.npz" in r.stdout
    second = _cached(home)
    assert second != first
    r = run("models", "restore", "logistic")
    assert r.exit_code == 0, r.output
    assert _cached(home) == first and f"{first:.1%}" in r.stdout
    assert run("models", "restore", "logistic").exit_code == 0  # and back again
    assert _cached(home) == second


def test_restore_without_an_earlier_model_is_a_one_line_error():
    assert_one_line_error(run("models", "restore", "mlp"), "there is no earlier 'mlp' model")
    assert_one_line_error(run("models", "restore", "resnet"), "unknown model 'resnet'")


def test_out_into_a_missing_folder_is_refused_before_training(tmp_path):
    out = tmp_path / "no" / "such" / "m.npz"
    assert_one_line_error(run("train", "--model", "logistic", "--out", out),
                          "does not exist; create it first")
    assert not out.parent.exists()
