"""The scenario grammar: every key, its type, its rule and its default, in one place."""

from __future__ import annotations

from sim.policies.backoff import BackoffKind, Jitter
from sim.policies.classify import STATUS_CLASSES, ErrorKind
from sim.policies.presets import PRESETS
from sim.scenario.grammar import (
    RECORD_DEFAULTS,
    Boolean,
    Field,
    ListOf,
    NameOrRecord,
    Nullable,
    Number,
    Record,
    String,
    Tagged,
)
from sim.scenario.model import FaultKind

SECONDS = Number(minimum=0, doc="seconds")
POSITIVE_SECONDS = Number(exclusive_minimum=0, doc="seconds, > 0")
PROBABILITY = Number(minimum=0, maximum=1)
COUNT = Number(integer=True, minimum=1)

METRICS = (
    "success_rate",
    "attempts_per_job",
    "completion_s.p50",
    "completion_s.p95",
    "completion_s.p99",
    "peak_offered_per_s",
    "peak_load_ratio",
    "recovery_s",
    "outcomes.completed",
    "outcomes.failed",
    "outcomes.gave_up",
    "outcomes.timed_out",
    "server_calls",
    "events_lost",
    "events_duplicated",
)

DISTRIBUTION = Tagged(
    {
        "constant": Record({"value_s": Field(SECONDS, required=True)}),
        "exponential": Record({"mean_s": Field(POSITIVE_SECONDS, required=True)}),
        "normal": Record(
            {
                "mean_s": Field(SECONDS, required=True),
                "sd_s": Field(SECONDS, required=True),
            },
            doc="|Normal(mean, sd)|, folded at zero",
        ),
        "lognormal": Record(
            {
                "median_s": Field(POSITIVE_SECONDS, required=True),
                "sigma": Field(Number(minimum=0), required=True),
            }
        ),
        "uniform": Record(
            {
                "low_s": Field(SECONDS, required=True),
                "high_s": Field(SECONDS, required=True),
            }
        ),
    },
    doc="a random duration",
)

ARRIVAL = Tagged(
    {
        "burst": Record(
            {
                "at_s": Field(SECONDS, default=0.0, doc="when the herd arrives"),
                "spread_s": Field(SECONDS, default=0.0, doc="spread arrivals uniformly over"),
            }
        ),
        "poisson": Record(
            {
                "schedule": Field(
                    ListOf(
                        Record(
                            {
                                "from_s": Field(SECONDS, required=True),
                                "rate_per_s": Field(Number(minimum=0), required=True),
                            }
                        ),
                        min_items=1,
                    ),
                    required=True,
                    doc="rate steps; each holds from from_s until the next",
                )
            }
        ),
        "ramp": Record(
            {
                "start_s": Field(SECONDS, required=True),
                "end_s": Field(SECONDS, required=True),
                "from_rate_per_s": Field(Number(minimum=0), required=True),
                "to_rate_per_s": Field(Number(minimum=0), required=True),
            }
        ),
        "closed": Record({"think": Field(DISTRIBUTION, required=True)}),
    }
)

CLIENTS = Record(
    {
        "count": Field(
            Nullable(COUNT),
            default=None,
            doc="burst/closed: how many clients; poisson/ramp: at most (null: unbounded)",
        ),
        "arrival": Field(ARRIVAL, required=True),
        "job_timeout_s": Field(POSITIVE_SECONDS, default=120.0, doc="a job's deadline"),
        "request_timeout_s": Field(POSITIVE_SECONDS, default=10.0, doc="one attempt's timeout"),
        "follow_stream": Field(Boolean(), default=True, doc="follow the SSE progress stream"),
        "budget_scope": Field(String(("client", "shared")), default="client"),
        "browser": Field(
            Number(integer=True, minimum=0),
            default=0,
            doc="real mode: this many of the first clients are real Chromium pages"
            " (examples/web, the browser's own EventSource reconnection); the model"
            " simulates them all with the policy under test (use preset eventsource)",
        ),
    }
)

