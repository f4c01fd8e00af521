"""Processes the harness starts: on a free loopback port, ready when they answer (never a
fixed sleep), stopped by their pid, even when the run is interrupted; on Linux they die
with the harness even when it is killed (SIGKILL gives it no chance to stop them), and a
pidfile names them for the next run in case they did not (:mod:`harness.runfile`)."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from harness.runfile import RunFile

LOOPBACK = "127.0.0.1"


class ProcessError(RuntimeError):
    """A process could not be started or did not become ready."""


def free_port() -> int:
    """A TCP port nobody listens on right now, on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = LOOPBACK, timeout_s: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGKILL when this process dies (Linux's
    ``PR_SET_PDEATHSIG``); None elsewhere, and None off the main thread: the signal comes
    when the *thread* that started the child ends, and a worker thread's end is not the
    harness's (such a child is still named in the pidfile).

    Runs in the child between fork and exec: if the parent died before the prctl took
    effect, the child is already orphaned and exits at once."""
    if not sys.platform.startswith("linux"):
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


class ManagedProcess:
    """One child process, its log file and its readiness check."""

    def __init__(
        self, name: str, argv: Sequence[str], log_dir: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_dir / f"{name}.log"
        self.env = None if env is None else {**os.environ, **env}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, ready: Callable[[], bool], timeout_s: float = 20.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        try:
            # its own process group: a Ctrl-C at the terminal reaches the harness only,
            # which then stops every child in order (and resets Toxiproxy first)
            self.proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=self.env,
                preexec_fn=die_with_parent(),  # fork-safe: one syscall and a getppid
            )
        except OSError as exc:
            raise ProcessError(
                f"{self.name}: cannot start {self.argv[0]}: {exc.strerror}"
            ) from None
        finally:
            log.close()
        _REGISTRY.add(self)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text(errors="replace")[-800:]
                raise ProcessError(f"{self.name} exited with {self.proc.returncode}: {tail}")
            if ready():
                return
            time.sleep(0.05)
        self.stop()
        raise ProcessError(f"{self.name} was not ready within {timeout_s:g} s; see {self.log_path}")

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM by pid, then SIGKILL after ``grace_s``; idempotent."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=grace_s)
        _REGISTRY.discard(self)


class _Registry:
    """Every process started and not yet stopped: stopped at exit and on SIGTERM, and
    named in this process's pidfile meanwhile."""

    def __init__(self) -> None:
        self.live: list[ManagedProcess] = []
        self.runfile = RunFile()
        atexit.register(self.stop_all)

    def add(self, p: ManagedProcess) -> None:
        self.live.append(p)
        if p.pid is not None:
            self.runfile.add(p.name, p.pid)

    def discard(self, p: ManagedProcess) -> None:
        if p in self.live:
            self.live.remove(p)
            if p.pid is not None:
                self.runfile.discard(p.pid)

    def stop_all(self) -> None:
        for p in reversed(list(self.live)):
            p.stop()


_REGISTRY = _Registry()


def stop_all() -> None:
    """Stop every process this interpreter started (newest first)."""
    _REGISTRY.stop_all()
