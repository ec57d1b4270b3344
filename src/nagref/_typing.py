"""Static types for nagref.

The array API standard ships no type annotations yet (array-api-typing is a
placeholder), so nagref defines the smallest structural protocol its code
relies on. NumPy ``ndarray``, ``torch.Tensor``, ``jax.Array``, CuPy,
Dask and array-api-strict arrays all satisfy it at runtime; the runtime
check that an object *is* an array is ``array_api_compat.is_array_api_obj``,
never ``isinstance(x, Array)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any, Protocol, TypeVar, Union

__all__ = ["Array", "ArrayTree", "Hyperparameter", "Namespace", "TreeT"]


class Array(Protocol):
    """An array of any library that implements the Python array API standard.

    Only the attributes and operators that nagref uses are declared. Results
    of operators are typed ``Any`` because every array library declares its
    own return types; nagref returns arrays of the caller's library.
    """

    @property
    def shape(self) -> tuple[int | None, ...]: ...

    @property
    def dtype(self) -> Any: ...

    def __add__(self, other: Any, /) -> Any: ...

    def __sub__(self, other: Any, /) -> Any: ...

    def __mul__(self, other: Any, /) -> Any: ...

    def __rmul__(self, other: Any, /) -> Any: ...


#: An array, or a nested ``dict`` / ``list`` / ``tuple`` of arrays (a pytree).
ArrayTree = Union[Array, Mapping[Any, "ArrayTree"], Sequence["ArrayTree"]]

#: A pytree type variable: a rule returns the structure it was given.
TreeT = TypeVar("TreeT", bound=ArrayTree)

#: A hyperparameter: a Python real number, or a 0-d real floating array of the
#: parameters' library (for example a schedule value traced under ``jax.jit``).
Hyperparameter = Union[float, Array]

#: An array namespace, as returned by ``array_api_compat.array_namespace``.
Namespace = ModuleType