SERVICE = Record(
    {
        "kind": Field(
            String(("job", "rpc", "occ")),
            default="job",
            doc="job: create + stream; rpc: synchronous call (metastability); occ: AWS 2015",
        ),
        "instances": Field(COUNT, default=1),
        "concurrency": Field(COUNT, default=80, doc="requests one instance serves at once"),
        "queue_limit": Field(Number(integer=True, minimum=0), default=100),
        "service_time": Field(DISTRIBUTION, default={"kind": "exponential", "mean_s": 1.0}),
        "retry_after_s": Field(Nullable(SECONDS), default=None),
        "rate_limit": Field(
            Nullable(
                Record(
                    {
                        "rate_per_s": Field(Number(exclusive_minimum=0), required=True),
                        "burst": Field(COUNT, default=1),
                        "retry_after_s": Field(Nullable(SECONDS), default=None),
                    }
                )
            ),
            default=None,
        ),
        "autoscale": Field(
            Nullable(
                Record(
                    {
                        "max_instances": Field(COUNT, required=True),
                        "cold_start_s": Field(SECONDS, default=5.0),
                        "target_utilization": Field(
                            Number(exclusive_minimum=0, maximum=1), default=0.6
                        ),
                        "interval_s": Field(POSITIVE_SECONDS, default=1.0),
                    }
                )
            ),
            default=None,
        ),
        "progress_events": Field(Number(integer=True, minimum=0), default=10),
        "store_on_outage": Field(String(("degrade", "fail")), default="degrade"),
        "stream_retry_s": Field(
            Nullable(SECONDS), default=None, doc="the SSE retry: hint the server sends"
        ),
    }
)

NETWORK = Record({"latency": Field(DISTRIBUTION, default={"kind": "constant", "value_s": 0.005})})

_WINDOW = {
    "start_s": Field(SECONDS, required=True),
    "end_s": Field(SECONDS, required=True),
}
_P = {"probability": Field(PROBABILITY, default=1.0)}

FAULT = Tagged(
    {
        FaultKind.OUTAGE.value: Record(
            {
                **_WINDOW,
                "answer": Field(String(("503", "refuse")), default="503"),
                "retry_after_s": Field(Nullable(SECONDS), default=None),
            },
            doc="the service answers 503 or refuses connections",
        ),
        FaultKind.LATENCY_SPIKE.value: Record(
            {**_WINDOW, "extra_latency": Field(DISTRIBUTION, required=True)}
        ),
        FaultKind.LOSS.value: Record({**_WINDOW, **_P}, doc="requests vanish; clients time out"),
        FaultKind.RESET.value: Record({**_WINDOW, **_P}, doc="connections reset (ECONNRESET)"),
        FaultKind.REFUSE.value: Record({**_WINDOW, **_P}, doc="connections refused"),
        FaultKind.PARTITION.value: Record(_WINDOW, doc="nothing gets through either way"),
        FaultKind.STREAM_DROP.value: Record(
            {
                **_WINDOW,
                "fraction": Field(PROBABILITY, default=1.0),
                "every_s": Field(Nullable(POSITIVE_SECONDS), default=None),
            },
            doc="cut open SSE streams at start_s (and every every_s)",
        ),
        FaultKind.STORE_OUTAGE.value: Record(_WINDOW, doc="the job store (Redis) is down"),
        FaultKind.CAPACITY_DROP.value: Record(
            {**_WINDOW, "instances": Field(Number(integer=True, minimum=0), required=True)}
        ),
        FaultKind.ERRORS.value: Record(
            {
                **_WINDOW,
                **_P,
                "status": Field(Number(integer=True, minimum=400, maximum=599), default=500),
            }
        ),
    }
)

BACKOFF = Record(
    {
        "kind": Field(String(tuple(k.value for k in BackoffKind))),
        "base_s": Field(SECONDS),
        "multiplier": Field(Number(minimum=1)),
        "cap_s": Field(SECONDS),
        "jitter": Field(String(tuple(j.value for j in Jitter))),
        "jitter_ratio": Field(PROBABILITY),
    }
)

