r"""Density certificates: KDE reconstruction error, its floor, and grid errors of a density.

**KDE error** (formula ``kde-relative-l2``). Particles :math:`V_1, …, V_n` (of a learned flow
or particle solver) with weights :math:`w_i` (default :math:`1/n`) are turned into a density
by the Gaussian kernel density estimator

.. math::

    \hat f_h(v) = \sum_i w_i K_h(v - V_i),\qquad
    K_h(x) = (2\pi h^2)^{-d/2} e^{-|x|^2/(2h^2)},

and compared with the exact density f on a cell-centred grid (:class:`DensityGrid`) by the
relative L² error with the midpoint rule (:func:`relative_l2`),

.. math::

    e = \frac{\|\hat f_h - f\|_{L^2(\Omega)}}{\|f\|_{L^2(\Omega)}}
      \approx \Big(\frac{\sum_j (\hat f_h(x_j) - f(x_j))^2 \,\Delta V}
                        {\sum_j f(x_j)^2 \,\Delta V}\Big)^{1/2},

Ω the grid box (mass outside it is ignored). Even exact iid samples leave an error: for a
second-order kernel (MATH.md §1.3 c, Silverman 1986 §4.3)

.. math::

    E\|\hat f_h - f\|^2_{L^2} \approx \tfrac{h^4}{4}\mu_2(K)^2\|\Delta f\|^2_{L^2}
        + \frac{\|K\|^2_{L^2}}{n h^d}\quad\text{(AMISE)},\qquad
    \mu_2 = 1,\ \|K\|^2_{L^2} = (4\pi)^{-d/2}\ \text{(Gaussian)},

so :func:`density_error` reports, next to the particles' error, the **KDE floor**: the same
estimator from the same number of exact samples, and the **excess** (particles' error minus
floor), the part that is the model's fault (formula ``kde-relative-l2-excess``).

**Uncertainty.** e is a nonlinear functional of the particles, so its standard error is a
nonparametric bootstrap (Efron & Tibshirani 1993, ch. 6): B resamples of the particles with
replacement, stderr = standard deviation of the B replicate errors (ddof = 1), reported with
a NORMAL interval and EMPIRICAL evidence: a bootstrap-normal interval has no coverage
guarantee. A resample is drawn as multinomial counts :math:`c_i` (n uniform indices,
counted), and its KDE is the KDE of the original points with weights :math:`c_i w_i`, exactly
(:math:`\sum_k K_h(v - V_{I_k})/n = \sum_i (c_i/n) K_h(v - V_i)`); all B + 1 weight vectors
share one pass over the kernel matrix (a matrix product per tile), so the bootstrap costs
little beyond the point estimate. Resamples have ties (about 37% of the points are left
out and others repeated), which adds the KDE variance term to each replicate a second time:
the replicates' *mean* lies above the sample's error (by 0.03 for 2-D BKW, n = 10⁴,
h = 0.15), so the estimate is the sample's own error, never the replicates' mean; their
*spread* inflates only slightly: for 2-D BKW at t = 1 the mean bootstrap sd was 0.94–1.15 ×
the seed-to-seed sd of the error (30–60 seeds, n = 2·10³ to 10⁴), and the 95% interval of
the excess of exact samples over the floor covered 0 in 59 of 60 seeds
(tests/validation/test_density_validation.py).
The excess combines the two independent bootstraps: stderr = √(se₁² + se₂²).

**Grid error of a model density** (formula ``grid-relative-l2``, :func:`grid_density_error`):
where the model exposes a log-density, it is exponentiated on the grid (normalised by its
midpoint-rule mass over the box if asked) and compared with the exact/reference density by
the same relative L². It is deterministic: stderr 0, interval EXACT, but evidence EMPIRICAL
because the quadrature error (and the mass outside the box) is not bounded.

**Cost.** The KDE is formed in tiles of ``block_size`` grid points × ``block_size``
particles (``lax.map`` over grid blocks, ``lax.scan`` over particle blocks), so memory is
O(block_size² + block_size·k) for k weight vectors, never O(m n); work is O(m n (d + k)).
2-D, n = 10⁴, 100 × 100 grid, B = 32 (particles and floor, 2 × 33 weight vectors) on a
shared 2-core CPU: 1.8–2.5 s once compiled, 3.4–5 s with compilation; one plain KDE takes
0.8 s and B = 2 takes 1.4 s, so the 32 resamples add about a third (the exponentials, not the
matrix products, dominate).

References
----------
.. [1] B. W. Silverman, "Density Estimation for Statistics and Data Analysis", Chapman & Hall
   (1986).
.. [2] D. W. Scott, "Multivariate Density Estimation", Wiley (1992).
.. [3] Y. Huang, L. Wang, "A score-based particle method for homogeneous Landau equation",
   J. Comput. Phys. 536 (2025) 114053 (the 100 × 100 grid of [−4, 4]², Gaussian KDE,
   bandwidth 0.12–0.15).
.. [4] B. Efron, R. J. Tibshirani, "An Introduction to the Bootstrap", Chapman & Hall (1993).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, PRNGKeyArray

from certificates import Evidence, IntervalMethod

from ._estimate import Estimate
from ._score_gap import blocked_map, require_float64

FORMULA_KDE_L2 = "kde-relative-l2"
FORMULA_KDE_L2_EXCESS = "kde-relative-l2-excess"
FORMULA_GRID_L2 = "grid-relative-l2"
NORMALISER_REFERENCE_L2 = "reference_l2_norm"
"""Relative errors are divided by the midpoint-rule L² norm of the exact density on the grid."""

DEFAULT_BLOCK_SIZE = 1024
DEFAULT_N_BOOTSTRAP = 32

DEFAULT_CELLS = {1: 400, 2: 100, 3: 40}
"""Cells per dimension of :func:`default_grid` (10⁴ points in 2-D as Huang–Wang, 6.4·10⁴ in
3-D, 400 in 1-D)."""

GRID_POINT_BUDGET = 40**3
"""Above 3-D, cells per dimension ⌊budget^{1/d}⌋ (at least 2): the grid stays affordable but
coarse (9 per dimension in 5-D), so grid errors there are indicative only."""

BANDWIDTH_CONSTANT = 0.7
"""c in h = c σ n^{−1/(d+4)} (:func:`default_bandwidth`): n = 10⁴ unit-scale 2-D points give
h = 0.7 · 10^{−2/3} = 0.151, Huang & Wang's 0.15."""

