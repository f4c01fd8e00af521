"""The scenario grammar: every key, its type, its rule and its default, in one place."""

from __future__ import annotations

from sim.decide.figures import names as figure_names
from sim.policies.backoff import BackoffKind, Jitter
from sim.policies.classify import STATUS_CLASSES, ErrorKind
from sim.policies.presets import PRESETS
from sim.scenario.grammar import (
    RECORD_DEFAULTS,
    Amount,
    Boolean,
    Field,
    ListOf,
    NameOrRecord,
    Nullable,
    Number,
    OneOrList,
    Raw,
    Record,
    String,
    Tagged,
)
from sim.scenario.model import DEFAULT_LATE_SLACK_S, FaultKind, Fidelity

# Bounds the model can honour. Each is far past any real scenario and short of where
# the model breaks (a float overflows, a list cannot be allocated, a loop never ends);
# what a scenario costs as a whole (events, memory) is the cost estimate's concern
# (sim/cost.py), checked by `herdlab run` before it starts.
MAX_TIME_S = 7 * 86_400.0
"""A week: the longest duration, timeout, delay or mean the model takes."""
MIN_PERIOD_S = 0.001
"""The shortest period of anything that repeats on its own (bucket, autoscaler tick,
stream cut): one millisecond, so a typo like 1e-9 cannot make a run that never ends."""
MAX_CLIENTS = 20_000_000
"""Clients (jobs) one run can hold: about 0.5 KB each while running (0.45 KB measured at
1,000,000 clients); the cost estimate, which leans high (1 KB), refuses what does not fit
the machine at hand. Above the 10 M herd, whose arrivals are drawn for 12.5 M."""
MAX_RATE_PER_S = 1_000_000.0
MAX_INSTANCES = 100_000
"""Service instances: a count (slots = instances x concurrency), not an object each;
the 10 M herd scaled from thundering-herd has 40,000."""
MAX_CONCURRENCY = 10_000
MAX_BUCKETS = 1_000_000
"""Time-series buckets over a run's horizon (duration + job timeout + request timeout
+ 1 s): about 0.3 KB each while running, a row each in the CSV."""
MAX_STREAM_CUTS = 100_000
"""Instants at which stream_drop faults cut streams, over all of them."""
MAX_FAULTS = 1_000
MAX_POLICIES = 100
MAX_ATTEMPTS = 1_000_000
MAX_BROWSER_TABS = 100
"""Real Chromium pages one run drives: each is a browser tab (tens of MB, a share of a core)."""
MAX_SIGMA = 10.0
"""A lognormal's sigma: exp(sigma^2 / 2), its mean over its median, stays finite."""

SECONDS = Number(minimum=0, maximum=MAX_TIME_S, doc="seconds, 0 to a week")
POSITIVE_SECONDS = Number(exclusive_minimum=0, maximum=MAX_TIME_S, doc="seconds, > 0, up to a week")
PERIOD_SECONDS = Number(minimum=MIN_PERIOD_S, maximum=MAX_TIME_S, doc="seconds, 1 ms to a week")
PROBABILITY = Number(minimum=0, maximum=1)
COUNT = Number(integer=True, minimum=1, maximum=1_000_000)
RATE_PER_S = Number(minimum=0, maximum=MAX_RATE_PER_S, doc="per second, up to 1,000,000")

METRICS = tuple(figure_names())  # every figure of sim/decide/figures.py, by dotted name

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
                "sigma": Field(Number(minimum=0, maximum=MAX_SIGMA), required=True),
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
                                "rate_per_s": Field(RATE_PER_S, required=True),
                            }
                        ),
                        min_items=1,
                        max_items=10_000,
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
                "from_rate_per_s": Field(RATE_PER_S, required=True),
                "to_rate_per_s": Field(RATE_PER_S, required=True),
            }
        ),
        "closed": Record({"think": Field(DISTRIBUTION, required=True)}),
    }
)

CLIENTS = Record(
    {
        "count": Field(
            Nullable(Number(integer=True, minimum=1, maximum=MAX_CLIENTS)),
            default=None,
            doc="burst/closed: how many clients; poisson/ramp: at most (null: no limit but"
            " the arrivals'); up to 20,000,000",
        ),
        "arrival": Field(ARRIVAL, required=True),
        "job_timeout_s": Field(POSITIVE_SECONDS, default=120.0, doc="a job's deadline"),
        "request_timeout_s": Field(POSITIVE_SECONDS, default=10.0, doc="one attempt's timeout"),
        "follow_stream": Field(Boolean(), default=True, doc="follow the SSE progress stream"),
        "budget_scope": Field(String(("client", "shared")), default="client"),
        "browser": Field(
            Number(integer=True, minimum=0, maximum=MAX_BROWSER_TABS),
            default=0,
            doc="real mode: this many of the first clients are real Chromium pages"
            " (examples/web, the browser's own EventSource reconnection); the model"
            " simulates them all with the policy under test (use preset eventsource)",
        ),
    }
)

