"""The real components a run needs: Redis, Toxiproxy and the reference job server."""

from __future__ import annotations

import shutil
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from harness.procs import LOOPBACK, ManagedProcess, ProcessError, free_port, port_open

REPO = Path(__file__).resolve().parent.parent
LOCAL_BIN = REPO / ".bin"

INSTALL_HINT = (
    "install it with ./dev services (needs Go for Toxiproxy: go install"
    " github.com/Shopify/toxiproxy/v2/cmd/server@v2.12.0, renamed toxiproxy-server; without"
    " Go, use your package manager's toxiproxy or the project's release binary; Redis: your"
    " package manager's redis-server)"
)


def find_binary(name: str) -> str:
    """``name`` from the project's .bin/ first, then PATH; a clear error otherwise."""
    local = LOCAL_BIN / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise ProcessError(f"{name} not found; {INSTALL_HINT}")
    return found


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=0.5) as response:
            return 200 <= int(response.status) < 300
    except OSError:
        return False


@dataclass
class Service:
    process: ManagedProcess
    port: int

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def stop(self) -> None:
        self.process.stop()


def start_redis(log_dir: Path) -> Service:
    """redis-server on a free loopback port, no persistence."""
    port = free_port()
    argv = [
        find_binary("redis-server"),
        "--port",
        str(port),
        "--bind",
        LOOPBACK,
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
        "--daemonize",
        "no",
    ]
    p = ManagedProcess("redis", argv, log_dir)
    p.start(lambda: port_open(port))
    return Service(p, port)


def start_toxiproxy(log_dir: Path) -> Service:
    """toxiproxy-server on a free loopback port (its API)."""
    port = free_port()
    argv = [find_binary("toxiproxy-server"), "-host", LOOPBACK, "-port", str(port)]
    p = ManagedProcess("toxiproxy", argv, log_dir)
    p.start(lambda: http_ok(f"http://{LOOPBACK}:{port}/version"))
    return Service(p, port)


def start_job_server(
    log_dir: Path,
    redis_address: str,
    scenario_path: str | None = None,
    scale: float = 1.0,
    seed: int = 0,
    extra_args: tuple[str, ...] = (),
) -> Service:
    """The reference job server (``herdlab serve``) with its admin API enabled;
    ``extra_args`` go to ``herdlab serve`` too (the lab's ``--record``)."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "harness.cli",
        "serve",
        "--port",
        str(port),
        "--redis-url",
        f"redis://{redis_address}/0",
        "--admin",
        "--seed",
        str(seed),
        "--scale",
        str(scale),
    ]
    if scenario_path is not None:
        argv += ["--scenario", scenario_path]
    argv += extra_args
    p = ManagedProcess("job-server", argv, log_dir)
    p.start(lambda: http_ok(f"http://{LOOPBACK}:{port}/healthz"))
    return Service(p, port)
