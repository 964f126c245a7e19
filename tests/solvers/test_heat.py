"""Heat problems: exact Fourier solution, spectral right-hand side, invariants, validation.

Tolerances (float64): RTOL, ATOL = 1e-12, 1e-13 for identities between closed forms and
spectral operators on O(1) fields of ≤ 32² points (a few ulps times sums over the modes and
the FFT's log₂(n^d) round-off growth, with a 100× margin).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from jax.test_util import check_grads

from solvers import (
    AbstractExactFieldProblem,
    HeatProblem,
    ProblemError,
    get_problem,
    heat_1d,
    heat_2d,
    heat_problem_from_grid,
)
from verify.strategies import periodic_initial_conditions

RTOL, ATOL = 1e-12, 1e-13
# heat_problem_from_grid drops coefficients below 1e-14 of the largest (FFT round-off); a
# drawn field has at most (2K + 1)^d / 2 ≤ 25 modes, so the dropped part is ≤ 25·2·1e-14.
ATOL_FROM_GRID = 1e-12
PROBLEMS = {"heat-1d": heat_1d(), "heat-2d": heat_2d()}
TIMES = (0.0, 0.3, 1.0)


@pytest.fixture(params=list(PROBLEMS))
def problem(request) -> HeatProblem:
    return PROBLEMS[request.param]


def random_points(problem: HeatProblem, n: int, seed: int = 0) -> jax.Array:
    return problem.length * jax.random.uniform(jax.random.key(seed), (n, problem.dim))


def test_registered_as_exact_field_problems():
    for problem_id, problem in PROBLEMS.items():
        built = get_problem(problem_id)
        assert isinstance(built, AbstractExactFieldProblem)
        assert built == problem
        assert (built.n_components, built.field_components, built.component_names) == (1, 1, ("u",))


def test_exact_state_solves_the_heat_equation_by_autodiff(problem):
    x = random_points(problem, 64)
    residual = jax.jit(jax.vmap(lambda xi: problem.field_residual(problem.exact_state, 0.4, xi)))(x)
    u_t = jax.jit(jax.vmap(lambda xi: jax.jacfwd(problem.exact_state)(jnp.asarray(0.4), xi)))(x)
    assert residual.shape == (64, 1)
    # R = u_t − κΔu cancels two O(|u_t|) terms to round-off
    np.testing.assert_allclose(residual, 0.0, rtol=0, atol=ATOL * (1 + float(jnp.max(abs(u_t)))))
    assert float(jnp.max(jnp.abs(u_t))) > 0.01  # the identity is not trivially 0 = 0


def test_spectral_rhs_equals_the_time_derivative_of_the_exact_solution(problem):
    # two independent methods: spectral κΔ on the grid vs forward-mode ∂ₜ of the closed form
    n = problem.grid_size
    for t in TIMES:
        state = problem.reference([t], n)[0]
        _, u_t = jax.jvp(lambda s: problem.reference(s, n), (jnp.asarray([t]),), (jnp.ones(1),))
        np.testing.assert_allclose(problem.rhs(t, state), u_t[0], rtol=RTOL, atol=ATOL)


def test_rhs_refuses_a_channels_first_state(problem):
    state = problem.reference([0.0], problem.grid_size)[0]
    with pytest.raises(ValueError, match="channels"):
        problem.rhs(0.0, jnp.moveaxis(state, -1, 0))


def test_invariants_follow_their_laws(problem):
    n = problem.grid_size
    states = problem.reference(list(TIMES), n)
    for t, state in zip(TIMES, states, strict=True):
        discrete = problem.invariants(state)
        law = problem.invariant_laws(jnp.asarray(t))
        assert set(law) == set(discrete) == {"mass", "energy"}
        for name in law:
            np.testing.assert_allclose(discrete[name], law[name], rtol=RTOL, atol=ATOL)
    mass = problem.invariant_laws(jnp.asarray(0.0))["mass"]
    np.testing.assert_allclose(mass, problem.mean * problem.length**problem.dim, rtol=RTOL)
    energies = [float(problem.invariant_laws(jnp.asarray(t))["energy"]) for t in TIMES]
    assert energies[0] > energies[1] > energies[2]  # dissipation


def test_grid_reference_and_its_error(problem):
    n = problem.grid_size
    grid = problem.grid(n)
    assert grid.shape == (n,) * problem.dim + (problem.dim,)
    np.testing.assert_allclose(grid[(1,) * problem.dim], problem.length / n, rtol=RTOL)
    reference = problem.reference(list(TIMES), n)
    assert reference.shape == (3,) + (n,) * problem.dim + (1,)
    np.testing.assert_array_equal(problem.reference_error(list(TIMES), n), np.zeros(3))
    initial = jax.vmap(problem.initial_state)(grid.reshape(-1, problem.dim))
    np.testing.assert_allclose(initial.reshape(reference[0].shape), reference[0], rtol=0, atol=ATOL)


def test_jit_vmap_and_grad(problem):
    x = random_points(problem, 8, seed=1)
    t = jnp.asarray(0.7)
    eager = jnp.stack([problem.exact_state(t, xi) for xi in x])
    np.testing.assert_allclose(
        jax.vmap(jax.jit(problem.exact_state), (None, 0))(t, x), eager, rtol=RTOL, atol=ATOL
    )
    check_grads(lambda s, y: problem.exact_state(s, y)[0], (t, x[0]), order=1, modes=["fwd", "rev"])


def test_exact_state_refuses_a_batch():
    with pytest.raises(ValueError, match="vmap"):
        heat_1d().exact_state(0.0, jnp.zeros((4, 1)))


def eager_on_grid(problem: HeatProblem, t: float) -> np.ndarray:
    """u(t) on the reference grid without jit: JAX's op-by-op cache is keyed on shapes, so
    the drawn problems (new static coefficients each) do not recompile per example."""
    points = problem.grid(problem.grid_size).reshape(-1, problem.dim)
    values = jax.vmap(lambda x: problem.exact_state(jnp.asarray(t), x))(points)
    return np.asarray(values).reshape((problem.grid_size,) * problem.dim)


# Each drawn field has its own number of modes, hence new array shapes (op-by-op compiles):
# 25 examples keep the property tests at a few seconds (the profiles' default is 40-100).
FEW = settings(max_examples=25)


@FEW
@given(periodic_initial_conditions(32, dim=1, n_modes=4))
def test_problem_from_a_grid_reproduces_it_and_decays_each_mode(u0):
    problem = heat_problem_from_grid(u0, kappa=0.2)
    np.testing.assert_allclose(eager_on_grid(problem, 0.0), u0, rtol=0, atol=ATOL_FROM_GRID)
    # independent method: decay each DFT coefficient by e^{−κk²t} (L = 2π: ω = k)
    k = np.fft.fftfreq(32) * 32
    expected = np.real(np.fft.ifft(np.exp(-0.2 * k**2 * 0.5) * np.fft.fft(u0)))
    np.testing.assert_allclose(eager_on_grid(problem, 0.5), expected, rtol=0, atol=ATOL_FROM_GRID)


@FEW
@given(periodic_initial_conditions(16, dim=2, n_modes=2))
def test_problem_from_a_2d_grid_keeps_mass_and_energy_laws(u0):
    problem = heat_problem_from_grid(u0, kappa=0.1)
    np.testing.assert_allclose(eager_on_grid(problem, 0.0), u0, rtol=0, atol=ATOL_FROM_GRID)
    state = eager_on_grid(problem, 0.25)[..., None]
    laws, discrete = problem.invariant_laws(jnp.asarray(0.25)), problem.invariants(state)
    for name in ("mass", "energy"):
        np.testing.assert_allclose(discrete[name], laws[name], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"kappa": 0.0}, "kappa must be positive"),
        ({"kappa": math.nan}, "kappa must be positive"),
        ({"wave_vectors": ((1,), (-2,), (4,))}, "first non-zero"),
        ({"wave_vectors": ((1,), (1,), (4,))}, "distinct"),
        ({"wave_vectors": ((1,), (2,), (32,))}, "not resolved"),
        ({"cos_coefficients": (1.0,)}, "one cos and one sin"),
        ({"default_times": (2.0,)}, "default_times"),
        ({"t_min": 1.0}, "t_min < t_max"),
        ({"dim": 4}, "dim must be 1, 2 or 3"),
    ],
)
def test_invalid_parameters_are_one_line_problem_errors(change, match):
    base = heat_1d()
    fields = {
        name: getattr(base, name)
        for name in (
            "problem_id",
            "dim",
            "kappa",
            "mean",
            "wave_vectors",
            "cos_coefficients",
            "sin_coefficients",
            "t_min",
            "t_max",
            "default_times",
            "grid_size",
        )
    }
    with pytest.raises(ProblemError, match=match) as info:
        HeatProblem(**{**fields, **change})
    assert "\n" not in str(info.value)