INSTANCES = Number(integer=True, minimum=1, maximum=MAX_INSTANCES)

SERVICE = Record(
    {
        "kind": Field(
            String(("job", "rpc", "occ")),
            default="job",
            doc="job: create + stream; rpc: synchronous call (metastability); occ: AWS 2015",
        ),
        "instances": Field(INSTANCES, default=1),
        "concurrency": Field(
            Number(integer=True, minimum=1, maximum=MAX_CONCURRENCY),
            default=80,
            doc="requests one instance serves at once",
        ),
        "queue_limit": Field(Number(integer=True, minimum=0, maximum=MAX_CLIENTS), default=100),
        "service_time": Field(
            DISTRIBUTION,
            default={"kind": "exponential", "mean_s": 1.0},
            doc="a job's work; its mean must be > 0 (capacity is slots / mean)",
        ),
        "retry_after_s": Field(Nullable(SECONDS), default=None),
        "rate_limit": Field(
            Nullable(
                Record(
                    {
                        "rate_per_s": Field(
                            Number(exclusive_minimum=0, maximum=MAX_RATE_PER_S), required=True
                        ),
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
                        "max_instances": Field(INSTANCES, required=True),
                        "cold_start_s": Field(SECONDS, default=5.0),
                        "target_utilization": Field(
                            Number(exclusive_minimum=0, maximum=1), default=0.6
                        ),
                        "interval_s": Field(PERIOD_SECONDS, default=1.0),
                    }
                )
            ),
            default=None,
        ),
        "progress_events": Field(Number(integer=True, minimum=0, maximum=1_000_000), default=10),
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
                "every_s": Field(Nullable(PERIOD_SECONDS), default=None),
            },
            doc="cut open SSE streams at start_s (and every every_s)",
        ),
        FaultKind.STORE_OUTAGE.value: Record(_WINDOW, doc="the job store (Redis) is down"),
        FaultKind.CAPACITY_DROP.value: Record(
            {
                **_WINDOW,
                "instances": Field(
                    Number(integer=True, minimum=0, maximum=MAX_INSTANCES), required=True
                ),
            }
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
        "multiplier": Field(Number(minimum=1, maximum=1000)),
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
                "max_tokens": Field(Number(exclusive_minimum=0, maximum=1e9)),
                "token_ratio": Field(Number(exclusive_minimum=0, maximum=1e9)),
            }
        ),
        "aws": Record(
            {
                "initial_tokens": Field(Number(minimum=0, maximum=1e9)),
                "retry_cost": Field(Number(exclusive_minimum=0, maximum=1e9)),
                "timeout_cost": Field(Number(exclusive_minimum=0, maximum=1e9)),
                "success_increment": Field(Number(minimum=0, maximum=1e9)),
            }
        ),
        "ratio": Record(
            {
                "percent": Field(Number(minimum=0, maximum=10)),
                "min_retries_per_s": Field(RATE_PER_S),
                "window_s": Field(POSITIVE_SECONDS),
            }
        ),
    }
)

BREAKER = Record(
    {
        "failure_rate": Field(Number(exclusive_minimum=0, maximum=1)),
        "window_calls": Field(Number(integer=True, minimum=1, maximum=100_000)),
        "min_calls": Field(Number(integer=True, minimum=1, maximum=100_000)),
        "open_s": Field(SECONDS),
        "half_open_probes": Field(Number(integer=True, minimum=1, maximum=100_000)),
    }
)

RETRY = Record(
    {
        "max_attempts": Field(
            Number(integer=True, minimum=1, maximum=MAX_ATTEMPTS),
            doc="counts the first attempt; up to 10,000",
        ),
        "backoff": Field(BACKOFF),
        "retry_on": Field(ListOf(_RETRY_ON, max_items=1_000)),
        "never_retry": Field(ListOf(_STATUS_PATTERN, max_items=1_000)),
        "honour_retry_after": Field(Boolean()),
        "retry_after_cap_s": Field(SECONDS),
        "deadline_s": Field(Nullable(POSITIVE_SECONDS)),
        "budget": Field(Nullable(BUDGET)),
        "breaker": Field(Nullable(BREAKER)),
    }
)

RECONNECT = Record(
    {
        "max_attempts": Field(
            Nullable(Number(integer=True, minimum=0, maximum=MAX_ATTEMPTS)),
            doc="per drop; null: until the job's deadline",
        ),
        "backoff": Field(BACKOFF),
        "honour_server_retry": Field(Boolean()),
        "resume": Field(Boolean()),
        "give_up_on_status": Field(Boolean()),
    }
)