LogDensityFn = Callable[[Float[Array, ""], Float[Array, " d"]], Float[Array, ""]]
DensityFn = Callable[[Float[Array, " d"]], Float[Array, ""]]


class DensityGrid(eqx.Module):
    """Cell-centred tensor grid on the box Π_k [lower_k, upper_k], ``cells`` per dimension.

    Points are the centres lower_k + (j + ½) Δ_k, Δ_k = (upper_k − lower_k)/cells, in 'ij'
    order (the last coordinate varies fastest); cell volume ΔV = Π_k Δ_k. Fields are static,
    so a grid can be passed through ``jax.jit``.

    Attributes
    ----------
    lower, upper : tuple of float
        Box corners, one entry per dimension, lower_k < upper_k.
    cells : int
        Cells per dimension (m = cells^d points).
    """

    lower: tuple[float, ...] = eqx.field(static=True, converter=lambda v: tuple(map(float, v)))
    upper: tuple[float, ...] = eqx.field(static=True, converter=lambda v: tuple(map(float, v)))
    cells: int = eqx.field(static=True)

    def __check_init__(self) -> None:
        if len(self.lower) != len(self.upper) or not self.lower:
            raise ValueError(
                f"lower and upper must be non-empty and of equal length, got {self.lower}, "
                f"{self.upper}"
            )
        for lo, hi in zip(self.lower, self.upper, strict=True):
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(f"need finite lower < upper, got {self.lower}, {self.upper}")
        if isinstance(self.cells, bool) or int(self.cells) != self.cells or self.cells < 1:
            raise ValueError(f"cells must be a positive integer, got {self.cells}")

    @property
    def dim(self) -> int:
        """d."""
        return len(self.lower)

    @property
    def spacing(self) -> tuple[float, ...]:
        """Cell sides Δ_k."""
        return tuple((hi - lo) / self.cells for lo, hi in zip(self.lower, self.upper, strict=True))

    def points(self) -> Float[Array, "m d"]:
        """Cell centres, shape (cells^d, d), 'ij' order."""
        axes = [
            lo + dx * (np.arange(self.cells) + 0.5)
            for lo, dx in zip(self.lower, self.spacing, strict=True)
        ]
        mesh = np.meshgrid(*axes, indexing="ij")
        return jnp.asarray(np.stack([m.ravel() for m in mesh], axis=1))

    def cell_volume(self) -> float:
        """ΔV = Π_k Δ_k."""
        return float(np.prod(self.spacing))

    def parameters(self) -> dict[str, Any]:
        """JSON-serialisable description (stored next to every grid-based number)."""
        return {
            "kind": "cell-centred",
            "lower": list(self.lower),
            "upper": list(self.upper),
            "cells_per_dim": int(self.cells),
            "n_points": int(self.cells) ** self.dim,
            "cell_volume": self.cell_volume(),
            "quadrature": "midpoint",
        }


