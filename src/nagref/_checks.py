"""Input validation shared by every rule.

Everything is checked before anything is computed, so a call that raises has
done no work and changed nothing. Messages name the argument (with its pytree
path) and the offending value.

Exception types:
    TypeError: not an array; a dtype outside nagref's dtype table (or the
        caller's narrower list); a dtype that differs from the parameters';
        arrays from two libraries; a hyperparameter of the wrong type.
    ValueError: a hyperparameter out of range; a shape or pytree structure
        that differs from the parameters'; arrays on two devices.
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from ._compat import (
    array_namespace,
    cpu_only,
    device,
    is_array_api_obj,
    is_dask_array,
    is_floating,
)
from ._dtypes import COMPLEX, NAMES
from ._tree import Path, path_name
from ._typing import Hyperparameter, Namespace

__all__ = [
    "NAMES_ACCEPTED",
    "check_leaves",
    "check_lr",
    "check_momentum",
    "describe",
    "dtype_name",
    "first_of_each_type",
]


def describe(value: object) -> str:
    """A short, readable rendering of ``value`` for an error message."""
    if is_array_api_obj(value):
        shape = tuple(getattr(value, "shape", ()))
        return f"{_library(value)} array of dtype {dtype_name(value)} and shape {shape}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _library(value: object) -> str:
    module = type(value).__module__.split(".")[0]
    return f"{module}.{type(value).__qualname__}"


def dtype_name(value: object) -> str:
    """``"float32"``, whether the library prints float32, torch.float32 or
    array_api_strict.float32; a NumPy dtype of the other byte order (``'>f4'``)
    is named as its native twin, since it holds the same numbers."""
    dtype: Any = getattr(value, "dtype", "?")
    try:
        # keyed by library first, so that no two libraries' dtypes are compared
        return _dtype_name(type(dtype).__module__, dtype)
    except TypeError:  # an unhashable dtype object
        return str(dtype).rsplit(".", 1)[-1]


@functools.lru_cache(maxsize=64)
def _dtype_name(library: str, dtype: Any) -> str:
    name = str(dtype).rsplit(".", 1)[-1]
    if name not in NAMES and callable(getattr(dtype, "newbyteorder", None)):
        native = str(dtype.newbyteorder("="))
        if native in NAMES:
            return native
    return name


# -- hyperparameters ----------------------------------------------------------


def check_lr(name: str, value: object) -> Hyperparameter:
    """Validate a learning rate: finite and >= 0."""
    return _check_hyper(name, value, "a finite number >= 0", lambda x: 0.0 <= x < math.inf)


def check_momentum(name: str, value: object) -> Hyperparameter:
    """Validate a momentum coefficient: in [0, 1)."""
    return _check_hyper(name, value, "in [0, 1)", lambda x: 0.0 <= x < 1.0)


def _check_hyper(name: str, value: object, wanted: str, ok: Any) -> Hyperparameter:
    """Return a Python float or the 0-d array itself, after checking it.

    A 0-d array whose value cannot be read without tracing or computing
    (a JAX tracer under ``jax.jit``, a Dask array) is accepted unchecked.
    """
    if isinstance(value, bool) or not (isinstance(value, numbers.Real) or is_array_api_obj(value)):
        raise TypeError(
            f"{name} must be a real number or a 0-d real floating array, got {describe(value)}"
        )
    if isinstance(value, numbers.Real) and not _is_array_object(value):
        try:
            number = float(value)
        except OverflowError:  # an int too large for a float
            raise ValueError(f"{name} must be {wanted}, got {describe(value)}") from None
        if not ok(number):
            raise ValueError(f"{name} must be {wanted}, got {number!r}")
        return number
    array: Any = value
    xp = array_namespace(array)
    shape = tuple(array.shape)
    if shape != ():
        raise ValueError(f"{name} must be a 0-d array, got shape {shape}")
    if not is_floating(xp, array.dtype, dtype_name(array)) or dtype_name(array) in COMPLEX:
        raise TypeError(f"{name} must have a real floating dtype, got {describe(array)}")
    read = _read(name, array)
    if read is not None and not ok(read):
        raise ValueError(f"{name} must be {wanted}, got {read!r} ({describe(array)})")
    return cast(Hyperparameter, array)


def _is_array_object(value: object) -> bool:
    # NumPy scalars (np.float32(0.1)) are numbers.Real *and* arrays to
    # array-api-compat; nagref reads them as plain numbers.
    return is_array_api_obj(value) and not type(value).__module__.startswith("numpy")


def _read(name: str, value: object) -> float | None:
    """The value of a 0-d array, or None where reading it would trace or compute.

    An array that holds no value (a ``torch`` tensor on the meta device) is
    refused, naming the argument.
    """
    if is_dask_array(value):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except TypeError:  # a JAX tracer (ConcretizationTypeError is a TypeError)
        return None
    except (RuntimeError, NotImplementedError, ValueError) as error:
        where = getattr(value, "device", "?")
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ValueError(
            f"{name} ({describe(value)} on device {where}) holds no value to compute with: {reason}"
        ) from None


# -- arrays -------------------------------------------------------------------

#: The storage dtypes nagref accepts by default, and who accepts them.
NAMES_ACCEPTED: tuple[tuple[str, ...], str] = (NAMES, "nagref supports")


def check_leaves(
    names: Sequence[str],
    leaves: Sequence[Sequence[object]],
    paths: Sequence[Path],
    dtypes: tuple[tuple[str, ...], str] = NAMES_ACCEPTED,
    fixed: Mapping[str, str] | None = None,
) -> Namespace | None:
    """Check that corresponding leaves are compatible arrays; return their namespace.

    Args:
        names: the argument names, the parameters first (``"param"``, ...).
        leaves: for each argument, its flattened leaves, in the same order.
        paths: the pytree path of each leaf position (rendered, e.g. as
            ``['w'][0]``, only in an error message).
        dtypes: the storage dtypes accepted (by name; by default every row of
            nagref's dtype table, :mod:`nagref._dtypes`), and who accepts them,
            for the message that refuses another (``longdouble``, ``float8``).
        fixed: arguments whose leaves have a dtype of their own (by name), not
            the parameters' (Optax's float32 trace of bfloat16 parameters).

    Returns:
        The array namespace shared by all leaves, or None when there are none.
    """
    # whether an object is an array depends on its type only: ask once per type
    representatives: dict[type, object] = {}
    for name, column in zip(names, leaves, strict=True):
        for index, leaf in first_of_each_type(column, known=representatives.keys()):
            if not is_array_api_obj(leaf):
                raise TypeError(
                    f"{path_name(name, paths[index])} must be an array, got {describe(leaf)}"
                )
            representatives[type(leaf)] = leaf
    if not representatives:
        return None
    xp = _one_namespace(list(representatives.values()), names, leaves, paths)
    reference: Sequence[Any] = leaves[0]
    # each distinct dtype object once, by identity (dtypes need not be hashable);
    # the objects are kept, so that no other object can take a checked one's id
    checked: dict[int, object] = {}
    for index, leaf in enumerate(reference):
        dtype = leaf.dtype
        if id(dtype) in checked:
            continue
        # by name first: a namespace need not know a foreign dtype (ml_dtypes'
        # bfloat16 in a NumPy array), and a known name must be what it says
        accepted, who = dtypes
        if dtype_name(leaf) not in accepted or not is_floating(xp, dtype, dtype_name(leaf)):
            raise TypeError(
                f"{path_name(names[0], paths[index])} has dtype {dtype_name(leaf)}; "
                f"{who} {', '.join(accepted)}"
            )
        checked[id(dtype)] = dtype
    # one comparison per pair, inline (a model has hundreds of leaves);
    # _raise_mismatch names what differs. A NumPy array is always on the CPU.
    devices = not all(map(cpu_only, representatives))
    own = fixed or {}
    for name, column in zip(names[1:], leaves[1:], strict=True):
        if name in own:
            _check_fixed(name, column, paths, own[name])
        for index, (ref, leaf) in enumerate(zip(reference, column, strict=True)):
            other: Any = leaf
            if (
                (name not in own and other.dtype is not ref.dtype and other.dtype != ref.dtype)
                or (other.shape != ref.shape and tuple(other.shape) != tuple(ref.shape))
                or (devices and device(other) != device(ref))
            ):
                _raise_mismatch(
                    path_name(names[0], paths[index]), ref, path_name(name, paths[index]), other
                )
    return xp


def _check_fixed(name: str, column: Sequence[Any], paths: Sequence[Path], dtype: str) -> None:
    """Every leaf of argument ``name`` has dtype ``dtype`` (a dtype of its own)."""
    for index, leaf in enumerate(column):
        if dtype_name(leaf) != dtype:
            raise TypeError(
                f"{path_name(name, paths[index])} has dtype {dtype_name(leaf)} but must be "
                f"{dtype} here; nagref never casts: convert explicitly (xp.astype) if that is "
                "what you mean"
            )


def first_of_each_type(column: Sequence[Any], known: Iterable[type] = ()) -> list[tuple[int, Any]]:
    """``(index, leaf)`` of the first leaf of each type in ``column``, except ``known`` types.

    A property that depends on the type alone is then asked once per type, not
    once per leaf (a model has hundreds of leaves, mostly of one type).
    """
    kinds = set(map(type, column)) - set(known)
    return [next((i, x) for i, x in enumerate(column) if type(x) is kind) for kind in kinds]


def _one_namespace(
    flat: Sequence[object],
    names: Sequence[str],
    leaves: Sequence[Sequence[object]],
    paths: Sequence[Path],
) -> Namespace:
    """The namespace of ``flat`` (all leaves); on failure, name the first offending pair."""
    try:
        return array_namespace(*flat)
    except TypeError:
        pass
    first_name, first = path_name(names[0], paths[0]), leaves[0][0]
    for name, column in zip(names, leaves, strict=True):
        for path, leaf in zip(paths, column, strict=True):
            try:
                array_namespace(first, leaf)
            except TypeError:
                raise TypeError(
                    f"{first_name} and {path_name(name, path)} come from different array "
                    f"libraries: {_library(first)} and {_library(leaf)}"
                ) from None
    raise TypeError(f"{names} hold arrays that array_api_compat cannot combine")


def _raise_mismatch(ref_name: str, ref: Any, name: str, leaf: Any) -> None:
    """Raise the error for the first of dtype, shape and device that differs."""
    if leaf.dtype != ref.dtype:
        mine, theirs = dtype_name(leaf), dtype_name(ref)
        if mine == theirs:  # the same numbers in two byte orders
            mine, theirs = str(leaf.dtype), str(ref.dtype)
        raise TypeError(
            f"{name} has dtype {mine} but {ref_name} has dtype {theirs}; nagref never "
            "casts between them: convert explicitly (xp.astype) if that is what you mean"
        )
    if leaf.shape != ref.shape and tuple(leaf.shape) != tuple(ref.shape):
        raise ValueError(
            f"{name} has shape {tuple(leaf.shape)} but {ref_name} has shape {tuple(ref.shape)}"
        )
    leaf_device, ref_device = device(leaf), device(ref)
    if leaf_device != ref_device:
        raise ValueError(
            f"{name} is on device {leaf_device} but {ref_name} is on device {ref_device}"
        )