POLICY_RECORD = Record(
    {
        "name": Field(String(max_length=100), required=True),
        "base": Field(
            String(tuple(PRESETS)), doc="start from this preset; keys given here override it"
        ),
        "retry": Field(RETRY),
        "reconnect": Field(RECONNECT),
    }
)

POLICY = NameOrRecord(String(tuple(PRESETS)), POLICY_RECORD, doc="a preset name or a policy")

EXPECT_FIGURE = Record(
    {
        "metric": Field(String(METRICS), required=True, doc="a summary figure, dotted name"),
        "policy": Field(
            Nullable(OneOrList(String(max_length=100))),
            default=None,
            doc="a policy of the scenario or a list of them (null: every policy)",
        ),
        "min": Field(Nullable(Number()), default=None, doc="the figure must be >= min"),
        "max": Field(Nullable(Number()), default=None, doc="the figure must be <= max"),
        "at_least": Field(
            String(), doc="relative: the figure must be >= this policy's (times `times`, + `by`)"
        ),
        "at_most": Field(
            String(), doc="relative: the figure must be <= this policy's (times `times`, - `by`)"
        ),
        "by": Field(Number(minimum=0), default=0.0, doc="relative: margin, in the figure's unit"),
        "times": Field(
            Number(exclusive_minimum=0), default=1.0, doc="relative: factor on the other's figure"
        ),
        "mode": Field(
            Nullable(String(("sim", "real"))),
            default=None,
            doc="check only in simulated (sim) or real runs (null: both)",
        ),
    },
    doc="a claim the run must bear out: a bound, or a comparison with another policy",
)

EXPECT_CLIENT = Record(
    {
        "conforms": Field(
            String(max_length=100),
            required=True,
            doc="herdlab lab: the recorded client keeps this policy (a policy of this"
            " scenario or a preset), rule by rule as herdlab verify-client checks it",
        ),
        "client": Field(
            String(max_length=200),
            doc="the recorded client's id (X-Herdlab-Client); default: the one client"
            " that named itself",
        ),
        "late_slack_s": Field(
            Number(minimum=0, maximum=60),
            default=DEFAULT_LATE_SLACK_S,
            doc="a wait may be this much longer than the policy's range (+5%): timers"
            " fire late on a loaded machine",
        ),
    },
    doc="a claim about the client under test in herdlab lab (not checked by run or check)",
)

EXPECT = Tagged(
    {"figure": EXPECT_FIGURE, "client": EXPECT_CLIENT},
    default_tag="figure",
    doc="kind figure (the default): a bound on a summary figure, or a comparison with"
    " another policy; kind client: the lab's client keeps a policy",
)


TOLERANCES = Record(
    {name: Field(Amount()) for name in METRICS},
    doc="how much worse than a baseline each figure may get: a number in the figure's unit,"
    " or N% of the baseline's value",
)

SWEEP_STRATEGIES = ("grid", "random", "halton", "search")

SWEEP = Record(
    {
        "scenario": Field(
            String(),
            doc="the scenario file swept, relative to this file (in a sweep file of its own)",
        ),
        "name": Field(String(), doc="the sweep's name (default: the scenario's, + '-sweep')"),
        "policies": Field(
            ListOf(POLICY, min_items=1, max_items=MAX_POLICIES),
            doc="the policies the parameters change (default: the scenario's policies)",
        ),
        "parameters": Field(
            Raw(
                doc="PATH: [values] or {range|log: [low, high], points: N}; a PATH into a"
                " policy (retry.max_attempts, reconnect.backoff.base_s, retry.budget.percent)"
                " or into the scenario (faults[0].end_s, clients.count)"
            ),
            required=True,
        ),
        "strategy": Field(
            String(SWEEP_STRATEGIES),
            default="grid",
            doc="grid: every combination; random, halton (quasi-random): `trials` points;"
            " search: Optuna's multi-objective TPE for `trials` trials",
        ),
        "trials": Field(COUNT, default=32, doc="points of random / halton, trials of search"),
        "batch": Field(
            COUNT,
            default=8,
            doc="search: trials asked at once (fixed, so results do not"
            " depend on the number of workers)",
        ),
        "seed": Field(
            Nullable(Number(integer=True, minimum=0, maximum=2**63 - 1)),
            default=None,
            doc="seed of the draws of random / halton / search (default: the scenario's)",
        ),
        "replications": Field(COUNT, default=1, doc="replications of every point"),
        "map": Field(
            Record(
                {
                    "x": Field(String(), required=True, doc="a parameter's path"),
                    "y": Field(String(), required=True, doc="a parameter's path"),
                }
            ),
            doc="the two parameters of the heatmaps and the metastability map",
        ),
        "pareto": Field(
            Record(
                {
                    "x": Field(String(METRICS), required=True),
                    "y": Field(String(METRICS), required=True),
                }
            ),
            doc="the two figures of the Pareto chart (default: a constraint's figure"
            " or peak_load_ratio, against the objective's)",
        ),
    },
    doc="a sweep: points over policy and scenario parameters, ranked by the objective",
)

