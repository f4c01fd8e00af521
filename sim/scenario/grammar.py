"""A small declarative grammar for YAML files: one definition drives validation,
default values and the JSON Schema, so the three can never disagree.

The checker walks PyYAML *nodes* (not constructed objects), so every problem
carries the line it stands on; it reports all problems, never just the first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from sim.frozen import frozen
from sim.scenario.errors import Problem, did_you_mean

_MISSING: Any = object()
_YAML12_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+")
"""A plain scalar YAML 1.1 leaves a string (``1e30``, ``2E-3``) but YAML 1.2 reads as a float."""
RECORD_DEFAULTS: Any = object()
"""A field default meaning: the record's own field defaults, as if given as ``{}``."""


class Spec:
    """Base of all grammar nodes: each is a frozen record (:func:`sim.frozen.frozen`) of
    the fields it annotates itself, in order."""

    __slots__ = ()

    doc: str = ""


@frozen
class Number(Spec):
    """A number (an integer when ``integer``) within its bounds."""

    integer: bool = False
    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None
    doc: str = ""


@frozen
class String(Spec):
    """A string: one of ``choices`` when given, at most ``max_length`` long."""

    choices: tuple[str, ...] = ()
    max_length: int | None = None
    pattern: str | None = None
    """A regular expression the whole string must match (JSON Schema dialect)."""
    doc: str = ""


@frozen
class Boolean(Spec):
    """true or false."""

    doc: str = ""


@frozen
class Nullable(Spec):
    """null, or what ``inner`` describes."""

    inner: Spec
    doc: str = ""


@frozen
class ListOf(Spec):
    """A list of ``item``, with ``min_items`` to ``max_items`` items."""

    item: Spec
    min_items: int = 0
    max_items: int | None = None
    doc: str = ""


@frozen
class OneOrList(Spec):
    """One scalar (e.g. a policy name) or a list of them; the value is always a list."""

    item: Spec
    doc: str = ""


@frozen
class Amount(Spec):
    """A number >= 0 (in the unit of what it measures) or a percentage written ``N%``.

    The value is the number, or the string ``"N%"`` as written."""

    doc: str = ""


@frozen
class Field:
    """A record's key: what its value is, whether it is required, its default."""

    spec: Spec
    required: bool = False
    default: Any = _MISSING
    doc: str = ""


@frozen
class Record(Spec):
    """A mapping with a fixed set of keys."""

    fields: Mapping[str, Field]
    doc: str = ""


@frozen
class Tagged(Spec):
    """A mapping whose ``kind`` key chooses the record that describes the rest."""

    variants: Mapping[str, Record]
    tag: str = "kind"
    default_tag: str | None = None
    doc: str = ""


@frozen
class NameOrRecord(Spec):
    """A bare string (e.g. a preset name) or a record spelled out."""

    name: String
    record: Record
    doc: str = ""


@frozen
class Raw(Spec):
    """Any YAML node, kept as the node for its reader to check (a sweep's parameters,
    whose keys are paths into the scenario and whose values follow the keys' rules)."""

    doc: str = ""


# ----------------------------------------------------------------- checking


