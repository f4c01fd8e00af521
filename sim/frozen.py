"""Frozen records: frozen, slotted dataclasses whose methods are shared, not compiled.

``@dataclass(frozen=True, slots=True)`` writes the source of six methods for each class
and compiles it (``exec``): about 1 ms a class on Python 3.11. The scenario model, the
grammar, the policies, the distributions and the figures are some 35 such classes, all
made when ``herdlab validate`` starts: a quarter of its start-up. :func:`frozen` makes
the same dataclass (``dataclasses.fields``, ``replace`` and ``asdict`` work on it, and
type checkers read it as a frozen dataclass) without generating anything:
``__init__``, ``__repr__``, ``__eq__``, ``__hash__``, the frozen
``__setattr__``/``__delattr__`` and the pickling pair are shared functions that read the
class's fields, about 0.05 ms a class.

They behave as the generated ones do: positional or keyword arguments in field order,
defaults and ``default_factory``, ``init=False`` fields, ``__post_init__``; equality and
hash by the ``compare``/``hash`` fields, only between instances of the same class;
``repr`` by the ``repr`` fields; assignment raises ``FrozenInstanceError``;
``inspect.signature`` shows the parameters and ``__dataclass_params__`` reads as
``dataclass(frozen=True)``'s (so a frozen dataclass may subclass one). What the shared
``__init__`` cannot do (``kw_only`` and ``InitVar`` fields) is refused when the class is
made, as is a required field after a defaulted one. Unpickling checks the field count
(a pickle from a class with other fields is refused, not half-loaded). An instance
costs a little more to make (a loop over the fields, not straight-line code), which
suits what they hold: settings, made once per run or per sweep point, never per event.

Used by the classes every command imports (the scenario model, the grammar, the
policies, the distributions, the figures). A class made per request or per run
(``Outcome``, ``PolicyRun``) or imported only by the commands that simulate stays a plain
dataclass: there, construction speed counts and start-up does not.
"""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING, Field, FrozenInstanceError, field
from typing import Any, TypeVar, dataclass_transform

_T = TypeVar("_T")


class _Layout:
    """What the shared methods need to know about one class's fields, worked out once."""

    __slots__ = ("compared", "hashed", "init", "later", "names", "post_init", "shown")

    def __init__(self, cls: type) -> None:
        fields = dataclasses.fields(cls)
        self.names = tuple(f.name for f in fields)
        # (name, default, factory) of the fields __init__ takes, in order
        self.init = tuple((f.name, f.default, f.default_factory) for f in fields if f.init)
        # init=False fields that have a default: set before __post_init__, as dataclasses do
        self.later = tuple(
            (f.name, f.default, f.default_factory)
            for f in fields
            if not f.init and (f.default is not MISSING or f.default_factory is not MISSING)
        )
        defaulted = False  # as dataclass, refuse a required field after a defaulted one
        for name, default, factory in self.init:
            if default is not MISSING or factory is not MISSING:
                defaulted = True
            elif defaulted:
                raise TypeError(f"non-default argument {name!r} follows default argument")
        self.compared = tuple(f.name for f in fields if f.compare)
        self.hashed = tuple(f.name for f in fields if (f.compare if f.hash is None else f.hash))
        self.shown = tuple(f.name for f in fields if f.repr)
        self.post_init = hasattr(cls, "__post_init__")


class _Factory:
    """Shown as a field's default in a signature when it has a ``default_factory``."""

    def __repr__(self) -> str:
        return "<factory>"


class _Signature:
    """``cls.__signature__``, made when first asked for (``inspect.signature``, ``help``,
    Hypothesis's ``builds``): the parameters ``__init__`` takes, as dataclass shows them."""

    def __get__(self, obj: object, cls: type) -> Any:
        import inspect

        layout: _Layout = cls.__frozen_layout__  # type: ignore[attr-defined]
        hints = cls.__annotations__
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        factory = _Factory()
        return inspect.Signature(
            [
                inspect.Parameter(
                    name,
                    kind,
                    default=(
                        factory
                        if fac is not MISSING
                        else (inspect.Parameter.empty if d is MISSING else d)
                    ),
                    annotation=hints.get(name, inspect.Parameter.empty),
                )
                for name, d, fac in layout.init
            ],
            return_annotation=None,
        )


