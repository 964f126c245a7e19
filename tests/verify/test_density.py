"""Density certificates: grid, Gaussian KDE, relative L², KDE error with bootstrap, grid error.

Tolerances and their error models:

* Midpoint rule. For a Gaussian of standard deviation s on cells of side Δ, the 1-D
  cell-centred sum differs from the integral by at most 2 exp(−2π² s²/Δ²) (Poisson
  summation); every quadrature test below has s/Δ ≥ 2, i.e. < 1e−33, and its box reaches
  ≥ 8 s beyond the mass (truncation < 1e−15). What is left is round-off of sums of ≤ 10⁴
  terms: rtol 1e−12.
* Tiling and weight identities only reorder sums: rtol 1e−12, atol 1e−15 (densities ≤ 1).
* KDE of N(0, I) samples (d = 2, h = 0.3): E f̂_h = f_h = N(0, (1 + h²) I) and
  E‖f̂_h − f_h‖² = [(4πh²)^{−d/2} − ‖f_h‖²]/n exactly (V := this variance term). The
  integrated squared error over that mean has relative sd ≈ 0.3 per sample (measured over
  40 seeds at n = 4000); averaged over R = 8 samples, sd ≈ 0.1: accept 1 ± 0.5 (5 sd).
  Against the unsmoothed f, ‖f̂_h − f‖² = B² + 2⟨f̂_h − f_h, f_h − f⟩ + ‖f̂_h − f_h‖², whose
  cross term has mean 0 and sd 2 (Var_Y[(f_{2h} − f_h)(Y)]/n)^{1/2} (computed below by
  quadrature; it matched the sd over 20 seeds to 1%): accept B² + V ± (5 sd + V).
* Bootstrap intervals are EMPIRICAL; fixed seeds; comparisons use z = 3.
"""

from __future__ import annotations

import json
import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from certificates import Evidence, IntervalMethod
from solvers import landau_bkw_2d
from solvers._blob import cell_centred_grid
from verify._density import (
    FORMULA_GRID_L2,
    FORMULA_KDE_L2,
    FORMULA_KDE_L2_EXCESS,
    DensityErrorResult,
    DensityGrid,
    default_bandwidth,
    default_grid,
    density_error,
    gaussian_kde,
    grid_density_error,
    relative_l2,
)

RTOL, ATOL = 1e-12, 1e-15


def _gauss(x, var):
    d = x.shape[-1]
    return (2 * jnp.pi * var) ** (-d / 2) * jnp.exp(-jnp.sum(x * x, axis=-1) / (2 * var))


# -- grid and bandwidth --------------------------------------------------------------------


def test_grid_points_volume_parameters():
    grid = DensityGrid((-4.0, -4.0), (4.0, 4.0), 100)
    expected, h = cell_centred_grid(100, 4.0, 2)
    np.testing.assert_allclose(grid.points(), expected, rtol=RTOL, atol=ATOL)
    assert grid.cell_volume() == pytest.approx(h * h, rel=RTOL, abs=0.0)
    params = json.loads(json.dumps(grid.parameters()))
    assert params["n_points"] == 10_000
    assert params["quadrature"] == "midpoint"
    box = DensityGrid((0, -1, 2), (1, 1, 5), 4)
    pts = np.asarray(box.points())
    assert pts.shape == (64, 3)
    assert box.spacing == (0.25, 0.5, 0.75)
    assert box.cell_volume() == pytest.approx(0.25 * 0.5 * 0.75, rel=RTOL, abs=0.0)
    np.testing.assert_allclose(pts[1], [0.125, -0.75, 2.375 + 0.75], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    ("lower", "upper", "cells"),
    [((0.0,), (0.0,), 4), ((0.0, 1.0), (1.0,), 4), ((0.0,), (1.0,), 0), ((0.0,), (math.inf,), 4)],
)
def test_grid_rejects_bad_boxes(lower, upper, cells):
    with pytest.raises(ValueError, match=r"lower|cells"):
        DensityGrid(lower, upper, cells)


