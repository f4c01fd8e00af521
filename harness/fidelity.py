"""``herdlab run --mode both``: simulate a scenario and run it for real, at one scale, and
compare the two figure by figure (the fidelity table).

``OUT/sim/`` and ``OUT/real/`` are complete results directories of their own (results,
CSVs, report). ``OUT/results.json`` is the fidelity record: the scaled scenario, the
fidelity rows (``sim/decide/fidelity.py``), the real run's self-check per policy and
whether it was degraded; ``OUT/report.html`` shows the table, the overlay charts and
the self-check (``reports/fidelity.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sim import __version__
from sim.decide.fidelity import Floors, compare, table_status
from sim.policies.policy import Policy
from sim.results import run_scenario, scenario_record, write_results
from sim.scenario.model import FaultKind, Scenario
from sim.scenario.scale import scale_scenario
from sim.world.summary import RECOVERY_SMOOTHING_S

Progress = Callable[[str], None]

#: every figure a fault kind makes uncomparable when connections are pooled
_ALL = (
    "success_rate",
    "attempts_per_job",
    "completion_s.p50",
    "completion_s.p95",
    "peak_offered_per_s",
    "recovery_s",
)


def construction_notes(scenario: Scenario, keep_alive: bool) -> dict[str, str]:
    """Figures that cannot match by construction, and why (figure name -> reason)."""
    notes: dict[str, str] = {}
    if scenario.service.autoscale is not None:
        for name in _ALL:
            notes[name] = "the real job server does not autoscale: it keeps its initial instances"
    # (a share of streams cut is no toxic for herdlab's clients: each stream connection
    # is routed to the proxy of the cut that hits it, pooled or not; harness.faults)
    partial = [
        f
        for f in scenario.faults
        if f.kind in (FaultKind.LOSS, FaultKind.RESET) and f.probability < 1.0
    ]
    if keep_alive and partial:
        for name in _ALL:
            notes.setdefault(
                name,
                "with --keep-alive a toxic with toxicity below 1 picks pooled connections,"
                " not requests (the model draws per request)",
            )
    return notes


def independent_draws(scenario: Scenario) -> bool:
    """Whether sim and real each roll their own dice for some fault: a share of streams
    cut, a probability of loss, reset or error per request (Toxiproxy and the server
    draw their own), so the two differ by chance even when both are right."""
    return any(
        (f.kind is FaultKind.STREAM_DROP and 0 < f.fraction < 1)
        or (f.kind in (FaultKind.LOSS, FaultKind.RESET, FaultKind.ERRORS) and 0 < f.probability < 1)
        for f in scenario.faults
    )


def fidelity_section(
    scenario: Scenario,
    sim_dir: Path,
    sim_record: dict[str, Any],
    real_dir: Path,
    real_record: dict[str, Any],
    keep_alive: bool,
) -> dict[str, Any]:
    """The fidelity rows of a sim record against a real one, as results.json holds them."""
    degraded = {
        p["name"] for p in real_record["policies"] if p.get("self_check", {}).get("degraded")
    }
    notes = construction_notes(scenario, keep_alive)
    floors = Floors(
        # recovery is read off a trailing mean stepping one bucket at a time, and two
        # runs whose load differs by a request can cross the band a bucket apart
        recovery_s=max(scenario.bucket_s, RECOVERY_SMOOTHING_S / 4),
        # the peak is a whole number of requests per window
        peak_offered_per_s=1.0 / scenario.peak_window_s,
    )
    rows = compare(
        {p["name"]: p["summary"] for p in sim_record["policies"]},
        {p["name"]: p["summary"] for p in real_record["policies"]},
        scenario.fidelity,
        floors=floors,
        degraded=degraded,
        by_construction=notes,
        independent_draws=independent_draws(scenario),
    )
    return {
        "status": table_status(rows).value,
        "tolerances": {
            "success_rate_pp": scenario.fidelity.success_rate_pp,
            "attempts_per_job": scenario.fidelity.attempts_per_job,
            "completion_p50": scenario.fidelity.completion_p50,
            "completion_p95": scenario.fidelity.completion_p95,
            "peak_offered": scenario.fidelity.peak_offered,
            "recovery": scenario.fidelity.recovery,
        },
        "floors": {
            "recovery_s": floors.recovery_s,
            "peak_offered_per_s": floors.peak_offered_per_s,
        },
        "peak_window_s": scenario.peak_window_s,
        "by_construction": notes,
        "degraded_policies": sorted(degraded),
        "rows": [r.to_json() for r in rows],
    }


def run_both(
    scenario: Scenario,
    out_dir: Path,
    policies: Sequence[Policy] | None = None,
    seed: int | None = None,
    scale: float = 1.0,
    progress: Progress | None = None,
    keep_alive: bool = False,
) -> dict[str, Any]:
    """Simulate ``scenario`` at ``scale``, run it for real at the same scale, compare.

    Writes ``out_dir/sim/``, ``out_dir/real/`` and ``out_dir/results.json`` (rewritten as
    each side finishes, marked incomplete until the comparison is in)."""
    from harness.real import run_real

    policies = list(policies if policies is not None else scenario.policies)
    seed = scenario.seed if seed is None else seed
    scaled = scale_scenario(scenario, scale)
    out_dir.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "herdlab_version": __version__,
        "mode": "both",
        "complete": False,
        "seed": seed,
        "scale": scale,
        "connections": "keep-alive" if keep_alive else "per-request",
        "scenario": scenario_record(scaled),
        "sim": "sim",
        "real": "real",
        "degraded": False,
        "degraded_reasons": [],
        "self_check": {},
        "policies": [],
    }
    write_results(out_dir, record)
    if progress:
        progress(f"simulating at scale {scale:g}")
    sim_record = run_scenario(scaled, out_dir / "sim", policies, seed=seed)
    try:
        real_record = run_real(
            scenario,
            out_dir / "real",
            policies,
            seed=seed,
            scale=scale,
            progress=progress,
            keep_alive=keep_alive,
        )
    except KeyboardInterrupt:
        record["interrupted"] = True
        write_results(out_dir, record)
        raise
    record["degraded"] = bool(real_record.get("degraded"))
    record["degraded_reasons"] = list(real_record.get("degraded_reasons", []))
    record["self_check"] = {
        p["name"]: p["self_check"] for p in real_record["policies"] if "self_check" in p
    }
    record["fidelity"] = fidelity_section(
        scaled, out_dir / "sim", sim_record, out_dir / "real", real_record, keep_alive
    )
    record["complete"] = bool(real_record.get("complete")) and bool(sim_record.get("complete"))
    write_results(out_dir, record)
    return record
