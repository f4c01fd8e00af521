"""What a run measures: time series in fixed buckets, and one record per job.

Attempt outcomes are counted in the bucket the attempt was *sent* in, so
conservation holds bucket by bucket: offered = accepted + rejected + failed
(+ still in flight when the run ended).
"""

from __future__ import annotations

from array import array
from enum import IntEnum

import numpy as np


class JobOutcome(IntEnum):
    """How a client's job ended: exactly one of these."""

    PENDING = 0  # only while the run is going
    COMPLETED = 1
    FAILED = 2  # a non-retryable answer
    GAVE_UP = 3  # retries or reconnects exhausted
    TIMED_OUT = 4  # the job's deadline passed

    @property
    def key(self) -> str:
        return self.name.lower()


# Read on every job (Enum class attributes are slow to read on Python 3.11).
_PENDING, _COMPLETED = JobOutcome.PENDING, JobOutcome.COMPLETED

# Counters indexed by the bucket of the attempt's send time.
COUNTERS = (
    "offered_first",
    "offered_retry",
    "offered_reconnect",
    "accepted",
    "rejected_503",
    "rejected_429",
    "rejected_other",
    "error_timeout",
    "error_reset",
    "error_refused",
    "local_reject",
    "stream_connected",
    "completed",
)
# Gauges sampled at the end of every bucket.
GAUGES = (
    "in_flight",
    "queue_length",
    "busy_slots",
    "active_instances",
    "clients_connected",
    "clients_reconnecting",
    "clients_disconnected",
    "clients_backing_off",  # waiting out a retry's or a reconnect's delay: pending retries
)


_REJECTED = {503: "rejected_503", 429: "rejected_429"}  # every other status: rejected_other


def rejected_counter(status: int) -> str:
    """The counter a non-2xx answer is recorded under, in the simulator and for real."""
    return _REJECTED.get(status, "rejected_other")


class Recorder:
    """Bucketed counters and gauges plus per-job records, for one policy run."""

    def __init__(self, horizon_s: float, bucket_s: float) -> None:
        self.bucket_s = bucket_s
        self.per_bucket = 1.0 / bucket_s
        self.n = int(np.ceil(horizon_s / bucket_s)) + 1
        # Typed arrays (array.array) while running, numpy arrays after close(): an item
        # update costs what a list's does (numpy scalar updates are slow), and close()
        # turns each into numpy by one copy of its buffer (np.asarray of a list converts
        # item by item: ~1 ms per counter, a tenth of a 100-client OCC run).
        # Hot paths index them directly: live[name][bucket] += 1
        zeros = bytes(8 * self.n)
        self.live: dict[str, array[int]] = {name: array("q", zeros) for name in COUNTERS}
        self.counters: dict[str, np.ndarray] = {}
        self.gauges = {name: np.zeros(self.n, dtype=np.int64) for name in GAUGES}
        # per job, one entry each (a 10-million-client run holds 41 bytes a job here, where
        # lists of Python floats and ints took 136)
        self.arrival_s = array("d")
        self.outcome = array("b")  # a JobOutcome value
        self.attempts = array("i")
        self.reconnects = array("i")
        self.accepted_s = array("d")  # -1.0: never accepted
        self.ended_s = array("d")  # -1.0: never ended
        self.events_lost = array("i")
        self.events_duplicated = array("i")
        self.server_calls = 0  # OCC: reads and writes
        self.server_writes = 0  # OCC: conditional writes (the 2015 post's "calls")
        self.orphaned_jobs = 0  # admitted, but the client timed out and never learnt it
        self.degraded_accepts = 0
        self.end_s = 0.0
        # Recorded cheaply while running; summarize() turns them into figures.
        # typed arrays, like the per-job records: 8 bytes a request, not a float object
        self.sent_s = array("d")  # send time of every offered request, in send order
        self.useful_work_s = 0.0  # service time of the jobs whose client received the result
        self.admitted_work_s = 0.0  # service time of every job the service took on
        self.completed_unseen = 0  # the service finished the job; its client had ended
        self.queue_wait_s = array("d")  # accepted -> started, per job the service started
        # live gauges the world updates
        self.in_flight = 0
        self.connected = 0
        self.reconnecting = 0
        self.disconnected = 0
        self.backing_off = 0

    def bucket(self, t_s: float) -> int:
        """The bucket ``t_s`` falls in (the last one takes everything past the horizon)."""
        i = int(t_s * self.per_bucket)
        return i if i < self.n else self.n - 1

    def count(self, name: str, t_s: float) -> None:
        self.live[name][self.bucket(t_s)] += 1

    def offer(self, kind: str, t_s: float) -> None:
        """A request sent at ``t_s``: counted as offered ``kind`` (``offered_first``,
        ``offered_retry`` or ``offered_reconnect``), its send time kept for the peaks."""
        self.live[kind][self.bucket(t_s)] += 1
        self.sent_s.append(t_s)

    def close(self, end_s: float) -> None:
        """The run is over: freeze the counters into arrays."""
        self.end_s = end_s
        # views of the typed arrays' buffers, not copies (nothing counts after the end):
        # a copy is 30 KB a counter, per run, through the cache
        self.counters = {k: np.frombuffer(v, dtype=np.int64) for k, v in self.live.items()}

    def new_job(self, arrival_s: float) -> int:
        self.arrival_s.append(arrival_s)
        self.outcome.append(_PENDING)
        self.attempts.append(0)
        self.reconnects.append(0)
        self.accepted_s.append(-1.0)
        self.ended_s.append(-1.0)
        self.events_lost.append(0)
        self.events_duplicated.append(0)
        return len(self.arrival_s) - 1

    def end_job(self, job: int, outcome: JobOutcome, t_s: float) -> None:
        assert self.outcome[job] == _PENDING, "a job ends exactly once"
        self.outcome[job] = outcome
        self.ended_s[job] = t_s
        if outcome is _COMPLETED:
            self.count("completed", t_s)