def default_grid(dim: int, lower: float, upper: float) -> DensityGrid:
    """The cube [lower, upper]^d with ``DEFAULT_CELLS[d]`` cells per dimension.

    100 per dimension in 2-D (Huang & Wang's 100 × 100 grid of [−4, 4]²), 40 in 3-D
    (6.4·10⁴ points), 400 in 1-D; above 3-D ⌊``GRID_POINT_BUDGET``^{1/d}⌋ (coarse: indicative
    only).
    """
    if isinstance(dim, bool) or int(dim) != dim or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim}")
    dim = int(dim)
    cells = DEFAULT_CELLS.get(dim, max(2, math.floor(GRID_POINT_BUDGET ** (1 / dim) + 1e-9)))
    return DensityGrid((lower,) * dim, (upper,) * dim, cells)


def default_bandwidth(n: int, dim: int, scale: float) -> float:
    r"""Scott-type bandwidth :math:`h = c\,\sigma\,n^{-1/(d+4)}` with c = 0.7.

    Scott's rule (Scott 1992, eq. 6.42) is :math:`h = \sigma n^{-1/(d+4)}` and Silverman's
    (1986, eq. 4.14) :math:`h = \sigma (4/(d+2))^{1/(d+4)} n^{-1/(d+4)}`, the AMISE-optimal
    bandwidth for a Gaussian target; they coincide in 2-D. Non-Gaussian targets (the BKW
    ring) have more curvature, hence a smaller optimum: the constant c = 0.7
    (``BANDWIDTH_CONSTANT``) is fitted so that n = 10⁴ unit-scale 2-D points give
    h = 0.151, the bandwidth 0.15 that Huang & Wang (2025) use for N = 100² BKW particles
    (n = 160² gives 0.129 against their 0.12). For comparison, the AMISE optimum
    :math:`h^* = [d\,\|K\|^2/(\|\Delta f\|^2 n)]^{1/(d+4)}` of 2-D BKW is 0.18 at t = 1 and
    0.22 at t = 5 (n = 10⁴, ‖Δf‖² by quadrature), so the rule errs towards less bias.

    Parameters
    ----------
    n : int
        Number of points.
    dim : int
        d.
    scale : float
        σ, the per-coordinate standard deviation of the data (1 for the BKW solutions, whose
        second moment E|v|² = d).
    """
    if int(n) != n or n < 1 or int(dim) != dim or dim < 1:
        raise ValueError(f"need positive integers n and dim, got n={n}, dim={dim}")
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be positive and finite, got {scale}")
    return BANDWIDTH_CONSTANT * float(scale) * float(n) ** (-1.0 / (dim + 4))


