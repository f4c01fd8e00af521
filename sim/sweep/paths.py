"""Paths into a scenario or a policy (``faults[0].end_s``, ``retry.backoff.base_s``): parsing,
the grammar rule at a path, and setting a value at a path in plain values."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sim.scenario.errors import did_you_mean
from sim.scenario.grammar import ListOf, NameOrRecord, Nullable, Record, Spec, Tagged

_SEGMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)$")
#: the first key of a path into a policy; every other path is into the scenario
POLICY_ROOTS = ("retry", "reconnect")
#: scenario keys a sweep may not change: they name, describe or judge, not simulate
FIXED_SCENARIO_KEYS = ("name", "description", "policies", "expect", "sweep")


class PathError(ValueError):
    """A path that does not name a value the grammar knows; the message says why."""


Step = str | int  # a key, or an index into a list


def parse_path(path: str) -> tuple[Step, ...]:
    """``faults[0].end_s`` -> ``("faults", 0, "end_s")``."""
    steps: list[Step] = []
    for part in path.split("."):
        m = _SEGMENT.match(part)
        if m is None:
            raise PathError(f"{part!r} is not a key (letters, digits, _) with optional [index]")
        steps.append(m.group(1))
        steps.extend(int(i) for i in re.findall(r"\[(\d+)\]", m.group(2)))
    return tuple(steps)


def is_policy_path(path: str) -> bool:
    return path.split(".")[0].split("[")[0] in POLICY_ROOTS


@dataclass(frozen=True, slots=True)
class Target:
    """What a path names: the grammar rule of its value, and, for a key of one variant of a
    tagged record (``retry.budget.percent``), that variant's tag."""

    spec: Spec
    nullable: bool = False
    tag: tuple[str, str] | None = None  # (tag key, tag value) the containing mapping needs


def resolve(root: Record, steps: tuple[Step, ...], data: Any = None) -> Target:
    """The rule at ``steps`` below ``root``. ``data`` (the plain values the path goes
    through, if known) chooses a tagged record's variant and bounds list indices."""
    spec: Spec = root
    nullable = False
    tag: tuple[str, str] | None = None
    walked = ""
    for step in steps:
        nullable = False
        while isinstance(spec, Nullable | NameOrRecord):
            if isinstance(spec, Nullable):
                nullable = True
                spec = spec.inner
            else:
                spec = spec.record
        if isinstance(step, int):
            if not isinstance(spec, ListOf):
                raise PathError(f"{walked} is not a list")
            if isinstance(data, list) and step >= len(data):
                raise PathError(f"{walked} has {len(data)} item(s); no [{step}]")
            spec = spec.item
            data = data[step] if isinstance(data, list) else None
            walked += f"[{step}]"
            continue
        tag = None
        if isinstance(spec, Tagged):
            kind: str = str(data.get(spec.tag)) if isinstance(data, dict) else ""
            if kind in spec.variants:
                record = spec.variants[kind]
            else:  # unknown variant: the one that has this key (their keys are distinct)
                having = [k for k, r in spec.variants.items() if step in r.fields]
                if not having:
                    known = sorted({f for r in spec.variants.values() for f in r.fields})
                    raise PathError(f"unknown key {step!r}{did_you_mean(step, known)}")
                kind = having[0]
                record = spec.variants[kind]
            if step not in record.fields:
                raise PathError(
                    f"{walked or 'this'} is a {kind!r}, which has no key {step!r}"
                    f"{did_you_mean(step, record.fields)}; keys: {', '.join(record.fields)}"
                )
            tag = (spec.tag, kind)
            spec = record.fields[step].spec
        elif isinstance(spec, Record):
            if step not in spec.fields:
                raise PathError(
                    f"unknown key {step!r}{did_you_mean(step, spec.fields)}"
                    f" under {walked or 'the top level'}"
                )
            spec = spec.fields[step].spec
        else:
            raise PathError(f"{walked} is a single value, with no key {step!r}")
        data = data.get(step) if isinstance(data, dict) else None
        walked = f"{walked}.{step}" if walked else step
    if isinstance(spec, Nullable):
        nullable, spec = True, spec.inner
    return Target(spec, nullable, tag)


def set_value(data: dict[str, Any], steps: tuple[Step, ...], value: Any, root: Record) -> None:
    """Set ``value`` at ``steps`` in plain values ``data`` (changed in place), creating the
    mappings on the way; a tagged mapping of another variant (or null) is replaced by one
    of the variant the key belongs to."""
    node: Any = data
    for i, step in enumerate(steps[:-1]):
        target = resolve(root, steps[: i + 2], data)
        if isinstance(step, int):
            node = node[step]
            continue
        child = node.get(step)
        if target.tag is not None:
            key, kind = target.tag
            if not isinstance(child, dict) or child.get(key) != kind:
                child = {key: kind}
        elif not isinstance(child, dict | list):
            child = {}
        node[step] = child
        node = child
    node[steps[-1]] = value
