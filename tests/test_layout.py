"""The design rules that code review would otherwise have to remember."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import nagref
from nagref.conventions import REGISTRY

SRC = Path(nagref.__file__).parent
#: Tools that compare against NumPy-evaluated references; everything else is core.
NUMPY_TOOLS = {
    "cli.py",
    "auditing",
    "record",
    "explaining.py",
    "report",
    "live",
    "vectors",
    "_compare.py",
    "_tables.py",
}
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
    assert {p.name for p in core} >= {"rules.py", "_apply.py", "_checks.py", "_tree.py", "ir.py"}
    for path in core:
        assert not _imports(path) & banned, f"{path.name} imports {_imports(path) & banned}"


def test_each_fast_path_imports_only_its_own_backend() -> None:
    banned = {"numpy", "torch", "jax", "cupy", "dask", "array_api_strict"}
    modules = {p.stem: p for p in (SRC / FASTPATHS).glob("*.py")}
    assert {"numpy", "cupy"} <= set(modules)
    # the torch and JAX kernels hand zero-copy NumPy views to the NumPy kernel (_views)
    through_numpy = {"torch", "jax", "_views"}
    for stem, path in modules.items():
        allowed = {stem} | ({"numpy"} if stem in through_numpy else set())
        assert _imports(path) & banned <= allowed, f"{path.name} imports {_imports(path) & banned}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in SRC.rglob("*.py")}
#: compiled modules, known by their stubs: imported, but they import nothing of nagref's
COMPILED = {_module_name(p) for p in SRC.rglob("*.pyi")} - set(MODULES)


def _nagref_imports(path: Path) -> set[str]:
    """The nagref modules ``path`` imports: at top level, inside functions, and by
    name (a string literal naming a module, as ``importlib.import_module`` takes)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            # a submodule by its name, anything else from the module itself
            known = MODULES.keys() | COMPILED
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            targets = [node.value]
        found |= {t for t in targets if t in MODULES.keys() | COMPILED and t != name}
    return found


def test_no_import_cycle() -> None:
    graph = {name: _nagref_imports(path) for name, path in MODULES.items()}
    graph.update({name: set() for name in COMPILED})
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for other in sorted(graph[name]):
            if state.get(other) == 1:
                cycle = [*path[path.index(other) :], other] if other in path else [name, other]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if other not in state:
                visit(other, [*path, other])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert len(graph) > 40  # the walk saw the whole package


def test_the_engine_imports_go_one_way_and_kernels_read_only_the_ir() -> None:
    ir = _nagref_imports(MODULES["nagref._engine.ir"])
    assert ir == set(), f"the IR is pure data, but imports {ir}"
    cuda = "nagref.fastpaths._cuda_source"
    allowed = {"nagref._engine.ir", "nagref._dtypes", "nagref.fastpaths._cpu", cuda}
    for name in ("nagref.fastpaths.numpy", "nagref.fastpaths.cupy", cuda):
        extra = _nagref_imports(MODULES[name]) - allowed
        assert not extra, f"{name} imports {extra}"
    # nothing in the engine reaches up into the rules, conventions or tools
    for name, path in MODULES.items():
        if name.startswith("nagref._engine"):
            up = {m for m in _nagref_imports(path) if not m.startswith("nagref._")}
            assert not up, f"{name} imports {up}"


def test_no_module_is_over_400_lines() -> None:
    long = {name: n for name, p in MODULES.items() if (n := len(p.read_text().splitlines())) > 400}
    assert not long, long


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
        "conventions",
        "convert",
        "explain",
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
        "print(sorted(m for m in ('numpy', 'nagref.auditing', 'nagref.vectors', 'nagref.cli', "
        "'nagref.conventions', 'nagref.formulations') if m in sys.modules)); "
        "print(nagref.audit.__module__)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "[]"  # the audit loads on first use
    assert out[1] == "nagref.auditing.front"  # one entry for one array and a whole run


def test_public_submodules_load_on_first_attribute_access() -> None:
    probe = (
        "import nagref; "
        "print(nagref.conventions.pytorch.sgd.__module__, nagref.formulations.bengio.__module__, "
        "nagref.convert.state.__module__, nagref.schedules.nesterov.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.split() == [
        "nagref.conventions.pytorch",
        "nagref.formulations",
        "nagref.convert",
        "nagref.schedules",
    ]


#: src modules whose tests live under another name, and where
TESTED_ELSEWHERE = {
    "nagref": "tests/test_layout.py (lazy submodules, the public API)",
    "nagref.__main__": "tests/test_cli.py",
    "nagref._typing": "mypy --strict (types only)",
    "nagref._version": "tests/test_cli.py",
    "nagref.fastpaths.cupy": "tests/fastpaths/test_cuda_source.py (a stand-in cupy)",
    "nagref.report": "tests/report/test_conformance_report.py",
    "nagref.live.drivers": "tests/live/test_worker.py",
    # each live driver (nagref.live.drivers.<convention>): DRIVERS_TESTED_BY
    "nagref.conventions._common": "tests/conventions/test_<convention>.py",
    "nagref.conventions._recipes": "tests/conventions/test_keras.py",
    "nagref.conventions._registry": "tests/conventions/test_registry.py",
    "nagref.conventions": "tests/conventions/test_registry.py",
    "nagref.fastpaths": "tests/fastpaths/test_numpy.py",
    # tests/conventions/test_jax.py is conventions/_jax.py's: one test basename, one module
    "nagref.fastpaths.jax": "tests/fastpaths/test_jax_kernel.py",
}


#: what tests every live driver: the live suite runs each convention's rows on its driver
DRIVERS_TESTED_BY = "conformance/frameworks/test_live.py"


def _declarative(node: ast.stmt) -> bool:
    if isinstance(node, (ast.Expr, ast.Import, ast.ImportFrom)):
        return True
    if isinstance(node, ast.If):  # if TYPE_CHECKING: imports
        return all(map(_declarative, node.body))
    return isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == [
        "__all__"
    ]


def _mirror(name: str) -> Path:
    """``nagref.a._b`` -> tests/a/test_b.py; a package's own code -> tests/<pkg>/test_<pkg>.py."""
    parts = name.split(".")[1:]
    stem = parts[-1].lstrip("_")
    return Path("tests", *parts[:-1], f"test_{stem}.py")


def test_tests_mirror_src_one_to_one() -> None:
    root = SRC.parent.parent
    missing = []
    for name, path in sorted(MODULES.items()):
        if path.name == "__init__.py" and name not in TESTED_ELSEWHERE:
            if all(map(_declarative, ast.parse(path.read_text()).body)):
                continue  # a docstring, imports and __all__: nothing to test
            missing.append(name)
            continue
        if name in TESTED_ELSEWHERE:
            continue
        if name.startswith("nagref.live.drivers."):
            # a convention's driver: its rows of the live suite, against nagref's model
            assert name.rpartition(".")[2] in REGISTRY, name
            assert (root / DRIVERS_TESTED_BY).exists()
            continue
        if not (root / _mirror(name)).exists():
            missing.append(f"{name} -> {_mirror(name)}")
    assert not missing, "modules without a mirrored test module: " + ", ".join(missing)