def _blocks(a: Array, block: int, fill: Array | None = None) -> Array:
    """(n, …) → (n_blocks, block, …), padded with copies of a[0] (or with ``fill``)."""
    n = a.shape[0]
    n_blocks = -(-n // block)
    pad = n_blocks * block - n
    if pad:
        extra = jnp.broadcast_to(a[:1] if fill is None else fill, (pad, *a.shape[1:]))
        a = jnp.concatenate([a, extra.astype(a.dtype)], axis=0)
    return a.reshape(n_blocks, block, *a.shape[1:])


@eqx.filter_jit
def _kde_columns(
    points: Array, weights: Array, grid_points: Array, bandwidth: Array, block_size: int
) -> Array:
    """Σ_i W_{ik} K_h(x_j − V_i) for k weight columns: (n, d), (n, k), (m, d) → (m, k)."""
    m, d = grid_points.shape
    n, k = weights.shape
    gb, pb = max(1, min(block_size, m)), max(1, min(block_size, n))
    # Padded particles carry zero weight; padded grid rows are dropped at the end.
    vb = _blocks(points, pb)
    wb = _blocks(weights, pb, fill=jnp.zeros((), weights.dtype))
    inv = 0.5 / bandwidth**2

    def grid_block(xb: Array) -> Array:
        def step(acc, chunk):
            v, w = chunk
            # Coordinate differences, not |x|² + |v|² − 2x·v: no cancellation far from 0.
            r2 = sum((xb[:, c : c + 1] - v[None, :, c]) ** 2 for c in range(d))
            return acc + jnp.exp(-inv * r2) @ w, None

        acc, _ = lax.scan(step, jnp.zeros((xb.shape[0], k), weights.dtype), (vb, wb))
        return acc

    out = lax.map(grid_block, _blocks(grid_points, gb)).reshape(-1, k)[:m]
    return (2.0 * jnp.pi * bandwidth**2) ** (-0.5 * d) * out


def _check_points(points: Array, name: str, dim: int | None = None) -> None:
    if points.ndim != 2 or (dim is not None and points.shape[1] != dim):
        want = "(n, d)" if dim is None else f"(n, {dim})"
        raise ValueError(
            f"{name} must have shape {want}, got {points.shape}; batch several ensembles "
            "with jax.vmap"
        )


def _check_bandwidth(bandwidth) -> None:
    if isinstance(bandwidth, int | float | np.floating | np.integer) and not (
        math.isfinite(bandwidth) and bandwidth > 0
    ):
        raise ValueError(f"bandwidth must be positive and finite, got {bandwidth}")


def gaussian_kde(
    points: Float[Array, "n d"],
    grid_points: Float[Array, "m d"],
    *,
    bandwidth: float | Float[Array, ""],
    weights: Float[Array, " n"] | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> Float[Array, " m"]:
    r"""Gaussian kernel density estimate at ``grid_points``.

    .. math::

        \hat f_h(x_j) = \sum_i w_i K_h(x_j - V_i),\qquad
        K_h(x) = (2\pi h^2)^{-d/2} e^{-|x|^2/(2h^2)}

    Jitted; differentiable in the points, weights and bandwidth; non-finite points make every
    value NaN (nothing is dropped).

    Parameters
    ----------
    points : array (n, d)
        Particles :math:`V_i`.
    grid_points : array (m, d)
        Evaluation points :math:`x_j`.
    bandwidth : float
        h > 0, the kernel's standard deviation per coordinate (traced: changing it does not
        recompile).
    weights : array (n,), optional
        :math:`w_i`; default 1/n. Used as given (not renormalised).
    block_size : int, default 1024
        Tile side: the kernel is formed block_size grid points × block_size particles at a
        time, so memory is O(block_size²).

    Returns
    -------
    array (m,)

    References
    ----------
    .. [1] B. W. Silverman, "Density Estimation for Statistics and Data Analysis" (1986).
    """
    points, grid_points = jnp.asarray(points), jnp.asarray(grid_points)
    _check_points(points, "points")
    _check_points(grid_points, "grid_points", points.shape[1])
    _check_bandwidth(bandwidth)
    n = points.shape[0]
    if weights is None:
        weights = jnp.full((n,), 1.0 / n, dtype=points.dtype)
    weights = jnp.asarray(weights)
    if weights.shape != (n,):
        raise ValueError(f"weights must have shape ({n},), got {weights.shape}")
    h = jnp.asarray(bandwidth, dtype=points.dtype)
    return _kde_columns(points, weights[:, None], grid_points, h, int(block_size))[:, 0]


def relative_l2(
    values: Float[Array, " m"], reference: Float[Array, " m"], cell_volume: float
) -> Float[Array, ""]:
    r"""Relative L² distance by the midpoint rule on a uniform grid.

    .. math::

        \frac{\|v - r\|_2}{\|r\|_2} \approx
        \Big(\frac{\sum_j (v_j - r_j)^2\,\Delta V}{\sum_j r_j^2\,\Delta V}\Big)^{1/2}

    ΔV cancels on a uniform grid; it is applied to each norm so both are quadratures of the
    L² norms. Returns a 0-d array (jit/vmap friendly); NaN where the values are.
    """
    values, reference = jnp.asarray(values), jnp.asarray(reference)
    if values.shape != reference.shape or values.ndim != 1:
        raise ValueError(
            f"values and reference must be 1-d of equal shape, got {values.shape}, "
            f"{reference.shape}; batch with jax.vmap"
        )
    diff = jnp.sum((values - reference) ** 2) * cell_volume
    return jnp.sqrt(diff / (jnp.sum(reference**2) * cell_volume))


@dataclass(frozen=True)
class DensityErrorResult:
    """The KDE density certificate at one time.

    Attributes
    ----------
    density_error : Estimate
        Relative L² error of the KDE of the particles (``kde-relative-l2``).
    kde_floor : Estimate
        The same from as many exact iid samples (``kde-relative-l2``).
    excess : Estimate
        density_error − kde_floor, stderr √(se₁² + se₂²) (``kde-relative-l2-excess``).
    bandwidth : float
        h.
    grid : DensityGrid
    """

    density_error: Estimate
    kde_floor: Estimate
    excess: Estimate
    bandwidth: float
    grid: DensityGrid


@eqx.filter_jit
def _bootstrap_errors(
    points: Array,
    weights: Array,
    grid_points: Array,
    reference: Array,
    bandwidth: Array,
    key: PRNGKeyArray,
    n_bootstrap: int,
    block_size: int,
) -> Array:
    """(1 + B,) relative L² errors: the sample's, then B resamples' (multinomial weights)."""
    n = points.shape[0]
    idx = jax.random.randint(key, (n_bootstrap, n), 0, n)
    counts = jax.vmap(lambda i: jnp.bincount(i, length=n))(idx).astype(weights.dtype)
    columns = jnp.concatenate([weights[:, None], (counts * weights[None, :]).T], axis=1)
    kde = _kde_columns(points, columns, grid_points, bandwidth, block_size)
    # ΔV cancels in the ratio (uniform grid).
    return jax.vmap(lambda col: relative_l2(col, reference, 1.0), in_axes=1)(kde)


def _nan_estimate(n: int, formula_id: str, reason: str) -> Estimate:
    return Estimate(
        math.nan,
        math.nan,
        n_samples=n,
        formula_id=formula_id,
        evidence=Evidence.EMPIRICAL,
        interval_method=IntervalMethod.NORMAL,
        normaliser=NORMALISER_REFERENCE_L2,
        reason=reason,
    )


def _kde_estimate(points, weights, grid_points, reference, h, key, n_bootstrap, block, label):
    n = points.shape[0]
    bad = int(jnp.sum(~jnp.all(jnp.isfinite(points), axis=1)))
    bad_w = int(jnp.sum(~jnp.isfinite(weights)))
    if bad or bad_w:
        note = f"{bad} of {n} {label} have non-finite coordinates" if bad else ""
        if bad_w:
            note = (note + "; " if note else "") + f"{bad_w} of {n} weights are not finite"
        return _nan_estimate(n, FORMULA_KDE_L2, note + " (none dropped)")
    errors = np.asarray(
        _bootstrap_errors(points, weights, grid_points, reference, h, key, n_bootstrap, block)
    )
    reason = (
        f"bootstrap-normal interval (Efron & Tibshirani 1993): stderr is the standard "
        f"deviation of the error over {n_bootstrap} resamples of the {n} {label} with "
        "replacement; no coverage guarantee; resamples have ties, which inflates the KDE "
        "variance term slightly"
    )
    if not np.all(np.isfinite(errors)):
        return _nan_estimate(n, FORMULA_KDE_L2, "KDE error not finite; " + reason)
    return Estimate(
        float(errors[0]),
        float(np.std(errors[1:], ddof=1)),
        n_samples=n,
        formula_id=FORMULA_KDE_L2,
        evidence=Evidence.EMPIRICAL,
        interval_method=IntervalMethod.NORMAL,
        normaliser=NORMALISER_REFERENCE_L2,
        reason=reason,
    )


def _excess(model: Estimate, floor: Estimate) -> Estimate:
    reason = (
        "density_error minus kde_floor from independent bootstraps: stderr = "
        "sqrt(se1^2 + se2^2); bootstrap-normal interval, no coverage guarantee"
    )
    if math.isnan(model.estimate) or math.isnan(floor.estimate):
        note = _join([e.reason for e in (model, floor) if math.isnan(e.estimate)])
        return _nan_estimate(model.n_samples, FORMULA_KDE_L2_EXCESS, note)
    return Estimate(
        model.estimate - floor.estimate,
        math.hypot(model.stderr, floor.stderr),
        n_samples=model.n_samples,
        formula_id=FORMULA_KDE_L2_EXCESS,
        evidence=Evidence.EMPIRICAL,
        interval_method=IntervalMethod.NORMAL,
        normaliser=NORMALISER_REFERENCE_L2,
        reason=reason,
    )


@eqx.filter_jit
def _density_on_grid(fn: Callable, grid_points: Array, block_size: int) -> Array:
    return blocked_map(fn, grid_points, block_size)


def density_error(
    particles: Float[Array, "n d"],
    exact_density_fn: DensityFn,
    exact_samples: Float[Array, "n d"],
    *,
    grid: DensityGrid,
    bandwidth: float,
    key: PRNGKeyArray,
    n_bootstrap: int = DEFAULT_N_BOOTSTRAP,
    weights: Float[Array, " n"] | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    allow_float32: bool = False,
) -> DensityErrorResult:
    r"""KDE error of the particles against the exact density, its floor and the excess.

    .. math::

        e_{\rm model} = \frac{\|\hat f_h[V] - f\|_{L^2(\Omega)}}{\|f\|_{L^2(\Omega)}},\quad
        e_{\rm floor} = \frac{\|\hat f_h[Y] - f\|_{L^2(\Omega)}}{\|f\|_{L^2(\Omega)}},\quad
        e_{\rm model} - e_{\rm floor},

    with :math:`\hat f_h` the Gaussian KDE (:func:`gaussian_kde`), V the particles, Y as many
    exact iid samples, the norms by the midpoint rule on ``grid`` (module docstring).
    Uncertainty: bootstrap over the particles, resp. the exact samples (module docstring;
    EMPIRICAL evidence, NORMAL interval). Non-finite particles (or weights) are not dropped:
    that estimate and the excess are NaN with a reason giving the count.

    Parameters
    ----------
    particles : array (n, d)
        The model's particles V at the certification time.
    exact_density_fn : callable
        f(x) for one x of shape (d,) (vmapped here), e.g. ``lambda x: problem.density(t, x)``.
    exact_samples : array (n, d)
        n exact iid samples Y (same n as the particles, so the floor is comparable).
    grid : DensityGrid
        Where the L² norms are taken (:func:`default_grid`).
    bandwidth : float
        h (:func:`default_bandwidth`); stored in the result.
    key : PRNG key
        Keyword-only, no default; split into the particles' and the exact samples'
        bootstrap keys.
    n_bootstrap : int, default 32
        B ≥ 2 bootstrap resamples.
    weights : array (n,), optional
        Particle weights :math:`w_i` (default 1/n), used as given; a resample weights
        particle i by :math:`c_i w_i` (bootstrap of (V_i, w_i) pairs). The floor always uses
        1/n.
    block_size : int, default 1024
        KDE tile side (memory O(block_size²)).
    allow_float32 : bool, default False
        Estimate without x64 (refused otherwise).

    Returns
    -------
    DensityErrorResult

    References
    ----------
    .. [1] Y. Huang, L. Wang, J. Comput. Phys. 536 (2025) 114053.
    .. [2] B. Efron, R. J. Tibshirani, "An Introduction to the Bootstrap" (1993).
    """
    require_float64(allow_float32)
    particles, exact_samples = jnp.asarray(particles), jnp.asarray(exact_samples)
    _check_points(particles, "particles", grid.dim)
    if exact_samples.shape != particles.shape:
        raise ValueError(
            f"exact_samples must have the particles' shape {particles.shape} (the floor is "
            f"taken at the same n), got {exact_samples.shape}"
        )
    _check_bandwidth(bandwidth)
    if int(n_bootstrap) != n_bootstrap or n_bootstrap < 2:
        raise ValueError(f"n_bootstrap must be an integer ≥ 2, got {n_bootstrap}")
    n = particles.shape[0]
    uniform = jnp.full((n,), 1.0 / n, dtype=particles.dtype)
    weights = uniform if weights is None else jnp.asarray(weights, dtype=particles.dtype)
    if weights.shape != (n,):
        raise ValueError(f"weights must have shape ({n},), got {weights.shape}")
    grid_points = grid.points()
    reference = _density_on_grid(exact_density_fn, grid_points, int(block_size))
    if not bool(jnp.all(jnp.isfinite(reference))) or not float(jnp.sum(reference**2)) > 0:
        raise ValueError(
            "the exact density must be finite on the grid with a positive L2 norm there "
            "(does the grid cover the distribution?)"
        )
    h = jnp.asarray(float(bandwidth), dtype=particles.dtype)
    particle_key, exact_key = jax.random.split(key)
    common = (grid_points, reference, h)
    model = _kde_estimate(
        particles, weights, *common, particle_key, int(n_bootstrap), int(block_size), "particles"
    )
    floor = _kde_estimate(
        exact_samples,
        uniform,
        *common,
        exact_key,
        int(n_bootstrap),
        int(block_size),
        "exact samples",
    )
    return DensityErrorResult(model, floor, _excess(model, floor), float(bandwidth), grid)


@eqx.filter_jit
def _log_densities(
    log_density_fn: LogDensityFn,
    exact_log_density_fn: LogDensityFn,
    t: Array,
    grid_points: Array,
    block_size: int,
) -> tuple[Array, Array]:
    return blocked_map(
        lambda x: (log_density_fn(t, x), exact_log_density_fn(t, x)), grid_points, block_size
    )


def grid_density_error(
    log_density_fn: LogDensityFn,
    exact_log_density_fn: LogDensityFn,
    *,
    t: float | Float[Array, ""],
    grid: DensityGrid,
    normalise: bool,
    block_size: int = DEFAULT_BLOCK_SIZE,
    allow_float32: bool = False,
) -> Estimate:
    r"""Relative L² error of a model density against the exact/reference one on a grid.

    .. math::

        e = \frac{\|p - f\|_{L^2(\Omega)}}{\|f\|_{L^2(\Omega)}},\qquad
        p = e^{u(t,\cdot)}\ \text{or, if normalise,}\
        p = \frac{e^{u(t,\cdot)}}{\sum_j e^{u(t,x_j)}\,\Delta V},

    u the model's log-density, f = exp of the exact log-density, norms and mass by the
    midpoint rule on ``grid`` (the normalising mass is the quadrature over the box, so model
    mass outside it is ignored). Deterministic: stderr 0 and interval EXACT, but evidence
    EMPIRICAL, because the quadrature error (and the mass outside the box) is not bounded.
    Model log-densities that are NaN or +inf give a NaN estimate with the count; −inf is a
    zero density.

    Parameters
    ----------
    log_density_fn : callable
        u(t, x) for one x of shape (d,), possibly unnormalised (then ``normalise=True``).
    exact_log_density_fn : callable
        log f(t, x), e.g. ``problem.log_density``.
    t : float
        Time.
    grid : DensityGrid
    normalise : bool
        Divide the model density by its quadrature mass over the box.
    block_size : int, default 1024
        Grid points per vmapped block.
    allow_float32 : bool, default False
        Evaluate without x64 (refused otherwise).

    Returns
    -------
    Estimate
        Formula ``grid-relative-l2``, normaliser ``reference_l2_norm``, n_samples 0.

    References
    ----------
    .. [1] Y. Huang, L. Wang, J. Comput. Phys. 536 (2025) 114053.
    """
    require_float64(allow_float32)
    grid_points = grid.points()
    u, log_f = _log_densities(
        log_density_fn,
        exact_log_density_fn,
        jnp.asarray(t, dtype=float),
        grid_points,
        int(block_size),
    )
    u, log_f = np.asarray(u, dtype=np.float64), np.asarray(log_f, dtype=np.float64)
    dv = grid.cell_volume()
    reason = (
        "deterministic midpoint-rule quadrature on the grid; its error (and any mass outside "
        "the box) is not bounded"
    )
    if normalise:
        reason += "; model normalised by its quadrature mass over the box (mass outside ignored)"
    common = {
        "n_samples": 0,
        "formula_id": FORMULA_GRID_L2,
        "evidence": Evidence.EMPIRICAL,
        "interval_method": IntervalMethod.EXACT,
        "normaliser": NORMALISER_REFERENCE_L2,
    }
    invalid = np.isnan(u) | (u == np.inf)
    if invalid.any():
        note = (
            f"{int(invalid.sum())} of {u.size} model log-density values on the grid are NaN "
            f"or +inf; first at grid point {int(np.argmax(invalid))}"
        )
        return Estimate(math.nan, math.nan, reason=f"{note}; {reason}", **common)
    if np.isnan(log_f).any() or not np.any(np.isfinite(log_f)) or (log_f == np.inf).any():
        raise ValueError("the exact log-density must be finite somewhere and never NaN/+inf")
    f = np.exp(log_f)
    if normalise:
        top = np.max(u)
        if not np.isfinite(top):
            return Estimate(
                math.nan,
                math.nan,
                reason=f"model density vanishes on the grid; {reason}",
                **common,
            )
        # Shift by the maximum so that exp cannot overflow before normalising.
        q = np.exp(u - top)
        p = q / (np.sum(q) * dv)
    else:
        p = np.exp(u)
    value = float(relative_l2(jnp.asarray(p), jnp.asarray(f), dv))
    return Estimate(value, 0.0, reason=reason, **common)


def _join(parts: Sequence[str]) -> str:
    return "; ".join(p for p in parts if p)
