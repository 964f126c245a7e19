"""2-D vorticity Navier–Stokes: Taylor–Green exact solution, conservation structure of the
dealiased right-hand side, the ETDRK4 reference, problem objects, jit/vmap/grad."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from solvers._field_problem import AbstractExactFieldProblem, AbstractFieldProblem
from solvers._navier_stokes import (
    NavierStokesProblem,
    TaylorGreenProblem,
    navier_stokes_from_fourier,
    navier_stokes_invariants,
    navier_stokes_rhs,
    ns_perturbed_taylor_green_2d,
    ns_taylor_green_2d,
    solve_navier_stokes,
    velocity_from_vorticity,
)
from solvers._problem import ProblemError
from solvers._registry import get_problem
from solvers._spectral import (
    cell_volume,
    dealias_mask,
    inverse_laplacian,
    irfft,
    periodic_grid,
    relative_l2_error,
    rfft,
    spectral_gradient,
)

P = ns_taylor_green_2d()
LENGTH = 2 * math.pi

# Taylor–Green fields are single Fourier modes with O(1) amplitudes (K = 1): FFT round trips
# and fourth autodiff derivatives of sin·sin·exp carry a few ulps each; 1e−13.
ATOL_EXACT = 1e-13


def random_points(n: int, seed: int):
    t_key, x_key = jax.random.split(jax.random.key(seed))
    t = jax.random.uniform(t_key, (n,), maxval=P.t_max)
    return t, jax.random.uniform(x_key, (n, 2), maxval=LENGTH)


def test_taylor_green_is_an_exact_solution():
    """ω_t + ψ_y ω_x − ψ_x ω_y − νΔω = 0 for ψ = sin x sin y e^{−2νt} (autodiff to order 4);
    state_from_field(ψ) = −Δψ = exact ω = 2ψ."""
    t, x = random_points(64, seed=0)
    residual = jax.jit(jax.vmap(lambda t, x: P.field_residual(P.stream_function, t, x)))(t, x)
    np.testing.assert_allclose(residual, 0.0, rtol=0, atol=ATOL_EXACT)
    omega = jax.jit(jax.vmap(lambda t, x: P.state_from_field(P.stream_function, t, x)))(t, x)
    exact = jax.vmap(P.exact_state)(t, x)
    np.testing.assert_allclose(omega, exact, rtol=0, atol=ATOL_EXACT)
    psi = jax.vmap(P.stream_function)(t, x)
    np.testing.assert_allclose(exact, 2 * psi, rtol=1e-15, atol=0)
    # a non-solution has a nonzero residual: the nonlinear term of a two-mode ψ
    other = jax.jit(
        jax.vmap(
            lambda t, x: P.field_residual(
                lambda t, x: jnp.stack([jnp.sin(x[0]) * jnp.sin(x[1]) + jnp.cos(2 * x[0])]), t, x
            )
        )
    )(t, x)
    assert float(jnp.max(jnp.abs(other))) > 0.1


def test_rhs_velocity_and_invariants_on_the_exact_state():
    """On grid(16): rhs(ω) = ∂ₜω (jvp), u = (sin x cos y, −cos x sin y)e^{−2νt} and ∇·u = 0,
    and the invariants equal their laws (single modes: all exact to round-off)."""
    times = jnp.asarray(P.default_times)
    q = P.reference(P.default_times, 16)
    assert q.shape == (4, 16, 16, 1)
    x = P.grid(16)
    dq = jax.vmap(
        lambda t: jax.vmap(
            jax.vmap(lambda y: jax.jvp(lambda s: P.exact_state(s, y), (t,), (1.0,))[1])
        )(x)
    )(times)
    np.testing.assert_allclose(jax.vmap(P.rhs)(times, q), dq, rtol=0, atol=ATOL_EXACT)
    for t, state in zip(P.default_times, q, strict=True):
        u = velocity_from_vorticity(state[..., 0], LENGTH)
        decay = math.exp(-2 * P.nu * t)
        expected = decay * jnp.stack(
            [jnp.sin(x[..., 0]) * jnp.cos(x[..., 1]), -jnp.cos(x[..., 0]) * jnp.sin(x[..., 1])],
            axis=-1,
        )
        np.testing.assert_allclose(u, expected, rtol=0, atol=ATOL_EXACT)
        divergence = (
            spectral_gradient(u[..., 0], LENGTH)[..., 0]
            + spectral_gradient(u[..., 1], LENGTH)[..., 1]
        )
        np.testing.assert_allclose(divergence, 0.0, rtol=0, atol=ATOL_EXACT)
        inv, laws = P.invariants(state), P.invariant_laws(t)
        for name in ("energy", "enstrophy"):
            assert float(inv[name]) == pytest.approx(float(laws[name]), rel=1e-13, abs=0)
        assert float(inv["circulation"]) == pytest.approx(0.0, abs=ATOL_EXACT)
    assert float(P.invariant_laws(0.0)["energy"]) == pytest.approx(math.pi**2, rel=1e-15)


def test_rhs_has_the_energy_and_enstrophy_balance_of_the_galerkin_system():
    """For ω supported on the 2/3-rule modes, ⟨ψ, N(ω)⟩ = −2νZ and ⟨ω, N(ω)⟩ = −ν∫|∇ω|²
    exactly (the advection term drops out of both: the truncated system conserves E and Z for
    ν = 0). Random coefficients, n = 24; the sums are over O(10²) terms of O(1): 1e−12
    relative."""
    n, nu = 24, 0.07
    mask = dealias_mask(n, 2)
    noise = jax.random.normal(jax.random.key(3), (n, n))
    omega = irfft(jnp.where(mask, rfft(noise), 0.0), n)
    omega = omega - jnp.mean(omega)
    rhs = navier_stokes_rhs(omega, nu=nu, length=LENGTH)
    inv = navier_stokes_invariants(omega, LENGTH)
    w = cell_volume(n, LENGTH, 2)
    psi = -inverse_laplacian(omega, LENGTH)
    grad = spectral_gradient(omega, LENGTH)
    palinstrophy = w * jnp.sum(grad**2)
    energy_rate = w * jnp.sum(psi * rhs)
    enstrophy_rate = w * jnp.sum(omega * rhs)
    scale = float(2 * nu * inv["enstrophy"])
    assert float(energy_rate) == pytest.approx(
        -2 * nu * float(inv["enstrophy"]), rel=1e-12, abs=1e-12 * scale
    )
    assert float(enstrophy_rate) == pytest.approx(
        -nu * float(palinstrophy), rel=1e-12, abs=1e-12 * scale
    )


def test_etdrk4_on_taylor_green_is_exact():
    """u·∇ω vanishes identically on the single-mode vortex and ETDRK4 integrates −ν|k|²
    exactly, so the run equals the closed form to round-off (O(100) steps; 1e−12 relative)."""
    times = (1.0, 5.0)
    numerical = P.solve(times, 16, 0.05)
    exact = P.reference(times, 16)
    np.testing.assert_array_less(jax.vmap(relative_l2_error)(numerical, exact), 1e-12)


def test_inviscid_run_conserves_energy_enstrophy_and_circulation():
    """Perturbed Taylor–Green with ν = 0 on 32², Δt = 0.05 to t = 2: the Galerkin system
    conserves E and Z exactly, so the drift is RK4's O(Δt⁴) defect — measured constants
    (tests/validation, fitted order ≈ 5) put it at ≲ 1e−8 relative here; bound 1e−7.
    The circulation stays 0 to round-off."""
    problem = ns_perturbed_taylor_green_2d(nu=0.0)
    laws = problem.invariant_laws(0.0)
    assert set(laws) == {"energy", "enstrophy", "circulation"}
    for state in problem.solve((1.0, 2.0), 32, 0.05):
        inv = problem.invariants(state)
        for name in ("energy", "enstrophy"):
            assert float(inv[name]) == pytest.approx(float(laws[name]), rel=1e-7, abs=0)
        assert float(inv["circulation"]) == pytest.approx(0.0, abs=ATOL_EXACT)
    viscous = ns_perturbed_taylor_green_2d(nu=0.05)
    assert set(viscous.invariant_laws(0.0)) == {"circulation"}


def test_numerical_problem_reference_and_self_convergence():
    """A coarse numerical problem (N = 16, Δt = 0.1): reference on grid(16) in the requested
    order; self-convergence estimates exist per time, are positive at t > 0 and 0 at t_min."""
    problem = navier_stokes_from_fourier(
        [(1, 1), (2, 1)], [1.0, 0.3], [0.0, 0.2], grid_size=16, dt=0.1
    )
    assert isinstance(problem, AbstractFieldProblem)
    assert not isinstance(problem, AbstractExactFieldProblem)
    times = (0.5, 0.0)
    ref = problem.reference(times, 16)
    assert ref.shape == (2, 16, 16, 1)
    x = problem.grid(16)
    ic = jax.vmap(jax.vmap(problem.initial_state))(x)
    np.testing.assert_allclose(ref[1], ic, rtol=0, atol=ATOL_EXACT)
    error = np.asarray(problem.reference_error(times, 16))
    assert error[1] < 1e-14  # both runs start from the same samples of ω₀
    assert 0.0 < error[0] < 1e-3, error
    params = problem.parameters()
    assert json.loads(json.dumps(params)) == params


def test_problem_objects_and_validation():
    assert isinstance(get_problem("ns-taylor-green-2d"), TaylorGreenProblem)
    assert (P.dim, P.n_components, P.field_components, P.component_names) == (
        2,
        1,
        1,
        ("omega",),
    )
    params = P.parameters()
    assert json.loads(json.dumps(params)) == params
    assert P.decay_rate == pytest.approx(4 * P.nu, rel=1e-15)
    with pytest.raises(ProblemError, match="zero mean"):
        navier_stokes_from_fourier([(0, 0), (1, 0)], [1.0, 1.0], [0.0, 0.0])
    with pytest.raises(ProblemError, match="nu"):
        navier_stokes_from_fourier([(1, 0)], [1.0], [0.0], nu=-1.0)
    with pytest.raises(ProblemError, match="wavenumber"):
        TaylorGreenProblem(
            problem_id="tg",
            nu=0.1,
            wavenumber=0,
            length=LENGTH,
            t_min=0.0,
            t_max=1.0,
            default_times=(1.0,),
            grid_size=16,
            dt=0.1,
        )
    assert isinstance(ns_perturbed_taylor_green_2d(), NavierStokesProblem)
    with pytest.raises(ValueError, match="vmap"):
        P.rhs(0.0, jnp.zeros((8, 8)))
    with pytest.raises(ValueError, match="vmap"):
        P.exact_state(0.0, jnp.zeros(3))


def test_jit_vmap_grad():
    """vmap of the solver over initial vorticities equals separate runs; gradients by two
    identities: ∫ω is conserved for every ω₀, so ∇_{ω₀}∫ω(t) = ΔA·1 (round-off), and a jvp
    equals the central difference with ε = 1e−4 (error ε²|f‴|/6 ≈ 1e−9; 1e−7 relative)."""
    n = 8
    x = periodic_grid(n, LENGTH, 2)
    base = jnp.sin(x[..., 0]) * jnp.sin(x[..., 1]) + 0.3 * jnp.cos(2 * x[..., 0] + x[..., 1])
    batch = jnp.stack([base, 0.5 * base.T])

    def run(omega0):
        return solve_navier_stokes(omega0, (0.2,), nu=0.05, length=LENGTH, dt=0.1)[-1]

    batched = jax.vmap(run)(batch)
    np.testing.assert_allclose(batched[1], run(batch[1]), rtol=1e-13, atol=1e-14)
    grad = jax.grad(lambda w: navier_stokes_invariants(run(w), LENGTH)["circulation"])(base)
    np.testing.assert_allclose(grad, cell_volume(n, LENGTH, 2), rtol=1e-12, atol=1e-15)
    direction = jnp.cos(x[..., 1]) * jnp.sin(2 * x[..., 0])
    _, tangent = jax.jvp(run, (base,), (direction,))
    eps = 1e-4
    central = (run(base + eps * direction) - run(base - eps * direction)) / (2 * eps)
    np.testing.assert_allclose(tangent, central, rtol=1e-7, atol=1e-9)
