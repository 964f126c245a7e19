"""Grid metrics and kernels of the field checks: stencil orders, Fourier bands, growth fit.

Tolerances: RTOL = 1e-12 for identities that hold exactly on the grid (Parseval, scale
invariance): float64 round-off of FFTs of ≤ 32² points with a 100× margin; the observed
orders of the derivative stencils within ORDER_TOL = 0.1 of 2 (the fitted slope over
δ ∈ {1e-2, 5e-3, 2.5e-3}: the next term of the error is O(δ²) relative to the leading one,
≤ 1e-3 of it, and round-off ε/δ ≈ 1e-13 is far below the truncation error δ² ≈ 1e-5).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given

from verify._estimate import Estimate
from verify._field_kernels import chunked, fd_stencils, stencil_derivative
from verify._field_metrics import band_masks, grid_errors, growth_rate, spectral_gradient
from verify._field_run import FieldCertifyError, rms_relative, step_indices
from verify.strategies import periodic_initial_conditions

RTOL = 1e-12
ORDER_TOL = 0.1
EMPTY_BAND = 1e-14
"""A band without content holds only FFT round-off, ~1e-16 of the total error: the absolute
tolerance of band values is this fraction of the relative L2 error."""


@pytest.mark.parametrize(("where", "t"), [("central", 0.5), ("forward", 0.0), ("backward", 1.0)])
def test_time_stencils_are_second_order(where, t):
    omega = 3.0
    errors = []
    deltas = np.asarray([1e-2, 5e-3, 2.5e-3])
    for delta in deltas:
        nodes, weights, names = fd_stencils(np.asarray([t]), delta, 0.0, 1.0)
        assert names == [where]
        assert np.all((nodes >= 0.0) & (nodes <= 1.0))  # never outside the window
        derivative = stencil_derivative(np.sin(omega * nodes)[..., None], weights)[0, 0]
        errors.append(abs(derivative - omega * math.cos(omega * t)))
    slope = np.polyfit(np.log(deltas), np.log(errors), 1)[0]
    assert abs(slope - 2.0) < ORDER_TOL, (slope, errors)


@pytest.mark.parametrize(("n", "dim"), [(64, 1), (32, 2), (33, 2)])
def test_bands_partition_the_spectrum(n, dim):
    masks = band_masks(n, dim)
    assert masks.shape == (3,) + (n,) * dim
    np.testing.assert_array_equal(masks.sum(axis=0), np.ones((n,) * dim))
    assert masks[0][(0,) * dim]  # the mean is in the low band
    assert np.all(masks.sum(axis=tuple(range(1, dim + 1))) > 0)


@given(periodic_initial_conditions(32, dim=1), periodic_initial_conditions(32, dim=1))
def test_band_errors_add_up_to_the_l2_error_and_are_scale_invariant(state, reference):
    state, reference = state[:, None], reference[:, None] + 2.0  # reference bounded off 0
    errors = grid_errors(state, reference)
    np.testing.assert_allclose(
        sum(b * b for b in errors.bands), errors.relative_l2**2, rtol=RTOL, atol=1e-30
    )
    scaled = grid_errors(3.5 * state, 3.5 * reference)
    np.testing.assert_allclose(scaled.relative_l2, errors.relative_l2, rtol=RTOL, atol=0)
    np.testing.assert_allclose(
        scaled.bands, errors.bands, rtol=RTOL, atol=EMPTY_BAND * errors.relative_l2
    )


@given(periodic_initial_conditions(16, dim=2))
def test_band_errors_are_invariant_to_a_periodic_shift(field):
    # a circular shift changes only phases of the DFT: the bands' energies stay
    reference = field[..., None] + 1.5
    state = reference + 0.01 * np.cos(np.arange(16) * 2 * np.pi * 5 / 16)[:, None, None]
    first = grid_errors(state, reference)
    shifted = grid_errors(np.roll(state, 3, axis=1), np.roll(reference, 3, axis=1))
    np.testing.assert_allclose(
        shifted.bands, first.bands, rtol=RTOL, atol=EMPTY_BAND * first.relative_l2
    )


def test_nan_state_gives_nan_errors_with_a_reason():
    state = np.ones((8, 1))
    state[3] = np.nan
    errors = grid_errors(state, np.ones((8, 1)))
    assert math.isnan(errors.relative_l2)
    assert "1 non-finite" in errors.reason


def test_spectral_gradient_of_a_trigonometric_polynomial():
    x = np.arange(32) * 2 * np.pi / 32
    y = x[None, :]
    state = (np.sin(3 * x)[:, None] * np.cos(2 * y))[..., None]
    gradient = spectral_gradient(state, 2 * np.pi)
    assert gradient.shape == (32, 32, 1, 2)
    np.testing.assert_allclose(
        gradient[..., 0, 0], 3 * np.cos(3 * x)[:, None] * np.cos(2 * y), rtol=0, atol=1e-12
    )
    np.testing.assert_allclose(
        gradient[..., 0, 1], -2 * np.sin(3 * x)[:, None] * np.sin(2 * y), rtol=0, atol=1e-12
    )


def test_growth_rate_recovers_an_exponential():
    t = np.linspace(0.1, 1.0, 7)
    rate, points, reason = growth_rate(t, 1e-3 * np.exp(2.5 * t))
    np.testing.assert_allclose(rate, 2.5, rtol=RTOL)
    assert (points, reason) == (7, "")
    assert growth_rate(t, np.zeros(7)) == (0.0, 0, "every error is 0")
    nan_rate, _, why = growth_rate(t, np.full(7, np.nan))
    assert math.isnan(nan_rate)
    assert "non-finite" in why


def test_rms_relative_uses_the_delta_method():
    ms = Estimate(4e-4, 1e-5, 100, "x")
    rms = rms_relative(ms, 0.5, 0.0, "f")
    np.testing.assert_allclose(rms.estimate, 0.02 / 0.5, rtol=RTOL)
    # d√m = dm / (2√m)
    np.testing.assert_allclose(rms.stderr, 1e-5 / (2 * 0.02 * 0.5), rtol=RTOL)
    assert rms_relative(Estimate(0.0, 0.0, 100, "x"), 0.5, 0.0, "f").stderr == 0.0
    assert math.isnan(rms_relative(ms, 0.0, 0.0, "f").estimate)


def test_step_indices_need_the_step_grid():
    np.testing.assert_array_equal(
        step_indices(np.asarray([0.25, 0.5, 1.0]), 0.0, 0.05), [5, 10, 20]
    )
    with pytest.raises(FieldCertifyError, match=r"0\.33"):
        step_indices(np.asarray([0.25, 0.33]), 0.0, 0.05)


def test_chunked_matches_vmap_and_compiles_once():
    @eqx.filter_jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def square(x):
        return jnp.sum(x * x, axis=-1)

    # every chunk has the shape (8, 3): one trace however many points
    for n in (1, 7, 8, 9, 50):
        x = jnp.arange(3.0 * n).reshape(n, 3)
        expected = np.sum(np.asarray(x) ** 2, axis=-1)
        np.testing.assert_array_equal(chunked(square, x, 8), expected)
