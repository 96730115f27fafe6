"""notebooks/tutorial.ipynb: committed without outputs, and it runs top to bottom in a real
Jupyter kernel (nbclient, the ``python3`` kernel of this environment's ipykernel), failing on any
error; every object it shows renders richly (HTML or a picture)."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "tutorial.ipynb"
nbformat = pytest.importorskip("nbformat")


def test_the_committed_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert len(code) >= 15
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_the_python3_kernel_is_this_environments():
    import sys

    kernelspec = pytest.importorskip("jupyter_client.kernelspec")
    spec = kernelspec.KernelSpecManager().get_kernel_spec("python3")
    # jupyter_client runs the native kernel with the current interpreter (argv[0] "python")
    assert spec.argv[0] in ("python", "python3", sys.executable)


@pytest.mark.slow
def test_the_notebook_runs_top_to_bottom(tmp_path):
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on any error (the notebook asserts its sums)
    kinds = [set(o.get("data", {})) for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert sum("text/html" in k for k in kinds) >= 5   # Sequential, History, Explanation, ...
    assert sum("image/png" in k for k in kinds) >= 4   # the figures
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs)
    assert "by hand" in text and "engine" in text
    assert (tmp_path / "my_report.html").is_file() and (tmp_path / "my_digit.png").is_file()
