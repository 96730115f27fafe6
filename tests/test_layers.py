"""The package's layers hold (DESIGN.md): import-linter's contract passes on the tree and fails on
a deliberately added upward import, and importing a low layer loads nothing above it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed")


def lint(cwd: Path, src: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, capture_output=True, text=True,
                          env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"}, timeout=300)


def test_the_layers_contract_holds():
    r = lint(ROOT, ROOT / "src")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 kept, 0 broken" in r.stdout


@pytest.mark.parametrize("low, high", [
    ("nn/functional.py", "digitlens.training.fit"),       # the engine must not know training
    ("data/bundled.py", "digitlens.preprocessing"),        # data sits below pre-processing
    ("explain/trace.py", "digitlens.view.figures"),        # results never import their views
    ("_util/jsonsafe.py", "digitlens.errors"),             # the two leaves are independent
])
def test_an_upward_import_breaks_the_contract(tmp_path, low, high):
    shutil.copytree(ROOT / "src", tmp_path / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    module = tmp_path / "src" / "digitlens" / low
    module.write_text(module.read_text() + f"\n\nimport {high}  # an upward import\n")
    r = lint(tmp_path, tmp_path / "src")
    importer = "digitlens." + low.removesuffix(".py").replace("/", ".")
    assert r.returncode != 0
    assert f"{importer} -> {high}" in r.stdout, r.stdout


def _loaded_after(statement: str) -> list[str]:
    code = (f"import sys; {statement}; import json; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('digitlens', 'scipy', 'numpy', 'matplotlib', 'fastapi', 'PIL'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    return json.loads(out)


def test_import_digitlens_is_cheap():
    assert _loaded_after("import digitlens") == ["digitlens"]


def test_the_engine_loads_without_the_layers_above_it():
    loaded = _loaded_after("import digitlens.nn.functional")
    ours = [m for m in loaded if m.startswith("digitlens")]
    assert all(m == "digitlens" or m.startswith(("digitlens.nn", "digitlens._util",
                                                 "digitlens.errors")) for m in ours), ours
    assert not any(m.startswith(("scipy", "matplotlib", "fastapi", "PIL")) for m in loaded)


def test_public_names_resolve_lazily_and_the_preprocessing_module_is_importable():
    import importlib

    import digitlens as dl

    for name in dl.__all__:
        assert getattr(dl, name) is not None, name
    assert callable(dl.preprocess)
    module = importlib.import_module("digitlens.preprocessing")
    assert module.preprocess is dl.preprocess
    with pytest.raises(AttributeError):
        dl.no_such_name  # noqa: B018
