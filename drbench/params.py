"""Hyperparameter values checked against their declared types before any work starts.

A method declares its hyperparameters' types by annotating ``__init__`` (``def __init__(self, k: int = 11,
lr: float = 1e-3, patience: int | None = 200)``); a parameter without an annotation takes the type of its
default, and one with neither (a ``None`` default) is not checked. Every built-in and plugin method gets
the check for free.

:func:`coerce` accepts a value of the declared type and converts only where nothing is lost:

- an integer-valued float where an ``int`` is declared (``3.0``) becomes that int (``3``), the value the
  method computes with, and the one recorded;
- an int where a ``float`` is declared is kept as given (PEP 484's numeric tower: ``2`` and ``2.0``
  compute alike, and the job key of a run made before this check stays what it was);
- a list where a tuple is declared (JSON, hence ``--set``, has no tuples) is kept, its items checked.

Everything else is refused with the declared type named: ``2.5`` or ``true`` for an int, ``"abc"`` for a
number, ``1`` for a bool, a non-finite number, a string outside a ``Literal``. The same rules check
protocol option values (:class:`drbench.protocols.Option`).

A numeric hyperparameter may also declare the values that make sense, with :data:`typing.Annotated` and a
:class:`Range` (``k: Annotated[int, Range(ge=1)]``, or one of the aliases below: ``k: PositiveInt``); a value
outside it is refused the same way, before any work starts, with the range named (``int >= 1``). A string
hyperparameter with a fixed set of values declares them as a ``Literal``.
"""

from __future__ import annotations

import inspect
import math
import numbers
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from drbench.errors import UsageError


class Mismatch(ValueError):
    """A value that is not of its declared type; the message names the type."""


@dataclass(frozen=True)
class Range:
    """The numbers a hyperparameter accepts, declared as ``Annotated[int, Range(ge=1)]``: ``ge``/``le`` are
    inclusive bounds, ``gt``/``lt`` exclusive ones (``None``: unbounded on that side)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def __contains__(self, value) -> bool:
        return not ((self.ge is not None and value < self.ge) or (self.gt is not None and value <= self.gt)
                    or (self.le is not None and value > self.le) or (self.lt is not None and value >= self.lt))

    def __str__(self) -> str:
        return " and ".join(f"{op} {b:g}" for op, b in ((">=", self.ge), (">", self.gt), ("<=", self.le),
                                                        ("<", self.lt)) if b is not None)


#: common declarations: a count (layers, epochs, a rank), a count where 0 means "none" or "off", a learning
#: rate or a scale, a weight or penalty, a fraction, a dropout rate
PositiveInt = Annotated[int, Range(ge=1)]
NonNegativeInt = Annotated[int, Range(ge=0)]
PositiveFloat = Annotated[float, Range(gt=0)]
NonNegativeFloat = Annotated[float, Range(ge=0)]
UnitInterval = Annotated[float, Range(ge=0, le=1)]
DropoutRate = Annotated[float, Range(ge=0, lt=1)]


def check_choice(name: str, value, choices) -> None:
    """Raise :class:`UsageError` unless ``value`` is one of the ``Literal`` type ``choices``: the check a method makes
    at fit time, for callers that construct it directly (the command line checks ``--set`` values before any work)."""
    allowed = typing.get_args(choices)
    if value not in allowed:
        raise UsageError(f"{name} must be one of {allowed}, got {value!r}")


def describe(declared) -> str:
    """The declared type in words: ``int``, ``int or None``, ``one of 'fp32', 'bf16'``, ``tuple of int``."""
    origin, args = typing.get_origin(declared), typing.get_args(declared)
    if declared is type(None):
        return "None"
    if origin is Annotated:
        ranges = [str(m) for m in declared.__metadata__ if isinstance(m, Range)]
        return " ".join([describe(args[0]), *ranges])
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (tuple, list) or declared in (tuple, list):
        name = (origin or declared).__name__
        if args and (origin is list or (len(args) == 2 and args[1] is Ellipsis)):
            return f"{name} of {describe(args[0])}"
        return f"{name} ({', '.join(describe(a) for a in args)})" if args else name
    return getattr(declared, "__name__", str(declared))


def _finite(value) -> bool:
    return math.isfinite(float(value))


def coerce(value, declared):
    """``value`` as ``declared`` under the rules of the module docstring; raises :class:`Mismatch`."""
    if declared is None or declared is typing.Any or declared is object or isinstance(declared, str):
        return value  # nothing declared, or an annotation that did not resolve: not checked
    origin, args = typing.get_origin(declared), typing.get_args(declared)
    if origin is Annotated:
        value = coerce(value, args[0])
        if any(value not in m for m in declared.__metadata__ if isinstance(m, Range)):
            raise Mismatch(f"expects {describe(declared)}")
        return value
    if origin in (typing.Union, types.UnionType):
        for arm in args:
            try:
                return coerce(value, arm)
            except Mismatch:
                pass
    elif declared is type(None):
        if value is None:
            return value
    elif origin is typing.Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
    elif declared is bool:
        if isinstance(value, bool):
            return value
    elif declared is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and _finite(value) and value.is_integer():
            return int(value)
    elif declared is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool) and _finite(value):
            return value
    elif origin in (tuple, list, Sequence) or declared in (tuple, list, Sequence):
        if isinstance(value, (tuple, list)):
            try:
                if origin is list or (len(args) == 2 and args[1] is Ellipsis):
                    return type(value)(coerce(v, args[0]) for v in value)
                if args and len(args) != len(value):
                    raise Mismatch
                return type(value)(coerce(v, a) for v, a in zip(value, args)) if args else value
            except Mismatch:  # name the whole declared type, not the item's
                raise Mismatch(f"expects {describe(declared)}") from None
    elif isinstance(declared, type):
        if isinstance(value, declared):
            return value
    else:
        return value  # a typing construct this module does not check
    raise Mismatch(f"expects {describe(declared)}")


def declared_types(cls) -> dict:
    """Hyperparameter name -> declared type (``None``: not checked) of a method class, from its ``__init__``."""
    try:
        hints = typing.get_type_hints(cls.__init__, include_extras=True)
    except Exception:  # an annotation naming something its module does not import: fall back to the defaults
        hints = {}
    params = inspect.signature(cls.__init__).parameters
    out = {}
    for name in cls._param_names():
        default = params[name].default
        if name in hints:
            out[name] = hints[name]
        elif default is inspect.Parameter.empty or default is None:
            out[name] = None
        else:
            out[name] = type(default)
    return out


def check_params(cls, params: dict) -> dict:
    """``params`` (hyperparameter -> value) checked against ``cls``'s declared types, converted where lossless.

    Raises :class:`UsageError` naming the method, the hyperparameter, its declared type and the value.
    Unknown names are the caller's to report (see :func:`drbench.runner.method_params`)."""
    declared = declared_types(cls)
    out = {}
    for name, value in params.items():
        try:
            out[name] = coerce(value, declared.get(name))
        except Mismatch as e:
            raise UsageError(f"method {cls.name or cls.__name__!r}: hyperparameter {name} {e}, got {value!r}") from None
    return out


__all__ = ["coerce", "check_choice", "check_params", "declared_types", "describe", "Mismatch", "Range", "PositiveInt", "NonNegativeInt",
           "PositiveFloat", "NonNegativeFloat", "UnitInterval", "DropoutRate"]