@pytest.mark.parametrize(("dim", "cells"), [(1, 400), (2, 100), (3, 40), (4, 15), (5, 9)])
def test_default_grid(dim, cells):
    grid = default_grid(dim, -4.0, 4.0)
    assert grid.dim == dim
    assert grid.cells == cells
    assert grid.lower == (-4.0,) * dim


def test_default_bandwidth():
    # h = 0.7 n^(-1/6) in 2-D: 0.7 · 10^(-2/3) for n = 1e4 (Huang–Wang's 0.15).
    assert default_bandwidth(10_000, 2, 1.0) == pytest.approx(0.7 * 10 ** (-2 / 3), rel=RTOL)
    assert abs(default_bandwidth(10_000, 2, 1.0) - 0.15) < 0.002
    assert default_bandwidth(64 * 500, 2, 1.0) == pytest.approx(
        default_bandwidth(500, 2, 1.0) / 2, rel=RTOL
    )
    assert default_bandwidth(500, 3, 2.5) == pytest.approx(
        2.5 * default_bandwidth(500, 3, 1.0), rel=RTOL
    )
    for bad in [(0, 2, 1.0), (10, 2, 0.0), (10, 2, math.nan)]:
        with pytest.raises(ValueError, match="positive"):
            default_bandwidth(*bad)


# -- Gaussian KDE --------------------------------------------------------------------------


@pytest.mark.parametrize(("dim", "cells", "n"), [(1, 400, 500), (2, 100, 400), (3, 40, 100)])
def test_kde_integrates_to_one(dim, cells, n):
    grid = DensityGrid((-6.0,) * dim, (6.0,) * dim, cells)
    h = 2 * grid.spacing[0]  # s/Δ = 2 (module docstring)
    points = jax.random.uniform(jax.random.key(dim), (n, dim), minval=-1.0, maxval=1.0)
    mass = jnp.sum(gaussian_kde(points, grid.points(), bandwidth=h)) * grid.cell_volume()
    np.testing.assert_allclose(mass, 1.0, rtol=RTOL, atol=0.0)
    weights = jnp.linspace(0.5, 1.5, n) / n
    weighted = gaussian_kde(points, grid.points(), bandwidth=h, weights=weights)
    mass = jnp.sum(weighted) * grid.cell_volume()
    np.testing.assert_allclose(mass, jnp.sum(weights), rtol=RTOL, atol=0.0)


D, H = 2, 0.3
GAUSS_GRID = DensityGrid((-6.0,) * D, (6.0,) * D, 60)


def _variance_term(n):
    return ((4 * jnp.pi * H**2) ** (-D / 2) - (4 * jnp.pi * (1 + H**2)) ** (-D / 2)) / n


def test_kde_mean_is_smoothed_density():
    """E f̂_h = N(0, (1 + h²)I): R = 8 vmapped samples, mean ISE / V ≈ 1 (module docstring)."""
    n, reps = 5000, 8
    pts, dv = GAUSS_GRID.points(), GAUSS_GRID.cell_volume()
    f_h = _gauss(pts, 1 + H**2)
    samples = jax.random.normal(jax.random.key(11), (reps, n, D))
    kdes = jax.vmap(lambda x: gaussian_kde(x, pts, bandwidth=H))(samples)
    ise = jnp.sum((kdes - f_h) ** 2, axis=1) * dv
    ratio = float(jnp.mean(ise) / _variance_term(n))
    assert 0.5 <= ratio <= 1.5, ratio
    # The average of the R KDEs is the KDE of all R·n points: closer to f_h by ~√R.
    rel = relative_l2(jnp.mean(kdes, axis=0), f_h, dv)
    expected = math.sqrt(float(_variance_term(n * reps)) / float(jnp.sum(f_h**2) * dv))
    assert 0.5 * expected <= float(rel) <= 1.5 * expected, (float(rel), expected)


