"""The design rules that code review would otherwise have to remember."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import nagref

SRC = Path(nagref.__file__).parent
#: Tools that compare against NumPy-evaluated references; everything else is core.
NUMPY_TOOLS = {"cli.py", "auditing", "conformance", "vectors"}
#: Backend kernels behind the fast-path seam: each may import its own backend only.
FASTPATHS = "fastpaths"


def _core_modules() -> list[Path]:
    outside = {*NUMPY_TOOLS, FASTPATHS}
    return [p for p in SRC.rglob("*.py") if p.relative_to(SRC).parts[0] not in outside]


def _imports(path: Path) -> set[str]:
    """The top-level packages a module imports (absolute imports only)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_never_imports_numpy_or_a_backend_directly() -> None:
    banned = {"numpy", "torch", "jax", "cupy", "dask", "array_api_strict"}
    core = _core_modules()
    assert {p.name for p in core} >= {"rules.py", "_apply.py", "_checks.py", "_tree.py"}
    for path in core:
        assert not _imports(path) & banned, f"{path.name} imports {_imports(path) & banned}"


def test_each_fast_path_imports_only_its_own_backend() -> None:
    banned = {"numpy", "torch", "jax", "cupy", "dask", "array_api_strict"}
    modules = {p.stem: p for p in (SRC / FASTPATHS).glob("*.py")}
    assert {"numpy", "cupy"} <= set(modules)
    for stem, path in modules.items():
        assert _imports(path) & banned <= {stem}, f"{path.name} imports {_imports(path) & banned}"


def test_only_the_seam_module_names_the_fast_paths() -> None:
    importers = {
        p.relative_to(SRC).as_posix()
        for p in _core_modules()
        if "nagref.fastpaths" in p.read_text() or "from .fastpaths" in p.read_text()
    }
    assert importers == {"_fastpath.py"}


def test_only_the_compat_module_imports_array_api_compat() -> None:
    importers = {p.name for p in SRC.rglob("*.py") if "array_api_compat" in _imports(p)}
    assert importers == {"_compat.py"}


def test_public_api() -> None:
    assert sorted(nagref.__all__) == [
        "Array",
        "ArrayTree",
        "AuditReport",
        "Hyperparameter",
        "__version__",
        "audit",
        "convert",
        "formulations",
        "init_velocity",
        "lookahead",
        "momentum",
        "nag",
        "schedules",
        "sgd",
    ]
    assert (SRC / "py.typed").exists()


def test_importing_nagref_loads_neither_numpy_nor_the_tools() -> None:
    probe = (
        "import sys, nagref; "
        "print(sorted(m for m in ('numpy', 'nagref.auditing', 'nagref.vectors', 'nagref.cli') "
        "if m in sys.modules)); "
        "print(nagref.audit.__module__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "[]"  # the audit loads on first use
    assert out[1] == "nagref.auditing.report"
