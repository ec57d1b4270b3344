"""The convention registry's record: everything nagref's tools need to know of a convention.

Each convention module ends with one :class:`Convention` record,
``CONVENTION``; :mod:`nagref.conventions` finds the modules and collects
the records into :data:`nagref.conventions.REGISTRY`. The vectors catalogue,
the audit's candidates, the live suite (cases, dispatch, table, recordings),
:mod:`nagref.convert`, the hypothesis strategies, the fast-path tests and
every case count iterate that registry, so adding a convention touches its
module, its live driver, its recordings, its tests and its docs section,
and nothing else.

A tool steps a convention through :meth:`Convention.step` with framework-
neutral :class:`Hypers`; the record's ``keywords`` turns those into the
framework's own keyword arguments, and a :class:`Variant`'s ``options``
select the variant (``foreach=True``, ``backend="jax"``, ``jit=True``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .. import _dtypes

__all__ = [
    "REAL_FLOATS",
    "Capabilities",
    "Convention",
    "Extra",
    "Hypers",
    "Setting",
    "Variant",
    "always",
    "no_settings",
    "same_dtype",
]

#: The dtypes a convention accepts by default: the frameworks' real floating types on CPU.
REAL_FLOATS: tuple[str, ...] = tuple(d.name for d in _dtypes.TABLE.values() if d.conventions)


def always(dtype: str) -> bool:
    """A variant that the live framework runs on every machine, in every dtype."""
    return True


def same_dtype(options: Mapping[str, object], dtype: str) -> str:
    """A state kept in the parameters' dtype, whatever the variant."""
    return dtype


#: A setting the audit tries beyond a variant's options: a label (", 2 threads") and
#: the keyword arguments it adds to every step.
Setting = tuple[str, Mapping[str, object]]


def no_settings(
    extras: Sequence[Extra], variant: Variant, shape: tuple[int, ...], dtype: str
) -> tuple[Setting, ...]:
    """A convention whose bits depend on nothing beyond its variants' options."""
    return ()


@dataclass(frozen=True)
class Capabilities:
    """What a convention (and its live driver) can express beyond lr, momentum and nesterov."""

    dampening: bool = False
    weight_decay: bool = False
    maximize: bool = False
    #: the live driver can change the learning rate between steps
    changing_lr: bool = True
    #: momentum=None means no state at all (Optax)
    momentum_none: bool = False
    #: the live driver's framework steps 0-d tensors as the convention models them
    scalars: bool = True


@dataclass(frozen=True)
class Variant:
    """One way a framework runs the update (a code path, a backend, a compiler).

    ``options`` are the convention function's keyword arguments that select
    it (recorded with every test vector); ``dtypes`` those it models;
    ``live(dtype)`` whether the live framework on this machine runs this
    variant in that dtype (a variant that models another CPU does not);
    ``cost`` how many ordinary live cases one of its cases costs (a variant
    that compiles at every step), by which the live suite divides its cases;
    ``table``: whether the live table (``nagref conformance``, the live
    suite's rows) runs it, or only a suite of its own (a variant that
    compiles every case: ``torch.compile``); ``capabilities``: what its live
    driver expresses, where that is less than its convention's (None: the
    convention's).
    """

    name: str
    options: Mapping[str, object] = field(default_factory=dict)
    dtypes: tuple[str, ...] = REAL_FLOATS
    live: Callable[[str], bool] = always
    cost: int = 1
    table: bool = True
    capabilities: Capabilities | None = None


@dataclass(frozen=True)
class Extra:
    """Keyword arguments beyond a variant's options that change the bits: a case of the vectors.

    ``name`` names the case kind; ``keywords`` are added to every step's
    arguments, on parameters of ``shape``; a variant whose options include
    all of ``unless`` does not take them (torch's fused kernel refuses a
    strided grad).
    """

    name: str
    keywords: Mapping[str, object]
    shape: tuple[int, ...]
    unless: Mapping[str, object] = field(default_factory=dict)

    def applies(self, variant: Variant) -> bool:
        """Whether ``variant`` takes these keywords."""
        return not self.unless or any(variant.options.get(k) != v for k, v in self.unless.items())


@dataclass(frozen=True)
class Hypers:
    """One step's hyperparameters, in no framework's names (see ``Convention.keywords``)."""

    lr: float
    momentum: float | None = 0.0
    nesterov: bool = False
    dampening: float = 0.0
    #: None: not given (a framework may tell it from 0.0: Keras decays by 0)
    weight_decay: float | None = None
    maximize: bool = False


