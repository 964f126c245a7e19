"""Flow-map checks of Landau models (verify._landau_flow).

Tolerances and their reasons:

* Monte Carlo comparisons use 5 standard errors (two-sided miss probability 6e-7 under the
  CLT; fixed seeds make the tests deterministic). Where the heavy-tail guard fired
  (stderr = inf, light but skewed integrands at N = 2000 can fire it), the comparison uses
  the plain CLT scale √(sample_variance/N), which the Estimate keeps.
* Momentum intervals are the Chebyshev 95% intervals the certificate rebuilds,
  |m̂| ± stderr/√0.05.
* Exact flow against exact characteristics: both sides evaluate the same Newton iteration,
  so they differ by a few ulps of |X| ≤ 10: mean |ΔX|²/E₀ ≤ (1e-14)² = 1e-28.
* Exact flow residual against the floor: the same particles, and ∂_tX by jvp equals the
  exact velocity to ≤ 5e-16 (tests/solvers/test_landau_problem.py), so each |R_i|² differs
  from its floor term by ≤ 2|R_i|·5e-16 with |R_i| ~ 1e-2: rtol 1e-10.
* Known perturbations have exactly known expectations (derived at each test).
* The influence term g_k = ∂F̂/∂w_k against a direct O(N²) sum: the same expression
  summed in another order, rtol 1e-10 (the moment expansion of the kernel cancels terms of
  size |x|²|s| ~ 1e2 against results ~1e-2: ~1e4 ulps).
"""

from __future__ import annotations

import json
import math
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from certificates import IntervalMethod, build_interval
from solvers import landau_bkw_2d, landau_coulomb_2d
from verify._landau_flow import (
    FORMULA_ENERGY,
    FORMULA_ENTROPY_RATE,
    FORMULA_FLOW_ERROR,
    FORMULA_FLOW_RESIDUAL,
    FORMULA_MOMENTUM,
    _residual_and_influence,
    flow_checks,
)

BKW = landau_bkw_2d()
N = 2000
TIMES = (0.5, 1.0, 2.0, 5.0)
CONFIDENCE = 0.95


def exact_flow(t, x0):
    return BKW.characteristic(BKW.t_min, x0, t)


# Time is traced: this flow may be traced once for all times and calls (a static time would
# retrace it per time and raise).
TRACED_FLOW = eqx.debug.assert_max_traces(exact_flow, max_traces=1)


def _interval(e):
    return build_interval(
        e.estimate,
        e.stderr,
        e.interval_method,
        CONFIDENCE,
        stored_lower=math.nan,
        stored_upper=math.nan,
        stored_confidence=CONFIDENCE,
    )


def _mc_scale(e):
    """CLT standard error, also when the heavy-tail guard replaced stderr by +inf."""
    return math.sqrt(e.sample_variance / e.n_samples)


def _run(flow, score=BKW.score, times=TIMES, problem=BKW, n=N, seed=0, **kwargs):
    return flow_checks(
        problem,
        flow_fn=flow,
        score_fn=score,
        times=times,
        n_particles=n,
        key=jax.random.key(seed),
        **kwargs,
    )


@pytest.fixture(scope="module")
def exact():
    return _run(TRACED_FLOW)


def test_exact_flow_conservation(exact):
    for e in exact.momentum_drift:
        assert e.formula_id == FORMULA_MOMENTUM
        assert e.interval_method is IntervalMethod.CHEBYSHEV
        assert math.isfinite(e.stderr), e.reason
        assert _interval(e).lower <= 0.0
    for e in exact.energy_drift:
        assert e.formula_id == FORMULA_ENERGY
        assert e.normaliser == "initial_second_moment"
        assert abs(e.estimate) <= 5 * _mc_scale(e)
    assert exact.parameters["initial_second_moment"] == 2.0  # E|v|² = d for BKW


