"""Slow validation of the PDE reference solvers (``pytest -m slow``).

* ETDRK4 temporal order 4 (Burgers against Cole–Hopf; Navier–Stokes against a Δt/64 run);
* Störmer–Verlet order 2 and RK4 order 4 against the sine-Gordon breather;
* spectral (exponential) convergence in space, at the analytically predicted rate for the
  breather;
* Cole–Hopf against ETDRK4, and the self-convergence error estimates against true errors;
* Störmer–Verlet Hamiltonian error bounded over 10⁴ steps while RK4 drifts;
* Navier–Stokes energy and enstrophy: Taylor–Green decay rate, the balance dE/dt = −2νZ of a
  nonlinear flow, conservation for ν = 0 at the time-stepping order.

Fitted slopes use least squares over ≥ 3 resolutions.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from solvers._burgers import burgers_1d, burgers_from_fourier
from solvers._navier_stokes import ns_perturbed_taylor_green_2d, ns_taylor_green_2d
from solvers._sine_gordon import sine_gordon_1d, sine_gordon_force, sine_gordon_hamiltonian
from solvers._spectral import relative_l2_error
from solvers._symplectic import rk4_second_order, stormer_verlet

pytestmark = pytest.mark.slow

BURGERS = burgers_1d()
BREATHER = sine_gordon_1d()


def errors_against(reference, states) -> np.ndarray:
    return np.asarray(jax.vmap(relative_l2_error)(states, reference))


def fitted_slope(x, errors) -> float:
    return float(np.polyfit(np.log(x), np.log(errors), 1)[0])


# -- temporal orders ------------------------------------------------------------------------


def test_etdrk4_order_four_on_burgers():
    """n = 256 (2/3-rule truncation error < 1e−12, far below the smallest temporal error
    ≈ 2e−9): relative L2 error at t = 1 and 2 for Δt = 0.1 … 0.0125. The fitted slope is
    4 ± 0.25 (the next term of the error expansion bends a 4-point fit by ≈ 0.15 here:
    local orders 3.7 → 3.95)."""
    times = (1.0, 2.0)
    exact = BURGERS.reference(times, 256)
    steps = [0.1, 0.05, 0.025, 0.0125]
    errors = np.array([errors_against(exact, BURGERS.solve(times, 256, dt)) for dt in steps])
    for column in errors.T:
        assert fitted_slope(steps, column) == pytest.approx(4.0, abs=0.25), errors


def test_etdrk4_order_four_on_navier_stokes():
    """Perturbed Taylor–Green (nonlinear, ν = 0.05) on 32² to t = 2: errors against a run with
    Δt/64 (its own error ≈ 64⁻⁴ ≈ 6e−8 of the coarsest's) for Δt = 0.2 … 0.025; slope
    4 ± 0.2 (measured local orders 4.07, 4.04, 4.02)."""
    problem = ns_perturbed_taylor_green_2d(nu=0.05)
    times = (2.0,)
    steps = [0.2, 0.1, 0.05, 0.025]
    fine = problem.solve(times, 32, steps[0] / 64)
    errors = [float(errors_against(fine, problem.solve(times, 32, dt))[0]) for dt in steps]
    assert fitted_slope(steps, errors) == pytest.approx(4.0, abs=0.2), errors


@pytest.mark.parametrize(
    ("method", "steps", "order", "width"),
    [("stormer-verlet", [0.04, 0.02, 0.01], 2.0, 0.1), ("rk4", [0.1, 0.05, 0.025], 4.0, 0.25)],
)
def test_second_order_integrators_on_the_breather(method, steps, order, width):
    """Spectral sine-Gordon (n = 512, spatial error ~1e−15) against the exact breather at the
    default times. Störmer–Verlet: slope 2 ± 0.1 (its error expansion has only even powers:
    the Δt⁴ term moves the fit by < 0.01); RK4: 4 ± 0.25. The fastest grid mode has
    ω_max ≈ k_max = 20, so Δt ω_max ≤ 2 stays inside both stability intervals (2 and 2√2)."""
    times = BREATHER.default_times
    exact = BREATHER.reference(times, 512)
    errors = np.array(
        [errors_against(exact, BREATHER.solve(times, 512, dt, method=method)) for dt in steps]
    )
    for column in errors.T:
        assert fitted_slope(steps, column) == pytest.approx(order, abs=width), errors


# -- spatial convergence --------------------------------------------------------------------


def test_spectral_convergence_at_the_analytic_rate_for_the_breather():
    """rhs(q) − ∂ₜq on grid(n) for the breather: the spectral u_xx error is dominated by the
    Fourier tail at k_max = πn/L, ∝ e^{−πk_max/(2β)} (poles of sech at Im βx = ±π/2), so
    log(error) against n has slope −π²/(2βL) = −0.0712 (ω = 0.5, L = 80); fitted over
    n = 128 … 320 it must match within 10% (the algebraic prefactor k_max² shifts it by ≈ 3%)."""
    t = 2.5
    sizes = [128, 192, 256, 320]
    errors = []
    for n in sizes:
        q = BREATHER.reference((t,), n)[0]
        dq = jax.vmap(lambda y: jax.jvp(lambda s: BREATHER.exact_state(s, y), (t,), (1.0,))[1])(
            BREATHER.grid(n)
        )
        errors.append(float(jnp.max(jnp.abs(BREATHER.rhs(t, q) - dq))))
    slope = float(np.polyfit(sizes, np.log(errors), 1)[0])
    predicted = -(math.pi**2) / (2 * BREATHER.beta * BREATHER.length)
    assert slope == pytest.approx(predicted, rel=0.1), (slope, errors)


def test_burgers_spatial_convergence_is_exponential():
    """ETDRK4 (Δt = 1e−3, temporal error ≈ 1e−13) against Cole–Hopf at t = 1 for n = 48 … 128:
    log(error) is linear in n (exponential convergence: a least-squares line in n leaves
    R² ≥ 0.99) with slope < −0.1 per grid point, and the local algebraic orders
    log(e_i/e_{i+1}) / log(n_{i+1}/n_i) increase (no algebraic order fits)."""
    sizes = [48, 64, 96, 128]
    exact = {n: BURGERS.reference((1.0,), n) for n in sizes}
    errors = np.array(
        [float(errors_against(exact[n], BURGERS.solve((1.0,), n, 1e-3))[0]) for n in sizes]
    )
    coeffs = np.polyfit(sizes, np.log(errors), 1)
    fit = np.polyval(coeffs, sizes)
    r2 = 1 - np.sum((np.log(errors) - fit) ** 2) / np.sum(
        (np.log(errors) - np.log(errors).mean()) ** 2
    )
    assert coeffs[0] < -0.1, errors
    assert r2 >= 0.99, (r2, errors)
    local = np.log(errors[:-1] / errors[1:]) / np.log(np.array(sizes[1:]) / sizes[:-1])
    assert np.all(np.diff(local) > 0), local


# -- agreement and error estimates ---------------------------------------------------------


def test_cole_hopf_agrees_with_etdrk4():
    """n = 256, Δt = 1e−3: ETDRK4's temporal error (≈ 3e−13) and truncation (< 1e−12) are
    below the Cole–Hopf round-off (≈ 5e−12 near x = π); max abs difference ≤ 2e−11 at every
    default time."""
    times = BURGERS.default_times
    difference = BURGERS.solve(times, 256, 1e-3) - BURGERS.reference(times, 256)
    assert float(jnp.max(jnp.abs(difference))) <= 2e-11


@pytest.mark.parametrize(("grid_size", "dt"), [(64, 1e-2), (96, 1e-2), (256, 0.1)])
def test_burgers_self_convergence_estimates_the_true_error(grid_size, dt):
    """u₀ = sin x as a numerical BurgersProblem, output grid 64: reference_error (run at 2N,
    Δt/2) against the true error (Cole–Hopf). Resolution-limited runs (N = 64, 96): the 2N run
    is ~1e3× more accurate, so the estimate equals the error within 10% (where the true error
    is above the 1e−11 Cole–Hopf floor). Time-limited (Δt = 0.1): the estimate is
    (1 − 2⁻⁴) × the error, within 25% of it."""
    problem = burgers_from_fourier([1], [0.0], [1.0], grid_size=grid_size, dt=dt)
    times = BURGERS.default_times
    true = errors_against(BURGERS.reference(times, 64), problem.reference(times, 64))
    estimate = np.asarray(problem.reference_error(times, 64))
    rtol = 0.25 if grid_size == 256 else 0.1
    np.testing.assert_allclose(estimate, true, rtol=rtol, atol=1e-11)


def test_navier_stokes_self_convergence_estimates_the_true_error():
    """Perturbed Taylor–Green (ν = 0.05): the reference on grid(32) (N = 32, Δt = 0.01) has
    reference_error within 10% of its difference from a run at 128² and Δt/4 (accurate to
    ≪ 1e−3 of the error: the space term dominates and converges exponentially)."""
    problem = ns_perturbed_taylor_green_2d(nu=0.05, grid_size=32)
    times = problem.default_times
    estimate = np.asarray(problem.reference_error(times, 32))
    fine = problem.solve(times, 128, problem.dt / 4)
    fine_on_32 = fine[:, ::4, ::4]
    true = errors_against(fine_on_32, problem.reference(times, 32))
    np.testing.assert_allclose(estimate, true, rtol=0.1, atol=0)


# -- invariants -----------------------------------------------------------------------------


def test_stormer_verlet_energy_is_bounded_while_rk4_drifts():
    """10⁴ steps of Δt = 0.05 (t = 500, 40 breather periods) on 256 points. Störmer–Verlet:
    |H − H₀| is as large in the last 1000 steps as in the first 1000 (within 2%: it
    oscillates with the modified Hamiltonian, no drift), and halving Δt divides it by
    4 ± 0.4 (O(Δt²)). RK4 (|R(iy)| < 1 damps every linear mode): H ends below H₀ and
    |H − H₀| grows linearly, ×10 ± 2 from step 1000 to step 10⁴."""
    n, length = 256, BREATHER.length
    q0 = jax.vmap(BREATHER.initial_state)(BREATHER.grid(n))

    def hamiltonian(u, v):
        return sine_gordon_hamiltonian(jnp.stack([u, v], axis=-1), length)

    def force(u):
        return sine_gordon_force(u, length)

    h0 = float(hamiltonian(q0[:, 0], q0[:, 1]))

    def drift(integrator, dt, steps):
        run = jax.jit(
            lambda u, v: integrator(force, u, v, dt=dt, n_steps=steps, observe=hamiltonian)[1]
        )
        return np.asarray(run(q0[:, 0], q0[:, 1])) - h0

    sv = np.abs(drift(stormer_verlet, 0.05, 10_000)) / h0
    assert sv[-1000:].max() == pytest.approx(sv[:1000].max(), rel=0.02)
    sv_half = np.abs(drift(stormer_verlet, 0.025, 2_000)) / h0
    assert sv[:1000].max() / sv_half.max() == pytest.approx(4.0, abs=0.4)
    rk = drift(rk4_second_order, 0.05, 10_000)
    assert rk[-1] < 0
    assert rk[-1] / rk[999] == pytest.approx(10.0, abs=2.0)


def test_taylor_green_decay_rate_from_the_numerical_solver():
    """The ETDRK4 run (32², Δt = 0.05) of Taylor–Green: log E and log Z are linear in t with
    slope −4νK² to 1e−10 relative (the scheme is exact on this solution up to round-off)."""
    problem = ns_taylor_green_2d()
    times = (1.0, 2.0, 3.0, 4.0, 5.0)
    states = problem.solve(times, 32, 0.05)
    for name in ("energy", "enstrophy"):
        values = np.array([float(problem.invariants(s)[name]) for s in states])
        slope = np.polyfit(times, np.log(values), 1)[0]
        assert slope == pytest.approx(-problem.decay_rate, rel=1e-10)


def test_energy_balance_of_a_nonlinear_flow():
    """Perturbed Taylor–Green (ν = 0.05, 32², Δt = 0.01): E(2) − E(1) = −2ν∫₁² Z dt with Z from
    the run at 21 save times by Simpson's rule (quadrature error (0.05)⁴ max|Z⁗|/180 ~ 1e−8
    relative; the semi-discrete balance is exact for the Galerkin system): 1e−6 relative."""
    problem = ns_perturbed_taylor_green_2d(nu=0.05)
    times = tuple(1.0 + 0.05 * k for k in range(21))
    states = problem.solve(times, 32, 0.01)
    inv = [problem.invariants(s) for s in states]
    energy = np.array([float(i["energy"]) for i in inv])
    enstrophy = np.array([float(i["enstrophy"]) for i in inv])
    weights = np.ones(21)
    weights[1:-1:2], weights[2:-1:2] = 4, 2
    integral = 0.05 / 3 * np.sum(weights * enstrophy)
    assert energy[-1] - energy[0] == pytest.approx(-2 * problem.nu * integral, rel=1e-6)


def test_inviscid_conservation_at_the_time_stepping_order():
    """ν = 0, 32², t = 5: the relative drift of E and Z decreases at least at RK4's order 4
    (fitted slope ≥ 3.7 over Δt = 0.2 … 0.025; measured ≈ 5.4 and 5.0 — conservation errors
    can superconverge) and the circulation stays 0 to round-off."""
    problem = ns_perturbed_taylor_green_2d(nu=0.0)
    laws = problem.invariant_laws(0.0)
    steps = [0.2, 0.1, 0.05, 0.025]
    drifts = {"energy": [], "enstrophy": []}
    for dt in steps:
        inv = problem.invariants(problem.solve((5.0,), 32, dt)[0])
        for name, values in drifts.items():
            values.append(abs(float(inv[name] / laws[name]) - 1))
        assert float(inv["circulation"]) == pytest.approx(0.0, abs=1e-12)
    for name, values in drifts.items():
        assert fitted_slope(steps, values) >= 3.7, (name, values)
