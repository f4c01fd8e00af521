"""herdlab's model side: the policy library, the scenario format and the SimPy world.

Dependencies run one way: ``sim`` imports nothing from ``harness`` or ``reports``.
"""

__version__ = "0.1.0"
