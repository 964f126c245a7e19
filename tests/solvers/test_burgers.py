"""Burgers: Cole–Hopf exact solution, ETDRK4 reference, problem objects, jit/vmap/grad."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.scipy.special import i0e, i1e

from solvers._burgers import (
    BurgersProblem,
    ColeHopfBurgersProblem,
    burgers_1d,
    burgers_from_fourier,
    burgers_from_grid,
    scaled_bessel_i,
    solve_burgers,
)
from solvers._field_problem import AbstractExactFieldProblem, AbstractFieldProblem
from solvers._problem import ProblemError
from solvers._registry import get_problem
from solvers._spectral import relative_l2_error

P = burgers_1d()
NU, A = P.nu, P.bessel_argument

# Cole–Hopf conditioning (module docstring): the denominator falls to e^{−2a} = e^{−10} at
# x = π, t = 0, so round-off in the O(1) terms becomes ≈ e^{2a}·ε ≈ 5e−12 relative error there
# (u and its derivatives are O(1)); 2e−11.
ATOL_COLE_HOPF = 2e-11


def test_scaled_bessel_functions():
    """Ĩ₀, Ĩ₁ against jax.scipy's i0e/i1e; the recurrence Ĩ_{k−1} − Ĩ_{k+1} = (2k/a)Ĩ_k; the
    normalisation Ĩ₀ + 2ΣĨ_k = 1; Ĩ_k(−a) = (−1)^k Ĩ_k(a). Miller's recurrence is stable
    downwards, so each value carries a few ulps (1e−14 relative)."""
    for a in (0.5, 5.0, 12.0):
        c = scaled_bessel_i(a)
        assert 1e-22 <= c[-1] < 1e-19  # cut where the next term drops below 1e−22
        np.testing.assert_allclose(c[:2], [i0e(a), i1e(a)], rtol=1e-14, atol=0)
        k = np.arange(1, len(c) - 1)
        np.testing.assert_allclose(c[k - 1] - c[k + 1], 2 * k / a * c[k], rtol=1e-13, atol=1e-30)
        assert c[0] + 2 * c[1:].sum() == pytest.approx(1.0, rel=1e-15, abs=0)
        np.testing.assert_allclose(
            scaled_bessel_i(-a), c * (-1.0) ** np.arange(len(c)), rtol=0, atol=0
        )


def test_initial_condition_and_zero_residual():
    """u(0, x) = sin x, and u_t + u u_x − ν u_xx = 0 by autodiff at 128 random (t, x), within
    the conditioning bound."""
    x = P.grid(64)
    u0 = jax.vmap(P.initial_state)(x)[:, 0]
    np.testing.assert_allclose(u0, jnp.sin(x[:, 0]), rtol=0, atol=ATOL_COLE_HOPF)
    t_key, x_key = jax.random.split(jax.random.key(0))
    t = jax.random.uniform(t_key, (128,), maxval=P.t_max)
    y = jax.random.uniform(x_key, (128, 1), maxval=P.length)
    residual = jax.jit(jax.vmap(lambda t, x: P.field_residual(P.exact_state, t, x)))(t, y)
    assert residual.shape == (128, 1)
    np.testing.assert_allclose(residual, 0.0, rtol=0, atol=ATOL_COLE_HOPF)
    # the field of the exact problem is its state
    state = jax.vmap(lambda t, x: P.state_from_field(P.exact_state, t, x))(t, y)
    np.testing.assert_allclose(state, jax.vmap(P.exact_state)(t, y), rtol=0, atol=0)


def test_rhs_is_the_time_derivative_of_the_exact_state():
    """rhs(q(t)) on grid(256) equals ∂ₜq (jvp of the closed form). Error model: the 2/3-rule
    truncation of the solution (< 1e−12 at 256 points, tests/validation) plus the Cole–Hopf
    round-off δ ≈ 5e−12 amplified by ν k_max² = 0.1 · 128² by the spectral u_xx: ≈ 1e−8."""
    times = jnp.asarray(P.default_times)
    q = P.reference(P.default_times, 256)
    rhs = jax.vmap(P.rhs)(times, q)
    dq = jax.jit(
        jax.vmap(
            lambda t: jax.vmap(lambda y: jax.jvp(lambda s: P.exact_state(s, y), (t,), (1.0,))[1])(
                P.grid(256)
            )
        )
    )(times)
    np.testing.assert_allclose(rhs, dq, rtol=0, atol=1e-8)


def test_etdrk4_agrees_with_cole_hopf():
    """n = 128, Δt = 0.01 to t = 1: the 2/3-rule truncation error is ≈ 2e−9 (relative L2,
    tests/validation) and the ETDRK4 error ≈ 0.3 Δt⁴ ≈ 3e−9; 2e−8 relative L2."""
    times = (0.5, 1.0)
    numerical = P.solve(times, 128, 0.01)
    exact = P.reference(times, 128)
    errors = jax.vmap(relative_l2_error)(numerical, exact)
    assert np.all(np.asarray(errors) < 2e-8), errors


def test_numerical_problem_reference_and_self_convergence():
    """u₀ = sin x as a BurgersProblem (coarse: N = 64, Δt = 0.02): the reference is returned in
    the order of the requested times; its self-convergence estimate (run at 2N, Δt/2) matches
    the true error against Cole–Hopf within 20% (the 2N run's own error is ≲ 1e−3 of N's, the
    spectral rate in tests/validation) and is far above the exact problem's 0."""
    problem = burgers_from_fourier([1], [0.0], [1.0], grid_size=64, dt=0.02)
    assert isinstance(problem, AbstractFieldProblem)
    assert not isinstance(problem, AbstractExactFieldProblem)
    times = (1.0, 0.5)
    ref = problem.reference(times, 64)
    assert ref.shape == (2, 64, 1)
    true = jax.vmap(relative_l2_error)(ref, P.reference(times, 64))
    estimate = problem.reference_error(times, 64)
    np.testing.assert_allclose(estimate, true, rtol=0.2, atol=0)
    assert float(estimate[0]) > 1e-8
    np.testing.assert_array_equal(P.reference_error(times, 64), [0.0, 0.0])


