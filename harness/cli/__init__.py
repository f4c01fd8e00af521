"""The ``herdlab`` command line: one small module per command.

Each command module has ``add_parser(sub)`` (its arguments) and ``main(args) -> int``.
Modules are imported only to build the parser, and they import the heavy parts of
herdlab (the simulator, matplotlib, aiohttp) inside ``main``, so ``herdlab --help``
and ``herdlab validate`` start fast. A command line that names its command builds
only that command's parser (argparse's gettext look-ups and ten modules cost more than
validating a file); anything else (``--help``, a typo) builds them all.

A user's mistake (a bad scenario, a missing file, a wrong flag) prints
``FILE:LINE: path: rule`` lines and exits 2, never a traceback. Exit codes are in
:mod:`harness.cli.common`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from harness.cli.common import EXIT_INTERRUPTED
from sim import __version__

#: the command modules, in the order ``--help`` lists them
COMMANDS = (
    "run",
    "check",
    "sweep",
    "lab",
    "verify-client",
    "validate",
    "report",
    "serve",
    "schema",
    "policy",
)


def _terminal_columns() -> int:
    """The terminal's width as ``shutil.get_terminal_size`` gives it ($COLUMNS, else the
    terminal's, else 80), without importing shutil and its compression modules (a few
    ms of every start: argparse builds a help formatter for every argument it adds)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80
    return columns or 80


class _Formatter(argparse.HelpFormatter):
    """argparse's help layout, its width found without shutil."""

    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        if width is None:
            width = _terminal_columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 with one clear line on a wrong flag, and no traceback."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of ``command`` alone (the others are then not
    built; usage lines and errors read the same)."""
    parser = _Parser(
        prog="herdlab",
        description="Simulate and test client retry, backoff, jitter and reconnect policies.",
        epilog="exit codes: 0 ok (every expectation holds), 1 an expectation failed,"
        " 2 bad input, 3 could not run (a real component did not start), 130 interrupted",
    )
    parser.add_argument("--version", action="version", version=f"herdlab {__version__}")
    # with one command built, the usage line still names them all, as argparse would
    every = None if command is None else "{" + ",".join(COMMANDS) + "}"
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar=every)
    for name in COMMANDS if command is None else (command,):
        module = importlib.import_module(f"harness.cli.{name.replace('-', '_')}")
        module.add_parser(sub)
    return parser


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


#: numpy's BLAS starts a thread per core at import, idle in herdlab (one simulation is one
#: thread; a sweep runs one process per core, as Dask's workers, which set the same, do);
#: a thread that does not block SIGINT would take a Ctrl-C held back while a Dask cluster
#: starts, and drop it (see sim.execute.executors._hold_sigint)
ONE_BLAS_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def main(argv: Sequence[str] | None = None) -> int:
    for name, value in ONE_BLAS_THREAD.items():  # before numpy is imported, if it is not
        os.environ.setdefault(name, value)
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    # a terminated command cleans up exactly like an interrupted one
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    # and an interrupted one does, however it was started: Python leaves SIGINT ignored
    # when it starts with it ignored (a shell's background job, nohup), and then a kill
    # -INT would do nothing at all (the real harness's own handlers already catch it)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code: int = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code
