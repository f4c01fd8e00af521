"""Processes the harness starts: on a free loopback port, ready when they answer (never a
fixed sleep), stopped by their pid, even when the run is interrupted."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

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


class ManagedProcess:
    """One child process, its log file and its readiness check."""

    def __init__(self, name: str, argv: Sequence[str], log_dir: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_dir / f"{name}.log"
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
                self.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
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
    """Every process started and not yet stopped: stopped at exit and on SIGTERM."""

    def __init__(self) -> None:
        self.live: list[ManagedProcess] = []
        atexit.register(self.stop_all)

    def add(self, p: ManagedProcess) -> None:
        self.live.append(p)

    def discard(self, p: ManagedProcess) -> None:
        if p in self.live:
            self.live.remove(p)

    def stop_all(self) -> None:
        for p in reversed(list(self.live)):
            p.stop()


_REGISTRY = _Registry()


def stop_all() -> None:
    """Stop every process this interpreter started (newest first)."""
    _REGISTRY.stop_all()
