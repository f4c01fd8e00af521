"""Independent random streams, one per component, from one seed.

``SeedSequence(seed).spawn`` gives each component its own Generator, so adding a
fault does not shift the arrival stream, and every policy compared in one run
sees the same arrivals, service times and fault draws (common random numbers).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COMPONENTS = ("arrivals", "service", "network", "faults", "policy", "think")


@dataclass(frozen=True, slots=True)
class Streams:
    arrivals: np.random.Generator
    service: np.random.Generator
    network: np.random.Generator
    faults: np.random.Generator
    policy: np.random.Generator
    think: np.random.Generator

    @classmethod
    def from_seed(cls, seed: int, replication: int = 0) -> Streams:
        """Streams for replication ``replication`` of a run seeded with ``seed``."""
        root = np.random.SeedSequence([seed, replication])
        children = root.spawn(len(COMPONENTS))
        return cls(*(np.random.Generator(np.random.PCG64(c)) for c in children))
