"""Three-way verdicts of one interval against one bound, and their combination."""

from __future__ import annotations

import math

import pytest

import certificates as cert

AT_MOST, AT_LEAST = cert.Comparison.AT_MOST, cert.Comparison.AT_LEAST
PASS, FAIL, INCONCLUSIVE = cert.Verdict.PASS, cert.Verdict.FAIL, cert.Verdict.INCONCLUSIVE
NAN, INF = math.nan, math.inf
TAU = 1.0

# (estimate, lower, upper, comparison, expected) against τ = 1.
DECISIONS = [
    # q <= τ: PASS iff upper <= τ, FAIL iff lower > τ.
    (0.5, 0.4, 0.6, AT_MOST, PASS),
    (0.9, 0.8, TAU, AT_MOST, PASS),  # upper == τ is PASS
    (TAU, TAU, TAU, AT_MOST, PASS),  # exact estimate on the bound
    (1.5, 1.2, 1.8, AT_MOST, FAIL),
    (1.1, TAU, 1.2, AT_MOST, INCONCLUSIVE),  # lower == τ is not FAIL
    (1.0, 0.9, 1.1, AT_MOST, INCONCLUSIVE),
    (0.5, -INF, INF, AT_MOST, INCONCLUSIVE),  # infinite standard error
    # q >= τ mirrors it: PASS iff lower >= τ, FAIL iff upper < τ.
    (1.5, 1.2, 1.8, AT_LEAST, PASS),
    (1.1, TAU, 1.2, AT_LEAST, PASS),  # lower == τ is PASS
    (TAU, TAU, TAU, AT_LEAST, PASS),
    (0.5, 0.4, 0.6, AT_LEAST, FAIL),
    (0.9, 0.8, TAU, AT_LEAST, INCONCLUSIVE),  # upper == τ is not FAIL
    (1.0, 0.9, 1.1, AT_LEAST, INCONCLUSIVE),
    (1.5, -INF, INF, AT_LEAST, INCONCLUSIVE),
]


@pytest.mark.parametrize(("estimate", "lower", "upper", "comparison", "expected"), DECISIONS)
def test_decision_table(estimate, lower, upper, comparison, expected):
    verdict, reason = cert.decide(estimate, lower, upper, TAU, comparison)
    assert verdict is expected
    # PASS needs no explanation; anything else must say why.
    assert (reason == "") == (expected is PASS), reason


@pytest.mark.parametrize("comparison", list(cert.Comparison))
@pytest.mark.parametrize(
    ("estimate", "lower", "upper", "threshold", "cause"),
    [
        (NAN, 0.4, 0.6, TAU, "estimate is NaN"),
        (NAN, NAN, NAN, TAU, "estimate is NaN"),
        (0.5, NAN, 0.6, TAU, "interval is NaN"),
        (0.5, 0.4, NAN, TAU, "interval is NaN"),
        (0.5, 0.4, 0.6, NAN, "threshold is NaN"),
    ],
)
def test_nan_anywhere_fails_with_the_cause(estimate, lower, upper, threshold, comparison, cause):
    verdict, reason = cert.decide(estimate, lower, upper, threshold, comparison)
    assert verdict is FAIL
    assert cause in reason


@pytest.mark.parametrize(("estimate", "lower", "upper", "comparison", "expected"), DECISIONS)
def test_comparison_given_as_text_decides_alike(estimate, lower, upper, comparison, expected):
    # "<=" == Comparison.AT_MOST; before normalisation "<=" was silently treated as ">=".
    verdict, _ = cert.decide(estimate, lower, upper, TAU, str(comparison))
    assert verdict is expected


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ([], INCONCLUSIVE),  # nothing certified
        ([PASS], PASS),
        ([PASS, PASS], PASS),
        ([PASS, INCONCLUSIVE], INCONCLUSIVE),
        ([INCONCLUSIVE, INCONCLUSIVE], INCONCLUSIVE),
        ([PASS, FAIL], FAIL),
        ([INCONCLUSIVE, FAIL, PASS], FAIL),
        ([FAIL], FAIL),
    ],
)
def test_combine(verdicts, expected):
    assert cert.combine(verdicts) is expected
    assert cert.combine(iter(reversed(verdicts))) is expected  # any iterable, any order
