"""2D Coulomb Landau problem: exact initial datum, invariants, and the blob reference."""

from __future__ import annotations

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from solvers._blob import BlobSolution, cell_centred_grid
from solvers._landau_coulomb import LandauCoulombProblem, landau_coulomb_2d
from solvers._landau_particles import ForwardEuler
from solvers._problem import ProblemError
from solvers._registry import get_problem

PROBLEM = landau_coulomb_2d()
EPS = float(np.finfo(np.float64).eps)


def test_registry_and_parameters():
    problem = get_problem("landau-coulomb-2d")
    assert isinstance(problem, LandauCoulombProblem)
    assert (problem.t_min, problem.t_max) == (0.0, 40.0)
    assert problem.default_times == (1.0, 5.0, 10.0, 20.0, 40.0)
    params = problem.parameters()
    assert json.loads(json.dumps(params)) == params
    assert params["gamma"] == -3.0
    assert params["momentum"] == [-1.0, 0.0]
    assert params["energy"] == 2.5
    assert (problem.kernel.gamma, problem.kernel.C_gamma) == (-3.0, 1 / 16)
    z = jnp.asarray([0.3, -1.2])
    expected = (z @ z * jnp.eye(2) - jnp.outer(z, z)) / (16 * jnp.linalg.norm(z) ** 3)
    np.testing.assert_allclose(problem.kernel.matrix(z), expected, rtol=1e-14, atol=0)
    with pytest.raises(ProblemError, match="u1"):
        LandauCoulombProblem(**{**_fields(problem), "u1": (0.0,)})


def _fields(problem: LandauCoulombProblem) -> dict:
    names = ("problem_id", "dim", "gamma", "C_gamma", "u1", "u2", "t_min", "t_max")
    return {name: getattr(problem, name) for name in names} | {
        "default_times": problem.default_times
    }


def test_initial_density_moments_by_quadrature():
    """Mass, momentum and energy of f₀ by the midpoint rule on c + [−9, 9]², h = 0.09.

    For unit Gaussians the midpoint rule is spectrally accurate (aliasing ~e^{−2π²/h²}) and
    the mass beyond 8 standard deviations of either centre is < 1e−14, so 1e−12.
    """
    grid, h = cell_centred_grid(200, 9.0, 2, centre=(-1.0, 0.0))
    f = jax.jit(jax.vmap(PROBLEM.initial_density))(jnp.asarray(grid))
    mass = float(jnp.sum(f)) * h**2
    momentum = np.asarray(f @ grid) * h**2
    energy = 0.5 * float(f @ np.sum(grid**2, axis=1)) * h**2
    assert mass == pytest.approx(PROBLEM.mass(), rel=1e-12, abs=0)
    np.testing.assert_allclose(momentum, PROBLEM.momentum(), rtol=1e-12, atol=1e-12)
    assert energy == pytest.approx(PROBLEM.energy(), rel=1e-12, abs=0)


