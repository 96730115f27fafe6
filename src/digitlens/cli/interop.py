"""``digitlens export`` and ``digitlens import-torch``: a model leaves for ONNX or PyTorch, or a
PyTorch network's weights come in to be looked inside."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app
from ._common import UserError, console, friendly_errors, resolve_model

FORMATS = ("onnx", "torch")


@app.command()
@friendly_errors
def export(
    model: str = typer.Argument(..., help="A model file or a trained zoo name (logistic, lab, "
                                "mlp, cnn, ...)."),
    format: str = typer.Option(..., "--format", "-f", help="onnx (a graph any ONNX tool runs) "
                               "or torch (a PyTorch state_dict plus the code defining the "
                               "network)."),
    out: Path = typer.Option(..., "--out", "-o", help="The file to write (model.onnx, or "
                             "model.pt; torch also writes model.py beside it)."),
    check: bool = typer.Option(True, "--check/--no-check", help="onnx: run the file in ONNX "
                               "Runtime on 100 bundled test digits and report how far its "
                               "numbers are from digitlens's."),
):
    """Write MODEL as ONNX or as PyTorch weights and code, to run it outside digitlens."""
    if format not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {format!r}")
    m, _ = resolve_model(model)
    if format == "onnx":
        from ..interop.onnx import save_onnx

        save_onnx(m, out)
        console.print(f"wrote {out}: the {m.name} network as an ONNX graph (checked by "
                      "onnx.checker); input 'image' (N, 1, 28, 28), outputs 'logits' and "
                      "'probabilities'", highlight=False)
        if check:
            _report_onnxruntime(m, out)
        return
    from ..interop.torch import save_torch

    weights, code = save_torch(m, out)
    console.print(f"wrote {weights} (the weights, a PyTorch state_dict) and {code} (the "
                  f"network in PyTorch). In Python: import the file {code.name} and call its "
                  "load()", highlight=False)


def _report_onnxruntime(m, out: Path) -> None:
    try:
        from ..interop.onnx import onnxruntime_difference
        import onnxruntime  # noqa: F401
    except ImportError:
        console.print("(onnxruntime is not installed, so the file was not run; "
                      "pip install 'digitlens[export]')", highlight=False)
        return
    from ..data import load_digits

    d = onnxruntime_difference(m, out, load_digits().x_test[:100])
    console.print(f"ONNX Runtime on {d['n']} bundled test digits: logits differ from "
                  f"digitlens's by at most {d['logits']:.1e}, probabilities by at most "
                  f"{d['probabilities']:.1e}", highlight=False)


@app.command("import-torch")
@friendly_errors
def import_torch(
    file: Path = typer.Argument(..., help="A PyTorch weights file: torch.save(net.state_dict(), "
                                "FILE) of an nn.Sequential of the zoo's layer types."),
    arch: str = typer.Option(..., "--arch", "-a", help="The network's architecture: a zoo name "
                             "(logistic, lab, mlp, cnn_tiny, cnn, ...) or a digitlens model "
                             "file with the same layers."),
    out: Path = typer.Option(None, "--out", "-o", help="Where to save the digitlens model "
                             "(default: FILE with the suffix .npz)."),
):
    """Read a network trained in PyTorch (weights only, never a pickle) into a digitlens model
    file, to look inside it with `digitlens explain` or the page."""
    from ..data import load_digits
    from ..interop.torch import load_torch
    from ..nn.checkpoint import save_model
    from ..training.fit import evaluate

    shape = resolve_model(arch)[0] if Path(arch).suffix == ".npz" else arch
    m = load_torch(file, shape)
    out = out if out is not None else file.with_suffix(".npz")
    if out.resolve() == file.resolve():
        raise UserError("--out must differ from the weights file")
    d = load_digits()
    _, acc = evaluate(m, d.x_test, d.y_test) if m.classes == tuple(range(10)) else (None, None)
    save_model(m, out, meta={"imported_from": file.name, "arch": m.name})
    console.print(f"wrote {out}: {m.name} with the weights of {file.name} "
                  f"({m.n_params:,} numbers)", highlight=False)
    if acc is not None:
        console.print(f"it reads {acc:.1%} of the 1,000 bundled test digits correctly",
                      highlight=False)
    console.print(f"look inside: digitlens explain --model {out} --sample 3", highlight=False)
