"""Coverage of the estimators' CLT intervals over repeated seeds, and tail-diagnostic rates (slow).

Each study repeats an estimator R = 200 times with fixed seeds (keys 0…199) and counts how
often the level-0.95 normal interval ``estimate ± 1.96 stderr`` covers the known truth.
Under exact coverage the count is Binomial(200, 0.95) (mean 190, sd 3.1); we accept
[179, 198], its 0.05% and 99.95% quantiles, so a correct estimator fails with probability
≈ 1e-3 per study (and, the seeds being fixed, deterministically passes or fails). The
integrands are skewed, so the CLT level is only asymptotic (Edgeworth error ~ γ/√n,
tests/validation/test_interval_coverage.py); at n = 1024 it stays inside this tolerance.

Measured on these seeds (n = 4096, vp-gmm-2d, t = 0.5): direct gap of (1+ε)∇log p,
ε = 0.2: 187/200 by exact sampling, 191/200 by the defensive mixture (189/200 at t = 0.05;
BKW-2D: 188/200 at t = 0, 194/200 at t = 0.5); exact score with means shifted by 0.02 at
t = 0.05: defensive 191/200 and no tail alarm, exact sampling alarms in 181/200;
Hyvärinen gap of ∇log p + c, exact divergence: 190/200, one Rademacher probe per sample:
190/200; two-probe FP score residual of the exact score (truth 0):
187/200. BKW-2D tail diagnostic (n = 4096): fired 188/200 at t = 0, 0/200 at t = 0.5.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from solvers import landau_bkw_2d, vp_gmm_2d
from verify._fp_residual import fp_score_residual
from verify._score_gap import DEFAULT_PROPOSAL, hyvarinen_gap, score_gap

pytestmark = pytest.mark.slow

REPETITIONS = 200
N = 4096  # at n = 1024 skewed integrands trip the tail diagnostic in a few % of seeds
T = 0.5
Z95 = 1.959963984540054
LOW, HIGH = 179, 198  # Binomial(200, 0.95) 0.05% and 99.95% quantiles
C = jnp.array([0.3, -0.1])
_KEY_TRUTH = jax.random.key(10_000)


def _coverage(estimator, truth: float) -> int:
    """Covered count among finite intervals; fails if the tail diagnostic fires (the infinite
    interval would count as covered and flatter the rate)."""
    covered = 0
    for seed in range(REPETITIONS):
        (est,) = estimator(jax.random.key(seed))
        assert np.isfinite(est.stderr), f"seed {seed}: {est.reason}"
        covered += abs(est.estimate - truth) <= Z95 * est.stderr
    return covered


@pytest.mark.parametrize(
    ("proposal", "t"),
    # Exact sampling at t = 0.05 trips the tail diagnostic on some seeds (skewed |∇log p|²).
    [(DEFAULT_PROPOSAL, 0.05), (DEFAULT_PROPOSAL, T), (None, T)],
    ids=["defensive-0.05", "defensive-0.5", "exact-0.5"],
)
def test_direct_gap_coverage_scaled_score(proposal, t):
    problem = vp_gmm_2d()
    eps = 0.2
    truth = eps**2 * float(problem.fisher_information(t))
    score = lambda tt, x: (1 + eps) * problem.score(tt, x)  # noqa: E731
    covered = _coverage(
        lambda k: score_gap(score, problem, (t,), n_samples=N, key=k, proposal=proposal), truth
    )
    print(f"direct (1+eps) t={t} proposal={proposal} coverage {covered}/{REPETITIONS}")
    assert LOW <= covered <= HIGH


def test_direct_gap_defensive_coverage_where_exact_sampling_is_heavy_tailed():
    # Exact score of vp-gmm-2d with the data means shifted by 0.02, t = 0.05: the error lives
    # between and beyond the modes; exact sampling trips the tail diagnostic in most seeds
    # (measured 181/200), the defensive mixture in none. The truth (no closed form) is the
    # mean of 20 independent defensive runs of 2·10⁵ samples (standard error 9e-6, ~40×
    # below a single run's), from keys disjoint from the study's.
    problem = vp_gmm_2d()
    shifted = eqx.tree_at(lambda p: p.data.means, problem, problem.data.means + 0.02)
    t = 0.05
    reference = score_gap(shifted.score, problem, (t,) * 20, n_samples=200_000, key=_KEY_TRUTH)
    truth = float(np.mean([e.estimate for e in reference]))
    covered = _coverage(
        lambda k: score_gap(shifted.score, problem, (t,), n_samples=N, key=k), truth
    )
    print(f"direct defensive (shifted means) coverage {covered}/{REPETITIONS}")
    assert LOW <= covered <= HIGH


@pytest.mark.parametrize("num_probes", [None, 1])
def test_hyvarinen_gap_coverage_shifted_score(num_probes):
    problem = vp_gmm_2d()
    score = lambda t, x: problem.score(t, x) + C  # noqa: E731
    truth = float(jnp.sum(C**2))
    covered = _coverage(
        lambda k: hyvarinen_gap(score, problem, (T,), n_samples=N, key=k, num_probes=num_probes),
        truth,
    )
    print(f"hyvarinen (+c, probes={num_probes}) coverage {covered}/{REPETITIONS}")
    assert LOW <= covered <= HIGH


def test_two_probe_fp_residual_coverage_of_zero():
    # The exact score has zero residual; the two-probe product estimator is unbiased for it.
    problem = vp_gmm_2d()
    covered = _coverage(
        lambda k: fp_score_residual(problem.score, problem, (T,), n_samples=N, key=k, num_probes=1),
        0.0,
    )
    print(f"fp two-probe coverage of 0: {covered}/{REPETITIONS}")
    assert LOW <= covered <= HIGH


def test_tail_diagnostic_rates_bkw():
    # Measured 188/200 at t = 0 and 0/200 at t = 0.5 (keys 1000…1199, verify._estimate).
    # Here keys 0…199; require ≥ 170 (P[Binomial(200, 0.94) < 170] ≈ 1e-4) and ≤ 4 false
    # alarms at t = 0.5.
    problem = landau_bkw_2d()
    rates = {}
    for t in (0.0, 0.5):
        fired = 0
        for seed in range(REPETITIONS):
            (est,) = hyvarinen_gap(
                problem.score, problem, (t,), n_samples=4096, key=jax.random.key(seed)
            )
            fired += est.tail_fired
        rates[t] = fired
    print(f"tail diagnostic fired: {rates}")
    assert rates[0.0] >= 170
    assert rates[0.5] <= 4