@dataclass
class Checker:
    """Checks a node tree against a spec; collects problems and the line of every path."""

    file: str
    constructor: yaml.constructor.SafeConstructor
    problems: list[Problem] = field(default_factory=list)
    lines: dict[str, int] = field(default_factory=dict)

    def problem(self, node_or_line: yaml.Node | int, path: str, message: str) -> None:
        line = node_or_line if isinstance(node_or_line, int) else node_or_line.start_mark.line + 1
        self.problems.append(Problem(self.file, line, path, message))

    def line_of(self, path: str) -> int:
        """The line of ``path`` or of its nearest recorded ancestor."""
        return line_of(self.lines, path)

    def check(self, node: yaml.Node, spec: Spec, path: str) -> Any:
        """The plain value of ``node`` if it fits ``spec``; ``_MISSING`` after a problem."""
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(spec, Raw):
            return node
        if isinstance(spec, Nullable):
            if _is_null(node):
                return None
            return self.check(node, spec.inner, path)
        if isinstance(spec, Record):
            return self._record(node, spec, path)
        if isinstance(spec, Tagged):
            return self._tagged(node, spec, path)
        if isinstance(spec, NameOrRecord):
            if isinstance(node, yaml.MappingNode):
                return self._record(node, spec.record, path)
            return self._scalar(node, spec.name, path)
        if isinstance(spec, ListOf):
            return self._list(node, spec, path)
        if isinstance(spec, OneOrList):
            if isinstance(node, yaml.SequenceNode):
                return self._list(node, ListOf(spec.item, min_items=1), path)
            one = self._scalar(node, spec.item, path)
            return _MISSING if one is _MISSING else [one]
        if isinstance(spec, Amount):
            return self._amount(node, path)
        return self._scalar(node, spec, path)

    def _amount(self, node: yaml.Node, path: str) -> Any:
        if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:str":
            text = str(node.value).strip()
            number = text[:-1].strip() if text.endswith("%") else ""
            try:
                pct = float(number)
            except ValueError:
                pct = math.nan
            if not (math.isfinite(pct) and pct >= 0):
                self.problem(
                    node, path, f"expected a number >= 0 or a percentage like 5%, got {text!r}"
                )
                return _MISSING
            return f"{pct:g}%"
        return self._scalar(node, Number(minimum=0), path)

    def _scalar(self, node: yaml.Node, spec: Spec, path: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.problem(node, path, f"expected {_type_name(spec)}, got a {_node_kind(node)}")
            return _MISSING
        try:
            value = self.constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            # Unknown tags (e.g. !!python/object) and unreadable scalars: SafeLoader
            # refuses them, and so do we, without ever building anything.
            reason = getattr(exc, "problem", None) or str(exc)
            self.problem(node, path, f"cannot read this value: {reason}")
            return _MISSING
        if isinstance(spec, Boolean):
            if not isinstance(value, bool):
                self.problem(node, path, f"expected true or false, got {value!r}")
                return _MISSING
            return value
        if isinstance(spec, String):
            if not isinstance(value, str):
                self.problem(node, path, f"expected a string, got {value!r}")
                return _MISSING
            if spec.choices and value not in spec.choices:
                self.problem(
                    node,
                    path,
                    f"{value!r} is not one of {', '.join(spec.choices)}"
                    + did_you_mean(value, spec.choices),
                )
                return _MISSING
            if spec.max_length is not None and len(value) > spec.max_length:
                self.problem(
                    node, path, f"is {len(value):,} characters long; at most {spec.max_length:,}"
                )
                return _MISSING
            if spec.pattern is not None and not re.fullmatch(spec.pattern, value):
                self.problem(node, path, f"{value!r} must match {spec.pattern} ({spec.doc})")
                return _MISSING
            return value
        assert isinstance(spec, Number)
        # plain: PyYAML's style None, libyaml's ""
        if isinstance(value, str) and not node.style and _YAML12_FLOAT.fullmatch(value):
            value = float(value)  # 1e30: YAML 1.2 (and every reader) takes it as a number
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(node, path, f"expected {_type_name(spec)}, got {value!r}")
            return _MISSING
        if spec.integer and not isinstance(value, int):
            self.problem(node, path, f"expected a whole number, got {value!r}")
            return _MISSING
        if not math.isfinite(value):
            self.problem(node, path, f"expected a finite number, got {value!r}")
            return _MISSING
        if spec.minimum is not None and value < spec.minimum:
            self.problem(node, path, f"must be >= {spec.minimum:g}, got {value!r}")
            return _MISSING
        if spec.exclusive_minimum is not None and value <= spec.exclusive_minimum:
            self.problem(node, path, f"must be > {spec.exclusive_minimum:g}, got {value!r}")
            return _MISSING
        if spec.maximum is not None and value > spec.maximum:
            self.problem(node, path, f"must be <= {spec.maximum:g}, got {value!r}")
            return _MISSING
        return value

    def _list(self, node: yaml.Node, spec: ListOf, path: str) -> Any:
        if not isinstance(node, yaml.SequenceNode):
            self.problem(node, path, f"expected a list, got a {_node_kind(node)}")
            return _MISSING
        if len(node.value) < spec.min_items:
            self.problem(node, path, f"needs at least {spec.min_items} item(s)")
        if spec.max_items is not None and len(node.value) > spec.max_items:
            self.problem(
                node, path, f"has {len(node.value):,} items; at most {spec.max_items:,} allowed"
            )
            return _MISSING
        return [self.check(item, spec.item, f"{path}[{i}]") for i, item in enumerate(node.value)]

    def _mapping_items(self, node: yaml.Node, path: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        assert isinstance(node, yaml.MappingNode)
        items: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self.problem(key_node, path, "keys must be plain strings")
                continue
            if key in items:
                self.problem(key_node, _join(path, key), "this key is given twice")
                continue
            items[key] = (key_node, value_node)
        return items

    def _record(self, node: yaml.Node, spec: Record, path: str, skip: str = "") -> Any:
        if not isinstance(node, yaml.MappingNode):
            self.problem(
                node, path or "(top level)", f"expected a mapping, got a {_node_kind(node)}"
            )
            return _MISSING
        items = self._mapping_items(node, path)
        out: dict[str, Any] = {}
        for key, (key_node, value_node) in items.items():
            if key == skip:
                continue
            if key not in spec.fields:
                self.problem(
                    key_node,
                    _join(path, key),
                    "unknown key" + did_you_mean(key, spec.fields) + _allowed(spec),
                )
                continue
            self.lines[_join(path, key)] = key_node.start_mark.line + 1
            out[key] = self.check(value_node, spec.fields[key].spec, _join(path, key))
        for name, fld in spec.fields.items():
            if name in items:
                continue
            if fld.required:
                self.problem(node, _join(path, name), "is required but missing")
                out[name] = _MISSING
            elif fld.default is RECORD_DEFAULTS and isinstance(fld.spec, Record):
                out[name] = record_defaults(fld.spec)
            elif fld.default is not _MISSING:
                out[name] = fld.default
        return out

    def _tagged(self, node: yaml.Node, spec: Tagged, path: str) -> Any:
        if not isinstance(node, yaml.MappingNode):
            self.problem(node, path, f"expected a mapping, got a {_node_kind(node)}")
            return _MISSING
        items = self._mapping_items(node, path)
        tag_path = _join(path, spec.tag)
        if spec.tag in items:
            tag_node = items[spec.tag][1]
            tag = self._scalar(tag_node, String(tuple(spec.variants)), tag_path)
            if tag is _MISSING:
                return _MISSING
        elif spec.default_tag is not None:
            tag = spec.default_tag
        else:
            self.problem(node, tag_path, f"is required: one of {', '.join(spec.variants)}")
            return _MISSING
        value = self._record(node, spec.variants[tag], path, skip=spec.tag)
        value[spec.tag] = tag
        return value


def line_of(lines: Mapping[str, int], path: str) -> int:
    """The line of ``path`` in ``lines`` or of its nearest recorded ancestor."""
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
    return lines.get("", 1)


def complete(value: Any) -> bool:
    """True when ``value`` holds no part that failed its check."""
    if value is _MISSING:
        return False
    if isinstance(value, dict):
        return all(complete(v) for v in value.values())
    if isinstance(value, list):
        return all(complete(v) for v in value)
    return True


def record_defaults(spec: Record) -> dict[str, Any]:
    """The value of ``spec`` given as an empty mapping."""
    out: dict[str, Any] = {}
    for name, fld in spec.fields.items():
        if fld.default is RECORD_DEFAULTS and isinstance(fld.spec, Record):
            out[name] = record_defaults(fld.spec)
        elif fld.default is not _MISSING:
            out[name] = fld.default
    return out


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _allowed(spec: Record) -> str:
    return f"; allowed here: {', '.join(spec.fields)}" if len(spec.fields) <= 12 else ""


def _node_kind(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "mapping"
    if isinstance(node, yaml.SequenceNode):
        return "list"
    return "null" if _is_null(node) else "scalar"


def _type_name(spec: Spec) -> str:
    if isinstance(spec, Number):
        return "a whole number" if spec.integer else "a number"
    if isinstance(spec, Boolean):
        return "true or false"
    if isinstance(spec, String):
        return "one of " + ", ".join(spec.choices) if spec.choices else "a string"
    return "a value"


# ----------------------------------------------------------------- JSON Schema


def json_schema(spec: Spec) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of ``spec``."""
    out: dict[str, Any]
    if isinstance(spec, Number):
        out = {"type": "integer" if spec.integer else "number"}
        if spec.minimum is not None:
            out["minimum"] = spec.minimum
        if spec.exclusive_minimum is not None:
            out["exclusiveMinimum"] = spec.exclusive_minimum
        if spec.maximum is not None:
            out["maximum"] = spec.maximum
    elif isinstance(spec, String):
        out = {"type": "string"}
        if spec.choices:
            out["enum"] = list(spec.choices)
        if spec.max_length is not None:
            out["maxLength"] = spec.max_length
        if spec.pattern is not None:
            out["pattern"] = f"^(?:{spec.pattern})$"
    elif isinstance(spec, Boolean):
        out = {"type": "boolean"}
    elif isinstance(spec, Nullable):
        out = {"anyOf": [json_schema(spec.inner), {"type": "null"}]}
    elif isinstance(spec, ListOf):
        out = {"type": "array", "items": json_schema(spec.item)}
        if spec.min_items:
            out["minItems"] = spec.min_items
        if spec.max_items is not None:
            out["maxItems"] = spec.max_items
    elif isinstance(spec, OneOrList):
        one = json_schema(spec.item)
        out = {"anyOf": [one, {"type": "array", "items": one, "minItems": 1}]}
    elif isinstance(spec, Amount):
        out = {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {"type": "string", "pattern": r"^\s*[0-9]+(\.[0-9]*)?\s*%\s*$"},
            ]
        }
    elif isinstance(spec, Record):
        out = _record_schema(spec)
    elif isinstance(spec, Tagged):
        variants = []
        for tag, record in spec.variants.items():
            schema = _record_schema(record)
            schema["properties"] = {spec.tag: {"const": tag}, **schema["properties"]}
            if spec.default_tag != tag:
                schema.setdefault("required", []).insert(0, spec.tag)
            variants.append(schema)
        out = {"oneOf": variants}
    elif isinstance(spec, NameOrRecord):
        out = {"anyOf": [json_schema(spec.name), json_schema(spec.record)]}
    elif isinstance(spec, Raw):
        out = {"type": "object"}
    else:  # pragma: no cover - every Spec subclass is handled above
        raise TypeError(f"no schema for {spec!r}")
    if spec.doc:
        out["description"] = spec.doc
    return out


def _record_schema(spec: Record) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for name, fld in spec.fields.items():
        schema = json_schema(fld.spec)
        if fld.doc:
            schema["description"] = fld.doc
        if fld.default is RECORD_DEFAULTS and isinstance(fld.spec, Record):
            schema["default"] = record_defaults(fld.spec)
        elif fld.default is not _MISSING:
            schema["default"] = fld.default
        properties[name] = schema
    out: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    required = [n for n, f in spec.fields.items() if f.required]
    if required:
        out["required"] = required
    return out


MISSING = _MISSING