def test_score_is_gradient_of_log_density():
    x = 2.0 * jax.random.normal(jax.random.key(0), (64, 2))
    score = jax.vmap(PROBLEM.initial_score)(x)
    grad = jax.vmap(jax.grad(PROBLEM.initial_log_density))(x)
    np.testing.assert_allclose(score, grad, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(
        jax.vmap(PROBLEM.initial_density)(x),
        jnp.exp(jax.vmap(PROBLEM.initial_log_density)(x)),
        rtol=1e-14,
        atol=0,
    )
    with pytest.raises(ValueError, match="vmap"):
        PROBLEM.initial_score(x)


def test_sampler_moments():
    """Mean and ½|v|² of 2·10⁵ samples within 5 standard errors of (−1, 0) and 5/2."""
    n = 200_000
    v = PROBLEM.sample_initial(n, key=jax.random.key(1))
    assert v.shape == (n, 2)
    se_mean = np.asarray(jnp.std(v, axis=0)) / np.sqrt(n)
    np.testing.assert_allclose(
        np.asarray(jnp.mean(v, axis=0)), PROBLEM.momentum(), rtol=0, atol=5 * se_mean.max()
    )
    e = 0.5 * jnp.sum(v * v, axis=1)
    assert float(jnp.mean(e)) == pytest.approx(
        PROBLEM.energy(), abs=5 * float(jnp.std(e)) / np.sqrt(n), rel=0
    )
    with pytest.raises(TypeError):
        PROBLEM.sample_initial(4, jax.random.key(0))  # key is keyword-only


REF_TIMES = (0.0, 0.2, 0.4)


@functools.cache
def short_reference(stepper_name: str) -> BlobSolution:
    """N_v = 16 (256 particles) on (−1, 0) + [−7, 7]², Δt = 0.1, to t = 0.4; 32² grid."""
    stepper = ForwardEuler() if stepper_name == "forward-euler" else None
    return PROBLEM.reference(REF_TIMES, n_per_dim=16, dt=0.1, stepper=stepper, grid_per_dim=32)


def test_reference_conserves_mass_momentum_energy():
    """Blob reference (Heun, the default) on a short window.

    Quadrature: the cell-centred weights h² f₀(v_i) (h = 0.875) reproduce mass, momentum and
    energy of f₀ to the midpoint rule's aliasing error e^{−2π²/h²} ≈ 7e−12 plus what lies
    outside the box, ≥ 6 standard deviations from either centre: mass and momentum ~1e−9
    (1e−8 allowed), energy ~½|v|²·1e−9 with ½|v|² ≈ 20–50 there (1e−7 allowed). In time:
    momentum is conserved to the round-off n N ε max|V|; Heun's energy drift is not a law
    but is far below forward Euler's exact increment ½ Σ_n Δt² Σ w|U_n|², which bounds it.
    """
    solution = short_reference("heun")
    traj = solution.trajectory
    n = traj.weights.shape[0]
    assert n == 256
    assert float(jnp.sum(traj.weights)) == pytest.approx(PROBLEM.mass(), rel=0, abs=1e-8)
    momentum = np.asarray(traj.momentum())
    np.testing.assert_allclose(momentum[0], PROBLEM.momentum(), rtol=0, atol=1e-8)
    n_steps = traj.second_moment_increment.shape[0]
    v_max = float(jnp.max(jnp.abs(traj.positions)))
    drift = np.abs(momentum - momentum[0])
    assert drift.max() <= n_steps * n * EPS * v_max
    energy = np.asarray(traj.energy())
    assert energy[0] == pytest.approx(PROBLEM.energy(), rel=0, abs=1e-7)
    euler_bound = 0.5 * float(jnp.sum(traj.second_moment_increment))
    assert np.max(np.abs(energy - energy[0])) <= euler_bound
    assert np.all(np.diff(np.asarray(solution.regularised_entropy)) < 0)
    assert solution.density.shape == (len(REF_TIMES), 32**2)
    assert float(jnp.min(solution.density)) >= 0


def test_reference_forward_euler_energy_law():
    """With forward Euler the Coulomb blob run obeys M₂ⁿ⁺¹ − M₂ⁿ = Δt² Σ w|Uⁿ|² to round-off."""
    traj = short_reference("forward-euler").trajectory
    m2 = np.asarray(traj.grid_second_moment)
    n = traj.weights.shape[0]
    np.testing.assert_allclose(
        np.diff(m2), traj.second_moment_increment, rtol=1e-12, atol=2 * n * EPS * m2.max()
    )


def test_reference_parameters_are_recorded():
    solution = short_reference("heun")
    params = solution.parameters()
    assert json.loads(json.dumps(params)) == params
    assert params["problem_id"] == "landau-coulomb-2d"
    assert params["stepper"] == "heun"
    assert params["centre"] == [-1.0, 0.0]
    assert params["gamma"] == -3.0
    assert params["times"] == list(REF_TIMES)
    assert params["n_grid_points"] == 32**2
    assert params["grid_min"] == [-10 + 10 / 32] * 2
    with pytest.raises(ProblemError, match="times"):
        PROBLEM.reference((0.0, 41.0), n_per_dim=4)
