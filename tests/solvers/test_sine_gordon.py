"""Sine-Gordon: exact breather and kinks, spectral rhs and invariants, Störmer–Verlet and RK4
on closed forms, symplecticity of the discrete flow, jit/vmap/grad."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from solvers._field_problem import AbstractExactFieldProblem
from solvers._problem import ProblemError
from solvers._registry import get_problem
from solvers._sine_gordon import (
    SineGordonBreatherProblem,
    sine_gordon_1d,
    sine_gordon_breather,
    sine_gordon_force,
    sine_gordon_kink,
    sine_gordon_kink_antikink,
    solve_sine_gordon,
)
from solvers._spectral import relative_l2_error
from solvers._symplectic import rk4_second_order, stormer_verlet

P = sine_gordon_1d()

# Autodiff of arctan/cosh compositions with O(1) values and O(1) derivatives (the kinks'
# γ ≤ 1.25): second derivatives carry a few tens of ulps of the O(1) terms; 1e−13.
ATOL_AUTODIFF = 1e-13


def random_points(n: int, seed: int, half_width: float = 10.0):
    t_key, x_key = jax.random.split(jax.random.key(seed))
    t = jax.random.uniform(t_key, (n,), minval=-5.0, maxval=10.0)
    x = jax.random.uniform(x_key, (n, 1), minval=-half_width, maxval=half_width)
    return t, x


@pytest.mark.parametrize(
    "field",
    [
        lambda t, x: jnp.stack([sine_gordon_breather(t, x[0], 0.3)]),
        lambda t, x: jnp.stack([sine_gordon_kink(t, x[0], 0.6)]),
        lambda t, x: jnp.stack([sine_gordon_kink_antikink(t, x[0], 0.6)]),
    ],
    ids=["breather", "kink", "kink-antikink"],
)
def test_closed_forms_have_zero_residual(field):
    """u_tt − u_xx + sin u = 0 by autodiff (the residual depends only on the PDE)."""
    t, x = random_points(64, seed=1)
    residual = jax.jit(jax.vmap(lambda t, x: P.field_residual(field, t, x)))(t, x)
    np.testing.assert_allclose(residual, 0.0, rtol=0, atol=ATOL_AUTODIFF)


def test_exact_state_and_state_from_field():
    """exact_state = (u, u_t) with the closed-form u_t equal to the jvp of u; state_from_field
    of the exact field returns it; the breather is centred at L/2."""
    t, x = random_points(32, seed=2, half_width=P.length / 2)
    x = x + P.length / 2

    def field(t, x):
        return P.exact_state(t, x)[:1]

    q = jax.vmap(P.exact_state)(t, x)
    from_field = jax.jit(jax.vmap(lambda t, x: P.state_from_field(field, t, x)))(t, x)
    np.testing.assert_allclose(from_field, q, rtol=0, atol=ATOL_AUTODIFF)
    u_plain = jax.vmap(lambda t, x: sine_gordon_breather(t, x[0] - P.length / 2, P.omega))(t, x)
    np.testing.assert_allclose(q[:, 0], u_plain, rtol=0, atol=ATOL_AUTODIFF)
    residual = jax.jit(jax.vmap(lambda t, x: P.field_residual(field, t, x)))(t, x)
    np.testing.assert_allclose(residual, 0.0, rtol=0, atol=ATOL_AUTODIFF)


def test_rhs_is_the_time_derivative_and_invariants_are_exact():
    """On grid(512): rhs(q) = ∂ₜq (jvp) — the spectral tail is e^{−πk_max/(2β)} ≈ 1e−16 at
    k_max = πn/L ≈ 20, and round-off in u_xx is ε k_max² |u| ≈ 5e−13; 1e−12. H = 16β to 1e−13
    relative (spectral quadrature, periodisation ≈ 1e−14) and P = 0 (odd integrand)."""
    times = jnp.asarray(P.default_times)
    q = P.reference(P.default_times, 512)
    assert q.shape == (4, 512, 2)
    rhs = jax.vmap(P.rhs)(times, q)
    dq = jax.jit(
        jax.vmap(
            lambda t: jax.vmap(lambda y: jax.jvp(lambda s: P.exact_state(s, y), (t,), (1.0,))[1])(
                P.grid(512)
            )
        )
    )(times)
    np.testing.assert_allclose(rhs, dq, rtol=0, atol=1e-12)
    laws = P.invariant_laws(1.0)
    assert float(laws["hamiltonian"]) == pytest.approx(16 * math.sqrt(0.75), rel=1e-15)
    for state in q:
        inv = P.invariants(state)
        assert float(inv["hamiltonian"]) == pytest.approx(float(laws["hamiltonian"]), rel=1e-13)
        assert float(inv["momentum"]) == pytest.approx(0.0, abs=1e-13)


def test_stormer_verlet_converges_to_the_breather():
    """Spectral (n = 512) Störmer–Verlet to t = 2.5: the error ratio between Δt = 0.05 and
    0.025 is 4 ± 0.3 (second order; the O(Δt⁴) term moves the ratio by < 1%; full fits in
    tests/validation), and the RK4 path with Δt = 0.025 is ≥ 100× more accurate (fourth
    order: ~(Δt²)² vs Δt²)."""
    times = (1.0, 2.5)
    exact = P.reference(times, 512)

    def error(dt, method="stormer-verlet"):
        q = P.solve(times, 512, dt, method=method)
        return np.asarray(jax.vmap(relative_l2_error)(q, exact))

    coarse, fine = error(0.05), error(0.025)
    np.testing.assert_allclose(coarse / fine, 4.0, rtol=0, atol=0.3)
    assert np.all(error(0.025, "rk4") < fine / 100)


def test_integrators_on_the_harmonic_oscillator():
    """q̈ = −q: Störmer–Verlet conserves the modified energy v² + (1 − h²/4)q² exactly (its
    one-step map's invariant quadratic form), RK4 multiplies q² + v² by
    |R(ih)|² = 1 − h⁶/72 + h⁸/576 every step. Both to round-off over 1000 steps (linear maps:
    ~1000 ε growth; 1e−12 relative)."""
    h, steps = 0.3, 1000
    q0, v0 = jnp.array([1.0, 0.2]), jnp.array([0.0, -0.7])

    def sv_invariant(q, v):
        return v**2 + (1 - h**2 / 4) * q**2

    (q, v), trace = stormer_verlet(lambda q: -q, q0, v0, dt=h, n_steps=steps, observe=sv_invariant)
    np.testing.assert_allclose(
        trace, jnp.broadcast_to(sv_invariant(q0, v0), trace.shape), rtol=1e-12, atol=0
    )
    (q, v), _ = rk4_second_order(lambda q: -q, q0, v0, dt=h, n_steps=steps)
    factor = (1 - h**6 / 72 + h**8 / 576) ** steps
    np.testing.assert_allclose(q**2 + v**2, factor * (q0**2 + v0**2), rtol=1e-12, atol=0)


def test_discrete_flow_is_symplectic():
    """The Jacobian J of 10 Störmer–Verlet steps of the spectral system (n = 16) satisfies
    JᵀΩJ = Ω (Ω the canonical form in (u, u_t); Δx scales p = Δx u_t by a constant, which Ω
    ignores) to round-off; RK4's does not (its defect is O(h⁵) per step, ≫ 1e−12)."""
    n, length = 16, 8.0
    x = jnp.arange(n) * (length / n)
    q0 = jnp.stack(
        [0.5 * jnp.sin(2 * jnp.pi * x / length), 0.3 * jnp.cos(2 * jnp.pi * x / length)], axis=-1
    )
    omega = jnp.block([[jnp.zeros((n, n)), jnp.eye(n)], [-jnp.eye(n), jnp.zeros((n, n))]])

    def flow(method):
        def step(flat):
            q = solve_sine_gordon(
                flat.reshape(2, n).T, (0.5,), length=length, dt=0.05, method=method
            )[-1]
            return q.T.reshape(-1)

        jac = jax.jacfwd(step)(q0.T.reshape(-1))
        return jnp.max(jnp.abs(jac.T @ omega @ jac - omega))

    assert float(flow("stormer-verlet")) < 1e-12
    assert float(flow("rk4")) > 1e-9


def test_problem_objects_and_validation():
    assert isinstance(get_problem("sine-gordon-1d"), SineGordonBreatherProblem)
    assert isinstance(P, AbstractExactFieldProblem)
    assert (P.dim, P.n_components, P.field_components) == (1, 2, 1)
    assert P.component_names == ("u", "u_t")
    assert P.periodisation_error < 1e-12
    params = P.parameters()
    assert json.loads(json.dumps(params)) == params
    np.testing.assert_array_equal(P.reference_error(P.default_times, 64), np.zeros(4))
    fields = {
        "problem_id": "sg-test",
        "omega": 0.5,
        "length": 80.0,
        "t_min": 0.0,
        "t_max": 10.0,
        "default_times": (1.0,),
        "grid_size": 512,
        "dt": 0.01,
    }
    for changes, match in (
        ({"omega": 1.0}, "omega"),
        ({"length": 40.0}, "periodisation"),
        ({"default_times": (11.0,)}, "default_times"),
    ):
        with pytest.raises(ProblemError, match=match):
            SineGordonBreatherProblem(**{**fields, **changes})
    with pytest.raises(ValueError, match="vmap"):
        P.rhs(0.0, jnp.zeros((8, 1)))
    with pytest.raises(ValueError, match="vmap"):
        P.exact_state(0.0, jnp.zeros((2, 1)))
    with pytest.raises(ValueError, match="method"):
        solve_sine_gordon(jnp.zeros((8, 2)), (1.0,), length=1.0, dt=0.1, method="euler")


def test_jit_and_vmap():
    """vmap over initial states equals separate runs; the force is jittable."""
    n, length = 32, 16.0
    x = jnp.arange(n) * (length / n)
    base = jnp.stack([jnp.zeros(n), 1 / jnp.cosh(x - length / 2)], axis=-1)
    batch = jnp.stack([base, 0.5 * base])

    def run(q0):
        return solve_sine_gordon(q0, (0.2, 0.4), length=length, dt=0.05)

    batched = jax.vmap(run)(batch)
    np.testing.assert_allclose(batched[1], run(batch[1]), rtol=1e-13, atol=1e-14)
    force = jax.jit(lambda u: sine_gordon_force(u, length))(base[:, 1])
    np.testing.assert_allclose(force, sine_gordon_force(base[:, 1], length), rtol=1e-14, atol=1e-14)
