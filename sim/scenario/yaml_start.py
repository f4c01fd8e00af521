"""Import PyYAML without its most expensive line.

``yaml.reader`` compiles, when PyYAML is imported, a regular expression for the
characters YAML does not allow: a negated class over all of Unicode. ``re``'s compiler
(pure Python) walks every code point of its ranges to build a bitmap: about 58 M
instructions, more than the rest of PyYAML's import and 8% of ``herdlab validate``'s
instructions. The same characters, written as the ranges the class leaves out, compile
in 4 M. Imported before PyYAML is, this module puts that compiled pattern in ``re``'s
cache under PyYAML's own pattern text, so the reader's ``re.compile`` finds it there.

If ``re`` keeps its cache otherwise, or PyYAML has been imported already, nothing is
seeded and PyYAML compiles its own pattern: slower, the same behaviour.
``tests/test_scenario_errors.py`` holds the two patterns to matching the same
characters over every code point, and the reader to using the seeded one.
"""

from __future__ import annotations

import re
import sys

PYYAML_NON_PRINTABLE = "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
"""``yaml.reader.Reader.NON_PRINTABLE``'s pattern, as PyYAML 5.1 to 6.0 writes it."""
NON_PRINTABLE = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]"
"""The same set: every code point PyYAML's class leaves out."""


def seed() -> bool:
    """Put the cheap pattern in ``re``'s cache under PyYAML's text; whether it was put."""
    cache = getattr(re, "_cache", None)
    if "yaml" in sys.modules or not isinstance(cache, dict):
        return False
    cache.setdefault((str, PYYAML_NON_PRINTABLE, 0), re.compile(NON_PRINTABLE))
    return True


seed()