def test_invariants_and_laws():
    """Mass ∫u is conserved by the Fourier scheme to round-off (the k = 0 mode is untouched:
    1e−13 absolute for O(1) values on 64 points); the initial mass is 0 up to the Cole–Hopf
    round-off times L; energy ½∫u² decays; the law gives mass 0; at t = 0 the energy is
    ½∫sin² = π/2 (exact trapezoid)."""
    states = P.solve((0.5, 1.0), 64, 0.05)
    inv = [P.invariants(s) for s in (P.reference((0.0,), 64)[0], *states)]
    assert float(inv[0]["mass"]) == pytest.approx(0.0, abs=P.length * ATOL_COLE_HOPF)
    for entry in inv[1:]:
        assert float(entry["mass"]) == pytest.approx(float(inv[0]["mass"]), abs=1e-13)
    energies = [float(entry["energy"]) for entry in inv]
    assert energies[0] == pytest.approx(math.pi / 2, rel=ATOL_COLE_HOPF)
    assert energies[0] > energies[1] > energies[2]
    assert float(P.invariant_laws(1.0)["mass"]) == 0.0
    problem = burgers_from_fourier([0, 2], [0.3, 0.0], [0.0, 1.0])
    assert float(problem.invariant_laws(2.0)["mass"]) == pytest.approx(0.3 * 2 * math.pi)


def test_problem_objects():
    assert isinstance(get_problem("burgers-1d"), ColeHopfBurgersProblem)
    assert isinstance(P, AbstractExactFieldProblem)
    assert (P.dim, P.n_components, P.field_components, P.component_names) == (1, 1, 1, ("u",))
    assert P.grid(8).shape == (8, 1)
    params = P.parameters()
    assert json.loads(json.dumps(params)) == params
    assert params["series_terms"] == len(scaled_bessel_i(A))
    numerical = burgers_from_fourier([1, 3], [0.0, 0.2], [1.0, 0.0])
    params = numerical.parameters()
    assert json.loads(json.dumps(params)) == params
    assert params["wavevectors"] == [1, 3]
    x = jnp.array([0.7])
    expected = math.sin(0.7) + 0.2 * math.cos(2.1)
    assert float(numerical.initial_state(x)[0]) == pytest.approx(expected, rel=1e-15)


