"""A frozen record behaves as the frozen, slotted dataclass it replaces: checked side by
side with ``dataclass(frozen=True, slots=True)`` of the same class body."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from dataclasses import FrozenInstanceError, InitVar, dataclass, field
from pathlib import Path

import pytest

from sim.frozen import frozen
from sim.scenario import load_scenario

SCENARIOS = sorted((Path(__file__).resolve().parent.parent / "scenarios").glob("*.yaml"))


def _body() -> dict[str, object]:
    """A class body with every kind of field the model uses."""

    def __post_init__(self: object) -> None:
        object.__setattr__(self, "derived", self.a * 2)  # type: ignore[attr-defined]

    return {
        "__annotations__": {
            "a": "int",
            "b": "float",
            "tags": "tuple[str, ...]",
            "items": "list[int]",
            "hidden": "int",
            "derived": "int",
            "fixed": "str",
        },
        "b": 2.5,
        "tags": (),
        "items": field(default_factory=list, hash=False),
        "hidden": field(default=7, compare=False, repr=False),
        "derived": field(init=False, default=0),
        "fixed": field(init=False, default="x", hash=False),
        "__post_init__": __post_init__,
        "__doc__": "A record.",
        "__module__": __name__,
    }


# module-level names their own, as pickle finds a class by its module and name
Generated = dataclass(frozen=True, slots=True)(type("Generated", (), _body()))
Shared = frozen(type("Shared", (), _body()))
BOTH = pytest.mark.parametrize("cls", [Generated, Shared], ids=["dataclass", "frozen"])


def _made(cls: type, *args: object, **kwargs: object) -> object:
    return cls(*args, **kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((1,), {}), ((1, 3.0), {}), ((), {"a": 1, "tags": ("t",)}), ((4, 1.0, ("u",), [9], 3), {})],
)
def test_construction_fields_repr_equality_and_hash_match_the_dataclass(
    args: tuple[object, ...], kwargs: dict[str, object]
) -> None:
    g, s = _made(Generated, *args, **kwargs), _made(Shared, *args, **kwargs)
    names = [f.name for f in dataclasses.fields(Generated)]
    assert [f.name for f in dataclasses.fields(Shared)] == names
    assert [getattr(s, n) for n in names] == [getattr(g, n) for n in names]
    assert repr(s).removeprefix("Shared") == repr(g).removeprefix("Generated")
    assert hash(s) == hash(g)
    assert s == _made(Shared, *args, **kwargs)
    assert Shared.__match_args__ == Generated.__match_args__  # type: ignore[attr-defined]
    assert dataclasses.asdict(s) == dataclasses.asdict(g)  # type: ignore[call-overload]


def test_equality_and_hash_use_only_the_compared_fields_and_only_one_class() -> None:
    a, b = Shared(1, hidden=1), Shared(1, hidden=2)
    assert a == b and hash(a) == hash(b)  # hidden: compare=False
    assert Shared(1) != Shared(2)
    assert Shared(1) != Generated(1)  # different classes are never equal
    assert Shared(1).__eq__(object()) is NotImplemented


def test_a_default_factory_gives_each_instance_its_own_value() -> None:
    assert Shared(1).items is not Shared(1).items  # type: ignore[attr-defined]


@BOTH
def test_it_is_frozen_and_has_no_instance_dict(cls: type) -> None:
    r = cls(1)
    with pytest.raises(FrozenInstanceError):
        r.a = 2
    with pytest.raises(FrozenInstanceError):
        del r.a
    assert not hasattr(r, "__dict__")


@BOTH
@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((), {}, "'a'"),
        ((1, 2.0, (), [], 3, 4), {}, "positional"),
        ((1,), {"a": 2}, "multiple values"),
        ((1,), {"nope": 2}, "unexpected keyword argument 'nope'"),
        ((1,), {"derived": 2}, "unexpected keyword argument 'derived'"),
    ],
)
def test_bad_arguments_raise_a_type_error_as_the_dataclass_does(
    cls: type, args: tuple[object, ...], kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        cls(*args, **kwargs)


@BOTH
def test_replace_pickle_and_deepcopy_give_an_equal_record(cls: type) -> None:
    r = cls(3, 1.5, ("x",), [1, 2])
    assert dataclasses.replace(r, b=9.0) == cls(3, 9.0, ("x",), [1, 2])
    assert dataclasses.replace(r, a=5).derived == 10  # __post_init__ runs again
    for other in (pickle.loads(pickle.dumps(r)), copy.deepcopy(r), copy.copy(r)):
        assert other == r and repr(other) == repr(r)


def test_a_class_writing_its_own_setattr_is_refused_as_by_dataclass() -> None:
    body = {"__annotations__": {"a": "int"}, "__setattr__": lambda self, n, v: None}
    with pytest.raises(TypeError, match="__setattr__"):
        frozen(type("Bad", (), body))


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_shipped_scenario_survives_pickling_and_replace(path: Path) -> None:
    """Workers and Dask receive scenarios pickled; sweeps make them with replace."""
    scenario = load_scenario(path)
    again = pickle.loads(pickle.dumps(scenario))
    assert again == scenario  # (not repr: a frozenset's order may change on the way)
    assert dataclasses.replace(scenario, seed=scenario.seed + 1).seed == scenario.seed + 1
    policy = scenario.policies[0]
    assert dataclasses.replace(policy) == policy
    assert hash(pickle.loads(pickle.dumps(policy))) == hash(policy)


def test_the_signature_and_dataclass_params_read_as_the_dataclass_s() -> None:
    """What inspect, help() and Hypothesis's builds() read; what a subclass's checks read."""
    import inspect

    assert str(inspect.signature(Shared)) == str(inspect.signature(Generated))
    for flag in ("init", "repr", "eq", "order", "unsafe_hash", "frozen"):
        assert getattr(Shared.__dataclass_params__, flag) == getattr(
            Generated.__dataclass_params__, flag
        )


def test_a_frozen_dataclass_may_subclass_a_frozen_record() -> None:
    Base = frozen(type("Base", (), {"__annotations__": {"a": "int", "b": "int"}, "b": 2}))
    Sub = dataclass(frozen=True)(type("Sub", (Base,), {"__annotations__": {"c": "int"}, "c": 0}))
    s = Sub(1, c=3)
    assert (s.a, s.b, s.c) == (1, 2, 3) and s == Sub(1, c=3)
    with pytest.raises(FrozenInstanceError):
        s.c = 4


def test_a_class_writing_only_eq_keeps_a_hash_as_with_dataclass() -> None:
    body = {"__annotations__": {"a": "int"}, "__eq__": lambda self, other: True}
    body["__hash__"] = None  # what a class body defining __eq__ alone holds
    assert hash(frozen(type("EqOnly", (), dict(body)))(1)) == hash((1,))
    assert hash(dataclass(frozen=True)(type("EqOnly", (), dict(body)))(1)) == hash((1,))


@pytest.mark.parametrize(
    ("annotations", "values", "message"),
    [
        ({"a": "int", "b": "int"}, {"a": 1}, "non-default argument 'b' follows default argument"),
        ({"a": "int"}, {"a": field(kw_only=True)}, "kw_only"),
        ({"a": InitVar[int]}, {}, "InitVar"),
    ],
)
def test_what_it_cannot_make_is_refused_when_the_class_is_made(
    annotations: dict[str, object], values: dict[str, object], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        frozen(type("Bad", (), {"__annotations__": annotations, **values}))