def test_kde_bias_against_unsmoothed_density():
    """‖f̂_h − f‖² ≈ B² + V, B = ‖f_h − f‖ ~ h²‖Δf‖/2 (module docstring error model)."""
    n = 40_000
    pts, dv = GAUSS_GRID.points(), GAUSS_GRID.cell_volume()
    f, f_h, f_2h = _gauss(pts, 1.0), _gauss(pts, 1 + H**2), _gauss(pts, 1 + 2 * H**2)
    # Closed forms: ‖f‖² = (4π)^(-1), ‖f_h‖² = (4π(1+h²))^(-1), ⟨f, f_h⟩ = (2π(2+h²))^(-1).
    bias2 = 1 / (4 * math.pi) + 1 / (4 * math.pi * (1 + H**2)) - 2 / (2 * math.pi * (2 + H**2))
    np.testing.assert_allclose(jnp.sum((f_h - f) ** 2) * dv, bias2, rtol=1e-12, atol=0.0)
    g = f_2h - f_h
    var_g = jnp.sum(g * g * f) * dv - (jnp.sum(g * f) * dv) ** 2
    sd_cross = 2 * math.sqrt(float(var_g) / n)
    variance = float(_variance_term(n))
    kde = gaussian_kde(jax.random.normal(jax.random.key(5), (n, D)), pts, bandwidth=H)
    ise = float(jnp.sum((kde - f) ** 2) * dv)
    assert abs(ise - bias2 - variance) <= 5 * sd_cross + variance, (ise, bias2, variance)
    # relative form: bias-dominated, well above the smoothed-density error
    assert float(relative_l2(kde, f, dv)) > 2 * float(relative_l2(kde, f_h, dv))


def test_blocked_matches_unblocked():
    key_p, key_g = jax.random.split(jax.random.key(3))
    points = jax.random.normal(key_p, (301, 2))
    grid_points = 3 * jax.random.normal(key_g, (203, 2))
    one_tile = gaussian_kde(points, grid_points, bandwidth=0.4, block_size=10**6)
    for block in (1, 7, 64, 256):
        tiled = gaussian_kde(points, grid_points, bandwidth=0.4, block_size=block)
        np.testing.assert_allclose(tiled, one_tile, rtol=RTOL, atol=ATOL)


def test_kde_direct_sum():
    points = jnp.array([[0.0, 0.0], [1.0, -0.5], [-2.0, 0.3]])
    weights = jnp.array([0.2, 0.5, 0.3])
    x = jnp.array([[0.1, 0.2], [3.0, -1.0]])
    h = 0.7
    expected = [
        sum(w * _gauss(xi - p, h * h) for p, w in zip(points, weights, strict=True)) for xi in x
    ]
    np.testing.assert_allclose(
        gaussian_kde(points, x, bandwidth=h, weights=weights), expected, rtol=RTOL, atol=ATOL
    )


def test_kde_jit_vmap_grad():
    points = jax.random.normal(jax.random.key(0), (40, 2))
    x = jax.random.normal(jax.random.key(1), (30, 2))
    eager = gaussian_kde(points, x, bandwidth=0.5)
    jitted = jax.jit(partial(gaussian_kde, block_size=16))(points, x, bandwidth=0.5)
    np.testing.assert_allclose(jitted, eager, rtol=RTOL, atol=ATOL)
    hs = jnp.array([0.3, 0.5, 0.9])
    batched = jax.vmap(lambda h: gaussian_kde(points, x, bandwidth=h, block_size=16))(hs)
    for row, h in zip(batched, hs, strict=True):
        np.testing.assert_allclose(row, gaussian_kde(points, x, bandwidth=h), rtol=RTOL, atol=ATOL)
    check_grads(
        lambda p, h: gaussian_kde(p, x, bandwidth=h, block_size=16),
        (points, 0.5),
        order=1,
        modes=("fwd", "rev"),
    )


