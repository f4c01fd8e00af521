"""Mutants of the shipped scenarios, as hypothesis strategies: shared by the fuzz test
(tests/test_fuzz_scenarios.py) and benchmarks/fuzz_counts.py. Imports nothing of herdlab,
so the same mutants can be fed to any version of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

SCENARIOS = Path(__file__).resolve().parent.parent / "scenarios"
SHIPPED = {p.name: p.read_text() for p in sorted(SCENARIOS.glob("*.yaml"))}

_ODD_VALUES: list[Any] = [
    0,
    -1,
    1,
    0.5,
    1e-9,
    1e-7,
    0.001,
    1e6,
    1e9,
    1e30,
    2**63,
    604_800,
    604_801,
    "abc",
    "",
    True,
    None,
    [],
    {},
    [1, 2],
    {"kind": "nope"},
    "1e30",
    "-inf",
    ".nan",
]
_GARBAGE = [
    b"\x00",
    b"\x07",
    b"\x1b[31m",
    b"\xff\xfe",
    b"\xc3",
    b"\t",
    b"{",
    b"]",
    b"&a *a",
    b"!!python/object:os.system",
    b": :",
    b"\r\n",
    b"\xe2\x80\xa8",
    b"%YAML 1.1\n",
]


def _paths(doc: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every node's path (keys and indexes) in a plain YAML document."""
    out = [here]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*here, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*here, i))
    return out


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        doc = doc[key]
    return doc


@st.composite
def structured_mutant(draw: st.DrawFn) -> str:
    """A shipped scenario, maybe shrunk to a few clients, with 1-3 values changed."""
    name = draw(st.sampled_from(sorted(SHIPPED)))
    doc = yaml.safe_load(SHIPPED[name])
    if draw(st.booleans()):  # a small world, so more mutants are cheap enough to run
        clients = doc["clients"]
        if clients.get("count") is not None:
            clients["count"] = draw(st.integers(1, 50))
        for step in clients["arrival"].get("schedule", []):
            step["rate_per_s"] = step["rate_per_s"] / 50
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)[1:]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _get(doc, path[:-1]), path[-1]
        op = draw(st.sampled_from(["value", "value", "scale", "delete", "repeat", "nest"]))
        old = parent[key]
        if op == "value":
            parent[key] = draw(st.sampled_from(_ODD_VALUES))
        elif op == "scale" and isinstance(old, int | float) and not isinstance(old, bool):
            parent[key] = old * draw(st.sampled_from([0, -1, 1e-6, 1e-3, 1e3, 1e6, 1e12]))
        elif op == "delete":
            del parent[key]
        elif op == "repeat" and isinstance(old, list) and old:
            parent[key] = old * draw(st.integers(2, 1500))
        elif op == "nest":
            depth = draw(st.sampled_from([2, 30]))  # deeper: the byte mutants
            for _ in range(depth):
                old = [old]
            parent[key] = old
    return yaml.safe_dump(doc, sort_keys=False, width=10_000)


@st.composite
def mutant_bytes(draw: st.DrawFn) -> bytes:
    """A structured mutant, or a shipped file, with its bytes damaged."""
    text = (
        draw(structured_mutant())
        if draw(st.booleans())
        else SHIPPED[draw(st.sampled_from(sorted(SHIPPED)))]
    )
    raw = text.encode()
    for _ in range(draw(st.integers(0, 2))):
        at = draw(st.integers(0, len(raw)))
        op = draw(st.sampled_from(["insert", "replace", "truncate", "brackets", "random"]))
        if op == "insert":
            raw = raw[:at] + draw(st.sampled_from(_GARBAGE)) + raw[at:]
        elif op == "replace":
            raw = raw[:at] + draw(st.sampled_from(_GARBAGE)) + raw[at + 1 :]
        elif op == "truncate":
            raw = raw[:at]
        elif op == "brackets":
            n = draw(st.sampled_from([50, 1000, 20_000]))
            raw = raw[:at] + b"[" * n + b"]" * n + raw[at:]
        else:
            raw = raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    return raw
