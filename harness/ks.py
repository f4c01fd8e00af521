"""Kolmogorov-Smirnov goodness of fit, in numpy alone (one function, no SciPy).

``ks_uniform(u)``: do ``u`` look like draws of U(0, 1)? The statistic
``D = max_i max(i/n - u_(i), u_(i) - (i-1)/n)`` over the sorted sample, and its p-value
from Kolmogorov's limiting distribution with Stephens' small-sample correction
(Numerical Recipes 14.3; within a few percent of the exact value for n >= 5)::

    p = Q(lambda),  lambda = (sqrt(n) + 0.12 + 0.11 / sqrt(n)) * D,
    Q(lambda) = 2 * sum_{j>=1} (-1)^(j-1) exp(-2 j^2 lambda^2)

A sample from any continuous distribution F becomes U(0, 1) under F (the probability
integral transform), which is how delays of several retry numbers are tested at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def kolmogorov_q(lam: float) -> float:
    """P(sqrt(n) D > lam) in the limit: Kolmogorov's survival function."""
    if lam < 0.2:
        return 1.0
    total = 0.0
    for j in range(1, 101):
        term = 2.0 * (-1) ** (j - 1) * math.exp(-2.0 * j * j * lam * lam)
        total += term
        if abs(term) < 1e-12:
            break
    return min(1.0, max(0.0, total))


def ks_uniform(u: Sequence[float]) -> tuple[float, float]:
    """(D, p-value) of the sample ``u`` (values in [0, 1]) against U(0, 1)."""
    x = np.sort(np.clip(np.asarray(u, dtype=float), 0.0, 1.0))
    n = len(x)
    if n == 0:
        raise ValueError("no samples")
    i = np.arange(1, n + 1)
    d = float(max(np.max(i / n - x), np.max(x - (i - 1) / n)))
    root = math.sqrt(n)
    return d, kolmogorov_q((root + 0.12 + 0.11 / root) * d)


def pit(sample_s: float, reference_s: np.ndarray) -> float:
    """Where ``sample_s`` falls in the sorted ``reference_s`` (its empirical CDF value);
    ties are split in the middle, so a sample inside a flat stretch is not pushed to
    one end."""
    lo = int(np.searchsorted(reference_s, sample_s, side="left"))
    hi = int(np.searchsorted(reference_s, sample_s, side="right"))
    return (lo + hi) / (2.0 * len(reference_s))
