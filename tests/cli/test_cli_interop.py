"""``digitlens export`` and ``digitlens import-torch``: files written, numbers reported, errors in
one line."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from digitlens.cli import app
from digitlens.nn import build_model
from digitlens.nn.checkpoint import load_model, save_model

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")


@pytest.fixture()
def model_file(tmp_path):
    m = build_model("lab", np.random.default_rng(0))
    for k, v in m.params().items():
        if k.endswith(".b"):
            v[...] = 0.1
    return m, save_model(m, tmp_path / "lab.npz")


def test_export_onnx_reports_onnxruntimes_agreement(model_file, tmp_path):
    from digitlens.data import load_digits
    from digitlens.interop.onnx import onnxruntime_difference

    m, path = model_file
    out = tmp_path / "out" / "lab.onnx"
    r = CliRunner().invoke(app, ["export", str(path), "--format", "onnx", "--out", str(out)])
    assert r.exit_code == 0, r.output
    text = " ".join(r.output.split())
    assert f"wrote {out}" in text and "checked by onnx.checker" in text
    d = onnxruntime_difference(m, out, load_digits().x_test[:100])
    assert (f"ONNX Runtime on 100 bundled test digits: logits differ from digitlens's by at most "
            f"{d['logits']:.1e}, probabilities by at most {d['probabilities']:.1e}") in text


def test_export_torch_then_import_torch_is_exact(model_file, tmp_path):
    from digitlens.data import load_digits
    from digitlens.training.fit import evaluate

    m, path = model_file
    runner = CliRunner()
    r = runner.invoke(app, ["export", str(path), "--format", "torch", "--out",
                            str(tmp_path / "net.pt")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "net.pt").is_file() and (tmp_path / "net.py").is_file()
    r = runner.invoke(app, ["import-torch", str(tmp_path / "net.pt"), "--arch", "lab"])
    assert r.exit_code == 0, r.output
    back = load_model(tmp_path / "net.npz")
    assert all(np.array_equal(back.params()[k], v) for k, v in m.params().items())
    d = load_digits()
    _, acc = evaluate(m, d.x_test, d.y_test)
    assert f"it reads {acc:.1%} of the 1,000 bundled test digits" in " ".join(r.output.split())
    # the architecture may also be given as a digitlens model file
    r = runner.invoke(app, ["import-torch", str(tmp_path / "net.pt"), "--arch", str(path),
                            "--out", str(tmp_path / "again.npz")])
    assert r.exit_code == 0, r.output
    assert np.array_equal(load_model(tmp_path / "again.npz").params()["5.W"], m.params()["5.W"])


def test_errors_are_one_line(model_file, tmp_path):
    _, path = model_file
    runner = CliRunner()
    r = runner.invoke(app, ["export", str(path), "--format", "keras", "--out", "x.h5"])
    assert r.exit_code == 1 and "--format must be one of onnx, torch" in r.output
    torch.save(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)),
               tmp_path / "whole.pt")
    r = runner.invoke(app, ["import-torch", str(tmp_path / "whole.pt"), "--arch", "logistic"])
    assert r.exit_code == 1
    assert "error:" in r.output and "weights only" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "whole.npz").exists()
