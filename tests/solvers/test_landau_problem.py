"""Landau problem capabilities: AbstractLandauProblem and AbstractExactLandauProblem.

Tolerances: identities between closed forms (``initial_score`` against ``jax.grad`` of
``initial_log_density``) hold to a few ulps times the size of the terms (|x| ≤ 6, scores
≤ 10): rtol 1e-12, atol 1e-13. Monte Carlo moments use 5 standard errors (two-sided miss
probability 6e-7 under the CLT; fixed seeds make the tests deterministic). The time
derivative of the exact characteristic: ``jax.jvp`` through the Newton iteration against the
exact velocity U = −λ(s + x) at the end point (Newton's fixed point has zero derivative in
the iterate, so the forward-mode tangent converges with it: measured ≤ 5e-16 absolute for
|U| ≤ 0.15, atol 1e-13 allows ~200 ulps); against a central difference with h = 1e-5, whose
error is h²|X'''|/6 + ε|X|/h ≈ 1e-11 + 1e-10 (|X| ≤ 6): atol 1e-9.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from solvers import (
    AbstractExactLandauProblem,
    AbstractExactMarginals,
    AbstractLandauProblem,
    LandauKernel,
    landau_bkw_2d,
    landau_bkw_3d,
    landau_coulomb_2d,
)

PROBLEMS = {
    "landau-bkw-2d": landau_bkw_2d(),
    "landau-bkw-3d": landau_bkw_3d(),
    "landau-coulomb-2d": landau_coulomb_2d(),
}
EXACT = ("landau-bkw-2d", "landau-bkw-3d")
RTOL, ATOL = 1e-12, 1e-13
N_MC = 20_000


@pytest.fixture(params=sorted(PROBLEMS))
def problem(request):
    return PROBLEMS[request.param]


def test_capabilities():
    for name, problem in PROBLEMS.items():
        assert isinstance(problem, AbstractLandauProblem)
        exact = name in EXACT
        assert isinstance(problem, AbstractExactLandauProblem) is exact
        assert isinstance(problem, AbstractExactMarginals) is exact


def test_bkw_kernel_and_initial_datum():
    for name in EXACT:
        problem = PROBLEMS[name]
        assert problem.kernel == LandauKernel(gamma=0.0, C_gamma=problem.B)
        key = jax.random.key(3)
        t0 = jnp.asarray(problem.t_min)
        np.testing.assert_array_equal(
            problem.sample_initial(64, key=key), problem.sample(t0, 64, key=key)
        )
        x = jnp.linspace(-1.3, 0.9, problem.dim)
        assert problem.initial_log_density(x) == problem.log_density(t0, x)
        np.testing.assert_array_equal(problem.initial_score(x), problem.score(t0, x))
        np.testing.assert_array_equal(problem.momentum(), np.zeros(problem.dim))
        assert problem.energy() == problem.dim / 2


def test_invariants_match_initial_samples(problem):
    """momentum() and energy() are the moments of sample_initial (5 standard errors)."""
    v = np.asarray(problem.sample_initial(N_MC, key=jax.random.key(0)))
    assert v.shape == (N_MC, problem.dim)
    assert v.dtype == np.float64
    se = v.std(axis=0, ddof=1) / np.sqrt(N_MC)
    assert np.all(np.abs(v.mean(axis=0) - problem.momentum()) <= 5 * se)
    half_sq = 0.5 * np.sum(v * v, axis=1)
    assert abs(half_sq.mean() - problem.energy()) <= 5 * half_sq.std(ddof=1) / np.sqrt(N_MC)


def test_initial_score_is_gradient_jit_vmap(problem):
    """initial_score = ∇ initial_log_density (grad test), under jit and vmap."""
    x = problem.sample_initial(16, key=jax.random.key(1))
    score = jax.vmap(jax.jit(problem.initial_score))(x)
    grad = jax.vmap(jax.grad(problem.initial_log_density))(x)
    np.testing.assert_allclose(score, grad, rtol=RTOL, atol=ATOL)
    looped = np.stack([problem.initial_log_density(xi) for xi in x])
    np.testing.assert_allclose(
        jax.vmap(problem.initial_log_density)(x), looped, rtol=RTOL, atol=ATOL
    )
    with pytest.raises(ValueError, match="vmap"):
        problem.initial_score(x)


def test_initial_density_normalised():
    """∫ f₀ = 1: E_{f₀}[1/f₀] over a box is its area; checked via importance sampling."""
    problem = PROBLEMS["landau-coulomb-2d"]
    v = problem.sample_initial(N_MC, key=jax.random.key(2))
    inside = jnp.all(jnp.abs(v - jnp.asarray(problem.momentum())) < 2.0, axis=1)
    weights = jnp.where(inside, jnp.exp(-jax.vmap(problem.initial_log_density)(v)), 0.0)
    weights = np.asarray(weights)
    # E[1{box}/f₀(V)] = area of the box (4 × 4), whatever the normalisation if it is right
    assert abs(weights.mean() - 16.0) <= 5 * weights.std(ddof=1) / np.sqrt(N_MC)


@pytest.mark.parametrize("name", EXACT)
def test_characteristic_time_derivative(name):
    """∂_t X by jax.jvp through the Newton solve = exact velocity = central difference."""
    problem = PROBLEMS[name]
    t0 = jnp.asarray(problem.t_min)
    x0 = problem.sample_initial(256, key=jax.random.key(4))

    @jax.jit
    def tangent(t):
        def one(x):
            return jax.jvp(lambda s: problem.characteristic(t0, x, s), (t,), (jnp.ones_like(t),))

        x, xdot = jax.vmap(one)(x0)
        return xdot, jax.vmap(problem.velocity, in_axes=(None, 0))(t, x)

    @jax.jit
    def central(t, h):
        def at(s):
            return jax.vmap(problem.characteristic, in_axes=(None, 0, None))(t0, x0, s)

        return (at(t + h) - at(t - h)) / (2 * h)

    for t in (problem.t_min + 0.5, problem.t_max):
        xdot, velocity = tangent(jnp.asarray(t))
        np.testing.assert_allclose(xdot, velocity, rtol=0, atol=1e-13)
        np.testing.assert_allclose(xdot, central(jnp.asarray(t), 1e-5), rtol=0, atol=1e-9)


def test_interface_is_enforced():
    """A Landau problem without a kernel cannot be instantiated (abstract method)."""

    class Incomplete(AbstractLandauProblem):
        problem_id: str = "incomplete"
        dim: int = 2
        t_min: float = 0.0
        t_max: float = 1.0
        default_times: tuple[float, ...] = (0.5,)

        def parameters(self):
            return {}

        def sample_initial(self, n, *, key):
            return jax.random.normal(key, (n, 2))

        def initial_log_density(self, x):
            return -0.5 * jnp.sum(x * x)

        def initial_score(self, x):
            return -x

        def momentum(self):
            return np.zeros(2)

        def energy(self):
            return 1.0

    with pytest.raises(TypeError, match="kernel"):
        Incomplete()
