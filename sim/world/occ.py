"""The 2015 AWS optimistic-concurrency experiment (policies-and-faults.md).

N clients each update one row once: read its version, write conditionally on it;
a stale write fails, the client backs off and starts over. Each message takes one
network latency; the server does no other work. ``server_calls`` counts reads
and writes; ``server_writes`` the writes alone: the "calls" of the original post and
of its simulator, which counted a call per conditional write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.policies.classify import ErrorKind, Outcome
from sim.world.client import call_client
from sim.world.events import ClientGen

if TYPE_CHECKING:
    from sim.world.run import World

_OK = Outcome(status=200)
_CONFLICT = Outcome(error=ErrorKind.CONFLICT)


class Row:
    """The one contended row."""

    __slots__ = ("version",)

    def __init__(self) -> None:
        self.version = 0


def occ_client(w: World, job_index: int, row: Row) -> ClientGen:
    """Read, conditional write, back off on conflict, until the write wins."""
    return call_client(w, job_index, lambda first: _read_then_write(w, row, first))


def _read_then_write(w: World, row: Row, first: bool) -> ClientGen:
    """One try: read the version, then write conditionally on it. Returns the Outcome."""
    env, rec, net = w.env, w.rec, w.network
    sent_s = env.now
    rec.offer("offered_first" if first else "offered_retry", sent_s)
    rec.in_flight += 1
    yield env.timeout(net.delay_s(env.now))  # read request
    seen = row.version
    rec.server_calls += 1
    yield env.timeout(net.delay_s(env.now))  # read answer
    yield env.timeout(net.delay_s(env.now))  # conditional write
    rec.server_calls += 1
    rec.server_writes += 1
    won = row.version == seen
    if won:
        row.version += 1
    yield env.timeout(net.delay_s(env.now))  # write answer
    rec.in_flight -= 1
    rec.count("accepted" if won else "rejected_other", sent_s)
    return _OK if won else _CONFLICT
