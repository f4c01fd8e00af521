"""The real components a run needs: Redis, Toxiproxy and the reference job server."""

from __future__ import annotations

import shutil
import sys
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.procs import LOOPBACK, ManagedProcess, ProcessError, free_port, port_open

REPO = Path(__file__).resolve().parent.parent
#: Toxiproxy 2.12 reads its log level from the LOG_LEVEL environment variable (zerolog)
TOXIPROXY_LOG_LEVEL = "warn"
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


def start_redis(log_dir: Path, port: int | None = None) -> Service:
    """redis-server on loopback (a free port unless given), with an append-only file in
    ``log_dir/redis-data`` fsynced every second: a Redis killed and started again on the
    same port and directory comes back with what it had (all but the last second; the
    job server writes back the jobs it holds when it sees a new run id)."""
    port = free_port() if port is None else port
    data_dir = log_dir / "redis-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        find_binary("redis-server"),
        "--port",
        str(port),
        "--bind",
        LOOPBACK,
        "--dir",
        str(data_dir),
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--protected-mode",
        "yes",
        "--daemonize",
        "no",
    ]
    p = ManagedProcess("redis", argv, log_dir)
    p.start(lambda: port_open(port))
    return Service(p, port)


def start_toxiproxy(log_dir: Path) -> Service:
    """toxiproxy-server on a free loopback port (its API), logging warnings and errors
    only: at its default level it logs every connection (322 MB for 146,000)."""
    port = free_port()
    argv = [find_binary("toxiproxy-server"), "-host", LOOPBACK, "-port", str(port)]
    p = ManagedProcess("toxiproxy", argv, log_dir, env={"LOG_LEVEL": TOXIPROXY_LOG_LEVEL})
    p.start(lambda: http_ok(f"http://{LOOPBACK}:{port}/version"))
    return Service(p, port)


def start_job_server(
    log_dir: Path,
    redis_address: str,
    scenario_path: str | None = None,
    scale: float = 1.0,
    seed: int = 0,
    extra_args: Sequence[str] = (),
) -> Service:
    """The reference job server (``herdlab serve``) with its admin API enabled;
    ``extra_args`` are more ``serve`` flags (``--job-ttl-s 5``)."""
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