def _layout(obj: object) -> _Layout:
    layout: _Layout = type(obj).__frozen_layout__  # type: ignore[attr-defined]
    return layout


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    layout = _layout(self)
    params = layout.init
    if len(args) > len(params):
        raise TypeError(
            f"{type(self).__qualname__}() takes {len(params)} positional arguments"
            f" but {len(args)} were given"
        )
    set_ = object.__setattr__
    for (name, _, _), value in zip(params, args, strict=False):
        if name in kwargs:
            raise TypeError(f"{type(self).__qualname__}() got multiple values for {name!r}")
        set_(self, name, value)
    for name, default, factory in params[len(args) :]:
        if name in kwargs:
            set_(self, name, kwargs.pop(name))
        elif default is MISSING and factory is MISSING:
            raise TypeError(f"{type(self).__qualname__}() missing required argument {name!r}")
        else:
            set_(self, name, factory() if factory is not MISSING else default)
    for name in kwargs:  # left over: not a field __init__ takes
        raise TypeError(f"{type(self).__qualname__}() got an unexpected keyword argument {name!r}")
    for name, default, factory in layout.later:
        set_(self, name, factory() if factory is not MISSING else default)
    if layout.post_init:
        self.__post_init__()


def _repr(self: Any) -> str:
    shown = ", ".join(f"{n}={getattr(self, n)!r}" for n in _layout(self).shown)
    return f"{type(self).__qualname__}({shown})"


def _eq(self: object, other: object) -> object:  # a bool, or NotImplemented
    if other.__class__ is not self.__class__:
        return NotImplemented
    names = _layout(self).compared
    return tuple(getattr(self, n) for n in names) == tuple(getattr(other, n) for n in names)


def _hash(self: Any) -> int:
    return hash(tuple(getattr(self, n) for n in _layout(self).hashed))


def _setattr(self: Any, name: str, value: object) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")


def _getstate(self: Any) -> list[object]:
    return [getattr(self, n) for n in _layout(self).names]


def _setstate(self: Any, state: list[object]) -> None:
    for name, value in zip(_layout(self).names, state, strict=True):
        object.__setattr__(self, name, value)


_SHARED = {
    "__init__": _init,
    "__repr__": _repr,
    "__eq__": _eq,
    "__hash__": _hash,
    "__getstate__": _getstate,
    "__setstate__": _setstate,
}


@dataclass_transform(frozen_default=True, field_specifiers=(field, Field))
def frozen(cls: type[_T]) -> type[_T]:
    """``cls`` as a frozen, slotted dataclass with shared methods (see the module)."""
    for name in ("__setattr__", "__delattr__"):
        if name in cls.__dict__:  # as dataclass(frozen=True) refuses
            raise TypeError(f"cannot overwrite attribute {name} in class {cls.__name__}")
    made = dataclasses.dataclass(init=False, repr=False, eq=False, slots=True)(cls)
    every: dict[str, Field[Any]] = made.__dataclass_fields__  # type: ignore[attr-defined]
    own = {f.name for f in dataclasses.fields(made)}  # type: ignore[arg-type]
    for f in every.values():  # with the InitVar and ClassVar pseudo-fields
        if f.kw_only is True or (f.name not in own and "InitVar" in str(f.type)):
            raise TypeError(f"{cls.__name__}.{f.name}: frozen takes no kw_only or InitVar fields")
    made.__frozen_layout__ = _Layout(made)  # type: ignore[attr-defined]
    # A class body with __eq__ but no __hash__ holds __hash__ = None, which dataclass
    # does not count as the class's own hash (it still adds one): nor does this.
    written = {n for n, v in cls.__dict__.items() if not (n == "__hash__" and v is None)}
    for name, method in _SHARED.items():
        if name not in written:  # a method the class writes itself wins, as in dataclass
            setattr(made, name, method)
    made.__setattr__ = _setattr  # type: ignore[method-assign]
    made.__delattr__ = _delattr  # type: ignore[method-assign]
    made.__signature__ = _Signature()  # type: ignore[attr-defined]
    # What dataclass(frozen=True) records, for whoever reads it (a dataclass subclass's
    # frozen check, Dask's tokenizer): the methods it has are those dataclass would make.
    params = made.__dataclass_params__  # type: ignore[attr-defined]
    params.init = params.repr = params.eq = params.frozen = True
    return made