_STATUS_PATTERN = String(
    STATUS_CLASSES + tuple(str(s) for s in range(400, 600)),
    doc="an HTTP status or class",
)
_RETRY_ON = String(
    STATUS_CLASSES
    + tuple(e.value for e in ErrorKind if e not in (ErrorKind.LOCAL_REJECT, ErrorKind.CONFLICT))
    + tuple(str(s) for s in range(400, 600))
)

BUDGET = Tagged(
    {
        "grpc": Record(
            {
                "max_tokens": Field(Number(exclusive_minimum=0)),
                "token_ratio": Field(Number(exclusive_minimum=0)),
            }
        ),
        "aws": Record(
            {
                "initial_tokens": Field(Number(minimum=0)),
                "retry_cost": Field(Number(exclusive_minimum=0)),
                "timeout_cost": Field(Number(exclusive_minimum=0)),
                "success_increment": Field(Number(minimum=0)),
            }
        ),
        "ratio": Record(
            {
                "percent": Field(Number(minimum=0, maximum=10)),
                "min_retries_per_s": Field(Number(minimum=0)),
                "window_s": Field(POSITIVE_SECONDS),
            }
        ),
    }
)

BREAKER = Record(
    {
        "failure_rate": Field(Number(exclusive_minimum=0, maximum=1)),
        "window_calls": Field(COUNT),
        "min_calls": Field(COUNT),
        "open_s": Field(SECONDS),
        "half_open_probes": Field(COUNT),
    }
)

RETRY = Record(
    {
        "max_attempts": Field(COUNT, doc="counts the first attempt"),
        "backoff": Field(BACKOFF),
        "retry_on": Field(ListOf(_RETRY_ON)),
        "never_retry": Field(ListOf(_STATUS_PATTERN)),
        "honour_retry_after": Field(Boolean()),
        "retry_after_cap_s": Field(SECONDS),
        "deadline_s": Field(Nullable(POSITIVE_SECONDS)),
        "budget": Field(Nullable(BUDGET)),
        "breaker": Field(Nullable(BREAKER)),
    }
)

RECONNECT = Record(
    {
        "max_attempts": Field(Nullable(Number(integer=True, minimum=0))),
        "backoff": Field(BACKOFF),
        "honour_server_retry": Field(Boolean()),
        "resume": Field(Boolean()),
        "give_up_on_status": Field(Boolean()),
    }
)

POLICY_RECORD = Record(
    {
        "name": Field(String(), required=True),
        "base": Field(
            String(tuple(PRESETS)), doc="start from this preset; keys given here override it"
        ),
        "retry": Field(RETRY),
        "reconnect": Field(RECONNECT),
    }
)

POLICY = NameOrRecord(String(tuple(PRESETS)), POLICY_RECORD, doc="a preset name or a policy")

EXPECT = Record(
    {
        "metric": Field(String(METRICS), required=True),
        "policy": Field(Nullable(String()), default=None, doc="null: every policy"),
        "min": Field(Nullable(Number()), default=None),
        "max": Field(Nullable(Number()), default=None),
    }
)

SCENARIO = Record(
    {
        "name": Field(String(), required=True),
        "description": Field(String(), default=""),
        "seed": Field(Number(integer=True, minimum=0), default=0),
        "duration_s": Field(POSITIVE_SECONDS, required=True),
        "bucket_s": Field(POSITIVE_SECONDS, default=0.1, doc="time-series bucket width"),
        "clients": Field(CLIENTS, required=True),
        "service": Field(SERVICE, default=RECORD_DEFAULTS),
        "network": Field(NETWORK, default=RECORD_DEFAULTS),
        "faults": Field(ListOf(FAULT), default=[]),
        "policies": Field(ListOf(POLICY, min_items=1), required=True),
        "expect": Field(ListOf(EXPECT), default=[]),
    },
    doc="a herdlab scenario: one failure story",
)

POLICY_FILE = Record({"policies": Field(ListOf(POLICY, min_items=1), required=True)})
