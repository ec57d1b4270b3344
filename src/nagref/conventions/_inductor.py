r"""``torch.compile(optimizer.step)`` on the CPU: the program inductor's C++ computes.

Measured against torch 2.13.0 (inductor's C++ backend, the default on CPU):
dynamo traces ``torch.optim.SGD.step`` (its single-tensor or foreach body)
into one graph, and inductor fuses the whole update of each parameter into
one loop, compiled with ``-ffp-contract=off``. So, unlike eager torch:

* nothing is fused: every product and sum rounds on its own (eager's
  ``add_(x, alpha=a)`` is one FMA);
* float16 and bfloat16 are loaded into float32, every operation computes
  and keeps its result in float32, and the parameter and the buffer are
  rounded to the 16-bit format once, when stored (Nesterov's direction and
  the update read this step's float32 buffer);
* the hyperparameters are literals of the generated source: each is
  rounded once, from the Python float to the compute dtype (float32 for
  float16, bfloat16 and float32; float64 for float64), never through the
  16-bit format;
* there is no SIMD tail: the vectorised loop and its remainder round alike,
  whatever the threads and the CPU capability.

With ``fused=True`` nothing is compiled: torch wraps ``_fused_sgd`` in
``torch.compiler.disable`` ("don't trace into fused optimizer"), so dynamo
breaks the graph there and the fused kernel runs as it does eagerly
(measured: 0 differing elements of 2.75 million, float32 and float64, 0-d
to 70,001 elements on 2 threads, AVX-512 and ``default`` kernels; the
``fused-compiled`` variant).

One exception, refused for torch 2.13 (:func:`check_compiled_leaves`): the
single-tensor step on a 0-d float64 parameter (torch 2.14.1 updates it as
modelled). The model gave 0 differing elements of 12 million (four
dtypes, ten configurations of momentum, Nesterov, dampening, weight decay
and maximize, first and later steps, 1 and 2 threads,
``ATEN_CPU_CAPABILITY=default`` too), where the eager model differs in
about a third of them. torch
specialises on the learning rate (a float): each new value is a new
compilation, and after ``torch._dynamo.config.recompile_limit`` (8) dynamo
runs the step eagerly, which these bits would then not describe.
"""

from __future__ import annotations

from collections.abc import Mapping

from .._checks import dtype_name
from .._engine.ir import COMPUTE, Hyper, Program, Recipe, Rounding
from .._tree import flatten, path_name
from ._aten import runs_here
from ._common import IN_OPMATH, REAL_FLOATS
from ._registry import Capabilities, Variant

__all__ = ["INDUCTOR", "check_compiled_leaves", "compiled", "variants"]

#: inductor's C++: nothing contracted, 16-bit formats computed and kept in float32
INDUCTOR = Rounding(contract=False, compute=IN_OPMATH, result=IN_OPMATH)


def compiled(
    recipe: Recipe,
    *,
    inputs: tuple[str, ...],
    outputs: tuple[str | None, ...],
    hypers: Mapping[str, Hyper],
) -> Program:
    """``recipe`` as inductor computes it: :data:`INDUCTOR`, each hyperparameter a literal
    rounded once to the compute dtype, no split."""
    literals = {name: Hyper(h.value, (COMPUTE,)) for name, h in hypers.items()}
    return Program(recipe, INDUCTOR, inputs, outputs, literals)


def check_compiled_leaves(param: object, foreach: bool | None, version: str) -> None:
    """Refuse what torch 2.13's compiled step does not compute as this model does.

    The single-tensor step compiled on a 0-d float64 parameter leaves the
    parameter unchanged (measured: ``SGD([p], lr=0.01, momentum=0.9)``, p =
    0.5, gives 0.5 after two compiled steps where eager gives 0.4913;
    float32, float16, bfloat16 and the foreach path update it as modelled).
    torch 2.14.1 updates it as modelled (0 of 72 0-d steps differ, four
    dtypes, with and without momentum and Nesterov; 2.13: the 18 float64 ones).
    """
    if foreach or version != "2.13":
        return
    for path, leaf in flatten(param)[0]:
        shape = getattr(leaf, "shape", None)
        if shape is not None and len(shape) == 0 and dtype_name(leaf) == "float64":
            raise NotImplementedError(
                f"{path_name('param', path)}: compiled=True on a 0-d float64 parameter is not "
                "modelled: torch 2.13's compiled single-tensor step leaves it unchanged "
                "(foreach=True, a 1-element tensor, or version='2.14', is modelled)"
            )


def variants(paths: Mapping[str, Mapping[str, object]]) -> tuple[Variant, ...]:
    """``compiled``, ``foreach-compiled`` and ``fused-compiled``: ``paths`` compiled.

    The first two run on any x86-64 CPU (no SIMD tail: no kernels to pick),
    with a constant learning rate (torch specialises on it), on tensors of
    at least one dimension (see :func:`check_compiled_leaves`); ``fused-compiled`` is
    the eager ``fused`` variant's kernel (AVX-512's, float32 and float64),
    compiled around. Compiling every case, they are not rows of the live
    table (``conformance/frameworks/test_torch_compile.py`` runs them).
    """
    constant_lr = Capabilities(
        dampening=True, weight_decay=True, maximize=True, changing_lr=False, scalars=False
    )
    return (
        *(
            Variant(
                name,
                {**paths[path], "compiled": True},
                REAL_FLOATS,
                runs_here("default"),
                cost=20,
                table=False,
                capabilities=constant_lr,
            )
            for name, path in (("compiled", "single-tensor"), ("foreach-compiled", "foreach"))
        ),
        Variant(
            "fused-compiled",
            {**paths["fused"], "compiled": True, "threads": 1, "cpu_capability": "avx512"},
            ("float32", "float64"),
            runs_here("avx512"),
            cost=20,
            table=False,
        ),
    )
