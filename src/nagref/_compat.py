"""The single place where nagref touches ``array_api_compat``.

Everything else imports these names from here, so that the dependency (and
any future vendoring of it) has one seam.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, NamedTuple

from array_api_compat import (
    array_namespace,
    is_array_api_obj,
    is_dask_array,
    is_jax_array,
    is_lazy_array,
    is_torch_array,
    to_device,
)
from array_api_compat import device as _device

from ._dtypes import TABLE, numpy_dtype

_NDARRAY = ("numpy", "ndarray")


def cpu_only(kind: type) -> bool:
    """Whether every array of type ``kind`` is on the CPU (``numpy.ndarray``)."""
    return (kind.__module__, kind.__name__) == _NDARRAY


def device(x: Any) -> Any:
    """``array_api_compat.device``; a NumPy array's device ("cpu") is known at once.

    The shortcut matters when a model has hundreds of tensors: the general
    lookup asks each array library in turn.
    """
    if cpu_only(type(x)):
        return "cpu"
    return _device(x)


def named_dtype(xp: Any, name: str) -> Any:
    """The dtype object of namespace ``xp`` named ``name``.

    NumPy has no bfloat16: its arrays hold ``ml_dtypes.bfloat16`` (the
    table's ``library``), which JAX uses too.
    """
    dtype = getattr(xp, name, None)
    if dtype is not None:
        return dtype
    row = TABLE.get(name)
    if row is not None and row.library is not None:
        return numpy_dtype(name)
    raise AttributeError(f"{getattr(xp, '__name__', xp)} has no dtype {name}")


def is_floating(xp: Any, dtype: Any, name: str) -> bool:
    """Whether ``dtype`` (named ``name``) is a real or complex floating dtype.

    ``xp.isdtype`` answers for the dtypes a namespace knows; NumPy's refuses
    a dtype another library registered (``ml_dtypes.bfloat16``, in NumPy and
    Dask arrays), which is floating where it is the table's row of that name
    from the library the table names.
    """
    row = TABLE.get(name)
    if row is not None and row.library is not None:
        scalar = getattr(dtype, "type", None)
        if str(getattr(scalar, "__module__", "")).split(".")[0] == row.library:
            return True
    try:
        return bool(xp.isdtype(dtype, ("real floating", "complex floating")))
    except (TypeError, ValueError):
        return False


def ieee_arithmetic() -> contextlib.AbstractContextManager[object]:
    """A context in which NumPy computes IEEE results whatever the caller's error state.

    Under ``np.errstate(all="raise")`` NumPy raises on overflow (and
    array-api-strict, which computes with NumPy, with it), where IEEE
    arithmetic gives inf: nagref's results must not depend on the caller's
    error state, and a call must not stop half-way through its leaves. Other
    libraries have no such state. NumPy is not imported here: where it is not
    loaded, no array of it is in play.
    """
    numpy = sys.modules.get("numpy")
    if numpy is None:
        return contextlib.nullcontext()
    errstate: contextlib.AbstractContextManager[object] = numpy.errstate(all="ignore")
    return errstate


def write_refusal(x: Any) -> str | None:
    """Why ``x``'s library would refuse an in-place write into it, where it says so
    only at write time, or None.

    ``torch`` refuses, when the write happens: an inference tensor outside
    ``torch.inference_mode``, and, while autograd records (outside
    ``torch.no_grad``), a leaf that requires grad or a view of one. Asking
    first lets a call that would fail there fail before writing anything.
    """
    if not is_torch_array(x):
        return None
    torch = sys.modules["torch"]
    if x.is_inference() and not torch.is_inference_mode_enabled():
        return (
            "is an inference tensor (made under torch.inference_mode), which torch "
            "writes in place only inside inference mode"
        )
    if x.requires_grad and torch.is_grad_enabled():
        base = getattr(x, "_base", None)
        if x.is_leaf or (base is not None and base.is_leaf):
            what = "a leaf" if x.is_leaf else "a view of a leaf"
            return (
                f"is {what} that requires grad, which torch writes in place only under "
                "torch.no_grad()"
            )
    return None


class Extent(NamedTuple):
    """The memory an array views: bytes ``[lo, hi)`` of address ``space``.

    ``exact`` (start address, shape, byte strides, dtype) is equal for two
    views of the very same elements in the same order.
    """

    space: str
    lo: int
    hi: int
    exact: tuple[object, ...]


_EXTENT_ERRORS = (AttributeError, TypeError, ValueError, KeyError, IndexError, RuntimeError)


def extent(x: Any) -> Extent | None:
    """The bytes that array ``x`` views, or None where that is not known.

    Duck-typed: ``torch`` tensors (``data_ptr``, ``stride``, ``element_size``),
    NumPy arrays (``__array_interface__``), CuPy and other CUDA arrays
    (``__cuda_array_interface__``). The interval runs from the lowest to the
    highest element's byte, plus one item: two views whose intervals
    intersect may share memory. It is conservative for strided views that
    interleave without touching (``a[0::2]`` and ``a[1::2]`` intersect).
    An empty array, a null pointer, or an object with none of these gives
    None: the caller compares such objects by identity.
    """
    try:
        data_ptr = getattr(x, "data_ptr", None)
        if callable(data_ptr) and hasattr(x, "element_size"):  # torch
            itemsize = int(x.element_size())
            shape = tuple(int(n) for n in x.shape)
            strides = tuple(int(s) * itemsize for s in x.stride())
            ptr, space, dtype = int(data_ptr()), str(x.device.type), str(x.dtype)
        else:
            info, space = getattr(x, "__array_interface__", None), "cpu"
            if not isinstance(info, dict):
                info, space = getattr(x, "__cuda_array_interface__", None), "cuda"
            if not isinstance(info, dict):
                return None
            dtype = str(info["typestr"])
            itemsize = int(dtype[2:])
            shape = tuple(int(n) for n in info["shape"])
            given = info.get("strides")
            if given is None:  # C-contiguous
                step, backwards = itemsize, []
                for n in reversed(shape):
                    backwards.append(step)
                    step *= max(n, 1)
                strides = tuple(reversed(backwards))
            else:
                strides = tuple(int(s) for s in given)
            ptr = int(info["data"][0])
    except _EXTENT_ERRORS:
        return None
    if ptr == 0 or itemsize <= 0 or 0 in shape or len(strides) != len(shape):
        return None
    lo = hi = ptr
    for n, s in zip(shape, strides, strict=True):
        if s < 0:
            lo += (n - 1) * s
        else:
            hi += (n - 1) * s
    # an axis of one element has no stride that matters
    same = tuple(0 if n == 1 else s for n, s in zip(shape, strides, strict=True))
    return Extent(space, lo, hi + itemsize, (ptr, shape, same, dtype))


__all__ = [
    "Extent",
    "array_namespace",
    "cpu_only",
    "device",
    "extent",
    "ieee_arithmetic",
    "is_array_api_obj",
    "is_dask_array",
    "is_floating",
    "is_jax_array",
    "is_lazy_array",
    "named_dtype",
    "to_device",
    "write_refusal",
]
