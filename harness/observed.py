"""What one client did, from the lab server's request records (:mod:`harness.recorder`).

A client's create attempts are grouped into *jobs*: attempts carrying the same
``Idempotency-Key`` are one job; without a key, consecutive attempts up to and including
a 201 are one job (so a new job after a 4xx counts as a retry of it: send a key to tell
them apart). A job's stream connections are the stream requests for its id.

Delays are measured at the server, from the end of one answer to the start of the next
request (for a cut stream, from when its connection closed): a client's own delay plus
a round trip on loopback, a millisecond or two. Connections Toxiproxy refuses or resets
before they reach the server are not seen; the lab's fault log says when those happened.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: a delay at most this much shorter than a hint still honours it (clock reads, rounding)
HINT_TOLERANCE_S = 0.05
#: a stream connection with no event written that lived this long got bytes through
OPEN_MIN_S = 1.0


@dataclass(frozen=True, slots=True)
class Req:
    """One recorded request."""

    client: str
    kind: str
    job: str | None
    key: str | None
    start_s: float
    end_s: float
    status: int
    retry_after_s: float | None = None
    last_event_id: int | None = None
    event_ids: tuple[int, ...] = ()
    sse_retry_ms: int | None = None
    closed_s: float | None = None

    @property
    def gone_s(self) -> float:
        """When the answer was over for the client: the connection's close, if earlier."""
        return self.end_s if self.closed_s is None else min(self.end_s, self.closed_s)

    @classmethod
    def from_record(cls, r: dict[str, Any]) -> Req:
        lei = r.get("last_event_id")
        ra = r.get("retry_after")
        return cls(
            client=str(r["client"]),
            kind=str(r["kind"]),
            job=r.get("job"),
            key=r.get("key"),
            start_s=float(r["start_s"]),
            end_s=float(r["end_s"]),
            status=int(r.get("status") or 0),
            retry_after_s=float(ra) if ra is not None and str(ra).isdigit() else None,
            last_event_id=int(lei) if lei is not None and str(lei).isdigit() else None,
            event_ids=tuple(int(i) for i in r.get("event_ids") or ()),
            sse_retry_ms=r.get("sse_retry_ms"),
            closed_s=r.get("closed_s"),
        )


@dataclass(frozen=True, slots=True)
class Gap:
    """The wait before retry (or reconnect) number ``n`` and what it followed."""

    n: int
    delay_s: float
    after_status: int  # the answer it followed (200: a stream that broke)
    retry_after_s: float | None  # the Retry-After that answer carried
    sse_retry_s: float | None = None  # the last `retry:` the server had sent (streams)
    resumed: bool = False  # a reconnect that sent Last-Event-ID


@dataclass
class ObservedJob:
    """One job of one client: its create attempts and its stream connections."""

    creates: list[Req]
    streams: list[Req] = field(default_factory=list)

    @property
    def job_id(self) -> str | None:
        last = self.creates[-1] if self.creates else None
        return last.job if last is not None and last.status == 201 else None

    def create_gaps(self) -> list[Gap]:
        return [
            Gap(n, b.start_s - a.end_s, a.status, a.retry_after_s)
            for n, (a, b) in enumerate(zip(self.creates, self.creates[1:], strict=False), 1)
        ]

    def stream_gaps(self) -> list[Gap]:
        """The wait before each reconnect; ``n`` counts the reconnects since the stream
        was last open for the client (:func:`reached_client`), as a reconnect policy
        counts attempts per drop."""
        gaps = []
        sse_retry_ms: int | None = None
        n = 0
        for a, b in zip(self.streams, self.streams[1:], strict=False):
            if a.sse_retry_ms is not None:
                sse_retry_ms = a.sse_retry_ms
            n = 1 if reached_client(a, b) else n + 1
            gaps.append(
                Gap(
                    n,
                    b.start_s - a.gone_s,
                    a.status,
                    a.retry_after_s,
                    None if sse_retry_ms is None else sse_retry_ms / 1000.0,
                    b.last_event_id is not None,
                )
            )
        return gaps

    def reconnects_without_resume(self) -> int:
        """Reconnects that sent no Last-Event-ID although events had been sent before."""
        count = 0
        highest = 0
        for a, b in zip(self.streams, self.streams[1:], strict=False):
            highest = max([highest, *a.event_ids])
            if highest > 0 and b.last_event_id is None:
                count += 1
        return count

    def events(self, events_total: int | None) -> tuple[int, int, int]:
        """(lost, duplicated, connections after the result): lost = events of the job
        never written to the client (``events_total`` minus the highest id it got);
        duplicated = ids sent again that the client already had (per its Last-Event-ID;
        without one, every id an earlier connection was sent)."""
        highest = 0
        duplicated = 0
        after_result = 0
        for s in self.streams:
            if events_total is not None and highest >= events_total:
                after_result += 1
            had = s.last_event_id if s.last_event_id is not None else highest
            duplicated += sum(1 for i in s.event_ids if i <= had)
            highest = max([highest, *s.event_ids])
        lost = 0
        if events_total is not None and self.job_id is not None:
            lost = max(0, events_total - highest)
        return lost, duplicated, after_result


