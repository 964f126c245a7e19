"""Sample-gap certificate family (verify._sample_gap): two-sample statistics and generators.

Tolerances: closed-form checks use 5 standard errors (two-sided miss probability ≈ 6e-7
under the CLT; the seeds are fixed, so the tests are deterministic). Algebraic identities
(swapping x and y, reordering pairs, translating a sample) change only the order of
floating-point sums: a few ulps of the largest summand, so rtol = atol = 1e-12. The 95%
coverage itself is checked over 200 seeds in tests/validation/test_sample_gap_coverage.py.
"""

from __future__ import annotations

import dataclasses
import json
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jaxtyping import Array

from certificates import Evidence
from solvers import LinearSDEGMMProblem, vp_gmm_2d
from verify._estimate import Estimate
from verify._sample_gap import (
    ESTIMATES,
    FORMULA_ENERGY,
    FORMULA_MMD,
    FORMULA_SLICED_W2,
    SampleGapConfig,
    energy_distance_linear,
    energy_distance_linear_terms,
    generate_pf_ode_samples,
    generate_reverse_sde_samples,
    median_bandwidth,
    mmd2_linear,
    mmd2_linear_terms,
    sample_gap,
    sliced_w2,
)

Z = 5.0  # closed-form checks: 5 standard errors
IDENTITY = {"rtol": 1e-12, "atol": 1e-12}  # reordering of floating-point sums


def _gaussians(n, d, mean, sigma, *, key):
    return jnp.asarray(mean) + sigma * jax.random.normal(key, (n, d))


def _mmd2_gaussians(delta2: float, sigma: float, bw: float, d: int) -> float:
    # E k(X,Y) for X − Y ~ N(Δ, 2σ²I): (bw²/(bw²+2σ²))^{d/2} exp(−|Δ|²/(2(bw²+2σ²))).
    c = (bw**2 / (bw**2 + 2 * sigma**2)) ** (d / 2)
    return 2 * c * (1 - math.exp(-delta2 / (2 * (bw**2 + 2 * sigma**2))))


def _mean_abs_normal(m: float, s: float) -> float:
    """E|Z| for Z ~ N(m, s²)."""
    phi = 0.5 * (1 + math.erf(-m / s / math.sqrt(2)))  # Φ(−m/s)
    return s * math.sqrt(2 / math.pi) * math.exp(-(m**2) / (2 * s**2)) + m * (1 - 2 * phi)


def _covers(est: Estimate, truth: float, z: float = Z) -> bool:
    return abs(est.estimate - truth) <= z * est.stderr


@pytest.mark.parametrize("delta", [0.0, 1.0])
def test_mmd2_closed_form(delta):
    n, d, sigma, bw = 20000, 2, 1.0, 1.0
    kx, ky = jax.random.split(jax.random.key(0))
    x = _gaussians(n, d, [0.0, 0.0], sigma, key=kx)
    y = _gaussians(n, d, [delta, 0.0], sigma, key=ky)
    est = mmd2_linear(x, y, bandwidth=bw)
    truth = _mmd2_gaussians(delta**2, sigma, bw, d)
    assert est.formula_id == FORMULA_MMD
    assert est.evidence == Evidence.STATISTICAL
    assert est.n_samples == n // 2
    assert not est.tail_fired
    assert _covers(est, truth), (est, truth)
    if delta:
        # truth 0.102 ≈ 20 stderr (measured stderr 0.005) at this n: 0 must be excluded.
        assert est.estimate > Z * est.stderr