SWEEP_FILE = Record({"sweep": Field(SWEEP, required=True)}, doc="a sweep of its own")


_BOUND = Record(
    {
        "min": Field(Nullable(Number()), default=None),
        "max": Field(Nullable(Number()), default=None),
    },
    doc="the figure must lie within [min, max] (either may be left out)",
)

OBJECTIVE = Record(
    {
        "maximize": Field(String(METRICS), doc="the figure to make as high as possible"),
        "minimize": Field(String(METRICS), doc="the figure to make as low as possible"),
        "subject_to": Field(
            Record({name: Field(_BOUND) for name in METRICS}),
            default={},
            doc="figure: {min, max}; a policy breaking one ranks after all that break fewer",
        ),
        "then": Field(
            ListOf(String(METRICS)),
            default=[],
            doc="tie-breakers, each in its figure's better direction",
        ),
        "tie_tolerance": Field(
            Number(minimum=0, maximum=1e9),
            default=0.0,
            doc="goal values this close to the best count as a tie, decided by then",
        ),
    },
    doc="how the policies are ranked; give maximize or minimize (default: see the README)",
)

_FIDELITY_DEFAULTS = Fidelity()
_RELATIVE = Number(minimum=0, maximum=100, doc="relative to the simulated value: 0.15 = within 15%")
FIDELITY = Record(
    {
        "success_rate_pp": Field(
            Number(minimum=0, maximum=100),
            default=_FIDELITY_DEFAULTS.success_rate_pp,
            doc="success rate: real within this many percentage points of sim",
        ),
        "attempts_per_job": Field(_RELATIVE, default=_FIDELITY_DEFAULTS.attempts_per_job),
        "completion_p50": Field(_RELATIVE, default=_FIDELITY_DEFAULTS.completion_p50),
        "completion_p95": Field(_RELATIVE, default=_FIDELITY_DEFAULTS.completion_p95),
        "peak_offered": Field(_RELATIVE, default=_FIDELITY_DEFAULTS.peak_offered),
        "recovery": Field(_RELATIVE, default=_FIDELITY_DEFAULTS.recovery),
        "scale": Field(
            Number(exclusive_minimum=0, maximum=1),
            default=_FIDELITY_DEFAULTS.scale,
            doc="the scale `herdlab check --mode both` runs this scenario at (its --scale"
            " overrides it): clients, rates and capacity shrunk together",
        ),
    },
    doc="tolerances of the fidelity table (herdlab run --mode both): sim against real",
)

SCENARIO = Record(
    {
        "name": Field(
            String(
                max_length=100,
                pattern=r"[A-Za-z0-9][A-Za-z0-9._-]*",
                doc="letters, digits, '.', '_', '-': it names the output directory",
            ),
            required=True,
        ),
        "description": Field(String(max_length=10_000), default=""),
        "seed": Field(Number(integer=True, minimum=0, maximum=2**63 - 1), default=0),
        "duration_s": Field(POSITIVE_SECONDS, required=True),
        "bucket_s": Field(
            PERIOD_SECONDS,
            default=0.1,
            doc="time-series bucket width; the run's horizon (duration + job and request"
            " timeouts + 1 s) holds at most 1,000,000 buckets",
        ),
        "peak_window_s": Field(
            PERIOD_SECONDS,
            default=1.0,
            doc="the sliding window the peak offered load is measured over",
        ),
        "clients": Field(CLIENTS, required=True),
        "service": Field(SERVICE, default=RECORD_DEFAULTS),
        "network": Field(NETWORK, default=RECORD_DEFAULTS),
        "faults": Field(ListOf(FAULT, max_items=MAX_FAULTS), default=[]),
        "policies": Field(ListOf(POLICY, min_items=1, max_items=MAX_POLICIES), required=True),
        "expect": Field(ListOf(EXPECT, max_items=1_000), default=[]),
        "tolerances": Field(TOLERANCES, default={}),
        "objective": Field(Nullable(OBJECTIVE), default=None),
        "sweep": Field(Nullable(SWEEP), default=None, doc="run by `herdlab sweep`"),
        "fidelity": Field(FIDELITY, default=RECORD_DEFAULTS),
    },
    doc="a herdlab scenario: one failure story",
)

POLICY_FILE = Record(
    {"policies": Field(ListOf(POLICY, min_items=1, max_items=MAX_POLICIES), required=True)}
)
