"""Pidfiles: what a harness process started, so the next one can stop a killed one's leftovers.

Children already die with their parent on Linux (``PR_SET_PDEATHSIG``, see
:mod:`harness.procs`); the pidfile is the second line: a harness killed where that does
not hold (another OS, or a child that outlived it some other way) leaves a file naming
its children, and the next run stops them. A pid is only ever signalled when it is
still the very process recorded: same start time (``/proc/PID/stat``) and same
executable (``/proc/PID/exe``), so a pid the kernel has since given to another process
is left alone. (Not the command line: Redis rewrites its own.)

One file per harness process, ``<run dir>/<pid>.json``; the run dir is
``$HERDLAB_RUN_DIR`` or ``<tmp>/herdlab-<uid>/runs``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

#: after SIGTERM, how long a leftover gets before SIGKILL
LEFTOVER_GRACE_S = 2.0


def run_dir() -> Path:
    """Where the pidfiles of this user's harness processes live."""
    env = os.environ.get("HERDLAB_RUN_DIR")
    base = Path(env) if env else Path(tempfile.gettempdir()) / f"herdlab-{os.getuid()}" / "runs"
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    return base


@dataclass(frozen=True)
class ProcessId:
    """A process as the kernel knows it: pid, start time (clock ticks since boot) and
    executable; the command line for people reading the file. Two records with the same
    pid but another start time are two processes."""

    name: str
    pid: int
    start_ticks: int
    exe: str
    cmdline: list[str]

    @classmethod
    def of(cls, name: str, pid: int) -> ProcessId | None:
        """The live process ``pid``, or None when it is gone (or a zombie) or unreadable."""
        start = _start_ticks(pid)
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return None
        if start is None:
            return None
        cmdline = [part.decode(errors="replace") for part in raw.split(b"\0") if part]
        return cls(name, pid, start, exe, cmdline)

    def is_running(self) -> bool:
        """True while ``pid`` is still this very process."""
        now = ProcessId.of(self.name, self.pid)
        return now is not None and (now.start_ticks, now.exe) == (self.start_ticks, self.exe)


def _start_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after the last ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has exited; only its parent's wait is missing
        return None
    return int(fields[19])  # field 22, starttime


class RunFile:
    """This process's pidfile: itself and the children it has running."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self.children: dict[int, ProcessId] = {}

    @property
    def path(self) -> Path:
        return (self.directory or run_dir()) / f"{os.getpid()}.json"

    def add(self, name: str, pid: int) -> None:
        child = ProcessId.of(name, pid)
        if child is not None:
            self.children[pid] = child
            self._write()

    def discard(self, pid: int) -> None:
        if self.children.pop(pid, None) is not None:
            self._write()

    def _write(self) -> None:
        if not self.children:
            with contextlib.suppress(OSError):
                self.path.unlink()
            return
        owner = ProcessId.of("harness", os.getpid())
        if owner is None:  # no /proc: nothing can be verified later, so record nothing
            return
        record = {"owner": asdict(owner), "children": [asdict(c) for c in self.children.values()]}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1))
        tmp.replace(self.path)


def stop_leftovers(directory: Path | None = None) -> list[ProcessId]:
    """Stop the children of every harness process that is gone, as its pidfile names
    them, each only if it is still that process; remove those pidfiles. Pidfiles of
    harness processes still running are left alone. Returns what was stopped."""
    stopped: list[ProcessId] = []
    for path in sorted((directory or run_dir()).glob("*.json")):
        try:
            record = json.loads(path.read_text())
            owner = ProcessId(**record["owner"])
            children = [ProcessId(**c) for c in record["children"]]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # being written, or not ours: not worth a guess
        if owner.pid == os.getpid() or owner.is_running():
            continue
        live = [c for c in children if c.is_running()]
        _terminate(live)
        stopped.extend(live)
        with contextlib.suppress(OSError):
            path.unlink()
    return stopped


def _terminate(processes: list[ProcessId]) -> None:
    """SIGTERM each, SIGKILL what is still the same process after the grace time."""
    for p in processes:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + LEFTOVER_GRACE_S
    while time.monotonic() < deadline and any(p.is_running() for p in processes):
        time.sleep(0.05)
    for p in processes:
        if p.is_running():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(p.pid, signal.SIGKILL)