def test_bootstrap_weights_equal_resampled_points():
    """A resample's KDE is the KDE with weights counts/n (the identity the bootstrap uses)."""
    n = 200
    points = jax.random.normal(jax.random.key(2), (n, 2))
    idx = jax.random.randint(jax.random.key(3), (n,), 0, n)
    x = default_grid(2, -3.0, 3.0).points()
    resampled = gaussian_kde(points[idx], x, bandwidth=0.3)
    counts = jnp.bincount(idx, length=n) / n
    np.testing.assert_allclose(
        gaussian_kde(points, x, bandwidth=0.3, weights=counts), resampled, rtol=RTOL, atol=ATOL
    )


def test_kde_nan_propagates_and_shapes():
    points = jnp.zeros((5, 2)).at[3, 1].set(jnp.nan)
    assert bool(jnp.all(jnp.isnan(gaussian_kde(points, jnp.ones((4, 2)), bandwidth=0.5))))
    with pytest.raises(ValueError, match="vmap"):
        gaussian_kde(jnp.zeros((5,)), jnp.ones((4, 1)), bandwidth=0.5)
    with pytest.raises(ValueError, match=r"grid_points must have shape \(n, 2\)"):
        gaussian_kde(jnp.zeros((5, 2)), jnp.ones((4, 3)), bandwidth=0.5)
    with pytest.raises(ValueError, match="bandwidth"):
        gaussian_kde(jnp.zeros((5, 2)), jnp.ones((4, 2)), bandwidth=-1.0)


# -- relative L² ---------------------------------------------------------------------------


def test_relative_l2_identities():
    r = jnp.abs(jax.random.normal(jax.random.key(4), (500,)))
    v = r + 0.1 * jax.random.normal(jax.random.key(5), (500,))
    assert float(relative_l2(r, r, 0.01)) == 0.0
    base = float(relative_l2(v, r, 0.01))
    for scale in (1e-6, 7.0, 1e5):
        np.testing.assert_allclose(relative_l2(scale * v, scale * r, 0.01), base, rtol=1e-14)
    np.testing.assert_allclose(relative_l2(v, r, 3.0), base, rtol=1e-14)  # ΔV cancels
    np.testing.assert_allclose(relative_l2(2 * r, r, 1.0), 1.0, rtol=1e-14)
    np.testing.assert_allclose(jax.jit(relative_l2)(v, r, 0.01), base, rtol=RTOL)
    pairs = jnp.stack([v, 2 * r])
    np.testing.assert_allclose(
        jax.vmap(relative_l2, in_axes=(0, None, None))(pairs, r, 0.01), [base, 1.0], rtol=1e-14
    )
    with pytest.raises(ValueError, match="vmap"):
        relative_l2(pairs, pairs, 1.0)


def test_relative_l2_gaussians_closed_form():
    """‖N(0, a) − N(0, b)‖/‖N(0, b)‖ in 2-D, midpoint rule on [−8, 8]², Δ = 0.16 (docstring)."""
    a, b = 1.0, 1.3**2
    grid = DensityGrid((-8.0, -8.0), (8.0, 8.0), 100)
    pts = grid.points()
    num = 1 / (4 * math.pi * a) + 1 / (4 * math.pi * b) - 2 / (2 * math.pi * (a + b))
    expected = math.sqrt(num * 4 * math.pi * b)
    got = relative_l2(_gauss(pts, a), _gauss(pts, b), grid.cell_volume())
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=0.0)


# -- density_error -------------------------------------------------------------------------

BKW = landau_bkw_2d()
T = 1.0
N = 4000
GRID = default_grid(2, -4.0, 4.0)
BW = default_bandwidth(N, 2, 1.0)


def _exact(t=T):
    return lambda v: BKW.density(t, v)


@pytest.fixture(scope="module")
def samples():
    a, b = jax.random.split(jax.random.key(20))
    return BKW.sample(T, N, key=a), BKW.sample(T, N, key=b)