@pytest.mark.parametrize("delta", [0.0, 1.0])
def test_mmd2_block_closed_form_and_smaller_variance(delta):
    from verify._sample_gap import FORMULA_MMD_BLOCK, block_size_for, mmd2_block

    n, d, sigma, bw = 8192, 2, 1.0, 1.0
    kx, ky = jax.random.split(jax.random.key(0))
    x = _gaussians(n, d, [0.0, 0.0], sigma, key=kx)
    y = _gaussians(n, d, [delta, 0.0], sigma, key=ky)
    block = mmd2_block(x, y, bandwidth=bw)
    linear = mmd2_linear(x, y, bandwidth=bw)
    truth = _mmd2_gaussians(delta**2, sigma, bw, d)
    assert block.formula_id == FORMULA_MMD_BLOCK
    assert block.n_samples == n // block_size_for(n) == 128
    assert _covers(block, truth), (block, truth)
    if delta:
        assert block.estimate > Z * block.stderr
    else:
        # Under P = Q a block U-statistic has variance O(B^-2) against O(1) for a pair:
        # the stderr ratio is ~ sqrt(B/2) = 4 for B = 64 (measured 4.6); 2 is a safe floor.
        assert linear.stderr > 2 * block.stderr


def test_mmd2_block_nan_and_bad_block():
    from verify._sample_gap import mmd2_block

    x = _gaussians(256, 2, [0.0, 0.0], 1.0, key=jax.random.key(3))
    y = x.at[5, 0].set(jnp.nan)
    est = mmd2_block(x, y, bandwidth=1.0)
    assert math.isnan(est.estimate)
    assert "not finite" in est.reason
    with pytest.raises(ValueError, match="block"):
        mmd2_block(x, x, bandwidth=1.0, block=200)


@pytest.mark.parametrize("mu", [0.0, 1.0])
def test_energy_distance_closed_form(mu):
    n = 20000
    kx, ky = jax.random.split(jax.random.key(1))
    x = _gaussians(n, 1, [mu], 1.0, key=kx)
    y = _gaussians(n, 1, [0.0], 1.0, key=ky)
    est = energy_distance_linear(x, y)
    # 2E|X − Y| − E|X − X'| − E|Y − Y'|, X − Y ~ N(μ, 2), X − X' ~ N(0, 2).
    truth = 2 * _mean_abs_normal(mu, math.sqrt(2)) - 2 * _mean_abs_normal(0.0, math.sqrt(2))
    assert est.formula_id == FORMULA_ENERGY
    assert est.n_samples == n // 2
    assert _covers(est, truth), (est, truth)
    if mu:
        assert est.estimate > Z * est.stderr


def test_odd_n_drops_last_sample():
    x = jax.random.normal(jax.random.key(2), (9, 2))
    y = x[::-1] + 0.3
    est = mmd2_linear(x, y, bandwidth=1.0)
    ref = mmd2_linear(x[:8], y[:8], bandwidth=1.0)
    assert est.n_samples == 4
    np.testing.assert_allclose(est.estimate, ref.estimate, rtol=0, atol=0)