def test_exact_flow_entropy_rate(exact):
    for e, reference in zip(exact.entropy_rate, exact.entropy_rate_exact, strict=True):
        assert e.formula_id == FORMULA_ENTROPY_RATE
        assert abs(e.estimate - reference) <= 5 * _mc_scale(e)
        assert math.isfinite(e.stderr) or "heavy tail" in e.reason
    np.testing.assert_allclose(
        exact.entropy_rate_exact,
        [float(BKW.entropy_rate(jnp.asarray(t))) for t in TIMES],
        rtol=0,
        atol=0,
    )
    # MATH.md §2.6 table: dH/dt at t = 0.5, 1, 2, 5 (printed to 5 digits)
    np.testing.assert_allclose(
        exact.entropy_rate_exact, [-6.1826e-2, -3.7589e-2, -1.6252e-2, -2.1164e-3], rtol=1e-4
    )


def test_exact_flow_error_and_residual_floor(exact):
    for e in exact.flow_error:
        assert e.formula_id == FORMULA_FLOW_ERROR
        assert 0.0 <= e.estimate <= 1e-28
    assert len(exact.residual_floor) == len(TIMES)
    for e, rel, floor in zip(
        exact.flow_residual, exact.flow_residual_relative, exact.residual_floor, strict=True
    ):
        assert e.formula_id == FORMULA_FLOW_RESIDUAL
        assert floor > 0
        np.testing.assert_allclose(e.estimate, floor, rtol=1e-10, atol=0)
        # the exact velocity explains all but the finite-N part: U − U_N is O(N^{-1/2})
        # relative to U (≈ 11/N × E|U|² measured at t = 1), far below 5% at N = 2000
        assert rel.normaliser == "mean_squared_velocity"
        assert rel.eps == exact.parameters["eps"]
        assert 0 < rel.estimate < 0.05


class LeakyFlow(eqx.Module):
    """X = (1 − a t) X*: an equinox model whose array leaf a must be traced, not hashed."""

    rate: jax.Array
    traces: ClassVar[list[int]] = []

    def flow(self, t, x0):
        self.traces.append(1)
        return (1.0 - self.rate * t) * exact_flow(t, x0)


def test_energy_leak_detected():
    """X = (1 − 0.05t) X*: E|X|²/E₀ − 1 = (1 − 0.05t)² − 1 (E|X*_t|² = E₀ exactly)."""
    checks = _run(LeakyFlow(jnp.asarray(0.05)).flow, score=None)
    for t, e in zip(TIMES, checks.energy_drift, strict=True):
        expected = (1.0 - 0.05 * t) ** 2 - 1.0
        assert abs(e.estimate - expected) <= 5 * _mc_scale(e)
        assert e.estimate + 5 * _mc_scale(e) < 0.0
    assert checks.flow_residual is None
    assert checks.flow_residual_relative is None
    assert checks.residual_floor is None
    assert checks.entropy_rate is None
    assert checks.parameters["score_role"] is False
    # a new array value reuses the compiled checks (one trace) and is not baked in
    no_leak = _run(LeakyFlow(jnp.asarray(0.0)).flow, score=None, times=TIMES[:1])
    assert len(LeakyFlow.traces) == 1
    assert abs(no_leak.energy_drift[0].estimate) <= 5 * _mc_scale(no_leak.energy_drift[0])


def test_momentum_drift_detected():
    """X = X* + c t: mean displacement shifts by c t; |X − X*|²/E₀ = |c|² t²/E₀ exactly."""
    c = jnp.asarray([0.03, -0.04])  # |c| = 0.05
    checks = _run(lambda t, x0: exact_flow(t, x0) + c * t, score=None)
    for t, e in zip(TIMES, checks.momentum_drift, strict=True):
        interval = _interval(e)
        assert interval.lower <= 0.05 * t <= interval.upper
        assert interval.lower > 0.0
    for t, e in zip(TIMES, checks.flow_error, strict=True):
        np.testing.assert_allclose(e.estimate, (0.05 * t) ** 2 / 2.0, rtol=1e-10, atol=0)


