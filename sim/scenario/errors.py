"""Errors in a user's file: where (file, line, path) and which rule, all at once."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple


class Problem(NamedTuple):
    """One mistake in one file; problems sort by file, line, path, then message.

    A named tuple, not a dataclass: every ``herdlab validate`` defines it, and a frozen,
    ordered dataclass compiles ten methods (~1% of the command's start-up)."""

    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:" if self.line else f"{self.file}:"
        return f"{where} {self.path}: {self.message}" if self.path else f"{where} {self.message}"


class ScenarioError(Exception):
    """Every problem found in one or more files; the CLI prints them and exits 2."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(sorted(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or nothing."""
    import difflib  # only once a mistake is found: a valid file starts faster without it

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
