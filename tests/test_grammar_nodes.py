"""The grammar's nodes are frozen records (sim.frozen): their own fields in order, the
class's defaults, frozen, compared, hashed and shown by their fields."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest

from sim.scenario.grammar import Field, ListOf, Number, Record, String


def test_fields_come_positionally_or_by_name_with_the_class_defaults() -> None:
    n = Number(True, 0, doc="count")
    assert (n.integer, n.minimum, n.exclusive_minimum, n.maximum, n.doc) == (
        True,
        0,
        None,
        None,
        "count",
    )
    item = String(choices=("a", "b"))
    lst = ListOf(item, max_items=3)
    assert (lst.item, lst.min_items, lst.max_items, lst.doc) == (item, 0, 3, "")


def test_a_missing_unknown_or_repeated_field_is_refused() -> None:
    with pytest.raises(TypeError, match="missing required argument 'item'"):
        ListOf()  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'minimun'"):
        Number(minimun=0)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="multiple values for 'integer'"):
        Number(True, integer=False)  # type: ignore[misc]
    with pytest.raises(TypeError, match="takes 5 positional arguments but 6"):
        Number(True, 0, 0, 0, "", "extra")  # type: ignore[call-arg]


def test_a_node_is_frozen() -> None:
    n = Number(minimum=1)
    with pytest.raises(FrozenInstanceError, match="'minimum'"):
        n.minimum = 2  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError, match="'minimum'"):
        del n.minimum
    assert n.minimum == 1


def test_nodes_are_equal_hashed_and_shown_by_their_fields() -> None:
    assert Number(minimum=1) == Number(minimum=1)
    assert Number(minimum=1) != Number(minimum=2)
    assert Number(doc="x") != String(doc="x")  # another kind of node
    assert hash(Number(minimum=1)) == hash(Number(minimum=1))
    assert len({String(), String(), String(max_length=3)}) == 2
    assert repr(Field(Number(), required=True)) == (
        "Field(spec=Number(integer=False, minimum=None, exclusive_minimum=None,"
        " maximum=None, doc=''), required=True, default=<object>, doc='')"
    ).replace("<object>", repr(Field(Number()).default))
    assert Record({"a": Field(String())}) == Record({"a": Field(String())})
