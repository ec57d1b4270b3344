"""torch CPU tensors and eager JAX arrays: the generic path ("before") and the kernel ("after").

One 1M-element tensor (``--quick``: 10K), float32 and float64, nag: nagref's
canonical ``nagref.nag`` and the exact PyTorch convention
(``conventions.pytorch.sgd``, after its first step) on the library's own
arrays, new outputs and (torch) ``out=`` the inputs under ``torch.no_grad()``,
each with the fast paths off (``before``: the generic path, one library
operation at a time) and on (``after``: zero-copy views through the C
kernel). The reference is measured in the same rounds: ``torch.optim.SGD``
with ``foreach=True`` (in place) for torch, ``optax.sgd`` +
``optax.apply_updates`` called eagerly (no ``jax.jit``) for JAX.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import nagref
from nagref import fastpaths
from nagref.conventions import pytorch

from .timing import median_seconds

LR, MU = 0.01, 0.9
HEADER = ("library", "reference", "dtype", "call", "reference", "before", "ratio", "after", "ratio")
#: issue 17's targets on these rows: (library, call, the most the "after" ratio may be)
TARGETS = (("torch", "nag in place", 1.0), ("torch", "exact in place", 1.5), ("jax", "nag", 1.0))
#: the generic path's exact convention takes up to a second per step: fewer warm-ups
WARMUP = 1


def _paths(step: Callable[[], Any]) -> dict[str, Callable[[], Any]]:
    def before() -> Any:
        with fastpaths.disabled():
            return step()

    return {"before": before, "after": step}


def _torch(size: int, dtype: str) -> tuple[Callable[[], Any], dict[str, Callable[[], Any]]]:
    import torch  # noqa: PLC0415 - only where the rows run

    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    p, g = (torch.tensor(rng.standard_normal(size).astype(dtype)) for _ in range(2))
    reference = torch.nn.Parameter(p.clone())
    reference.grad = g.clone()
    opt = torch.optim.SGD([reference], lr=LR, momentum=MU, nesterov=True, foreach=True)
    v = torch.full_like(p, 0.5)
    pi, vi = p.clone(), v.clone()

    def in_place(step: Callable[..., Any]) -> Callable[[], Any]:
        def run() -> Any:
            with torch.no_grad():
                return step(pi, g, vi, out=(pi, vi))

        return run

    def nag(p: Any, g: Any, v: Any, out: Any = None) -> Any:
        return nagref.nag(p, g, v, lr=LR, momentum=MU, out=out)

    def exact(p: Any, g: Any, v: Any, out: Any = None) -> Any:
        return pytorch.sgd(p, g, v, lr=LR, momentum=MU, nesterov=True, out=out)

    calls = {
        "nag": lambda: nag(p, g, v),
        "nag in place": in_place(nag),
        "exact": lambda: exact(p, g, v),
        "exact in place": in_place(exact),
    }
    return opt.step, calls


def _jax(size: int, dtype: str) -> tuple[Callable[[], Any], dict[str, Callable[[], Any]]]:
    import jax  # noqa: PLC0415 - only where the rows run
    import jax.numpy as jnp  # noqa: PLC0415
    import optax  # noqa: PLC0415

    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(1)
    p, g = (jnp.asarray(rng.standard_normal(size).astype(dtype)) for _ in range(2))
    v = jnp.full_like(p, 0.5)
    opt = optax.sgd(LR, momentum=MU, nesterov=True)
    state = [opt.init(p)]

    def reference() -> Any:
        updates, state[0] = opt.update(g, state[0], p)
        return jax.block_until_ready(optax.apply_updates(p, updates))

    calls = {
        "nag": lambda: jax.block_until_ready(nagref.nag(p, g, v, lr=LR, momentum=MU)),
        "exact": lambda: jax.block_until_ready(
            pytorch.sgd(p, g, v, lr=LR, momentum=MU, nesterov=True)
        ),
    }
    return reference, calls


def rows(*, quick: bool, repeat: int) -> list[tuple[str, ...]]:
    """The table: one row per library, dtype and call, times and ratios before and after."""
    size = 10_000 if quick else 1_000_000
    table = [HEADER]
    for library, setup, name in (("torch", _torch, "torch foreach"), ("jax", _jax, "optax eager")):
        for dtype in ("float32", "float64"):
            reference, calls = setup(size, dtype)
            for call, step in calls.items():
                steps = {"reference": reference, **_paths(step)}
                m = median_seconds(steps, repeat=repeat, warmup=WARMUP)
                ref = m["reference"]
                table.append(
                    (
                        library,
                        name,
                        dtype,
                        call,
                        f"{ref * 1e3:.2f} ms",
                        f"{m['before'] * 1e3:.2f} ms",
                        f"{m['before'] / ref:.2f}x",
                        f"{m['after'] * 1e3:.2f} ms",
                        f"{m['after'] / ref:.2f}x",
                    )
                )
                print(" | ".join(table[-1]), flush=True)
    return table


def print_targets(table: list[tuple[str, ...]]) -> None:
    """Each target, float32 / float64, against the measured "after" ratio."""
    print("targets (1 tensor, nag; after / reference, float32 / float64):")
    for library, call, limit in TARGETS:
        ratios = [float(r[8][:-1]) for r in table[1:] if r[0] == library and r[3] == call]
        met = "met" if max(ratios) <= limit else "NOT met"
        shown = " / ".join(f"{r:.2f}x" for r in ratios)
        print(f"  {library:6} {call:16} <= {limit:.1f}x: {shown:15} {met}")
