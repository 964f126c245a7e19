"""Mean-square Fokker–Planck residuals (verify._fp_residual).

Tolerances: for the exact score / log-density every residual is a sum of terms that cancel
exactly; float64 leaves |R| ≤ 1e-9 · (term size) + 1e-12 (measured in
tests/solvers/test_linear_sde_gmm.py), with term sizes ≤ 1e2 on these problems at these
times, so mean squares ≤ (1e-7)² = 1e-14. Monte Carlo comparisons: 5 standard errors.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from solvers import landau_bkw_2d, ou_gmm_2d, vp_gmm_2d
from verify._fp_residual import (
    fp_log_density_residual,
    fp_score_residual,
    log_density_residual,
    score_residual,
)
from verify._score_gap import DEFAULT_PROPOSAL

N = 1024
N_POSITIVE = 4096  # squared residuals are skewed: at n = 1024 the tail diagnostic can fire
TIMES = (0.5, 1.0)
PROBLEMS = {"vp-gmm-2d": vp_gmm_2d, "ou-gmm-2d": ou_gmm_2d, "landau-bkw-2d": landau_bkw_2d}


@pytest.fixture(scope="module", params=sorted(PROBLEMS))
def problem(request):
    return PROBLEMS[request.param]()


def test_exact_residuals_vanish(problem):
    key = jax.random.key(0)
    # An unnormalised log-density u = log p + c(t): the x-independent c'(t) is removed.
    unnormalised = lambda t, x: problem.log_density(t, x) + 3.0 * t**2  # noqa: E731
    for proposal, formula in (
        (None, "fp-score-residual-ms"),
        (DEFAULT_PROPOSAL, "fp-score-residual-ms-defensive-is"),
    ):
        for est in fp_score_residual(
            problem.score, problem, TIMES, n_samples=N, key=key, proposal=proposal
        ):
            assert 0.0 <= est.estimate <= 1e-14
            assert est.formula_id == formula
            assert not est.tail_fired
    for est in fp_log_density_residual(unnormalised, problem, TIMES, n_samples=N, key=key):
        assert 0.0 <= est.estimate <= 1e-14
        assert est.formula_id == "fp-log-residual-var"


def test_time_shifted_score_on_vp_has_positive_residual():
    # VP has a time-dependent β(t), so p_{t+δ} does not solve the FP equation at t.
    # (OU and BKW are autonomous: a time shift is again an exact solution, residual 0.)
    problem = vp_gmm_2d()
    key = jax.random.key(1)
    late_score = lambda t, x: problem.score(t + 0.05, x)  # noqa: E731
    late_log = lambda t, x: problem.log_density(t + 0.05, x)  # noqa: E731
    for est in fp_score_residual(late_score, problem, TIMES, n_samples=N_POSITIVE, key=key):
        assert est.estimate > 10 * est.stderr > 0
    for est in fp_log_density_residual(late_log, problem, TIMES, n_samples=N_POSITIVE, key=key):
        assert est.estimate > 10 * est.stderr > 0


def test_scaled_score_residual_matches_single_sample_function():
    problem = ou_gmm_2d()
    score = lambda t, x: 1.2 * problem.score(t, x)  # noqa: E731
    t = jnp.asarray(0.5)
    # Same samples as the estimator (its sample key is the first split of the time key).
    (time_key,) = jax.random.split(jax.random.key(2), 1)
    sample_key, _ = jax.random.split(time_key)
    residual = jax.jit(jax.vmap(lambda xi: score_residual(score, problem, t, xi)))
    exact_draws = problem.sample(t, N_POSITIVE, key=sample_key)
    weighted_draws, weights = DEFAULT_PROPOSAL.sample_weighted(
        problem, t, N_POSITIVE, key=sample_key
    )
    for proposal, x, w in (
        (None, exact_draws, 1.0),
        (DEFAULT_PROPOSAL, weighted_draws, weights),
    ):
        (est,) = fp_score_residual(
            score, problem, (0.5,), n_samples=N_POSITIVE, key=jax.random.key(2), proposal=proposal
        )
        assert est.estimate > 10 * est.stderr > 0
        expected = float(jnp.mean(w * jnp.sum(residual(x) ** 2, axis=-1)))
        assert est.estimate == pytest.approx(expected, rel=1e-12, abs=0)


def test_hutchinson_two_probe_estimator_is_unbiased():
    problem = vp_gmm_2d()
    key = jax.random.key(3)
    late = lambda t, x: problem.score(t + 0.05, x)  # noqa: E731
    (exact,) = fp_score_residual(late, problem, (0.5,), n_samples=N, key=key)
    (hutch,) = fp_score_residual(late, problem, (0.5,), n_samples=N, key=key, num_probes=2)
    # Same samples: the difference is probe noise only, which hutch.stderr includes.
    assert abs(hutch.estimate - exact.estimate) <= 5 * hutch.stderr
    # Coverage of the exact score's zero residual: tests/validation/test_estimator_coverage.py.
    late_log = lambda t, x: problem.log_density(t + 0.05, x)  # noqa: E731
    (exact,) = fp_log_density_residual(late_log, problem, (0.5,), n_samples=N, key=key)
    (hutch,) = fp_log_density_residual(
        late_log, problem, (0.5,), n_samples=N, key=key, num_probes=2
    )
    assert abs(hutch.estimate - exact.estimate) <= 5 * hutch.stderr


def test_nan_and_keys():
    problem = vp_gmm_2d()
    bad = lambda t, x: jnp.where(x[0] > 1.0, jnp.nan, 1.0) * problem.score(t, x)  # noqa: E731
    (est,) = fp_score_residual(bad, problem, (0.5,), n_samples=N, key=jax.random.key(4))
    assert math.isnan(est.estimate)
    assert "not finite" in est.reason
    # R involves only derivatives of u, so the NaN must reach them (a product, not a where).
    bad_log = lambda t, x: jnp.where(x[0] > 1.0, jnp.nan, 1.0) * problem.log_density(t, x)  # noqa: E731
    (est,) = fp_log_density_residual(bad_log, problem, (0.5,), n_samples=N, key=jax.random.key(4))
    assert math.isnan(est.estimate)
    assert "not finite" in est.reason
    assert not est.reason.startswith(f"{N} of")  # only the bad samples are counted
    score = lambda t, x: 1.1 * problem.score(t, x)  # noqa: E731
    a = fp_score_residual(score, problem, TIMES, n_samples=N, key=jax.random.key(5))
    b = fp_score_residual(score, problem, TIMES, n_samples=N, key=jax.random.key(5))
    c = fp_score_residual(score, problem, TIMES, n_samples=N, key=jax.random.key(6))
    assert [e.estimate for e in a] == [e.estimate for e in b]
    assert all(x.estimate != y.estimate for x, y in zip(a, c, strict=True))


def test_single_sample_residuals_jit_vmap_grad():
    problem = vp_gmm_2d()
    t = jnp.asarray(0.3)
    xs = problem.sample(t, 4, key=jax.random.key(7))
    score = lambda tt, x: 1.1 * problem.score(tt, x)  # noqa: E731
    single = jax.jit(lambda x: score_residual(score, problem, t, x))
    batched = jax.jit(jax.vmap(lambda x: score_residual(score, problem, t, x)))(xs)
    looped = jnp.stack([single(x) for x in xs])
    np.testing.assert_allclose(batched, looped, rtol=1e-12, atol=1e-12)
    u = lambda tt, x: problem.log_density(tt, x)  # noqa: E731
    logs = jax.jit(jax.vmap(lambda x: log_density_residual(u, problem, t, x)))(xs)
    np.testing.assert_allclose(logs, 0.0, rtol=0, atol=1e-9)

    @jax.jit
    def squared(eps):
        s = lambda tt, x: (1 + eps) * problem.score(tt, x)  # noqa: E731
        return jnp.sum(score_residual(s, problem, t, xs[0]) ** 2)

    # Forward-mode derivative against a central difference (error O(h²) ≈ 1e-8 relative).
    h = 1e-4
    _, tangent = jax.jvp(squared, (0.1,), (1.0,))
    central = (squared(0.1 + h) - squared(0.1 - h)) / (2 * h)
    assert float(tangent) == pytest.approx(float(central), rel=1e-6, abs=1e-10)
    # At ε = 0 the residual vanishes, so d|R|²/dε = 2R·∂R/∂ε = 0.
    assert abs(float(jax.grad(squared)(0.0))) <= 1e-9


def test_refuses_problem_without_dynamics():
    class Fake:
        pass

    with pytest.raises(TypeError, match="Fokker"):
        fp_score_residual(lambda t, x: x, Fake(), (0.5,), n_samples=8, key=jax.random.key(0))


@pytest.mark.parametrize("form", ["score", "log_density"])
def test_relative_residual_is_zero_for_exact_and_scales_like_eps_squared(form):
    # R is affine-quadratic in ε for s = (1 + ε)∇log p (u = (1 + ε) log p): R = εA + ε²B,
    # so E|R|²/E c grows like ε² for small ε; ε = 0.01 → 0.02 gives a ratio 4 up to O(ε)
    # (≤ 5% here) and the Monte Carlo noise (the same key: common samples, ≪ 1%).
    from verify._fp_residual import fp_residuals

    problem = vp_gmm_2d()
    key = jax.random.key(2)
    exact = problem.score if form == "score" else problem.log_density

    def scaled(eps):
        return lambda t, x: (1.0 + eps) * exact(t, x)

    absolute, relative = fp_residuals(exact, problem, TIMES, form=form, n_samples=N, key=key)
    for a, r in zip(absolute, relative, strict=True):
        assert 0.0 <= a.estimate <= 1e-14
        assert abs(r.estimate) <= 1e-14
        assert r.normaliser == "fp_term_scale"
        assert r.formula_id.endswith("-relative")
    if form == "log_density":
        # (1 + ε) log p makes R contain ε log p itself (unbounded): its square is heavy
        # tailed and the tail guard rightly withholds an interval; the ε² law is checked on
        # the score form, whose perturbation terms are light-tailed.
        return
    small = fp_residuals(scaled(0.01), problem, TIMES, form=form, n_samples=N_POSITIVE, key=key)
    large = fp_residuals(scaled(0.02), problem, TIMES, form=form, n_samples=N_POSITIVE, key=key)
    for r1, r2 in zip(small[1], large[1], strict=True):
        assert r1.estimate > 5 * r1.stderr > 0
        assert r2.estimate / r1.estimate == pytest.approx(4.0, rel=0.05)
    # The absolute estimates are those of the single-form functions with the same key.
    single = fp_score_residual if form == "score" else fp_log_density_residual
    same = single(scaled(0.01), problem, TIMES, n_samples=N_POSITIVE, key=key)
    assert [e.estimate for e in same] == [e.estimate for e in small[0]]


def test_relative_log_residual_ignores_an_unnormalised_constant():
    # u = 0.8 log p + C t: the x-constant C (in ∂_t u) leaves Var_x R unchanged and must not
    # shrink the normaliser of the relative form either (found in review: without centring
    # ∂_t u, C = 1e3 divided the relative residual by ~2500).
    from verify._fp_residual import fp_residuals

    problem = vp_gmm_2d()
    key = jax.random.key(5)
    results = [
        fp_residuals(
            lambda t, x, c=c: 0.8 * problem.log_density(t, x) + c * t,
            problem,
            (0.5,),
            form="log_density",
            n_samples=512,
            key=key,
        )
        for c in (0.0, 1e3)
    ]
    (a0,), (r0,) = results[0]
    (a1,), (r1,) = results[1]
    # Same samples: identical up to round-off in ∂_t u (1e3 · 1e-16 relative).
    assert a1.estimate == pytest.approx(a0.estimate, rel=1e-9, abs=0.0)
    assert r1.estimate == pytest.approx(r0.estimate, rel=1e-9, abs=0.0)
