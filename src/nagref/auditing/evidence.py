"""Why a recorded tensor tells no candidates apart: what its values give the audit to go on.

Candidates part only where their arithmetic does: where one rounds twice and
another once (an FMA, a cast), at a rounding tie, a subnormal, an infinity
or a NaN, or a signed zero; and, for PyTorch, where an element falls in a
SIMD body or a scalar tail. A tensor that every candidate reproduces bit
for bit met none of those. :func:`uninformative` says which of the usual
reasons hold, from the recorded values alone, so that the report can say
"tells none apart: all its gradients are zero" instead of leaving a reader
to guess whether the audit looked.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["SMALL", "Steps", "uninformative"]


class Steps(Protocol):
    """A recording's arrays by step (read when indexed)."""

    def __getitem__(self, t: int, /) -> Any: ...


#: Fewer elements than this fit in one SIMD register of every kernel the
#: conventions model (16 float32 lanes at most): the body and tail split,
#: and most element-to-element variety, cannot show.
SMALL = 16


def uninformative(size: int, grads: Steps, steps: int) -> list[str]:
    """The reasons, in order of weight, that a tensor of ``size`` elements with these
    ``steps`` gradients gives the candidates nothing to part on; ``[]`` where none holds
    (it was just not enough: more steps or another run may tell)."""
    zero = True
    special = False
    for t in range(steps):
        g: npt.NDArray[np.floating[Any]] = np.asarray(grads[t])
        if g.dtype.kind != "f":  # bfloat16 (ml_dtypes): exact in float32, whose normal
            g = g.astype(np.float32)  # range it shares
        if np.any(g != 0):
            zero = False
        finite = np.isfinite(g)
        if not finite.all() or np.any(np.signbit(g[g == 0])) or _subnormal(g[finite]):
            special = True
        if not zero and special:
            break
    reasons = []
    if zero:
        reasons.append("all its gradients are zero")
    if size < SMALL:
        reasons.append(f"only {size} element" + ("s" if size != 1 else ""))
    if not zero and not special:
        reasons.append("no infinity, NaN, subnormal or negative zero among its gradients")
    return reasons


def _subnormal(values: npt.NDArray[np.floating[Any]]) -> bool:
    tiny = float(np.finfo(values.dtype).smallest_normal) if values.size else 0.0
    magnitude = np.abs(values)
    return bool(np.any((magnitude > 0) & (magnitude < tiny)))