def test_swap_and_pair_permutation_invariance():
    n = 512
    kx, ky, kp = jax.random.split(jax.random.key(3), 3)
    x = _gaussians(n, 2, [0.0, 0.0], 1.0, key=kx)
    y = _gaussians(n, 2, [0.7, 0.0], 1.3, key=ky)
    for stat in (
        lambda a, b: mmd2_linear(a, b, bandwidth=1.5),
        energy_distance_linear,
    ):
        forward, swapped = stat(x, y), stat(y, x)
        np.testing.assert_allclose(swapped.estimate, forward.estimate, **IDENTITY)
        np.testing.assert_allclose(swapped.stderr, forward.stderr, **IDENTITY)
        # Permuting whole pairs (x and y together) permutes the iid terms.
        order = jax.random.permutation(kp, n // 2)
        idx = jnp.stack([2 * order, 2 * order + 1], axis=1).ravel()
        permuted = stat(x[idx], y[idx])
        np.testing.assert_allclose(permuted.estimate, forward.estimate, **IDENTITY)
        np.testing.assert_allclose(permuted.stderr, forward.stderr, **IDENTITY)


def test_terms_jit_vmap_grad():
    keys = jax.random.split(jax.random.key(4), 6)
    xs = jax.random.normal(keys[0], (3, 64, 2))
    ys = jax.random.normal(keys[1], (3, 64, 2)) + 0.5
    for fn in (lambda a, b: mmd2_linear_terms(a, b, 1.2), energy_distance_linear_terms):
        eager = fn(xs[1], ys[1])
        np.testing.assert_allclose(jax.jit(fn)(xs[1], ys[1]), eager, **IDENTITY)
        np.testing.assert_allclose(jax.vmap(fn)(xs, ys)[1], eager, **IDENTITY)
    # d MMD²/d shift against central differences (check_grads' own tolerances).
    from jax.test_util import check_grads

    check_grads(
        jax.jit(lambda c: jnp.mean(mmd2_linear_terms(xs[0], ys[0] + c, 1.2))),
        (jnp.array([0.1, -0.2]),),
        order=1,
        modes=("rev",),
    )


def test_nonfinite_samples_give_nan_with_reason():
    x = jax.random.normal(jax.random.key(5), (64, 2))
    y = jax.random.normal(jax.random.key(6), (64, 2))
    # +inf would give a kernel value of 0, not NaN: it must still be caught.
    for bad in (jnp.nan, jnp.inf):
        y_bad = y.at[10, 1].set(bad)
        for est in (
            mmd2_linear(x, y_bad, bandwidth=1.0),
            energy_distance_linear(x, y_bad),
            sliced_w2(x, y_bad, num_projections=8, key=jax.random.key(7)),
        ):
            assert math.isnan(est.estimate)
            assert "not finite" in est.reason


def test_shape_errors():
    x = jnp.zeros((8, 2))
    with pytest.raises(ValueError, match="same shape"):
        mmd2_linear(x, jnp.zeros((8, 3)), bandwidth=1.0)
    with pytest.raises(ValueError, match=r"\(n, d\)"):
        energy_distance_linear(x[:, 0], x[:, 0])
    with pytest.raises(ValueError, match="bandwidth"):
        mmd2_linear(x, x, bandwidth=0.0)
    with pytest.raises(ValueError, match="num_projections"):
        sliced_w2(x, x, num_projections=1, key=jax.random.key(0))
    problem = vp_gmm_2d()
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        generate_pf_ode_samples(
            problem, problem.score, x[0], t_start=1.0, t_end=0.5, rtol=1e-6, atol=1e-6, block_size=4
        )


def test_sliced_w2_identities_and_closed_form():
    key_x, key_y, key_p = jax.random.split(jax.random.key(8), 3)
    n, shift = 2**14, jnp.array([1.0, 0.0])
    x = jax.random.normal(key_x, (n, 2))
    # Sorting commutes with translation: SW2²(x, x + c) = mean_k (θ_k·c)² exactly.
    est = sliced_w2(x, x + shift, num_projections=64, key=key_p)
    theta = jax.random.normal(key_p, (64, 2))
    theta = theta / jnp.linalg.norm(theta, axis=1, keepdims=True)
    np.testing.assert_allclose(est.estimate, jnp.mean((theta @ shift) ** 2), **IDENTITY)
    assert est.formula_id == FORMULA_SLICED_W2
    assert est.evidence == Evidence.EMPIRICAL
    assert est.n_samples == 64
    assert "biased upward" in est.reason
    assert sliced_w2(x, x, num_projections=4, key=key_p).estimate == 0.0
    # Two samples: SW2²(N(0, I), N(c, I)) = |c|²/d = 0.5. Beyond the direction noise
    # (5 stderr), the data's error is the cross term 2(θ·c)(x̄ − ȳ)·θ, sd ≤ 2√(2/n) ≈ 0.022
    # (5 sd: 0.11), plus the O(log log n / n) ≈ 1e-4 plug-in bias.
    y = jax.random.normal(key_y, (n, 2)) + shift
    est = sliced_w2(x, y, num_projections=64, key=key_p)
    assert abs(est.estimate - 0.5) <= Z * est.stderr + 0.11 + 1e-3


def test_median_bandwidth():
    # The first 2 + 2 points 0, 1, 3, 6: distances 1, 3, 6, 2, 5, 3 → median 3.
    x = jnp.array([[0.0], [1.0], [50.0]])
    y = jnp.array([[3.0], [6.0], [100.0]])
    assert median_bandwidth(x, y, max_points=4) == 3.0
    z = jax.random.normal(jax.random.key(9), (400, 2))
    bw = median_bandwidth(z[:200], z[200:], max_points=200)
    np.testing.assert_allclose(
        median_bandwidth(3 * z[:200], 3 * z[200:], max_points=200), 3 * bw, rtol=1e-12, atol=0
    )
    with pytest.raises(ValueError, match="median distance"):
        median_bandwidth(jnp.zeros((4, 2)), jnp.zeros((4, 2)))


TRACES: list[None] = []
"""Appended to by :class:`ScaledScore` when traced (Python runs at trace time only)."""


class ScaledScore(eqx.Module):
    """c ∇log p_t, NaN where x₀ > ``nan_above`` (inf: never); arrays, so one compilation."""

    problem: LinearSDEGMMProblem
    scale: Array
    nan_above: Array

    def __call__(self, t, x):
        TRACES.append(None)
        s = self.scale * self.problem.score(t, x)
        return jnp.where(x[0] > self.nan_above, jnp.nan, s)


class ScaledVelocity(eqx.Module):
    """PF-ODE velocity f − ½ g² c ∇log p_t."""

    problem: LinearSDEGMMProblem
    scale: Array

    def __call__(self, t, x):
        g2 = self.problem.diffusion(t) ** 2
        return self.problem.drift(t, x) - 0.5 * g2 * self.scale * self.problem.score(t, x)


# n = 1024 and 100 Euler–Maruyama steps keep the file fast. The scheme's weak error at 100
# steps on vp-gmm-2d is ≈ 1e-2 in the mean and covariance of p(t_min) (measured with 2^17
# samples; halving with the step, order 1), and MMD² and the energy distance are quadratic
# in the difference of laws, so its bias in them is O(1e-4), far below their stderr
# (≈ 0.02 and 0.1 here).
SMALL = SampleGapConfig(n_samples=1024, sde_steps=100)
STATISTICAL_KEYS = [k for k in ESTIMATES if "sliced" not in k]


def _model(problem, scale, nan_above=math.inf):
    return ScaledScore(problem, jnp.asarray(scale), jnp.asarray(nan_above))


@pytest.fixture(scope="module")
def exact_result():
    problem = vp_gmm_2d()
    return sample_gap(problem, score_fn=_model(problem, 1.0), config=SMALL, key=jax.random.key(0))


def test_exact_score_zero_gap(exact_result):
    result = exact_result
    assert set(result.estimates) == set(ESTIMATES)
    for name in STATISTICAL_KEYS:
        est = result.estimates[name]
        # 4 stderr (99.994% interval): over six intervals the CLT miss probability is
        # ≤ 4e-4; the 95% level itself is the slow coverage study's job.
        assert math.isfinite(est.stderr), (name, est.reason)
        assert abs(est.estimate) <= 4 * est.stderr, (name, est)
    # The plug-in sliced W2² of two exact 1024-point sets of p(t_min) is positive: mean
    # 0.014, max 0.054 over 100 seeds (measured); 0.1 leaves twice the maximum.
    for name in ("ode_sliced_w2", "sde_sliced_w2"):
        assert 0 <= result.estimates[name].estimate <= 0.1, name
    json.dumps(result.parameters)  # provenance is JSON-serialisable
    assert result.parameters["config"] == SMALL.parameters()
    assert result.parameters["sde"]["scheme"] == "euler-maruyama"
    assert result.parameters["sde"]["n_steps"] == 100
    assert result.parameters["t_start"] == 1.0
    assert result.parameters["t_end"] == 1e-3
    assert result.parameters["velocity_derived_from_score"]
    assert not result.parameters["score_derived_from_velocity"]
    assert result.parameters["bandwidth"] == result.bandwidth > 0


def test_same_key_same_result(exact_result):
    problem = vp_gmm_2d()
    again = sample_gap(problem, score_fn=_model(problem, 1.0), config=SMALL, key=jax.random.key(0))
    # NaN fields (tail diagnostics of the sliced W2) compare equal under assert_equal.
    np.testing.assert_equal(dataclasses.asdict(again), dataclasses.asdict(exact_result))
    other = sample_gap(problem, score_fn=_model(problem, 1.0), config=SMALL, key=jax.random.key(1))
    assert other.estimates["ode_mmd2"].estimate != exact_result.estimates["ode_mmd2"].estimate


def test_misscaled_score_gap_detected(exact_result):
    problem = vp_gmm_2d()
    traces = len(TRACES)
    result = sample_gap(problem, score_fn=_model(problem, 0.5), config=SMALL, key=jax.random.key(0))
    # s = ½∇log p leaves the samples far too spread out. Measured: every 95% interval
    # excludes 0 (smallest margin: sde_energy at 4.2 stderr); sliced W2² ≥ 2.5 (vs ≤ 0.1).
    for name in STATISTICAL_KEYS:
        est = result.estimates[name]
        assert est.estimate > 1.96 * est.stderr, (name, est)
    for name in ("ode_sliced_w2", "sde_sliced_w2"):
        assert result.estimates[name].estimate > 1.0, name
    # A new array inside the model reuses the compiled samplers: models are traced, not hashed.
    assert len(TRACES) == traces


def test_sde_generator_does_not_retrace_on_time(exact_result):
    problem = vp_gmm_2d()
    x0 = jax.random.normal(jax.random.key(10), (SMALL.n_samples, 2))
    traces = len(TRACES)
    ends = [
        generate_reverse_sde_samples(
            problem,
            _model(problem, 1.0),
            x0,
            key=jax.random.key(11),
            scheme=SMALL.sde_scheme,
            n_steps=SMALL.sde_steps,
            t_start=1.0,
            t_end=t_end,
            block_size=SMALL.block_size,
        )
        for t_end in (0.5, 0.3)
    ]
    assert len(TRACES) == traces  # the times are traced arguments
    assert ends[0].shape == (SMALL.n_samples, 2)
    assert not np.allclose(ends[0], ends[1])


def test_velocity_only_matches_score_only(exact_result):
    problem = vp_gmm_2d()
    velocity = ScaledVelocity(problem, jnp.asarray(1.0))
    result = sample_gap(problem, velocity_fn=velocity, config=SMALL, key=jax.random.key(0))
    assert result.parameters["score_derived_from_velocity"]
    assert result.parameters["sde"]["score"] == "2 (f - velocity_fn) / g^2"
    # Same key, same start samples and noise: only round-off differs (s = 2(f − v)/g²
    # loses a few ulps of |f|/g² ≲ 1e2 per step); measured differences ≲ 1e-12.
    for name, est in result.estimates.items():
        ref = exact_result.estimates[name]
        np.testing.assert_allclose(est.estimate, ref.estimate, rtol=1e-8, atol=1e-10)


def test_nan_model_gives_nan_with_reason():
    problem = vp_gmm_2d()
    result = sample_gap(
        problem,
        score_fn=_model(problem, 1.0, nan_above=2.5),
        config=SMALL,
        key=jax.random.key(0),
    )
    for name, est in result.estimates.items():
        assert math.isnan(est.estimate), name
        assert "samples are not finite" in est.reason, (name, est.reason)


def test_config_validation():
    with pytest.raises(ValueError, match="sde_scheme"):
        SampleGapConfig(sde_scheme="rk4")
    with pytest.raises(ValueError, match="n_samples"):
        SampleGapConfig(n_samples=2)
    with pytest.raises(ValueError, match="bandwidth"):
        SampleGapConfig(bandwidth=-1.0)
    with pytest.raises(ValueError, match="score_fn, velocity_fn"):
        sample_gap(vp_gmm_2d(), config=SMALL, key=jax.random.key(0))
