"""Reverse-SDE schemes and the probability-flow ODE, driven by the exact score.

Tolerances:

* Monte Carlo moments: 5 standard errors of the sample mean / centred products (the
  pushed samples are exact samples up to the time-discretisation bias, which is kept an
  order of magnitude below the standard error by the step counts chosen here: for EM with
  h = 1/400 the weak error on these problems is ≈ 2e-3, for Heun with h = 1/100 ≈ 3e-4,
  against standard errors ≈ 2e-2).
* PF-ODE against the closed-form characteristic of a single Gaussian: each accepted step
  of the 5(4) pair has local error ≤ rtol·|x| + atol = 1e-8-ish; a few dozen steps
  accumulate ≲ 1e-7 (measured 4e-9), so 1e-6.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from solvers._gmm import GaussianMixture
from solvers._linear_sde_gmm import LinearSDEGMMProblem, vp_gmm_2d
from solvers._sde_samplers import EulerMaruyama, ProbabilityFlowODE, StochasticHeun
from solvers._sde_schedules import OUSDE, VESDE, VPSDE

MC_STANDARD_ERRORS = 5.0
ODE_TOL = 1e-6
N_ODE = 1000
GAUSSIAN_MEAN = [1.0, -0.5]
GAUSSIAN_COV = [[0.5, 0.2], [0.2, 0.3]]


def single_gaussian_problem(kind: str) -> LinearSDEGMMProblem:
    """N(μ, Σ) data under an OU (t ∈ [0, 3]), VP or VE (t ∈ [1e-3, 1]) SDE."""
    sde, t_max = {
        "ou": (OUSDE(rate=1.0, diffusion_coefficient=1.0), 3.0),
        "vp": (VPSDE(beta_min=0.1, beta_max=20.0), 1.0),
        "ve": (VESDE(sigma_min=0.01, sigma_max=50.0), 1.0),
    }[kind]
    data = GaussianMixture([1.0], [GAUSSIAN_MEAN], [GAUSSIAN_COV])
    return LinearSDEGMMProblem(
        f"{kind}-gaussian", sde, data, t_min=1e-3, t_max=t_max, default_times=(t_max,)
    )


def characteristic(problem: LinearSDEGMMProblem, s, t, x):
    """Closed-form PF-ODE flow map of a single Gaussian from time s to time t.

    With Σ = U diag(λ) Uᵀ and c(t) = α_t² λ + σ_t², the PF-ODE with the exact score is
    d(x − α_t μ)/dt = (a + ½ g²/c) (x − α_t μ) in the eigenbasis, and dc/dt = 2a c + g²
    makes √c solve the same equation, so x_t = α_t μ + U diag(√(c(t)/c(s))) Uᵀ (x_s − α_s μ).
    """
    at_s, at_t = problem.marginal(s), problem.marginal(t)
    u = problem.data.eigenvectors[0]
    ratio = jnp.sqrt(at_t.eigenvalues[0] / at_s.eigenvalues[0])
    return at_t.means[0] + u @ (ratio * (u.T @ (x - at_s.means[0])))


@eqx.filter_jit
def exact_samples(problem, t, key, n):
    return problem.sample(t, n, key=key)


@eqx.filter_jit
def pf_ode_push(ode, problem, x, t_start, t_end):
    return jax.vmap(lambda y: ode(problem, problem.score, y, t_start=t_start, t_end=t_end))(x)


@eqx.filter_jit
def reverse_sde_push(sampler, problem, x, key, t_start, t_end):
    keys = jax.random.split(key, x.shape[0])
    return jax.vmap(
        lambda y, k: sampler(problem, problem.score, y, key=k, t_start=t_start, t_end=t_end)
    )(x, keys)


def assert_moments_match(problem, t, x):
    """Sample mean and covariance of ``x`` vs the closed form of p_t, within 5 SE."""
    x = np.asarray(x)
    n = x.shape[0]
    mean, cov = np.asarray(problem.mean(t)), np.asarray(problem.covariance(t))
    centred = x - mean
    products = centred[:, :, None] * centred[:, None, :]
    np.testing.assert_array_less(
        np.abs(x.mean(0) - mean), MC_STANDARD_ERRORS * np.sqrt(np.diag(cov) / n)
    )
    np.testing.assert_array_less(
        np.abs(products.mean(0) - cov), MC_STANDARD_ERRORS * products.std(0, ddof=1) / np.sqrt(n)
    )


@pytest.fixture(scope="module")
def vp_problem() -> LinearSDEGMMProblem:
    return vp_gmm_2d()


@pytest.mark.parametrize(("t_start", "t_end"), [(1.0, 0.05), (0.05, 1.0)])
def test_pf_ode_transports_exact_samples_to_the_exact_marginal(vp_problem, t_start, t_end):
    """Backward (sampling) and forward (encoding) directions on the 3-component mixture."""
    x = exact_samples(vp_problem, jnp.asarray(t_start), jax.random.key(0), N_ODE)
    pushed = pf_ode_push(
        ProbabilityFlowODE(), vp_problem, x, jnp.asarray(t_start), jnp.asarray(t_end)
    )
    assert_moments_match(vp_problem, t_end, pushed)


@pytest.mark.parametrize("sampler", [EulerMaruyama(400), StochasticHeun(100)], ids=lambda s: s.name)
def test_reverse_sde_samples_the_exact_marginal(vp_problem, sampler):
    t_start, t_end = jnp.asarray(1.0), jnp.asarray(0.05)
    x = exact_samples(vp_problem, t_start, jax.random.key(1), 2000)
    key = jax.random.key(2)
    pushed = reverse_sde_push(sampler, vp_problem, x, key, t_start, t_end)
    assert_moments_match(vp_problem, t_end, pushed)


@eqx.filter_jit
def pf_ode_path(ode, problem, x, save_times):
    """The PF-ODE from save_times[0] to save_times[-1] (either direction), saved there.

    Times are traced arrays, so both directions share one compilation."""
    return ode.solve(
        problem,
        problem.score,
        x,
        t_start=save_times[0],
        t_end=save_times[-1],
        save_times=save_times,
    ).ys


def check_characteristic(kind: str) -> None:
    """PF-ODE path of one point vs the closed form, backward then forward again."""
    problem = single_gaussian_problem(kind)
    x = jnp.array([0.3, 0.7])
    ode = ProbabilityFlowODE()
    backward_times = jnp.linspace(problem.t_max, 0.05, 5)
    path = pf_ode_path(ode, problem, x, backward_times)
    expected = jax.vmap(lambda t: characteristic(problem, problem.t_max, t, x))(backward_times)
    np.testing.assert_allclose(path, expected, rtol=ODE_TOL, atol=ODE_TOL)
    # Forward in time, back to where it started.
    back = pf_ode_path(ode, problem, path[-1], backward_times[::-1])
    np.testing.assert_allclose(back, path[::-1], rtol=ODE_TOL, atol=ODE_TOL)


def test_pf_ode_follows_the_closed_form_characteristic(vp_problem):
    """VP (stiff near t = 1, β = 20); OU, VE and saved trajectories: tests/validation.

    Three identical components make the built-in problem a single Gaussian with the same
    pytree structure, so the compiled batched solve of the transport test is reused.
    """
    data = GaussianMixture(vp_problem.data.weights, [GAUSSIAN_MEAN] * 3, [GAUSSIAN_COV] * 3)
    problem = eqx.tree_at(lambda p: p.data, vp_problem, data)
    x = exact_samples(problem, jnp.asarray(1.0), jax.random.key(9), N_ODE)
    t_start, t_end = jnp.asarray(1.0), jnp.asarray(0.05)
    pushed = pf_ode_push(ProbabilityFlowODE(), problem, x, t_start, t_end)
    expected = jax.jit(jax.vmap(lambda y: characteristic(problem, 1.0, 0.05, y)))(x)
    np.testing.assert_allclose(pushed, expected, rtol=ODE_TOL, atol=ODE_TOL)
    back = pf_ode_push(ProbabilityFlowODE(), problem, pushed, t_end, t_start)
    np.testing.assert_allclose(back, x, rtol=ODE_TOL, atol=ODE_TOL)


def check_flow_jacobian(adjoint: str) -> None:
    """Jacobian of the PF-ODE flow map (jacfwd or jacrev) vs the closed form."""
    problem = single_gaussian_problem("vp")
    ode = ProbabilityFlowODE(adjoint=adjoint)
    x = jnp.array([0.3, 0.7])

    def flow(y):
        return ode(problem, problem.score, y, t_start=1.0, t_end=0.1)

    jacobian = eqx.filter_jit(jax.jacfwd(flow) if adjoint == "forward" else jax.jacrev(flow))(x)
    expected = jax.jacfwd(lambda y: characteristic(problem, 1.0, 0.1, y))(x)
    np.testing.assert_allclose(jacobian, expected, rtol=ODE_TOL, atol=ODE_TOL)


def test_pf_ode_is_differentiable_with_the_closed_form_jacobian():
    # Forward mode compiles in a third of the time; reverse mode: tests/validation.
    check_flow_jacobian("forward")


@pytest.mark.parametrize("scheme", [EulerMaruyama, StochasticHeun])
def test_reverse_sde_is_differentiable_and_keyed(scheme):
    problem = single_gaussian_problem("ou")
    sampler = scheme(8)
    x = jnp.array([0.3, 0.7])
    key = jax.random.key(4)
    noise = jax.random.normal(key, (8, 2))
    # __call__(key) is integrate() with noise = normal(key, (n_steps, d)).
    np.testing.assert_array_equal(
        sampler(problem, problem.score, x, key=key),
        sampler.integrate(problem, problem.score, x, noise),
    )
    check_grads(
        jax.jit(lambda y: sampler.integrate(problem, problem.score, y, noise)),
        (x,),
        order=1,
        modes=("fwd", "rev"),
    )


def test_integrate_with_zero_noise_is_the_drift_only_scheme():
    """ξ = 0 turns EM into explicit Euler for dx/dt = f − g² s (run backward)."""
    problem = single_gaussian_problem("ou")
    x = jnp.array([0.3, 0.7])
    h = (problem.t_max - problem.t_min) / 2
    step1 = x - h * problem.reverse_sde_drift(problem.t_max, x, problem.score)
    step2 = step1 - h * problem.reverse_sde_drift(problem.t_max - h, step1, problem.score)
    got = EulerMaruyama(2).integrate(problem, problem.score, x, jnp.zeros((2, 2)))
    np.testing.assert_allclose(got, step2, rtol=1e-13, atol=1e-13)


def test_sampler_errors():
    problem = single_gaussian_problem("ou")
    with pytest.raises(ValueError, match="vmap"):
        EulerMaruyama(4)(problem, problem.score, jnp.zeros((3, 2)), key=jax.random.key(0))
    with pytest.raises(ValueError, match="noise must have shape"):
        StochasticHeun(4).integrate(problem, problem.score, jnp.zeros(2), jnp.zeros((3, 2)))
    with pytest.raises(ValueError, match="n_steps must be >= 1"):
        EulerMaruyama(0)
    with pytest.raises(ValueError, match="solver must be one of"):
        ProbabilityFlowODE(solver="euler")
    with pytest.raises(ValueError, match="adjoint must be one of"):
        ProbabilityFlowODE(adjoint="backsolve")
    with pytest.raises(ValueError, match="rtol and atol must be > 0"):
        ProbabilityFlowODE(rtol=0.0)
    with pytest.raises(TypeError):
        EulerMaruyama(4)(problem, problem.score, jnp.zeros(2))  # no default key
    with pytest.raises(ValueError, match="vmap"):
        ProbabilityFlowODE()(problem, problem.score, jnp.zeros(3))


def test_parameters_record_the_configuration():
    assert EulerMaruyama(10).parameters() == {
        "scheme": "euler-maruyama", "n_steps": 10, "weak_order": 1.0, "strong_order": 1.0,
    }  # fmt: skip
    assert StochasticHeun(5).parameters()["weak_order"] == 2.0
    assert ProbabilityFlowODE(rtol=1e-5, atol=1e-7, solver="dopri5").parameters() == {
        "scheme": "probability-flow-ode",
        "solver": "dopri5",
        "rtol": 1e-5,
        "atol": 1e-7,
        "max_steps": 16384,
        "controller": "pid",
        "adjoint": "reverse",
    }
