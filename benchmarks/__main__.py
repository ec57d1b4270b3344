"""``python -m benchmarks``: nagref against torch.optim.SGD and Optax, single thread.

For each workload (one 10M-element tensor; a model of 200 tensors holding 4M
elements), rule (sgd, momentum, nag) and dtype (float32, float64) it times
one step of:

* ``torch.optim.SGD`` with ``fused=True`` and with ``foreach=True``;
* ``optax.sgd`` + ``optax.apply_updates`` under ``jax.jit``;
* nagref's canonical rule (``nagref.sgd`` / ``momentum`` / ``nag``) on NumPy;
* nagref's PyTorch convention (``nagref.conventions.pytorch.sgd``, exact FMA).

Each time is the median of repeated rounds in this one process, every round
running each contender once, in turn; the ratios are nagref over torch
foreach. "extra" is the peak memory a nagref step allocates,
over the parameters' size.

Then (:mod:`benchmarks.frameworks`; ``--frameworks`` alone, ``--no-frameworks``
without) nag on torch CPU tensors and eager JAX arrays of 1M elements, on the
generic path and through the kernel, over torch foreach and eager Optax.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# single thread everywhere, set before the frameworks import
os.environ.setdefault(
    "XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
)
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np

import nagref
from nagref import fastpaths
from nagref.conventions import pytorch

from . import frameworks
from .timing import median_seconds, peak_extra_bytes

LR, MU = 0.01, 0.9
RULES = ("sgd", "momentum", "nag")


@dataclass(frozen=True)
class Workload:
    name: str
    sizes: tuple[int, ...]  # one entry per tensor


def _workloads(quick: bool) -> list[Workload]:
    scale = 100 if quick else 1
    one, each = 10_000_000 // scale, 20_000 // scale
    return [
        Workload(f"1 tensor, {_count(one)}", (one,)),
        Workload(f"200 tensors, {_count(200 * each)}", (each,) * 200),
    ]


def _count(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 else f"{n // 1000}K"


def _arrays(sizes: tuple[int, ...], dtype: str, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(n).astype(dtype) for n in sizes]


def _torch_step(
    params: list[np.ndarray], grads: list[np.ndarray], rule: str, mode: str
) -> Callable[[], Any]:
    import torch

    torch.set_num_threads(1)
    tensors = [torch.tensor(p) for p in params]
    for t, g in zip(tensors, grads, strict=True):
        t.grad = torch.tensor(g)
    momentum = 0.0 if rule == "sgd" else MU
    opt = torch.optim.SGD(tensors, lr=LR, momentum=momentum, nesterov=rule == "nag", **{mode: True})
    return opt.step


def _optax_step(params: list[np.ndarray], grads: list[np.ndarray], rule: str) -> Callable[[], Any]:
    import jax
    import jax.numpy as jnp
    import optax

    jax.config.update("jax_enable_x64", True)
    opt = optax.sgd(LR, momentum=None if rule == "sgd" else MU, nesterov=rule == "nag")
    p = [jnp.asarray(x) for x in params]
    g = [jnp.asarray(x) for x in grads]
    state = [opt.init(p)]

    @jax.jit
    def update(p: Any, g: Any, s: Any) -> Any:
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s

    def step() -> None:
        nonlocal p
        p, state[0] = update(p, g, state[0])
        jax.block_until_ready(p)

    return step


def _trees(params: list[np.ndarray], grads: list[np.ndarray]) -> tuple[Any, Any, Any]:
    """Copies of the parameters, the gradients and a velocity, as nagref pytrees."""
    if len(params) == 1:
        return params[0].copy(), grads[0], np.full_like(params[0], 0.5)
    tree = {f"t{i}": x.copy() for i, x in enumerate(params)}
    velocity = {name: np.full_like(x, 0.5) for name, x in tree.items()}
    return tree, {f"t{i}": x for i, x in enumerate(grads)}, velocity


def _nagref_step(
    params: list[np.ndarray], grads: list[np.ndarray], rule: str, *, in_place: bool
) -> Callable[[], Any]:
    """The canonical rule: new arrays, or ``out=`` the inputs (an in-place step)."""
    tree, gtree, velocity = _trees(params, grads)
    if rule == "sgd":
        return lambda: nagref.sgd(tree, gtree, lr=LR, out=tree if in_place else None)
    fn = nagref.nag if rule == "nag" else nagref.momentum
    out = (tree, velocity) if in_place else None
    return lambda: fn(tree, gtree, velocity, lr=LR, momentum=MU, out=out)


def _exact_step(
    params: list[np.ndarray], grads: list[np.ndarray], rule: str, *, in_place: bool
) -> Callable[[], Any]:
    """The PyTorch convention (exact FMA), after its first step."""
    tree, gtree, buffer = _trees(params, grads)
    momentum = 0.0 if rule == "sgd" else MU
    out = (tree, None if rule == "sgd" else buffer) if in_place else None
    return lambda: pytorch.sgd(
        tree,
        gtree,
        None if rule == "sgd" else buffer,
        lr=LR,
        momentum=momentum,
        nesterov=rule == "nag",
        out=out,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="sizes divided by 100")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per measurement")
    parser.add_argument("--no-exact", action="store_true", help="skip the PyTorch convention")
    parser.add_argument(
        "--generic", action="store_true", help="time nagref's generic path (fast paths off)"
    )
    parser.add_argument(
        "--frameworks",
        action="store_true",
        help="only torch tensors and JAX arrays, generic path and kernel (frameworks.py)",
    )
    parser.add_argument("--no-frameworks", action="store_true", help="skip those rows")
    args = parser.parse_args(argv)
    if not args.frameworks:
        with fastpaths.disabled() if args.generic else contextlib.nullcontext():
            _run(args)
    if not args.no_frameworks:
        print()
        table = frameworks.rows(quick=args.quick, repeat=args.repeat)
        print()
        _print_table(table)
        print()
        frameworks.print_targets(table)
    return 0


def _run(args: argparse.Namespace) -> int:
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, NumPy {np.__version__}, single thread, "
        f"fast paths {'off' if args.generic else 'on'}"
    )
    header = (
        "workload",
        "rule",
        "dtype",
        "torch fused",
        "torch foreach",
        "optax jit",
        "nagref",
        "ratio",
        "in place",
        "ratio",
        "exact",
        "ratio",
        "exact in place",
        "ratio",
        "extra",
        "extra in place",
    )
    rows: list[tuple[str, ...]] = [header]
    measured: dict[tuple[str, str, str], dict[str, float]] = {}
    for workload in _workloads(args.quick):
        for dtype in ("float32", "float64"):
            params = _arrays(workload.sizes, dtype, 1)
            grads = _arrays(workload.sizes, dtype, 2)
            for rule in RULES:
                m = _measure(params, grads, rule, repeat=args.repeat, exact=not args.no_exact)
                measured[workload.name, rule, dtype] = m
                cells = [workload.name, rule, dtype]
                cells += [f"{m[name] * 1e3:.1f} ms" for name in ("fused", "foreach", "optax")]
                for name in ("nagref", "in place", "exact", "exact in place"):
                    if name in m:
                        cells += [f"{m[name] * 1e3:.1f} ms", f"{m[name] / m['foreach']:.2f}x"]
                    else:
                        cells += ["-", "-"]
                cells += [f"{m['extra']:.2f}x", f"{m['extra in place']:.2f}x"]
                rows.append(tuple(cells))
                print(" | ".join(rows[-1]), flush=True)
    print()
    _print_table(rows)
    print()
    print(
        "ratio: nagref over torch foreach (lower is faster); in place: out= the inputs; "
        "exact: the PyTorch convention; extra: peak memory a nagref step allocates, over "
        "the parameters' size"
    )
    print()
    _print_targets(measured, [w.name for w in _workloads(args.quick)])
    return 0


def _measure(
    params: list[np.ndarray], grads: list[np.ndarray], rule: str, *, repeat: int, exact: bool
) -> dict[str, float]:
    """Every contender's median seconds, and nagref's peak extra memory (a ratio)."""
    steps = {
        "fused": _torch_step(params, grads, rule, "fused"),
        "foreach": _torch_step(params, grads, rule, "foreach"),
        "optax": _optax_step(params, grads, rule),
        "nagref": _nagref_step(params, grads, rule, in_place=False),
        "in place": _nagref_step(params, grads, rule, in_place=True),
    }
    if exact:
        steps["exact"] = _exact_step(params, grads, rule, in_place=False)
        steps["exact in place"] = _exact_step(params, grads, rule, in_place=True)
    measured = median_seconds(steps, repeat=repeat)
    del steps
    size = sum(p.nbytes for p in params)
    for name, in_place in (("extra", False), ("extra in place", True)):
        step = _nagref_step(params, grads, rule, in_place=in_place)
        measured[name] = peak_extra_bytes(step) / size
    return measured


def _print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if i == 0:
            print("-" * (sum(widths) + 2 * (len(widths) - 1)))


def _print_targets(
    measured: dict[tuple[str, str, str], dict[str, float]], names: list[str]
) -> None:
    """The issue-6 targets for nag, each in float32 and float64, against what was measured."""
    one, model = names
    targets = [
        ("canonical nag, in place", one, "in place", 1.0),
        ("PyTorch convention (exact), in place", one, "exact in place", 1.5),
        ("PyTorch convention (exact), in place", model, "exact in place", 1.5),
        ("200-tensor model (pytree), in place", model, "in place", 1.0),
    ]
    print("targets (nag; ratio to torch foreach, float32 / float64):")
    for label, workload, name, limit in targets:
        runs = [measured[workload, "nag", dtype] for dtype in ("float32", "float64")]
        if name not in runs[0]:
            continue
        ratios = [m[name] / m["foreach"] for m in runs]
        met = "met" if max(ratios) <= limit else "NOT met"
        shown = " / ".join(f"{r:.2f}x" for r in ratios)
        print(f"  {label:38} {workload:16} <= {limit:.1f}x: {shown:15} {met}")
    extra = max(m["extra in place"] for m in measured.values())
    met = "met" if extra <= 1.0 else "NOT met"
    print(
        f"  {'peak extra memory, in place':38} {'every row':16} <= 1.0x: {extra:.2f}x{'':10} {met}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