def test_density_error_iid_particles_excess_contains_zero(samples):
    particles, exact = samples
    res = density_error(particles, _exact(), exact, grid=GRID, bandwidth=BW, key=jax.random.key(0))
    assert isinstance(res, DensityErrorResult)
    assert res.bandwidth == BW
    assert res.grid == GRID
    for est, formula in [
        (res.density_error, FORMULA_KDE_L2),
        (res.kde_floor, FORMULA_KDE_L2),
        (res.excess, FORMULA_KDE_L2_EXCESS),
    ]:
        assert est.formula_id == formula
        assert est.n_samples == N
        assert est.evidence is Evidence.EMPIRICAL
        assert est.interval_method is IntervalMethod.NORMAL
        assert math.isfinite(est.estimate), est
        assert 0 < est.stderr < 0.05, est
    assert "bootstrap" in res.density_error.reason
    # floor level: AMISE-type error ~0.1 for n = 4000 (MATH.md §2.6 has 0.07 at n = 1e4)
    assert 0.05 < res.kde_floor.estimate < 0.2
    assert res.excess.estimate == pytest.approx(
        res.density_error.estimate - res.kde_floor.estimate, rel=RTOL, abs=ATOL
    )
    assert res.excess.stderr == pytest.approx(
        math.hypot(res.density_error.stderr, res.kde_floor.stderr), rel=RTOL
    )
    assert abs(res.excess.estimate) <= 3 * res.excess.stderr, res.excess
    res.excess.to_check("kde_excess", "1", "KDE error minus floor")


def test_density_error_shifted_particles_excess_positive(samples):
    particles, exact = samples
    shifted = particles + jnp.array([0.3, 0.0])
    res = density_error(shifted, _exact(), exact, grid=GRID, bandwidth=BW, key=jax.random.key(0))
    assert res.excess.estimate - 3 * res.excess.stderr > 0, res.excess


def test_density_error_keys_and_weights(samples):
    particles, exact = samples
    run = partial(density_error, particles, _exact(), exact, grid=GRID, bandwidth=BW)
    first, again = run(key=jax.random.key(7)), run(key=jax.random.key(7))
    assert first == again
    other = run(key=jax.random.key(8))
    assert other.density_error.estimate == first.density_error.estimate  # the sample's own
    assert other.density_error.stderr != first.density_error.stderr  # new resamples
    uniform = run(key=jax.random.key(7), weights=jnp.full((N,), 1 / N))
    assert uniform.density_error.estimate == pytest.approx(
        first.density_error.estimate, rel=RTOL, abs=ATOL
    )
    assert uniform.density_error.stderr == pytest.approx(
        first.density_error.stderr, rel=RTOL, abs=ATOL
    )


def test_density_error_nan_particles(samples):
    particles, exact = samples
    bad = particles.at[17, 0].set(jnp.nan)
    res = density_error(bad, _exact(), exact, grid=GRID, bandwidth=BW, key=jax.random.key(0))
    assert math.isnan(res.density_error.estimate)
    assert math.isnan(res.density_error.stderr)
    assert f"1 of {N} particles" in res.density_error.reason
    assert math.isfinite(res.kde_floor.estimate)
    assert math.isnan(res.excess.estimate)
    assert f"1 of {N} particles" in res.excess.reason
    check = res.density_error.to_check("kde_error", "1", "KDE error")
    assert "particles" in str(check.reason)
    weights = jnp.full((N,), 1 / N).at[0].set(jnp.inf)
    res = density_error(
        particles, _exact(), exact, grid=GRID, bandwidth=BW, key=jax.random.key(0), weights=weights
    )
    assert math.isnan(res.density_error.estimate)
    assert "weights" in res.density_error.reason


def test_density_error_rejects_bad_input(samples):
    particles, exact = samples
    kw = {"grid": GRID, "bandwidth": BW, "key": jax.random.key(0)}
    with pytest.raises(ValueError, match="same n"):
        density_error(particles, _exact(), exact[:-1], **kw)
    with pytest.raises(ValueError, match="n_bootstrap"):
        density_error(particles, _exact(), exact, n_bootstrap=1, **kw)
    with pytest.raises(ValueError, match="vmap"):
        density_error(particles, _exact(), exact, **{**kw, "grid": default_grid(3, -4, 4)})
    with pytest.raises(ValueError, match="bandwidth"):
        density_error(particles, _exact(), exact, **{**kw, "bandwidth": 0.0})
    far = DensityGrid((100.0, 100.0), (101.0, 101.0), 4)  # density underflows to 0 there
    with pytest.raises(ValueError, match="cover"):
        density_error(particles, _exact(), exact, **{**kw, "grid": far})