@dataclass(frozen=True)
class Convention:
    """A framework's update, and how every tool reaches it.

    Attributes:
        name: the registry key, e.g. ``"pytorch"``.
        function: the convention's function, e.g. ``nagref.conventions.pytorch.sgd``.
        roles: the function's three positional parameters, in order, as
            ``"param"``, ``"grad"`` and ``"state"``.
        state: the state's name in the framework, e.g. ``"momentum_buffer"``.
        first_state: what the state is before the first step: ``"none"``
            (PyTorch's missing buffer) or ``"zeros"``.
        stores: what the state holds, for :mod:`nagref.convert`: ``"b"``, an
            lr-free sum of gradients (b = −v/lr in Sutskever's v), or ``"v"``,
            Sutskever's velocity, lr inside. The parameters are Θ (the
            look-ahead point) under Nesterov and θ otherwise.
        keywords: one step's :class:`Hypers` as the function's keyword arguments.
        variants: the variants, in listing order.
        capabilities: what it expresses beyond lr, momentum and nesterov.
        requirement: what ``pip install`` needs to run the live framework.
        process_per_variant: the live framework needs a process per variant
            (Keras picks its backend at import).
        state_dtype: the dtype of the state, given a variant's options and
            the parameters' dtype (Optax's ``accumulator_dtype``); by default
            the parameters'.
        extras: keyword arguments beyond the variants' options that change
            the bits (PyTorch's tensor layouts), each a case of the vectors.
        settings: what the audit tries beyond a variant, given the extras,
            the variant and a run's shape and dtype: the settings that change
            that run's bits (PyTorch's thread counts and layouts), each a
            label and keywords (see :meth:`settings_for`).
    """

    name: str
    function: Callable[..., tuple[Any, Any]]
    roles: tuple[str, str, str]
    state: str
    first_state: Literal["none", "zeros"]
    stores: Literal["b", "v"]
    keywords: Callable[[Hypers], dict[str, object]]
    variants: tuple[Variant, ...]
    capabilities: Capabilities
    requirement: str
    process_per_variant: bool = False
    state_dtype: Callable[[Mapping[str, object], str], str] = same_dtype
    extras: tuple[Extra, ...] = ()
    settings: Callable[[Sequence[Extra], Variant, tuple[int, ...], str], Sequence[Setting]] = (
        no_settings
    )

    @property
    def driver(self) -> str:
        """The module of its live driver: ``nagref.live.drivers.<name>``, by its name."""
        return f"{__package__.rpartition('.')[0]}.live.drivers.{self.name}"

    @property
    def qualname(self) -> str:
        """The function's importable name, e.g. ``nagref.conventions.pytorch.sgd``."""
        return f"{self.function.__module__}.{self.function.__name__}"

    def can(self, variant: Variant) -> Capabilities:
        """What ``variant``'s live driver expresses: its own capabilities, or the convention's."""
        return variant.capabilities or self.capabilities

    def settings_for(self, variant: Variant, shape: tuple[int, ...], dtype: str) -> list[Setting]:
        """The settings that change ``variant``'s bits on a run of ``shape`` and ``dtype``."""
        return list(self.settings(self.extras, variant, shape, dtype))

    def names(self) -> dict[str, str]:
        """Each :class:`Hypers` field's keyword in the function, where it has one.

        Found by stepping ``keywords`` with values that tell the fields apart
        (``{"lr": "step_size", "momentum": "mass", "nesterov": "nesterov"}``):
        what the audit reads a vector's hyperparameters by.
        """
        probes = (
            Hypers(0.125, 0.375, True, 0.625, 0.875, False),
            Hypers(0.25, 0.5, False, 0.75, 0.0625, True),
        )
        first, second = (self.keywords(h) for h in probes)
        found: dict[str, str] = {}
        for key in first.keys() & second.keys():
            for name in ("lr", "momentum", "nesterov", "dampening", "weight_decay", "maximize"):
                if (first[key], second[key]) == tuple(getattr(h, name) for h in probes):
                    found.setdefault(name, key)
        return found

    def variant(self, name: str) -> Variant:
        """The variant called ``name``; a ValueError names the variants there are."""
        for variant in self.variants:
            if variant.name == name:
                return variant
        names = ", ".join(v.name for v in self.variants)
        raise ValueError(f"{self.name} has no variant {name!r}; its variants are {names}")

    def call(self, param: Any, grad: Any, state: Any, **keywords: object) -> tuple[Any, Any]:
        """The function on (param, grad, state) in its own argument order; ``(param, state)``."""
        by_role = {"param": param, "grad": grad, "state": state}
        return self.function(*(by_role[role] for role in self.roles), **keywords)

    def arguments(
        self, hypers: Hypers, variant: Variant, extra: Mapping[str, object] | None = None
    ) -> dict[str, object]:
        """The keyword arguments of one step: its hyperparameters, the variant's options."""
        return {**self.keywords(hypers), **variant.options, **(extra or {})}

    def step(
        self,
        param: Any,
        grad: Any,
        state: Any,
        hypers: Hypers,
        *,
        variant: Variant,
        extra: Mapping[str, object] | None = None,
    ) -> tuple[Any, Any]:
        """One step of ``variant``: ``(param, state)``."""
        return self.call(param, grad, state, **self.arguments(hypers, variant, extra))
