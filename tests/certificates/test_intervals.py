"""Confidence intervals rebuilt from stored statistics, the Bonferroni split, coverage."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

import certificates as cert
from tests.helpers import energy_drift_check, make_certificate, score_gap_check

NORMAL, CHEBYSHEV = cert.IntervalMethod.NORMAL, cert.IntervalMethod.CHEBYSHEV
EXACT, FIXED = cert.IntervalMethod.EXACT, cert.IntervalMethod.FIXED
BONFERRONI, NONE = cert.Correction.BONFERRONI, cert.Correction.NONE

# statistics.NormalDist.inv_cdf implements Wichura's AS241 (relative error ~1e-16); the
# reference quantiles are tabulated to 16 digits, so 1e-12 only absorbs libm differences.
QUANTILE_RTOL, QUANTILE_ATOL = 1e-12, 0.0
# Interval ends are estimate ± multiplier·stderr: a few ulps of O(1) numbers.
ARITHMETIC_RTOL, ARITHMETIC_ATOL = 1e-14, 1e-15


def interval(estimate, stderr, method, confidence, **stored):
    stored = {"stored_lower": -7.0, "stored_upper": 7.0, "stored_confidence": 0.9, **stored}
    return cert.build_interval(estimate, stderr, method, confidence, **stored)


@pytest.mark.parametrize(
    ("confidence", "z"),
    [
        (0.80, 1.2815515655446004),
        (0.90, 1.6448536269514722),
        (0.95, 1.959963984540054),
        (0.99, 2.5758293035489004),
    ],
)
def test_normal_interval_uses_the_two_sided_normal_quantile(confidence, z):
    unit = interval(0.0, 1.0, NORMAL, confidence)
    np.testing.assert_allclose(unit.upper, z, rtol=QUANTILE_RTOL, atol=QUANTILE_ATOL)
    np.testing.assert_allclose(unit.lower, -z, rtol=QUANTILE_RTOL, atol=QUANTILE_ATOL)
    assert unit.confidence == confidence
    shifted = interval(3.0, 0.5, NORMAL, confidence)  # q̂ ± z·se
    np.testing.assert_allclose(
        [shifted.lower, shifted.upper],
        [3.0 - 0.5 * z, 3.0 + 0.5 * z],
        rtol=ARITHMETIC_RTOL,
        atol=ARITHMETIC_ATOL,
    )


@pytest.mark.parametrize(
    ("confidence", "multiplier"),
    [(0.75, 2.0), (0.96, 5.0), (0.99, 10.0), (0.95, 1.0 / math.sqrt(0.05))],
)
def test_chebyshev_interval_is_one_over_root_alpha(confidence, multiplier):
    # P(|q̂ - q| >= k·se) <= 1/k², so k = 1/sqrt(α) gives level 1 - α.
    result = interval(2.0, 0.25, CHEBYSHEV, confidence)
    np.testing.assert_allclose(
        [result.lower, result.upper],
        [2.0 - 0.25 * multiplier, 2.0 + 0.25 * multiplier],
        rtol=ARITHMETIC_RTOL,
        atol=ARITHMETIC_ATOL,
    )


@pytest.mark.parametrize("confidence", [0.5, 0.95, 0.999999])
def test_exact_interval_is_the_point_at_every_level(confidence):
    assert interval(0.25, 3.0, EXACT, confidence) == cert.Interval(0.25, 0.25, 1.0)


@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.99])
def test_fixed_interval_is_the_stored_one_at_the_stored_level(confidence):
    result = interval(0.0, 1.0, FIXED, confidence, stored_lower=-0.5, stored_upper=0.75)
    assert result == cert.Interval(-0.5, 0.75, 0.9)


@pytest.mark.parametrize("method", [NORMAL, CHEBYSHEV])
@pytest.mark.parametrize("stderr", [math.nan, math.inf])
def test_unknown_stderr_gives_an_infinite_interval(method, stderr):
    result = interval(1.0, stderr, method, 0.95)
    assert (result.lower, result.upper) == (-math.inf, math.inf)


@pytest.mark.parametrize("method", list(cert.IntervalMethod))
def test_method_given_as_text_builds_the_same_interval(method):
    # "normal" == IntervalMethod.NORMAL; before normalisation it fell through to Chebyshev.
    assert interval(1.0, 0.1, str(method), 0.95) == interval(1.0, 0.1, method, 0.95)


@pytest.mark.parametrize(
    ("confidence", "k", "correction", "expected"),
    [
        (0.95, 5, BONFERRONI, 0.99),
        (0.90, 10, BONFERRONI, 0.99),
        (0.95, 1, BONFERRONI, 0.95),
        (0.95, 0, BONFERRONI, 0.95),
        (0.95, 5, NONE, 0.95),
        (0.95, 5, "none", 0.95),  # text form of the enum
        (0.95, 5, "bonferroni", 0.99),
    ],
)
def test_per_interval_confidence(confidence, k, correction, expected):
    # 1 - δ/k is computed in floating point: a few ulps of 1.
    np.testing.assert_allclose(
        cert.per_interval_confidence(confidence, k, correction), expected, rtol=1e-15, atol=1e-15
    )


@pytest.mark.parametrize("confidence", [0.0, 1.0, -0.5, 1.5, math.nan])
def test_per_interval_confidence_rejects_levels_outside_the_open_unit_interval(confidence):
    with pytest.raises(ValueError, match="confidence must lie in"):
        cert.per_interval_confidence(confidence, 3, BONFERRONI)


# --- through the gate ------------------------------------------------------------------


def mixed_certificate():
    """Three random (normal) per-time rows and one exact aggregate row."""
    return make_certificate(
        checks={"score_gap": [score_gap_check()], "invariants": [energy_drift_check()]}
    )


@pytest.mark.parametrize(("correction", "level"), [(BONFERRONI, 1.0 - 0.05 / 3), (NONE, 0.95)])
def test_gate_builds_random_intervals_at_the_bonferroni_level(correction, level):
    result = cert.gate(mixed_certificate(), cert.Bounds(confidence=0.95, correction=correction))
    assert result.n_intervals == 3  # the exact row is not random
    np.testing.assert_allclose(result.interval_confidence, level, rtol=1e-15, atol=1e-15)
    by_method = {row.interval_method: row.confidence for row in result.rows}
    np.testing.assert_allclose(by_method[NORMAL], level, rtol=1e-15, atol=1e-15)
    assert by_method[EXACT] == 1.0
    regated = mixed_certificate().with_gate(result)
    assert regated.attrs["correction"] == str(correction)
    assert regated.attrs["confidence"] == 0.95
    assert regated.tree["verdicts"].attrs["correction"] == str(correction)


def fixed_certificate(stored_confidence=0.9, lower=(1e-3,) * 3, upper=(2e-3,) * 3):
    check = score_gap_check(
        interval_method=FIXED, confidence=stored_confidence, lower=lower, upper=upper
    )
    return make_certificate(
        checks={"score_gap": [check]}, bounds={"bounds": {"score_gap": {"max": 5e-3}}}
    )


@pytest.mark.parametrize(
    ("confidence", "correction", "expected"),
    [
        (0.90, NONE, cert.Verdict.PASS),  # asked level == stored level
        (0.80, NONE, cert.Verdict.PASS),  # a stored 0.9 interval also holds at 0.8
        (0.95, NONE, cert.Verdict.INCONCLUSIVE),
        (0.90, BONFERRONI, cert.Verdict.INCONCLUSIVE),  # three rows: each needs 1 - 0.1/3
    ],
)
def test_fixed_interval_below_the_required_level_is_inconclusive(confidence, correction, expected):
    result = cert.gate(
        fixed_certificate(), cert.Bounds(confidence=confidence, correction=correction)
    )
    assert {row.verdict for row in result.rows} == {expected}
    if expected is cert.Verdict.INCONCLUSIVE:
        assert all("holds at level 0.9 only" in row.reason for row in result.rows)


def test_failing_fixed_interval_below_the_level_is_inconclusive_not_fail():
    certificate = fixed_certificate(lower=(1.0,) * 3, upper=(2.0,) * 3)  # far above 5e-3
    assert cert.gate(certificate, cert.Bounds(correction=NONE, confidence=0.9)).verdict is (
        cert.Verdict.FAIL
    )
    assert cert.gate(certificate, cert.Bounds(correction=NONE, confidence=0.95)).verdict is (
        cert.Verdict.INCONCLUSIVE
    )


def test_nan_fixed_interval_fails_even_below_the_level():
    # SCHEMA.md § 5: a NaN interval is a FAIL; the level check must not soften it.
    certificate = fixed_certificate(lower=(1e-3, math.nan, 1e-3), upper=(2e-3, 2e-3, 2e-3))
    rows = cert.gate(certificate, cert.Bounds(correction=NONE, confidence=0.95)).rows
    assert [row.verdict for row in rows] == [
        cert.Verdict.INCONCLUSIVE,
        cert.Verdict.FAIL,
        cert.Verdict.INCONCLUSIVE,
    ]
    assert "interval is NaN" in rows[1].reason


# --- coverage -----------------------------------------------------------------------------
#
# Each estimate is the mean of N_PER_ESTIMATE iid N(μ, σ²) draws with its estimated
# standard error s/sqrt(n). Drawing the n samples would cost 10^8 normals, so the
# sufficient statistics are drawn from their exact joint law instead (Cochran's theorem):
# x̄ ~ N(μ, σ²/n) and (n-1)s²/σ² ~ χ²(n-1), independent. With n = 10^4 the Student-t
# correction to the nominal level is below 1e-4, negligible next to the tolerance.
#
# Tolerance: REPLICATES Bernoulli trials of coverage p have a standard deviation
# sqrt(p(1-p)/R); 4 of them (two-sided false-alarm rate 6e-5) is 0.0062 at p = 0.95 and
# R = 20 000, while the levels compared below differ by 0.04 or more.
REPLICATES = 20_000
N_PER_ESTIMATE = 10_000
MU, SIGMA = 0.3, 2.0
BINOMIAL_SDS = 4.0


def simulated_estimates(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    n = N_PER_ESTIMATE
    mean = rng.normal(MU, SIGMA / math.sqrt(n), size)
    variance = SIGMA**2 * rng.chisquare(n - 1, size) / (n - 1)
    return mean, np.sqrt(variance / n)


def covered(means, stderrs, method, level) -> np.ndarray:
    intervals = [
        interval(float(m), float(s), method, level) for m, s in zip(means, stderrs, strict=True)
    ]
    return np.array([i.lower <= MU <= i.upper for i in intervals])


def binomial_tolerance(p: float, trials: int) -> float:
    return BINOMIAL_SDS * math.sqrt(p * (1.0 - p) / trials)


@pytest.mark.parametrize(("confidence", "seed"), [(0.80, 1), (0.95, 2), (0.99, 3)])
def test_normal_interval_has_nominal_coverage(confidence, seed):
    means, stderrs = simulated_estimates(np.random.default_rng(seed), REPLICATES)
    coverage = covered(means, stderrs, NORMAL, confidence).mean()
    np.testing.assert_allclose(
        coverage, confidence, rtol=0.0, atol=binomial_tolerance(confidence, REPLICATES)
    )


def test_chebyshev_interval_covers_at_least_the_nominal_level():
    means, stderrs = simulated_estimates(np.random.default_rng(4), REPLICATES)
    coverage = covered(means, stderrs, CHEBYSHEV, 0.8).mean()
    # Distribution-free, hence conservative: for normal data 1/sqrt(0.2) = 2.24 se
    # covers P(|Z| < 2.24) = 2Φ(2.24) - 1.
    expected = 2.0 * NormalDist().cdf(1.0 / math.sqrt(0.2)) - 1.0
    assert coverage >= 0.8 - binomial_tolerance(0.8, REPLICATES)
    np.testing.assert_allclose(
        coverage, expected, rtol=0.0, atol=binomial_tolerance(expected, REPLICATES)
    )


K_JOINT = 5


@pytest.mark.parametrize(
    ("correction", "expected_joint"),
    [
        # independent intervals at 1 - 0.05/5 = 0.99 each: 0.99^5 = 0.951 >= 0.95
        (BONFERRONI, 0.99**K_JOINT),
        # without the split only 0.95^5 = 0.774 hold jointly: the correction matters
        (NONE, 0.95**K_JOINT),
    ],
)
def test_joint_coverage_of_k_intervals(correction, expected_joint):
    level = cert.per_interval_confidence(0.95, K_JOINT, correction)
    rng = np.random.default_rng(5)
    all_cover = np.ones(REPLICATES, dtype=bool)
    for _ in range(K_JOINT):
        means, stderrs = simulated_estimates(rng, REPLICATES)
        all_cover &= covered(means, stderrs, NORMAL, level)
    joint = all_cover.mean()
    tolerance = binomial_tolerance(expected_joint, REPLICATES)
    np.testing.assert_allclose(joint, expected_joint, rtol=0.0, atol=tolerance)
    if correction is BONFERRONI:
        assert joint >= 0.95 - tolerance
    else:
        assert joint < 0.95 - tolerance
