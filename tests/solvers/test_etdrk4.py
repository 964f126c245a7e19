"""ETDRK4: contour-integral coefficients, exactness on linear problems, order 4, jit/vmap/grad."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from solvers._etdrk4 import etdrk4, etdrk4_coefficients, etdrk4_save_at
from solvers._stepping import step_plan

# The contour mean evaluates each coefficient at |ζ − z| = 1, where its terms are O(30) for the
# O(1/6) result: relative round-off ≲ 30 · 6 · 2.2e−16 ≈ 4e−14 (the trapezoid rule itself is
# exact to O(1/35!)); 1e−13 relative.
RTOL_COEFF, ATOL_COEFF = 1e-13, 1e-16


def phi(k: int, z: complex) -> complex:
    """φ_k(z) = Σ_j z^j / (j + k)! (60 terms: exact in float64 for |z| ≤ 2)."""
    return sum(z**j / math.factorial(j + k) for j in range(60))


def reference_coefficients(z: complex, h: float) -> list[complex]:
    """Q, f₁, f₂, f₃ by φ-functions: Q = (h/2)φ₁(z/2), f₁ = h(φ₁ − 3φ₂ + 4φ₃),
    f₂ = h(φ₂ − 2φ₃), f₃ = h(−φ₂ + 4φ₃) (Taylor series for |z| ≤ 2, closed forms beyond, where
    they have no cancellation)."""
    if abs(z) <= 2:
        p1, p2, p3 = phi(1, z), phi(2, z), phi(3, z)
        q = 0.5 * h * phi(1, z / 2)
        return [q, h * (p1 - 3 * p2 + 4 * p3), h * (p2 - 2 * p3), h * (-p2 + 4 * p3)]
    e = np.exp(z)
    return [
        h * (np.exp(z / 2) - 1) / z,
        h * (-4 - z + e * (4 - 3 * z + z**2)) / z**3,
        h * (2 + z + e * (z - 2)) / z**3,
        h * (-4 - 3 * z - z**2 + e * (4 - z)) / z**3,
    ]


@pytest.mark.parametrize("linear", [np.array([0.0, -1e-7, -0.4, 1.5, -30.0, -1e4])])
def test_coefficients_match_phi_functions(linear):
    """Real L, h = 0.5: z = 0 (classical RK4 weights 1/2, 1/6), the cancellation region
    |z| ≪ 1, moderate and very stiff z."""
    h = 0.5
    c = etdrk4_coefficients(jnp.asarray(linear), h)
    assert c.q.dtype == jnp.float64
    ref = np.array([reference_coefficients(complex(h * lam), h) for lam in linear]).real
    got = np.stack([c.q, c.f1, c.f2, c.f3], axis=1)
    np.testing.assert_allclose(got, ref, rtol=RTOL_COEFF, atol=ATOL_COEFF)
    np.testing.assert_allclose(
        [c.q[0], c.f1[0], c.f2[0], c.f3[0]], [h / 2, h / 6, h / 6, h / 6], rtol=RTOL_COEFF, atol=0
    )
    np.testing.assert_allclose(c.exp_full, np.exp(h * linear), rtol=1e-15, atol=0)


def test_complex_coefficients():
    """Dispersive (imaginary) and mixed L: the full-circle mean keeps the complex value."""
    h = 0.25
    linear = np.array([3j, -2 + 5j, -40j])
    c = etdrk4_coefficients(jnp.asarray(linear), h)
    ref = np.array([reference_coefficients(complex(h * lam), h) for lam in linear])
    np.testing.assert_allclose(
        np.stack([c.q, c.f1, c.f2, c.f3], 1), ref, rtol=RTOL_COEFF, atol=ATOL_COEFF
    )


def test_exact_for_linear_problems_with_constant_forcing():
    """v' = Lv + c has v(t) = e^{Lt}v₀ + (e^{Lt} − 1)/L c; ETDRK4 reproduces it for any step
    (f₁ + 4f₂ + f₃ = hφ₁(hL)), so 3 steps of 1/3 agree to round-off (a few ulps of e^{Lt} per
    step; 1e−13)."""
    linear = jnp.array([-100.0, -1.0, 0.0, 0.5, 2j - 0.1])
    c = jnp.array([1.0, -2.0, 0.5, 1.0, 1.0 + 1j])
    v0 = jnp.array([1.0, 0.5, -1.0, 2.0, 1j])
    v = etdrk4(linear, lambda t, v: c, v0.astype(complex), t0=0.0, dt=1 / 3, n_steps=3)
    e = np.exp(np.asarray(linear))
    growth = np.where(linear == 0, 1.0, (e - 1) / np.where(linear == 0, 1.0, linear))
    np.testing.assert_allclose(v, e * v0 + growth * c, rtol=1e-13, atol=1e-15)


def bernoulli(linear: np.ndarray, v0: float, t: float) -> np.ndarray:
    """v' = Lv − v²: w = 1/v solves w' = −Lw + 1, so w = 1/L + (1/v₀ − 1/L)e^{−Lt}
    (w₀ + t at L = 0)."""
    safe = np.where(linear == 0, 1.0, linear)
    w = np.where(linear == 0, 1 / v0 + t, 1 / safe + (1 / v0 - 1 / safe) * np.exp(-linear * t))
    return 1 / w


def test_fourth_order_on_a_nonlinear_problem():
    """v' = Lv − v² for L = 0 (RK4), 0.5, −1, −10 (stiff, hL up to −1.25): the fitted slope of
    log max error against log h over h = 1/8, 1/16, 1/32 is 4 ± 0.3 (the error constant's
    O(h) correction moves a 3-point fit by ≲ 0.2 at these steps)."""
    linear = np.array([0.0, 0.5, -1.0, -10.0])
    exact = bernoulli(linear, 1.0, 1.0)
    steps = [8, 16, 32]
    errors = []
    for n in steps:
        v = etdrk4(
            jnp.asarray(linear), lambda t, v: -(v**2), jnp.ones(4), t0=0.0, dt=1 / n, n_steps=n
        )
        errors.append(np.max(np.abs(np.asarray(v) - exact)))
    slope = np.polyfit(np.log(1 / np.array(steps)), np.log(errors), 1)[0]
    assert slope == pytest.approx(4.0, abs=0.3), (slope, errors)


def test_save_at_matches_uniform_steps_and_plans_intervals():
    """Equally spaced save times with Δt dividing them reproduce the plain scan's steps;
    uneven times get M = max⌈width/Δt⌉ equal steps per interval; a repeated time is a copy."""
    linear = jnp.array([0.0, -1.0, -10.0])
    nonlinear = lambda t, v: -(v**2) + jnp.sin(t)  # noqa: E731 (time-dependent N)
    v0 = jnp.ones(3)
    saved = etdrk4_save_at(
        linear, nonlinear, v0, t0=0.0, times=(0.25, 0.5, 0.5, 0.75, 1.0), dt=0.125
    )
    plain = etdrk4(linear, nonlinear, v0, t0=0.0, dt=0.125, n_steps=8)
    np.testing.assert_allclose(saved[-1], plain, rtol=1e-14, atol=1e-15)
    np.testing.assert_array_equal(saved[1], saved[2])
    starts, widths, m = step_plan(0.0, (0.1, 0.4, 1.0), 0.1)
    assert m == 6  # the widest interval, 0.6, in steps of 0.1 (no round-up of 5.999…)
    np.testing.assert_allclose(widths * m, [0.1, 0.3, 0.6], rtol=1e-15, atol=1e-16)
    np.testing.assert_allclose(starts, [0.0, 0.1, 0.4], rtol=0, atol=0)
    for bad in ((0.5, 0.4), (-0.1,), ()):
        with pytest.raises(ValueError, match="times"):
            step_plan(0.0, bad, 0.1)


def test_jit_vmap_grad():
    """vmap over initial states equals separate runs; jit gives the same numbers; the
    derivative of the discrete solution map matches finite differences (check_grads)."""
    linear = jnp.array([0.0, -1.0, -10.0])

    def solve(v0):
        return etdrk4(linear, lambda t, v: -(v**2), v0, t0=0.0, dt=0.1, n_steps=10)

    batch = jnp.array([[1.0, 1.0, 1.0], [0.5, 2.0, -0.3]])
    batched = jax.jit(jax.vmap(solve))(batch)
    for row, v0 in zip(batched, batch, strict=True):
        np.testing.assert_allclose(row, solve(v0), rtol=1e-14, atol=1e-15)
    check_grads(solve, (batch[1],), order=1, modes=["fwd", "rev"])
