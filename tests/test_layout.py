"""The design rules that code review would otherwise have to remember."""

from __future__ import annotations

import ast
from pathlib import Path

import nagref

SRC = Path(nagref.__file__).parent
#: Tools that compare against NumPy-evaluated references; everything else is core.
NUMPY_TOOLS = {"cli.py", "auditing", "conformance", "vectors"}


def _core_modules() -> list[Path]:
    return [p for p in SRC.rglob("*.py") if p.relative_to(SRC).parts[0] not in NUMPY_TOOLS]


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
