"""Fourier pseudo-spectral operators: exactness on trigonometric polynomials, exponential
convergence on analytic fields, dealiasing, interpolation, quadrature, jit/vmap/grad."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from solvers._spectral import (
    FourierSeries,
    dealias_mask,
    inverse_laplacian,
    irfft,
    l2_inner,
    l2_norm,
    periodic_grid,
    relative_l2_error,
    rfft,
    spectral_derivative,
    spectral_gradient,
    spectral_interpolate,
    spectral_laplacian,
    wavenumbers,
)

# Fourier identities on O(1) trigonometric polynomials: an FFT pair costs ~log2(n) ulps per
# value and a p-th derivative multiplies by k_max^p ≤ 16³ here, so 1e-10 absolute covers
# 16³ × 64 × 2.2e-16 ≈ 6e-11 with room; plain algebra (no derivative) is held to 1e-13.
RTOL_FFT, ATOL_FFT = 1e-12, 1e-10
RTOL_ALG, ATOL_ALG = 1e-13, 1e-13

LENGTH = 3.0  # deliberately not 2π: every wavenumber carries the factor 2π/L


def trig_field(x, kappa):
    """u = sin(κx₀) cos(2κx₁) + cos(3κx₀) (2-D) or sin(κx) + cos(3κx) (1-D), and ∂₀u, ∂₀²u,
    ∂₀³u, Δu in closed form (numpy)."""
    x = np.asarray(x)
    a = kappa * x[..., 0]
    c, cd = (np.ones_like(a), 0.0) if x.shape[-1] == 1 else (np.cos(2 * kappa * x[..., 1]), 1.0)
    u = np.sin(a) * c + np.cos(3 * a)
    d1 = kappa * (np.cos(a) * c - 3 * np.sin(3 * a))
    d2 = -(kappa**2) * (np.sin(a) * c + 9 * np.cos(3 * a))
    d3 = -(kappa**3) * (np.cos(a) * c - 27 * np.sin(3 * a))
    lap = d2 - cd * 4 * kappa**2 * np.sin(a) * c
    return u, d1, d2, d3, lap


def test_grid_and_wavenumbers():
    x = periodic_grid(6, LENGTH, 2)
    assert x.shape == (6, 6, 2)
    np.testing.assert_allclose(x[2, 5], [2 * LENGTH / 6, 5 * LENGTH / 6], rtol=1e-15, atol=0)
    k = wavenumbers(6, LENGTH) * LENGTH / (2 * math.pi)
    np.testing.assert_allclose(k, [0, 1, 2, -3, -2, -1], rtol=0, atol=1e-14)


@pytest.mark.parametrize(("d", "n"), [(1, 16), (2, 15)])
def test_derivatives_exact_on_trigonometric_polynomials(d, n):
    """Modes |m| ≤ 3 < n/2: first, second, third derivatives and the Laplacian are exact."""
    x = periodic_grid(n, LENGTH, d)
    u, d1, d2, d3, lap = trig_field(x, 2 * math.pi / LENGTH)
    for order, exact in ((1, d1), (2, d2), (3, d3)):
        got = spectral_derivative(u, LENGTH, axis=0, order=order)
        np.testing.assert_allclose(got, exact, rtol=RTOL_FFT, atol=ATOL_FFT)
    np.testing.assert_allclose(spectral_laplacian(u, LENGTH), lap, rtol=RTOL_FFT, atol=ATOL_FFT)
    grad = spectral_gradient(u, LENGTH)
    assert grad.shape == (*u.shape, d)
    np.testing.assert_allclose(grad[..., 0], d1, rtol=RTOL_FFT, atol=ATOL_FFT)
    # Δ⁻¹Δu = u − mean(u) (the cos(3κx₀) and sin·cos modes have zero mean)
    back = inverse_laplacian(spectral_laplacian(u, LENGTH), LENGTH)
    np.testing.assert_allclose(back, u, rtol=RTOL_FFT, atol=ATOL_FFT)


def test_odd_derivative_drops_the_nyquist_mode():
    """u = cos(nx/2) at x_j is (−1)^j; its odd derivatives are set to 0 (real, skew D)."""
    n = 8
    u = jnp.cos(math.pi * jnp.arange(n))
    np.testing.assert_allclose(spectral_derivative(u, LENGTH), 0.0, rtol=0, atol=1e-15)
    second = spectral_derivative(u, LENGTH, order=2)
    k_nyq = math.pi * n / LENGTH
    np.testing.assert_allclose(second, -(k_nyq**2) * u, rtol=RTOL_FFT, atol=ATOL_FFT)


def test_derivative_converges_exponentially_at_the_analytic_rate():
    """u = 1/(2 − cos x) on [0, 2π) has poles at Im x = ±a, a = arccosh 2, so û_k ∝ e^{−a|k|}
    and the aliasing error of u' at n points is ∝ n e^{−an/2}. The least-squares slope of
    log(max error / n) against n over n = 8 … 32 must be −a/2 = −0.658 within 10% (the
    prefactor's sub-leading n-dependence shifts it by ≲ 5%)."""
    sizes = [8, 16, 24, 32]
    errors = []
    for n in sizes:
        x = np.arange(n) * (2 * math.pi / n)
        u = 1 / (2 - np.cos(x))
        exact = -np.sin(x) / (2 - np.cos(x)) ** 2
        errors.append(np.max(np.abs(np.asarray(spectral_derivative(u, 2 * math.pi)) - exact)))
    slope = np.polyfit(sizes, np.log(np.array(errors) / sizes), 1)[0]
    assert slope == pytest.approx(-math.acosh(2) / 2, rel=0.1), (slope, errors)


@pytest.mark.parametrize(("n", "d", "kept"), [(12, 1, 4), (16, 2, 6)])
def test_dealias_mask_counts_and_removes_aliases(n, d, kept):
    """3|m| < n: for n = 12 the kept modes are m = 0…3 (rfft half); n = 64: 0…21. For a, b
    supported on the kept modes, the kept coefficients of the n-grid product equal those of
    the exact product (on a 2n grid, where |m| < 2n/3 < n is alias-free)."""
    mask = np.asarray(dealias_mask(n, d))
    assert mask[(0,) * (d - 1)].sum() == kept
    key_a, key_b = jax.random.split(jax.random.key(n + d))

    def masked_random(key):
        return irfft(jnp.where(mask, rfft(jax.random.normal(key, (n,) * d)), 0.0), n)

    a, b = masked_random(key_a), masked_random(key_b)
    coarse = np.asarray(rfft(a * b)) / n**d
    fine = np.asarray(rfft(spectral_interpolate(a, 2 * n) * spectral_interpolate(b, 2 * n)))
    fine = fine / (2 * n) ** d
    # coarse index i ↔ frequency m = fftfreq(n)·n ↔ fine index m mod 2n (last axis: m itself)
    index = [np.fft.fftfreq(n, 1.0 / n).astype(int) % (2 * n)] * (d - 1)
    index.append(np.arange(n // 2 + 1))
    exact = fine[np.ix_(*index)]
    np.testing.assert_allclose(coarse[mask], exact[mask], rtol=RTOL_FFT, atol=1e-14)


@pytest.mark.parametrize(("n", "m"), [(8, 24), (16, 12), (15, 5)])
def test_interpolation_is_exact_for_band_limited_fields(n, m):
    """u with modes |k| < min(n, m)/2 is reproduced at the points of any other grid."""
    top = (min(n, m) - 1) // 2
    coeffs = np.arange(1, top + 1, dtype=float)

    def u(x):
        k = np.arange(1, top + 1)
        return np.cos(np.outer(x, k)) @ coeffs + np.sin(np.outer(x, k)) @ (coeffs / 3) + 0.5

    x_n = np.arange(n) * (2 * math.pi / n)
    x_m = np.arange(m) * (2 * math.pi / m)
    np.testing.assert_allclose(
        spectral_interpolate(u(x_n), m), u(x_m), rtol=RTOL_FFT, atol=ATOL_FFT
    )
    # 2-D, separable
    field = np.outer(u(x_n), u(x_n))
    np.testing.assert_allclose(
        spectral_interpolate(field, m), np.outer(u(x_m), u(x_m)), rtol=RTOL_FFT, atol=ATOL_FFT
    )


@pytest.mark.parametrize("n", [8, 9])
def test_interpolation_round_trip_and_nyquist(n):
    """Fine then back is the identity for any grid values (Nyquist content included); the
    Nyquist mode (−1)^j of an even grid becomes cos(n x/2) on the fine grid."""
    u = jax.random.normal(jax.random.key(n), (n,))
    for m in (2 * n, 3 * n + 1):
        np.testing.assert_allclose(
            spectral_interpolate(spectral_interpolate(u, m), n), u, rtol=RTOL_FFT, atol=ATOL_FFT
        )
    if n % 2 == 0:
        fine = spectral_interpolate(jnp.cos(math.pi * jnp.arange(n)), 4 * n)
        x = jnp.arange(4 * n) * (2 * math.pi / (4 * n))
        np.testing.assert_allclose(fine, jnp.cos(n / 2 * x), rtol=RTOL_FFT, atol=ATOL_FFT)


def test_quadrature_is_exact_for_trigonometric_polynomials():
    """⟨sin κx, sin κx⟩ = L/2 in 1-D, ∫∫ sin²(κx) cos²(2κy) = L²/4 in 2-D (products of modes
    < n are integrated exactly by the trapezoid rule); the relative error is scale-free."""
    kappa = 2 * math.pi / LENGTH
    x = periodic_grid(8, LENGTH, 1)[..., 0]
    s = jnp.sin(kappa * x)
    assert float(l2_inner(s, s, LENGTH)) == pytest.approx(LENGTH / 2, rel=RTOL_ALG, abs=0)
    assert float(l2_inner(s, jnp.cos(kappa * x), LENGTH)) == pytest.approx(0, abs=ATOL_ALG)
    y = periodic_grid(8, LENGTH, 2)
    f = jnp.sin(kappa * y[..., 0]) * jnp.cos(2 * kappa * y[..., 1])
    assert float(l2_norm(f, LENGTH) ** 2) == pytest.approx(LENGTH**2 / 4, rel=RTOL_ALG, abs=0)
    assert float(relative_l2_error(1.5 * f, f)) == pytest.approx(0.5, rel=RTOL_ALG, abs=0)
    assert float(relative_l2_error(7 * 1.5 * f, 7 * f)) == pytest.approx(0.5, rel=RTOL_ALG)


@pytest.mark.parametrize("shape", [(12,), (7, 7)])
def test_fourier_series_from_grid_round_trip(shape):
    """from_grid(values) evaluated pointwise and on the same grid returns the values; on a
    finer grid it equals spectral_interpolate (same interpolant, Nyquist as a cos term; only
    the last axis's Nyquist is symmetrised, so the 2-D check uses odd n)."""
    values = np.random.default_rng(sum(shape)).normal(size=shape)
    series = FourierSeries.from_grid(values, LENGTH)
    np.testing.assert_allclose(series.on_grid(shape[0]), values, rtol=RTOL_FFT, atol=ATOL_FFT)
    if len(shape) == 1 or shape[0] % 2 == 1:
        m = 2 * shape[0] + 1
        np.testing.assert_allclose(
            series.on_grid(m), spectral_interpolate(values, m), rtol=RTOL_FFT, atol=ATOL_FFT
        )
    assert float(series.mean()) == pytest.approx(values.mean(), abs=ATOL_ALG)


def test_shape_errors_mention_vmap():
    with pytest.raises(ValueError, match="vmap"):
        spectral_derivative(jnp.zeros((4, 6)), LENGTH)
    with pytest.raises(ValueError, match="vmap"):
        FourierSeries.from_grid(jnp.zeros(8), LENGTH)(jnp.zeros((3, 1)))


def test_jit_vmap_grad():
    """jit and vmap agree with eager calls; the operators are linear, so their gradients are
    the adjoints: ∇_u ⟨v, ∂ₓu⟩ = −∂ₓv (D is skew) and ∇_u ½‖u‖² = (L/n) u."""
    n = 16
    batch = jax.random.normal(jax.random.key(0), (3, n))
    eager = jnp.stack([spectral_derivative(u, LENGTH) for u in batch])
    jitted = jax.jit(jax.vmap(lambda u: spectral_derivative(u, LENGTH)))(batch)
    np.testing.assert_allclose(jitted, eager, rtol=RTOL_ALG, atol=ATOL_ALG)
    up = jax.jit(jax.vmap(lambda u: spectral_interpolate(u, 24)))(batch)
    np.testing.assert_allclose(
        up[1], spectral_interpolate(batch[1], 24), rtol=RTOL_ALG, atol=ATOL_ALG
    )
    v = batch[2]
    grad = jax.grad(lambda u: l2_inner(v, spectral_derivative(u, LENGTH), LENGTH))(batch[0])
    expected = -(LENGTH / n) * spectral_derivative(v, LENGTH)
    np.testing.assert_allclose(grad, expected, rtol=RTOL_FFT, atol=ATOL_FFT)
    grad_norm = jax.grad(lambda u: 0.5 * l2_norm(u, LENGTH) ** 2)(v)
    np.testing.assert_allclose(grad_norm, (LENGTH / n) * v, rtol=RTOL_ALG, atol=ATOL_ALG)
    check_grads(lambda u: spectral_interpolate(u, 12), (batch[0],), order=1, modes=["rev"])
