"""The decision layer: what herdlab's figures mean, how policies are ranked, and verdicts.

- :mod:`sim.decide.figures` declares every summary figure once (name, unit, which way is
  better, how replications pool, a one-sentence definition). Everything that reads a figure
  by name - expectations, baselines, objectives, sweeps, fidelity rows, the terminal table
  and the report - looks it up there.
- :mod:`sim.decide.objective` ranks policy summaries: a goal, constraints, tie-breakers.
- :mod:`sim.decide.verdict` is the one PASS / FAIL / INCONCLUSIVE type, with the bound, the
  observed value and its confidence interval.

Nothing here prints or exits; the CLI and the reports render what it returns.
"""