def test_time_shifted_flow_detected(exact):
    """X = X*(t + 0.5): a wrong flow with the right score; residual and flow error grow."""
    times = TIMES[:3]
    checks = _run(lambda t, x0: exact_flow(t + 0.5, x0), times=times)
    for e, floor in zip(checks.flow_residual, checks.residual_floor, strict=True):
        # the lower end of a 3-standard-error interval above twice the exact model's
        # residual (whose own spread is about its size, see the validation study)
        assert e.estimate - 3 * e.stderr > 2 * floor, (e, floor)
    for e in checks.flow_error:
        assert e.estimate > 5 * _mc_scale(e)
        assert e.estimate > 1e-5
    np.testing.assert_allclose(checks.residual_floor, exact.residual_floor[:3], rtol=0, atol=0)


def test_coulomb_identity_flow():
    problem = landau_coulomb_2d()
    checks = _run(
        lambda t, x0: x0,
        score=lambda t, x: problem.initial_score(x),
        times=(1.0, 5.0),
        problem=problem,
        n=300,
    )
    for e in checks.momentum_drift + checks.energy_drift + checks.entropy_rate:
        assert (e.estimate, e.stderr) == (0.0, 0.0)  # Ẋ = 0, X = V⁰ exactly
    for e in checks.flow_residual:
        assert math.isfinite(e.estimate)
        assert math.isfinite(e.stderr)
        assert e.estimate > 0  # Ẋ = 0 but U_N[s₀] ≠ 0: f₀ is not an equilibrium
    assert checks.flow_error is None
    assert checks.residual_floor is None
    assert checks.entropy_rate_exact is None
    assert checks.parameters["kernel"]["gamma"] == -3.0
    assert checks.parameters["initial_second_moment"] == 5.0
    assert json.loads(json.dumps(checks.parameters)) == checks.parameters


@pytest.mark.parametrize("gamma", [0.0, -3.0])
def test_influence_matches_direct_sum(gamma):
    """g_k = ∂F̂/∂w_k = (2/N) Σ_i R_i·A(X_i − X_k)(s_i − s_k), with row blocks and padding."""
    n = 50
    problem = landau_coulomb_2d()
    kernel = type(problem.kernel)(gamma=gamma, C_gamma=1 / 16, block_size=8)
    x = problem.sample_initial(n, key=jax.random.key(5))
    s = jax.vmap(problem.initial_score)(x)
    xdot = 0.01 * jax.random.normal(jax.random.key(6), x.shape)
    h, g, u = _residual_and_influence(kernel, x, xdot, s, 16)  # 16 ∤ 50: padded block

    @jax.jit
    def direct(x, s, xdot):
        a = jax.vmap(jax.vmap(kernel.matrix))(x[:, None] - x[None])
        diff = s[:, None, :] - s[None, :, :]  # s_i − s_k
        u = -jnp.einsum("ikab,ikb->ia", a, diff) / n
        r = xdot - u
        return u, r, 2.0 / n * jnp.einsum("ia,ikab,ikb->k", r, a, diff)

    u_direct, r, g_direct = direct(x, s, xdot)
    np.testing.assert_allclose(u, u_direct, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(h, jnp.sum(r * r, axis=1), rtol=1e-10, atol=1e-18)
    np.testing.assert_allclose(g, g_direct, rtol=1e-10, atol=1e-18)


def test_same_key_same_result(exact):
    again = _run(TRACED_FLOW, times=TIMES[:1])
    assert again.flow_residual[0] == exact.flow_residual[0]
    assert again.momentum_drift[0] == exact.momentum_drift[0]
    assert again.energy_drift[0] == exact.energy_drift[0]
    other = _run(TRACED_FLOW, times=TIMES[:1], seed=1)
    assert other.energy_drift[0].estimate != exact.energy_drift[0].estimate


def test_nan_flow_gives_nan_with_reason():
    checks = _run(lambda t, x0: x0 * jnp.nan, times=(1.0,))
    for e in checks.flow_residual + checks.momentum_drift + checks.energy_drift + checks.flow_error:
        assert math.isnan(e.estimate)
        assert "not finite" in e.reason


def test_invalid_arguments():
    with pytest.raises(ValueError, match="lie in"):
        _run(exact_flow, times=(-1.0,))
    with pytest.raises(ValueError, match="at least 2"):
        _run(exact_flow, times=(1.0,), n=1)
    with pytest.raises(ValueError, match="vmap"):
        _run(lambda t, x0: x0[None], times=(1.0,), score=None)
