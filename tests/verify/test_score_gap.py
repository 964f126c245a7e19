"""Score-gap estimators and the Estimate record (verify._score_gap, verify._estimate).

Tolerances: exact-score gaps are zero up to round-off: s and ∇log p are the same
expression, but XLA may fuse the two evaluations differently (FMA), leaving |s − ∇log p| of
a few ulps of |s| (≤ 1e3 here), so the mean square is ≤ (1e-12)² = 1e-24; a
constant shift c gives per-sample values |c|² up to round-off of the subtraction (1e-12
relative); Monte Carlo comparisons use 5 standard errors (two-sided miss probability
≈ 6e-7 under the CLT; the seeds are fixed, so the tests are deterministic). Coverage: with
R = 50 fixed-seed repetitions of a 95% interval the number covered is Binomial(50, 0.95);
we require ≥ 41, its 0.05% quantile (the 200-repetition study is in
tests/validation/test_estimator_coverage.py).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from certificates import CheckResult, Evidence, IntervalMethod
from solvers import landau_bkw_2d, ou_gmm_2d, vp_gmm_2d
from verify._estimate import Estimate, estimates_to_check, summarise, tail_diagnostics
from verify._score_gap import (
    DefensiveProposal,
    _direct_values,
    hyvarinen_gap,
    hyvarinen_loss,
    relative_to_fisher,
    score_gap,
)

N = 2048
DEFAULT = DefensiveProposal()
TIMES = (0.5, 1.0)
PROBLEMS = {"vp-gmm-2d": vp_gmm_2d, "ou-gmm-2d": ou_gmm_2d, "landau-bkw-2d": landau_bkw_2d}


@pytest.fixture(scope="module", params=sorted(PROBLEMS))
def problem(request):
    return PROBLEMS[request.param]()


def _within(a: Estimate, b: Estimate, k: float = 5.0) -> bool:
    return abs(a.estimate - b.estimate) <= k * math.hypot(a.stderr, b.stderr)


def test_exact_score_zero_gap(problem):
    key = jax.random.key(0)
    for proposal, formula in (
        (None, "score-gap-direct"),
        (DEFAULT, "score-gap-direct-defensive-is"),
    ):
        for est in score_gap(
            problem.score, problem, TIMES, n_samples=N, key=key, proposal=proposal
        ):
            # Defensive weights are ≤ 1/λ = 4, so the round-off bound grows by that factor.
            assert 0.0 <= est.estimate <= 4e-24
            assert est.stderr <= 4e-24
            assert est.n_samples == N
            assert est.formula_id == formula
            assert not est.tail_fired
    # (Hutchinson variant: test_known_perturbations_hutchinson and the slow coverage study.)
    for est in hyvarinen_gap(problem.score, problem, TIMES, n_samples=N, key=key):
        assert math.isfinite(est.stderr), est.reason
        assert abs(est.estimate) <= 5 * est.stderr


def test_known_perturbations(problem):
    _check_known_perturbations(problem, num_probes=None)


def test_known_perturbations_hutchinson():
    _check_known_perturbations(vp_gmm_2d(), num_probes=4)


def _check_known_perturbations(problem, num_probes):
    eps, c = 0.2, jnp.array([0.3, -0.1])
    scaled = lambda t, x: (1 + eps) * problem.score(t, x)  # noqa: E731
    shifted = lambda t, x: problem.score(t, x) + c  # noqa: E731
    key = jax.random.key(1)
    direct_scaled = score_gap(scaled, problem, TIMES, n_samples=N, key=key, proposal=None)
    direct_shifted = score_gap(shifted, problem, TIMES, n_samples=N, key=key, proposal=None)
    weighted_scaled = score_gap(scaled, problem, TIMES, n_samples=N, key=key)
    weighted_shifted = score_gap(shifted, problem, TIMES, n_samples=N, key=key)
    hyv_scaled = hyvarinen_gap(scaled, problem, TIMES, n_samples=N, key=key, num_probes=num_probes)
    hyv_shifted = hyvarinen_gap(
        shifted, problem, TIMES, n_samples=N, key=key, num_probes=num_probes
    )
    for i, t in enumerate(TIMES):
        fisher = float(problem.fisher_information(t))
        truth = eps**2 * fisher
        assert abs(direct_scaled[i].estimate - truth) <= 5 * direct_scaled[i].stderr
        assert direct_shifted[i].estimate == pytest.approx(0.1, rel=1e-12, abs=1e-14)
        # Weighted: unbiased for the same truths (a constant error turns E_q w = 1 into a test).
        assert abs(weighted_scaled[i].estimate - truth) <= 5 * weighted_scaled[i].stderr
        assert abs(weighted_shifted[i].estimate - 0.1) <= 5 * weighted_shifted[i].stderr
        assert weighted_shifted[i].stderr > 0
        assert _within(hyv_scaled[i], direct_scaled[i])
        assert _within(hyv_shifted[i], direct_shifted[i])
        assert abs(hyv_shifted[i].estimate - 0.1) <= 5 * hyv_shifted[i].stderr
    relative = relative_to_fisher(direct_scaled, problem, TIMES)
    for rel in relative:
        assert rel.normaliser == "fisher_information"
        assert abs(rel.estimate - eps**2) <= 5 * rel.stderr


def test_defensive_weights_are_bounded_and_average_to_one(problem):
    # E_q[p/q] = 1 needs the problem's log_density to be normalised; w ≤ 1/λ by construction.
    for t in (0.05, 1.0):
        _, w = DEFAULT.sample_weighted(problem, jnp.asarray(t), 8192, key=jax.random.key(11))
        w = np.asarray(w)
        assert w.max() <= 1 / DEFAULT.exact_fraction * (1 + 1e-12)
        assert w.min() > 0
        assert abs(w.mean() - 1) <= 5 * w.std(ddof=1) / math.sqrt(w.size)


def test_defensive_proposal_exact_fraction_one_is_exact_sampling():
    problem = vp_gmm_2d()
    x, w = DefensiveProposal(exact_fraction=1.0).sample_weighted(
        problem, jnp.asarray(0.5), 512, key=jax.random.key(12)
    )
    np.testing.assert_allclose(w, 1.0, rtol=1e-12)
    assert x.shape == (512, 2)


@pytest.mark.parametrize(
    "kwargs", [{"exact_fraction": 0.0}, {"inflation": -1.0}, {"pilot_samples": 1}]
)
def test_defensive_proposal_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        DefensiveProposal(**kwargs)


def test_defensive_sampling_keeps_the_tail_diagnostic_quiet_where_exact_sampling_fires():
    # A score whose error lives between and beyond the mixture's modes (the means of
    # vp-gmm-2d shifted by 0.02 → responsibilities switch at slightly wrong places): under
    # p_t at t = 0.05 a few draws carry most of the squared error and the diagnostic fires
    # (verify._score_gap docstring); the defensive mixture spreads them over many weighted
    # draws. Both estimate the same gap (within 5 combined standard errors where finite).
    problem = vp_gmm_2d()
    shifted = eqx.tree_at(lambda p: p.data.means, problem, problem.data.means + 0.02)
    t = (0.05,)
    key = jax.random.key(13)
    (plain,) = score_gap(shifted.score, problem, t, n_samples=10_000, key=key, proposal=None)
    (weighted,) = score_gap(shifted.score, problem, t, n_samples=10_000, key=key)
    assert plain.tail_fired
    assert not weighted.tail_fired, weighted.reason
    assert weighted.estimate > 10 * weighted.stderr


def test_loss_is_gap_minus_fisher_with_reason():
    problem = vp_gmm_2d()
    key = jax.random.key(2)
    loss = hyvarinen_loss(problem.score, problem, TIMES, n_samples=N, key=key)
    gap = hyvarinen_gap(problem.score, problem, TIMES, n_samples=N, key=key)
    for lo, ga, t in zip(loss, gap, TIMES, strict=True):
        assert lo.formula_id == "hyvarinen-2005-loss"
        assert "I(t) unknown" in lo.reason
        assert ga.reason == ""
        assert ga.estimate - lo.estimate == pytest.approx(
            float(problem.fisher_information(t)), rel=1e-12, abs=1e-12
        )
        assert ga.stderr == lo.stderr


def test_time_shifted_score_has_positive_gap():
    problem = vp_gmm_2d()
    late = lambda t, x: problem.score(t + 0.05, x)  # noqa: E731
    for est in score_gap(late, problem, (0.1, 0.5), n_samples=N, key=jax.random.key(3)):
        assert est.estimate > 10 * est.stderr > 0


def test_nan_score_gives_nan_with_reason():
    problem = vp_gmm_2d()
    bad = lambda t, x: jnp.where(x[0] > 1.0, jnp.nan, 1.0) * problem.score(t, x)  # noqa: E731
    key = jax.random.key(4)
    for estimates in (
        score_gap(bad, problem, TIMES, n_samples=N, key=key),
        hyvarinen_gap(bad, problem, TIMES, n_samples=N, key=key),
    ):
        for est in estimates:
            assert math.isnan(est.estimate)
            assert "not finite" in est.reason
        check = estimates_to_check("score_gap", estimates, units="1", long_name="score gap")
        assert all("not finite" in r for r in check.reason)


def test_key_determinism():
    problem = vp_gmm_2d()
    score = lambda t, x: 1.1 * problem.score(t, x)  # noqa: E731
    a = score_gap(score, problem, TIMES, n_samples=N, key=jax.random.key(5))
    b = score_gap(score, problem, TIMES, n_samples=N, key=jax.random.key(5))
    c = score_gap(score, problem, TIMES, n_samples=N, key=jax.random.key(6))
    assert [e.estimate for e in a] == [e.estimate for e in b]
    assert all(x.estimate != y.estimate for x, y in zip(a, c, strict=True))
    h1 = hyvarinen_gap(score, problem, TIMES, n_samples=N, key=jax.random.key(5), num_probes=1)
    h2 = hyvarinen_gap(score, problem, TIMES, n_samples=N, key=jax.random.key(5), num_probes=1)
    assert [e.estimate for e in h1] == [e.estimate for e in h2]


def test_block_size_does_not_change_result():
    problem = ou_gmm_2d()
    score = lambda t, x: 1.1 * problem.score(t, x)  # noqa: E731
    key = jax.random.key(7)
    a = score_gap(score, problem, TIMES, n_samples=1000, key=key, block_size=1000)
    b = score_gap(score, problem, TIMES, n_samples=1000, key=key, block_size=64)  # padded
    for x, y in zip(a, b, strict=True):
        assert x.estimate == pytest.approx(y.estimate, rel=1e-14, abs=0)


def test_single_compilation_for_all_times():
    problem = vp_gmm_2d()
    traces = []

    def score(t, x):
        traces.append(None)  # runs only while tracing
        return 0.9 * problem.score(t, x)

    score_gap(score, problem, (0.2,), n_samples=256, key=jax.random.key(8))
    after_first = len(traces)
    score_gap(score, problem, (0.3, 0.4, 0.6), n_samples=256, key=jax.random.key(9))
    assert len(traces) == after_first


def test_vmap_and_grad_of_per_sample_values():
    problem = vp_gmm_2d()
    t = jnp.asarray(0.5)

    def mean_gap(eps):
        values, _ = _direct_values(
            lambda tt, x: (1 + eps) * problem.score(tt, x), problem, t, jax.random.key(10), 512, 128
        )
        return jnp.mean(values)

    # d/dε mean ε²|s|² = 2ε mean |s|².
    eps = 0.3
    grad = jax.grad(mean_gap)(eps)
    assert float(grad) == pytest.approx(2 * float(mean_gap(eps)) / eps, rel=1e-12, abs=0)
    batched = jax.vmap(mean_gap)(jnp.array([0.1, 0.3]))
    np.testing.assert_allclose(batched, [mean_gap(0.1), mean_gap(0.3)], rtol=1e-12, atol=0)


def test_coverage_fast():
    problem = vp_gmm_2d()
    eps, t = 0.2, 0.5
    truth = eps**2 * float(problem.fisher_information(t))
    score = lambda tt, x: (1 + eps) * problem.score(tt, x)  # noqa: E731
    covered = 0
    for seed in range(50):
        (est,) = score_gap(score, problem, (t,), n_samples=2048, key=jax.random.key(seed))
        assert math.isfinite(est.stderr), est.reason  # an infinite interval would flatter
        covered += abs(est.estimate - truth) <= 1.959964 * est.stderr
    assert covered >= 41


# --- Estimate: tails, NaNs, certificates ---------------------------------------------------


@pytest.mark.parametrize(("t", "min_fired", "max_fired"), [(0.0, 16, 20), (0.5, 0, 0)])
def test_tail_diagnostic_bkw(t, min_fired, max_fired):
    # Measured firing rates at n = 4096 (200 seeds): 94% at t = 0, 0% at t = 0.5
    # (verify._estimate). Over these 20 fixed seeds we require ≥ 16 at t = 0
    # (P[Binomial(20, 0.94) ≤ 15] ≈ 0.01) and none at t = 0.5.
    problem = landau_bkw_2d()
    fired = 0
    for seed in range(20):
        (est,) = hyvarinen_gap(
            problem.score, problem, (t,), n_samples=4096, key=jax.random.key(100 + seed)
        )
        fired += est.tail_fired
        if est.tail_fired:
            assert est.stderr == math.inf
            assert "heavy tail" in est.reason
            check = est.to_check("hyvarinen_gap", units="1", long_name="Hyvärinen gap")
            assert check.upper == math.inf
            assert check.lower == -math.inf
        else:
            assert math.isfinite(est.stderr)
            assert est.reason == ""
    assert min_fired <= fired <= max_fired


def test_tail_diagnostic_light_and_heavy_synthetic():
    rng = np.random.default_rng(0)
    assert tail_diagnostics(rng.normal(size=4096))[0] < 0.25
    assert tail_diagnostics(rng.standard_cauchy(size=4096))[0] > 0.25
    assert math.isnan(tail_diagnostics(rng.normal(size=10))[0])
    assert tail_diagnostics(np.ones(100))[0] == 0.0


def test_summarise_and_to_check():
    rng = np.random.default_rng(1)
    values = rng.normal(loc=2.0, size=1000)
    est = summarise(values, formula_id="test", normaliser="none")
    assert est.estimate == pytest.approx(values.mean(), rel=1e-15, abs=0)
    assert est.stderr == pytest.approx(values.std(ddof=1) / math.sqrt(1000), rel=1e-12, abs=0)
    assert est.sample_variance == pytest.approx(values.var(ddof=1), rel=1e-12, abs=0)
    assert est.evidence is Evidence.STATISTICAL
    assert est.interval_method is IntervalMethod.NORMAL
    # Invariant to permuting the samples.
    permuted = summarise(rng.permutation(values), formula_id="test")
    assert permuted.estimate == pytest.approx(est.estimate, rel=1e-14, abs=0)
    assert permuted.stderr == pytest.approx(est.stderr, rel=1e-12, abs=0)
    series = [est, est.scaled(2.0, normaliser="none")]
    check = estimates_to_check("gap", series, units="1", long_name="gap")
    assert isinstance(check, CheckResult)
    np.testing.assert_allclose(check.estimate, [est.estimate, est.estimate / 2], rtol=1e-15, atol=0)
    assert check.formula_id == "test"
    with pytest.raises(ValueError, match="normaliser"):
        estimates_to_check(
            "gap", [est, est.scaled(2.0, normaliser="x")], units="1", long_name="gap"
        )
    with pytest.raises(ValueError, match="at least 2"):
        summarise([1.0], formula_id="test")