def test_problem_from_grid_values():
    """burgers_from_grid: the initial state at the grid points is the given data."""
    x = np.arange(32) * (2 * math.pi / 32)
    u0 = np.exp(np.sin(x)) - 1.2
    problem = burgers_from_grid(u0, nu=0.2)
    assert isinstance(problem, BurgersProblem)
    got = jax.vmap(problem.initial_state)(problem.grid(32))[:, 0]
    np.testing.assert_allclose(got, u0, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"nu": 0.0}, "nu"),
        ({"amplitude": 0.0}, "amplitude"),
        ({"nu": 0.02}, "digits"),
        ({"default_times": (4.0,)}, "default_times"),
        ({"t_max": -1.0}, "t_min < t_max"),
        ({"grid_size": 2}, "grid_size"),
    ],
)
def test_invalid_parameters_raise(changes, match):
    fields = {
        "problem_id": "burgers-test",
        "nu": 0.1,
        "amplitude": 1.0,
        "length": 2 * math.pi,
        "t_min": 0.0,
        "t_max": 3.0,
        "default_times": (1.0,),
        "grid_size": 64,
        "dt": 0.01,
    }
    fields.update(changes)
    with pytest.raises(ProblemError, match=match):
        ColeHopfBurgersProblem(**fields)


def test_shape_errors_mention_vmap():
    with pytest.raises(ValueError, match="vmap"):
        P.exact_state(0.5, jnp.zeros((3, 1)))
    with pytest.raises(ValueError, match="vmap"):
        P.rhs(0.0, jnp.zeros((3, 8, 1)))
    with pytest.raises(ValueError, match="vmap"):
        P.field_residual(lambda t, x: jnp.zeros(2), 0.5, jnp.zeros(1))
    with pytest.raises(ValueError, match="vmap"):
        solve_burgers(jnp.zeros((2, 8)), (1.0,), nu=0.1, length=1.0, dt=0.1)


def test_jit_vmap_grad():
    """vmap of the solver over initial conditions equals separate runs; gradients by two
    identities: mass is conserved for every u₀, so ∇_{u₀} mass(u(t)) = (L/n)·1 exactly (to
    round-off), and a jvp equals the central difference (f(u₀ + εd) − f(u₀ − εd))/2ε up to
    ε²|f‴|/6 ≈ 1e−9 for ε = 1e−4 and O(1) third derivatives (1e−7 relative). The exact
    solution's derivatives are checked by its zero autodiff residual above."""
    n, length = 16, 2 * math.pi
    x = np.arange(n) * (length / n)
    batch = jnp.stack([jnp.sin(x), 0.5 * jnp.cos(2 * x)])

    def run(u0):
        return solve_burgers(u0, (0.1, 0.2), nu=0.1, length=length, dt=0.05)

    batched = jax.vmap(run)(batch)
    np.testing.assert_allclose(batched[1], run(batch[1]), rtol=1e-13, atol=1e-14)
    mass = jax.jit(jax.grad(lambda u0: P.invariants(run(u0)[-1][:, None])["mass"]))(batch[0])
    np.testing.assert_allclose(mass, length / n, rtol=1e-13, atol=0)
    direction = jnp.cos(3 * jnp.asarray(x)) + 0.1
    _, tangent = jax.jvp(run, (batch[0],), (direction,))
    eps = 1e-4  # run is jitted: these two calls reuse one compilation
    central = (run(batch[0] + eps * direction) - run(batch[0] - eps * direction)) / (2 * eps)
    np.testing.assert_allclose(tangent, central, rtol=1e-7, atol=1e-9)
