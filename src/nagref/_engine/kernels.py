"""The kernel registry: the one seam through which a backend may run a program faster.

The generic interpreter (:mod:`nagref._engine.interpret`) evaluates a
recipe one array-API operation at a time, each result a new array. A
*kernel* evaluates the same recipe in a backend's own terms (a compiled
loop over cache-sized blocks, a GPU elementwise kernel) and must produce the
same bits. The executor reaches a kernel through :func:`kernel_for` and
nowhere else; the tests run each kernel against the generic path bit for
bit.

A kernel receives a :class:`~nagref._engine.ir.Batch`: every leaf of one
dtype and device in a call, as columns of input registers, with the
recipe's segments and their constants, the output register names and, per
output, the caller's arrays (or None for new arrays). It returns, per leaf,
the outputs, or None to decline that leaf (an unsupported dtype, layout or
rounding model), which the generic path then runs.

Kernels register themselves (:func:`register`) with a :class:`Registration`:
a name, a predicate on the array namespace's module name, and a loader that
imports the kernel (it may raise ImportError: not built here, no GPU).
:mod:`nagref.fastpaths` registers nagref's own. :func:`kernel_for` and
:func:`available` read that one list.

``NAGREF_FASTPATH=0`` in the environment (read when this module loads), or
the :func:`disabled` context, turns every kernel off, so that the generic
path runs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

from .._typing import Namespace
from .ir import Batch

__all__ = ["Kernel", "Registration", "available", "disabled", "kernel_for", "register"]


class Kernel(Protocol):
    """A backend's evaluator of programs (see the module docstring)."""

    def __call__(self, batch: Batch) -> Sequence[tuple[Any, ...] | None]: ...


@dataclass(frozen=True)
class Registration:
    """A kernel: its name, which namespaces it takes (by module name), how to load it."""

    name: str
    accepts: Callable[[str], bool]
    load: Callable[[], Kernel]


_REGISTRY: list[Registration] = []
_loaded: dict[str, Kernel | None] = {}  # namespace module name -> its kernel
_enabled: ContextVar[bool] = ContextVar("nagref_fastpath", default=True)
_ENVIRONMENT_ON = os.environ.get("NAGREF_FASTPATH", "1") != "0"


def register(registration: Registration) -> None:
    """Add a kernel (a later registration of the same name replaces it)."""
    _REGISTRY[:] = [r for r in _REGISTRY if r.name != registration.name]
    _REGISTRY.append(registration)
    _loaded.clear()


def kernel_for(xp: Namespace) -> Kernel | None:
    """The kernel registered for ``xp``, or None (none, or fast paths off)."""
    if not (_ENVIRONMENT_ON and _enabled.get()):
        return None
    name = getattr(xp, "__name__", "")
    if name not in _loaded:
        kernel: Kernel | None = None
        for registration in _REGISTRY:
            if registration.accepts(name):
                try:
                    kernel = registration.load()
                except ImportError:  # the compiled module was not built, or no GPU
                    continue
                break
        _loaded[name] = kernel
    return _loaded[name]


def available() -> dict[str, str | None]:
    """Each registered kernel, mapped to None if it loads here or to why it does not."""
    status: dict[str, str | None] = {}
    for registration in _REGISTRY:
        try:
            registration.load()
        except ImportError as error:
            status[registration.name] = str(error)
        else:
            status[registration.name] = None
    return status


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Within this context (in this thread or task), only the generic path runs."""
    token = _enabled.set(False)
    try:
        yield
    finally:
        _enabled.reset(token)
