"""One way to run many simulations: units of (scenario, policy, seed, replication).

A *workload* is what every unit of a batch shares (a scenario, or a sweep's base scenario
and its points); it travels to each worker once. A *unit* names one simulation within it
and carries its own seed and replication, so its numbers never depend on which worker ran
it or in which order. :func:`execute` looks every unit up in the result cache, runs only
the missing ones on the chosen executor (in-process, a local process pool or Dask), stores
each result as it arrives, and returns them all in the units' order.

Nothing here prints: progress goes to a callback (the CLI draws it).
"""

from sim.execute.cache import ResultCache
from sim.execute.executors import (
    DaskExecutor,
    Executor,
    InProcess,
    ProcessPool,
    execute,
)
from sim.execute.units import FixedWorkload, Unit, UnitResult, Workload, run_unit

__all__ = [
    "DaskExecutor",
    "Executor",
    "FixedWorkload",
    "InProcess",
    "ProcessPool",
    "ResultCache",
    "Unit",
    "UnitResult",
    "Workload",
    "execute",
    "run_unit",
]
