"""Sweeps and searches over policy and scenario parameters.

- :mod:`sim.sweep.spec` reads a ``sweep:`` block (in a scenario, or a file of its own naming
  one) into a :class:`~sim.sweep.spec.SweepSpec`, every mistake with FILE:LINE;
- :mod:`sim.sweep.points` makes the points of the grid, random and halton strategies and
  realizes a point into a scenario and a policy (on whichever worker runs it);
- :mod:`sim.sweep.search` asks Optuna for points, batch by batch;
- :mod:`sim.sweep.run` runs the points through :mod:`sim.execute` (cache: the sweep's
  folder, so an interrupted or extended sweep computes only what is missing) and writes
  ``sweep.json`` and ``points.csv``;
- :mod:`sim.sweep.analysis` ranks the points by the objective, finds the Pareto front,
  the heatmap and metastability-map cells and the recommended policy.
"""
