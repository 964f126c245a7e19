"""Exact and Hutchinson divergences (verify._divergence).

Tolerances: algebraic identities in float64 to 1e-12 (a few ulps of d² products);
Monte Carlo means and variances to 5 standard errors, the standard error of a sample
variance being the sample standard deviation of the squared deviations over √M.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from solvers import vp_gmm_2d
from verify._divergence import (
    divergence_exact,
    divergence_hutchinson,
    divergence_probes,
    rademacher_probes,
    rademacher_variance,
)

A = jnp.array([[1.0, 2.0, -0.5], [0.3, -1.5, 0.7], [1.2, -0.4, 2.5]])
X0 = jnp.array([0.3, -0.2, 0.9])


def linear(x):
    return A @ x


def nonlinear(x):
    return jnp.tanh(A @ x) + x**3


def test_exact_linear_and_nonlinear():
    assert float(divergence_exact(linear, X0)) == pytest.approx(
        float(jnp.trace(A)), rel=1e-14, abs=1e-14
    )
    # ∇·(tanh(Ax) + x³) = Σ_i (1 − tanh²((Ax)_i)) A_ii + 3 x_i².
    expected = jnp.sum((1 - jnp.tanh(A @ X0) ** 2) * jnp.diag(A) + 3 * X0**2)
    assert float(divergence_exact(nonlinear, X0)) == pytest.approx(
        float(expected), rel=1e-12, abs=1e-12
    )


def test_exact_matches_gmm_closed_form():
    problem = vp_gmm_2d()
    x = problem.sample(0.3, 16, key=jax.random.key(0))
    auto = jax.jit(jax.vmap(lambda xi: divergence_exact(lambda y: problem.score(0.3, y), xi)))(x)
    closed = jax.jit(jax.vmap(lambda xi: problem.score_divergence(0.3, xi)))(x)
    np.testing.assert_allclose(auto, closed, rtol=1e-10, atol=1e-10)


def test_rademacher_exact_for_diagonal_jacobian():
    # εᵀDε = tr D for every ±1 probe: zero variance, matching the formula.
    diag = lambda x: jnp.array([2.0, -1.0, 0.5]) * x  # noqa: E731
    estimate, variance = divergence_hutchinson(diag, X0, key=jax.random.key(1), num_probes=4)
    assert float(estimate) == pytest.approx(1.5, rel=1e-14, abs=1e-14)
    assert float(variance) == pytest.approx(0.0, rel=0, abs=1e-14)
    assert float(rademacher_variance(jnp.diag(jnp.array([2.0, -1.0, 0.5])))) == 0.0


def test_hutchinson_mean_and_variance_match_theory():
    theory = float(rademacher_variance(A))
    assert theory == pytest.approx(
        2 * (float(jnp.sum((0.5 * (A + A.T)) ** 2)) - float(jnp.sum(jnp.diag(A) ** 2)))
    )
    m = 20000
    probes = rademacher_probes(m, 3, jnp.float64, key=jax.random.key(2))
    values = np.asarray(jax.jit(lambda p: divergence_probes(linear, X0, p))(probes))
    se_mean = values.std(ddof=1) / math.sqrt(m)
    assert abs(values.mean() - float(jnp.trace(A))) < 5 * se_mean
    squared = (values - values.mean()) ** 2
    se_var = squared.std(ddof=1) / math.sqrt(m)
    assert abs(values.var(ddof=1) - theory) < 5 * se_var
    # The returned per-call probe variance is unbiased for the single-probe variance.
    keys = jax.random.split(jax.random.key(3), 2000)
    est, var = jax.jit(jax.vmap(lambda k: divergence_hutchinson(linear, X0, key=k, num_probes=8)))(
        keys
    )
    var = np.asarray(var)
    assert abs(var.mean() - theory) < 5 * var.std(ddof=1) / math.sqrt(var.size)
    est = np.asarray(est)
    assert abs(est.var(ddof=1) - theory / 8) < 5 * ((est - est.mean()) ** 2).std() / math.sqrt(
        est.size
    )


def test_single_probe_variance_is_nan():
    _, variance = divergence_hutchinson(linear, X0, key=jax.random.key(0), num_probes=1)
    assert math.isnan(float(variance))


def test_key_determinism():
    a = divergence_hutchinson(nonlinear, X0, key=jax.random.key(5), num_probes=3)
    b = divergence_hutchinson(nonlinear, X0, key=jax.random.key(5), num_probes=3)
    c = divergence_hutchinson(nonlinear, X0, key=jax.random.key(6), num_probes=3)
    assert float(a[0]) == float(b[0])
    assert float(a[0]) != float(c[0])


def test_jit_vmap_grad():
    xs = jax.random.normal(jax.random.key(7), (5, 3))
    batched = jax.vmap(lambda x: divergence_exact(nonlinear, x))(xs)
    looped = jnp.stack([divergence_exact(nonlinear, x) for x in xs])
    np.testing.assert_allclose(batched, looped, rtol=1e-14, atol=1e-14)
    jitted = jax.jit(lambda x: divergence_exact(nonlinear, x))(X0)
    assert float(jitted) == pytest.approx(
        float(divergence_exact(nonlinear, X0)), rel=1e-14, abs=1e-14
    )
    # ∇(∇·F) for F = x³: 6x.
    grad = jax.grad(lambda x: divergence_exact(lambda y: y**3, x))(X0)
    np.testing.assert_allclose(grad, 6 * X0, rtol=1e-14, atol=1e-14)
    check_grads(lambda x: divergence_exact(nonlinear, x), (X0,), order=1, modes=("fwd", "rev"))
    key = jax.random.key(8)
    check_grads(
        lambda x: divergence_hutchinson(nonlinear, x, key=key, num_probes=2)[0],
        (X0,),
        order=1,
        modes=("fwd", "rev"),
    )


def test_shape_error_mentions_vmap():
    with pytest.raises(ValueError, match="vmap"):
        divergence_exact(linear, jnp.ones((2, 3)))