def reached_client(a: Req, b: Req) -> bool:
    """Did stream connection ``a`` open for the client (``b`` is the one after it)?
    The server answering 200 is not enough: a cut can close it before any byte gets
    through. With events written on ``a`` and a Last-Event-ID on ``b``, it opened when
    the client got one of them; with no event written, when it lived ``OPEN_MIN_S``
    (heartbeats went out meanwhile); with no Last-Event-ID to tell, when it was a 200."""
    if a.status != 200:
        return False
    if a.event_ids:
        return b.last_event_id is None or b.last_event_id >= min(a.event_ids)
    return a.gone_s - a.start_s >= OPEN_MIN_S


def load_requests(path: Path) -> list[Req]:
    """Every record of a ``requests.jsonl`` file, in start order (a torn last line,
    from a server stopped mid-write, is skipped)."""
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(Req.from_record(json.loads(line)))
        except (ValueError, KeyError, TypeError):
            continue
    return sorted(out, key=lambda r: r.start_s)


def group_jobs(requests: Iterable[Req]) -> dict[str, list[ObservedJob]]:
    """Each client's jobs, in order of their first attempt."""
    by_client: dict[str, list[ObservedJob]] = {}
    keyed: dict[tuple[str, str], ObservedJob] = {}
    open_job: dict[str, ObservedJob] = {}
    by_id: dict[tuple[str, str], ObservedJob] = {}
    for r in sorted(requests, key=lambda r: r.start_s):
        jobs = by_client.setdefault(r.client, [])
        if r.kind == "create":
            job = _job_for_create(r, jobs, keyed, open_job)
            job.creates.append(r)
            if r.status == 201:
                open_job.pop(r.client, None)
                if r.job is not None:
                    by_id[(r.client, r.job)] = job
        elif r.kind == "stream" and r.job is not None:
            found = by_id.get((r.client, r.job))
            if found is None:  # a stream for a job created by another client id
                found = ObservedJob(creates=[])
                by_id[(r.client, r.job)] = found
                jobs.append(found)
            found.streams.append(r)
    return by_client


def _job_for_create(
    r: Req,
    jobs: list[ObservedJob],
    keyed: dict[tuple[str, str], ObservedJob],
    open_job: dict[str, ObservedJob],
) -> ObservedJob:
    if r.key is not None:
        job = keyed.get((r.client, r.key))
        if job is None:
            job = keyed[(r.client, r.key)] = ObservedJob(creates=[])
            jobs.append(job)
        return job
    job = open_job.get(r.client)
    if job is None:
        job = open_job[r.client] = ObservedJob(creates=[])
        jobs.append(job)
    return job


def _by_number(gaps: Sequence[Gap]) -> dict[str, dict[str, float | int]]:
    out: dict[str, dict[str, float | int]] = {}
    for n in sorted({g.n for g in gaps}):
        d = sorted(g.delay_s for g in gaps if g.n == n)
        out[str(n)] = {
            "count": len(d),
            "min_s": round(d[0], 4),
            "median_s": round(d[len(d) // 2], 4),
            "max_s": round(d[-1], 4),
        }
    return out


def _non_retryable(status: int) -> bool:
    return 400 <= status < 500 and status != 429


def summarize_client(jobs: list[ObservedJob], events_total: int | None) -> dict[str, Any]:
    """The observed client's figures for results.json and the report."""
    create_gaps = [g for j in jobs for g in j.create_gaps()]
    stream_gaps = [g for j in jobs for g in j.stream_gaps()]
    hinted = [g for g in create_gaps + stream_gaps if g.retry_after_s is not None]
    sse_hinted = [g for g in stream_gaps if g.sse_retry_s is not None]
    lost = duplicated = after_result = 0
    for j in jobs:
        jl, jd, ja = j.events(events_total)
        lost, duplicated, after_result = lost + jl, duplicated + jd, after_result + ja
    return {
        "jobs": len(jobs),
        "accepted": sum(1 for j in jobs if j.job_id is not None),
        "attempts_per_job": [len(j.creates) for j in jobs],
        "create_answers": _count(r.status for j in jobs for r in j.creates),
        "create_delays_by_retry": _by_number(create_gaps),
        "stream_connections": sum(len(j.streams) for j in jobs),
        "stream_answers": _count(r.status for j in jobs for r in j.streams),
        "reconnects": len(stream_gaps),
        "resumes": sum(1 for g in stream_gaps if g.resumed),
        "reconnect_delays_by_number": _by_number(stream_gaps),
        "reconnects_after_result": after_result,
        "events_lost": lost,
        "events_duplicated": duplicated,
        "retried_non_retryable": sum(1 for g in create_gaps if _non_retryable(g.after_status)),
        "reconnected_after_non_retryable": sum(
            1 for g in stream_gaps if _non_retryable(g.after_status)
        ),
        "retry_after": {
            "seen": len(hinted),
            "honoured": sum(1 for g in hinted if _honours(g.delay_s, g.retry_after_s)),
        },
        "sse_retry": {
            "seen": len(sse_hinted),
            "waited_at_least": sum(1 for g in sse_hinted if _honours(g.delay_s, g.sse_retry_s)),
        },
    }


def _honours(delay_s: float, hint_s: float | None) -> bool:
    return hint_s is None or delay_s >= hint_s - HINT_TOLERANCE_S


def _count(statuses: Iterable[int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in statuses:
        out[str(s)] = out.get(str(s), 0) + 1
    return dict(sorted(out.items()))
