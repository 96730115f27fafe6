"""``digitlens mine import/list/export/clear/evaluate`` and ``digitlens finetune`` through typer's
CliRunner, with the user cache in a temporary directory."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from digitlens.cli import app
from digitlens.data.mine import DigitStore


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITLENS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def run(*args, input=None):
    return CliRunner().invoke(app, list(map(str, args)), env={"COLUMNS": "200"}, input=input)


def bundled_folder(path, digits, per_class: int = 2):
    """An image folder of bundled test digits, dark ink on white as a scan would be."""
    for c in range(10):
        (path / str(c)).mkdir(parents=True)
        for k, i in enumerate(np.flatnonzero(digits.y_test == c)[:per_class]):
            u8 = 255 - np.round(digits.x_test[i, 0] * 255).astype(np.uint8)
            Image.fromarray(u8).resize((56, 56)).save(path / str(c) / f"{k}.png")
    return path


def test_import_list_export_clear(tmp_path, digits, home):
    src = bundled_folder(tmp_path / "in", digits)
    r = run("mine", "import", src)
    assert r.exit_code == 0, r.output
    assert "added 20 digits" in r.output
    assert DigitStore(home / "mine.sqlite").counts()["per_label"] == [2] * 10
    r = run("mine", "list")
    assert r.exit_code == 0 and "20 digits" in r.output
    r = run("mine", "export", tmp_path / "out")
    assert r.exit_code == 0 and "wrote 20 digits" in r.output
    assert len(list((tmp_path / "out" / "3").glob("*.png"))) == 2
    assert (tmp_path / "out" / "mine-images-idx3-ubyte").is_file()
    r = run("mine", "clear", "--yes")
    assert r.exit_code == 0 and "deleted 20" in r.output
    assert DigitStore(home / "mine.sqlite").count() == 0


def test_import_error_is_one_line_naming_the_file(tmp_path):
    (tmp_path / "in" / "4").mkdir(parents=True)
    (tmp_path / "in" / "4" / "note.txt").write_text("four")
    r = run("mine", "import", tmp_path / "in")
    assert r.exit_code == 1
    assert "note.txt" in r.stderr and "Traceback" not in r.output + r.stderr


def test_evaluate_and_finetune(tmp_path, digits, trained, home):
    from digitlens._util import paths
    from digitlens.nn.checkpoint import load_model, save_model

    save_model(trained("logistic", epochs=1), paths.model_path("logistic"))
    original = paths.model_path("logistic").read_bytes()
    r = run("mine", "evaluate")
    assert r.exit_code == 1 and "no digits yet" in r.stderr
    assert run("mine", "import", bundled_folder(tmp_path / "in", digits, 3)).exit_code == 0
    r = run("mine", "evaluate", "--model", "logistic")
    assert r.exit_code == 0, r.output
    # the printed accuracy is the engine's own on the stored digits
    x, y, _ = DigitStore().arrays()
    model = load_model(paths.model_path("logistic"))
    acc = float(np.mean(model.predict(x) == y))
    assert f"{acc:.1%}" in r.output and "on MNIST's writers" in r.output
    assert "confusion" in r.output
    r = run("finetune", "--model", "logistic", "--epochs", "1")
    assert r.exit_code == 0, r.output + r.stderr
    assert "held-out" in r.output and "unchanged" in r.output
    assert paths.model_path("logistic").read_bytes() == original
    tuned = paths.models_dir() / "custom" / "logistic_mine.npz"
    assert tuned.is_file()
    # every evaluate now lists the fine-tuned model beside the original
    r = run("mine", "evaluate")
    assert r.exit_code == 0 and "logistic_mine" in r.output
    r = run("mine", "evaluate", "--model", "logistic_mine")  # chosen by its own name
    assert r.exit_code == 0 and "logistic_mine:" in r.output


def test_serve_class_refuses_several_workers():
    r = run("serve", "--class", "--workers", "2", "--no-train", "--port", "8731")
    assert r.exit_code == 1 and "--class runs one server process" in r.stderr


def test_class_banner_names_both_pages(capsys):
    from digitlens.cli.mine import class_banner

    class_banner("http://192.168.1.5:8000/", "s3cret")
    out = capsys.readouterr().out
    assert "http://192.168.1.5:8000/static/class.html" in out
    assert "http://192.168.1.5:8000/static/teacher.html#token=s3cret" in out
