"""CUDA C source for a recipe: the body of a CuPy elementwise kernel.

Separate from :mod:`nagref.fastpaths.cupy` so that the generated source can
be built and checked on a machine without a GPU (the tests compile it as C
with the intrinsics below defined by their IEEE meaning).

Every operation is a CUDA round-to-nearest intrinsic (``__fmul_rn``,
``__fadd_rn``, ``__fsub_rn``, ``__fmaf_rn`` and their double forms), which
the compiler never contracts or reorders, so the kernel rounds exactly as
the recipe says. Flushing (FTZ/DAZ models) is written out explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .._dtypes import TABLE, smallest_normal
from .._engine.ir import Segment

__all__ = ["PREAMBLE", "TYPES", "kernel_body"]

#: storage dtype -> (C type, intrinsic suffix, smallest normal), from the dtype table
TYPES = {
    d.name: (t, t[0], f"{smallest_normal(d.name)!r}" + ("f" if t == "float" else ""))
    for d in TABLE.values()
    if (t := d.cuda_type) is not None
}


def _intrinsic(op: str, suffix: str) -> str:
    if op == "fma":
        return "__fmaf_rn" if suffix == "f" else "__fma_rn"
    return f"__{suffix}{op}_rn"


def kernel_body(
    segments: Sequence[Segment],
    storage: str,
    inputs: Sequence[str],
    constants: Sequence[Mapping[str, str]],
    outputs: Sequence[str],
) -> str | None:
    """The kernel's statements, or None where a recipe needs another model.

    Inputs are named ``in_<register>``, each segment's constants
    ``c<segment>_<name>`` (``constants[k]`` maps a register to that name),
    the bounds ``start<k>`` and ``stop<k>``, and the outputs ``out<j>``; the
    element index is ``i``.
    """
    if storage not in TYPES:
        return None
    ctype, suffix, tiny = TYPES[storage]
    lines = []
    for k, segment in enumerate(segments):
        rounding = segment.rounding
        if rounding.compute.get(storage, storage) != storage:
            return None
        if rounding.result.get(storage, storage) != storage:
            return None
        flush = storage in rounding.flush

        def f(x: str, flush: bool = flush) -> str:
            return f"nagref_flush({x}, ({ctype}){tiny})" if flush else x

        names = {name: f(f"in_{name}") for name in inputs}
        written = set()
        names.update({name: f(const) for name, const in constants[k].items()})
        body = []
        for n, s in enumerate(segment.recipe):
            if s.op == "div" or not set(s.args) <= set(names):
                return None
            a = [names[x] for x in s.args]
            if s.op == "copy":
                expr = a[0]
            elif s.op == "neg":
                expr = f"-({a[0]})"
            elif s.op in ("mul", "add", "sub"):
                expr = f"{_intrinsic(s.op, suffix)}({a[0]}, {a[1]})"
            elif rounding.contract:  # muladd, one rounding
                expr = f"{_intrinsic('fma', suffix)}({a[0]}, {a[1]}, {a[2]})"
            else:  # muladd, two roundings
                product = f(f"{_intrinsic('mul', suffix)}({a[0]}, {a[1]})")
                expr = f"{_intrinsic('add', suffix)}({product}, {a[2]})"
            body.append(f"{ctype} r{n} = {f(expr)};")
            names[s.out] = f"r{n}"
            written.add(s.out)
        if any(name not in names for name in outputs):
            return None
        # an output the recipe never writes is its input, unflushed
        stores = [
            f"out{j} = {names[name] if name in written else 'in_' + name};"
            for j, name in enumerate(outputs)
        ]
        lines.append(f"if (i >= start{k} && i < stop{k}) {{")
        lines += [f"    {line}" for line in body + stores]
        lines.append("}")
    return "\n".join(lines)


#: Defined before the body: a flush to signed zero of subnormal values.
PREAMBLE = """
template <typename T> __device__ __forceinline__ T nagref_flush(T x, T tiny) {
    return (x < tiny && x > -tiny) ? copysign((T)0, x) : x;
}
"""
