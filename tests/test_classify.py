"""The seed plan's classification table, row by row."""

from __future__ import annotations

import pytest

from sim.policies.classify import DEFAULT_CLASSIFIER, SEED_CLASSIFIER, ErrorKind, Outcome, Verdict

SEED_TABLE = [
    (Outcome(status=200), Verdict.SUCCESS),
    (Outcome(status=201), Verdict.SUCCESS),
    (Outcome(status=500), Verdict.RETRY),
    (Outcome(status=502), Verdict.RETRY),
    (Outcome(status=503), Verdict.RETRY),
    (Outcome(status=504), Verdict.RETRY),
    (Outcome(error=ErrorKind.TIMEOUT), Verdict.RETRY),  # network timeout, ETIMEDOUT
    (Outcome(error=ErrorKind.RESET), Verdict.RETRY),  # ECONNRESET
    (Outcome(status=400), Verdict.FAIL),
    (Outcome(status=401), Verdict.FAIL),  # auth: never
    (Outcome(status=403), Verdict.FAIL),  # auth: never
    (Outcome(status=404), Verdict.FAIL),
    (Outcome(status=422), Verdict.FAIL),
    (Outcome(status=429), Verdict.THROTTLED),  # its own rule
    (Outcome(error=ErrorKind.REFUSED), Verdict.FAIL),  # not on the seed's list
]


@pytest.mark.parametrize(("outcome", "verdict"), SEED_TABLE, ids=[o.label for o, _ in SEED_TABLE])
def test_seed_classifier_row(outcome: Outcome, verdict: Verdict) -> None:
    assert SEED_CLASSIFIER.classify(outcome) is verdict


def test_default_classifier_also_retries_refused_connections() -> None:
    assert DEFAULT_CLASSIFIER.classify(Outcome(error=ErrorKind.REFUSED)) is Verdict.RETRY


def test_a_breakers_local_rejection_is_retryable() -> None:
    assert SEED_CLASSIFIER.classify(Outcome(error=ErrorKind.LOCAL_REJECT)) is Verdict.RETRY


def test_outcome_needs_exactly_one_of_status_and_error() -> None:
    with pytest.raises(ValueError):
        Outcome()
    with pytest.raises(ValueError):
        Outcome(status=503, error=ErrorKind.RESET)
