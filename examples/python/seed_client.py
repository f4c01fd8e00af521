"""The seed system's client in Python: job creation retried with tenacity, the progress
stream (Server-Sent Events) read with the standard library and reconnected by hand.

The seed plan's policy (herdlab preset ``seed-default``), as in examples/web and
examples/node:

- create: at most 4 attempts; before retry n wait ``min(1 s * 2^(n-1), 30 s) * U(0.9,
  1.1)``; retry 5xx, network errors and timeouts; never 4xx; a Retry-After hint
  replaces the delay (capped at 60 s);
- stream: after a drop at most 3 reconnect attempts, ``min(1 s * 2^(n-1), 10 s) *
  U(0.9, 1.1)``; a connection that opens starts the count again; resume with
  Last-Event-ID.

Usage: python seed_client.py --api URL [--streams URL] [--client ID] [--jobs N]
Prints one JSON line per job; exit 0 when every job completed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import tenacity

CREATE_ATTEMPTS = 4
CREATE_BASE_S, CREATE_CAP_S = 1.0, 30.0
RECONNECT_ATTEMPTS = 3
RECONNECT_BASE_S, RECONNECT_CAP_S = 1.0, 10.0
JITTER = 0.1
RETRY_AFTER_CAP_S = 60.0
TIMEOUT_S = 10.0
IDLE_S = 5.0  # no byte (not even a heartbeat) for this long: the stream is dead


def seed_backoff_s(n: int, base_s: float, cap_s: float) -> float:
    """``min(base * 2^(n-1), cap) * U(1 - JITTER, 1 + JITTER)`` for retry ``n`` >= 1."""
    return min(base_s * 2 ** (n - 1), cap_s) * random.uniform(1 - JITTER, 1 + JITTER)


class Retryable(Exception):
    """A 5xx or 429 answer; ``retry_after_s`` is its hint, if any."""

    def __init__(self, status: int, retry_after_s: float | None) -> None:
        super().__init__(f"HTTP {status}")
        self.retry_after_s = retry_after_s


class NotRetryable(Exception):
    """A 4xx answer other than 429."""


def create_wait_s(state: tenacity.RetryCallState) -> float:
    """tenacity ``wait=``: the server's Retry-After, else the seed's backoff."""
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    if isinstance(error, Retryable) and error.retry_after_s is not None:
        return min(error.retry_after_s, RETRY_AFTER_CAP_S)
    return seed_backoff_s(state.attempt_number, CREATE_BASE_S, CREATE_CAP_S)


def _retry_after_s(value: str | None) -> float | None:
    return float(value) if value is not None and value.strip().isdigit() else None


def post_job(api: str, client: str, key: str) -> str:
    """One ``POST /api/ai/jobs``: the job id, or an exception saying what happened."""
    request = urllib.request.Request(
        f"{api}/api/ai/jobs",
        data=b"{}",
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Herdlab-Client": client,
            "Idempotency-Key": key,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            return str(json.loads(response.read())["id"])
    except urllib.error.HTTPError as error:
        status = error.code
        hint = _retry_after_s(error.headers.get("Retry-After"))
        error.close()
        if status == 429 or status >= 500:
            raise Retryable(status, hint) from None
        raise NotRetryable(f"HTTP {status}") from None


def create_job(api: str, client: str) -> tuple[str, int]:
    """Create a job under the seed's retry policy: (job id, attempts made)."""
    key = str(uuid.uuid4())  # the same key on every attempt: one job, however many tries
    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(CREATE_ATTEMPTS),
        wait=create_wait_s,
        retry=tenacity.retry_if_exception_type((Retryable, OSError, http.client.HTTPException)),
        reraise=True,
    )
    job_id = retrying(post_job, api, client, key)
    return job_id, int(retrying.statistics["attempt_number"])


class Dropped(Exception):
    """The stream ended before the result; ``opened`` if it had got through."""

    def __init__(self, reason: str, opened: bool) -> None:
        super().__init__(reason)
        self.opened = opened


def read_stream(streams: str, client: str, job_id: str, state: dict[str, Any]) -> None:
    """One stream connection, until the result event; raises Dropped otherwise."""
    headers = {"Accept": "text/event-stream", "X-Herdlab-Client": client}
    if state["last_id"]:
        headers["Last-Event-ID"] = state["last_id"]
    request = urllib.request.Request(f"{streams}/api/ai/jobs/{job_id}/stream", headers=headers)
    opened = False
    try:
        with urllib.request.urlopen(request, timeout=IDLE_S) as response:
            if not response.headers.get("Content-Type", "").startswith("text/event-stream"):
                raise Dropped("not an event stream", False)
            opened = True
            event_id, event_type = None, "message"
            for raw in response:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                if line.startswith("id:"):
                    event_id = line[3:].strip()
                elif line.startswith("event:"):
                    event_type = line[6:].strip()
                elif line == "":
                    if event_id is not None:
                        state["last_id"] = event_id
                        state["events"].append(int(event_id))
                        if event_type == "result":
                            return
                    event_id, event_type = None, "message"
    except urllib.error.HTTPError as error:
        error.close()
        raise Dropped(f"HTTP {error.code}", False) from None
    except (OSError, http.client.HTTPException) as error:  # reset, refused, timeout, cut
        raise Dropped(type(error).__name__, opened) from None
    raise Dropped("closed before the result", opened)


def follow(streams: str, client: str, job_id: str) -> tuple[str, dict[str, Any]]:
    """Follow the stream under the seed's reconnect policy."""
    state: dict[str, Any] = {"last_id": "", "events": [], "reconnects": 0}
    failures = 0
    while True:
        try:
            read_stream(streams, client, job_id, state)
            return "completed", state
        except Dropped as drop:
            if drop.opened:
                failures = 0
            if failures >= RECONNECT_ATTEMPTS:
                return "gave_up", state
            failures += 1
            state["reconnects"] += 1
            delay_s = seed_backoff_s(failures, RECONNECT_BASE_S, RECONNECT_CAP_S)
            print(f"[{client}] {job_id}: {drop}; reconnect {failures} in {delay_s:.3f} s",
                  file=sys.stderr)  # fmt: skip
            time.sleep(delay_s)


def job(api: str, streams: str, client: str) -> dict[str, Any]:
    try:
        job_id, attempts = create_job(api, client)
    except NotRetryable as error:
        return {"outcome": "failed", "error": str(error)}
    except (Retryable, OSError, http.client.HTTPException) as error:
        return {"outcome": "gave_up", "error": str(error)}
    outcome, state = follow(streams, client, job_id)
    return {
        "outcome": outcome,
        "job": job_id,
        "attempts": attempts,
        "reconnects": state["reconnects"],
        "events": state["events"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", required=True)
    parser.add_argument("--streams")
    parser.add_argument("--client", default="python")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    streams = args.streams or args.api
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(lambda _: job(args.api, streams, args.client), range(args.jobs)))
    for r in results:
        print(json.dumps(r))
    return 0 if all(r["outcome"] == "completed" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