# -- grid_density_error --------------------------------------------------------------------


def _box_mass(t):
    pts = GRID.points()
    return float(jnp.sum(jax.vmap(lambda v: BKW.density(t, v))(pts)) * GRID.cell_volume())


def test_grid_error_of_exact_density():
    est = grid_density_error(BKW.log_density, BKW.log_density, t=T, grid=GRID, normalise=False)
    assert est.formula_id == FORMULA_GRID_L2
    assert est.stderr == 0.0
    assert est.n_samples == 0
    assert est.evidence is Evidence.EMPIRICAL
    assert est.interval_method is IntervalMethod.EXACT
    assert est.estimate <= 1e-14  # same expression; FMA may differ by ulps
    # Normalising by the box mass M gives f/M exactly, so the error is |1/M − 1|: the mass
    # outside [−4, 4]² (≈ P(χ²₄ > 16/K) ~ 1e-5 at t = 1) plus spectrally small midpoint error.
    expected = abs(1 / _box_mass(T) - 1)
    assert expected < 1e-4
    for shift in (3.0, -50.0):
        unnormalised = lambda t, x, c=shift: BKW.log_density(t, x) + c  # noqa: E731
        est = grid_density_error(unnormalised, BKW.log_density, t=T, grid=GRID, normalise=True)
        np.testing.assert_allclose(est.estimate, expected, rtol=1e-8, atol=1e-15)
        assert "quadrature mass" in est.reason


def test_grid_error_of_wrong_density():
    """Gaussian N(0, 1.3²I) against N(0, I): closed form (test_relative_l2_gaussians...)."""
    a, b = 1.3**2, 1.0
    grid = DensityGrid((-8.0, -8.0), (8.0, 8.0), 100)
    model = lambda t, x: jnp.log(_gauss(x, a))  # noqa: E731
    exact = lambda t, x: jnp.log(_gauss(x, b))  # noqa: E731
    num = 1 / (4 * math.pi * a) + 1 / (4 * math.pi * b) - 2 / (2 * math.pi * (a + b))
    expected = math.sqrt(num * 4 * math.pi * b)
    # normalise=True divides by the box mass: N(0, 1.3²) loses 2Φ(−8/1.3) ≈ 8e-10 per axis.
    for normalise, rtol in ((False, 1e-10), (True, 1e-8)):
        est = grid_density_error(model, exact, t=0.0, grid=grid, normalise=normalise)
        np.testing.assert_allclose(est.estimate, expected, rtol=rtol, atol=0.0)
    assert expected > 0.2
    # BKW at the wrong time: clearly nonzero
    later = lambda t, x: BKW.log_density(t + 2.0, x)  # noqa: E731
    est = grid_density_error(later, BKW.log_density, t=T, grid=GRID, normalise=False)
    assert est.estimate > 0.05


def test_grid_error_nan_model():
    bad = lambda t, x: jnp.where(x[0] > 3.5, jnp.nan, BKW.log_density(t, x))  # noqa: E731
    est = grid_density_error(bad, BKW.log_density, t=T, grid=GRID, normalise=True)
    count = int(jnp.sum(GRID.points()[:, 0] > 3.5))
    assert math.isnan(est.estimate)
    assert f"{count} of 10000" in est.reason
    # −inf is a zero density, not an error
    cut = lambda t, x: jnp.where(x[0] > 3.5, -jnp.inf, BKW.log_density(t, x))  # noqa: E731
    est = grid_density_error(cut, BKW.log_density, t=T, grid=GRID, normalise=False)
    assert 0 < est.estimate < 1e-3
    est.to_check("grid_error", "1", "grid density error")
