r"""Sample gaps: generated samples of the learned dynamics against exact samples of p₀.

For a score model :math:`s(t, x)` or a velocity model :math:`v(t, x)` of a problem with a
linear forward SDE :math:`dx = f(t,x)\,dt + g(t)\,dW` and exact marginals (the
``linear-sde-gmm`` family), :func:`sample_gap` starts from exact samples of
:math:`p_{t_{\max}}` and runs, backward to :math:`t_{\min}`,

* the probability-flow ODE (Song et al. 2021, eq. 13)
  :math:`dx/dt = v(t,x)`, with :math:`v = f - \tfrac12 g^2 s` when only a score is given
  (diffrax Tsit5, PID step-size control, per sample), and
* the reverse SDE (Song et al. 2021, eq. 6) :math:`dx = [f - g^2 s]\,dt + g\,d\bar W`
  (Euler–Maruyama or stochastic Heun, :mod:`solvers._sde_samplers`), with
  :math:`s = 2(f - v)/g^2` when only a velocity is given (valid where g > 0; recorded),

and compares each generated set with an independent set of exact :math:`p_{t_{\min}}`
samples, and the ODE set with the SDE set (the ODE–SDE gap; the two start from independent
exact samples, so the comparison terms are iid), by

* the squared maximum mean discrepancy with a Gaussian kernel, by the block statistic
  (formula ``mmd2-block-gaussian``, :func:`mmd2_block`: iid block U-statistics, the
  linear-time idea below with blocks of B ≥ 2 samples and a variance smaller by ~B when
  the model is good; the pair statistic :func:`mmd2_linear` is its B = 2 case),
* the energy distance (``energy-distance-linear``, :func:`energy_distance_linear`),
* the squared sliced Wasserstein-2 distance (``sliced-w2-squared``, :func:`sliced_w2`; for
  generated against exact samples only).

Why linear-time statistics
--------------------------
The usual MMD² and energy-distance estimators are quadratic U-statistics. Under
:math:`P = Q` — exactly the case a correct model should be in — the U-statistic is
*degenerate*: its variance is :math:`O(n^{-2})` rather than :math:`O(n^{-1})` and its law is
an infinite weighted sum of centred χ² variables, so no normal interval is valid, and a
permutation test gives a p-value for :math:`H_0: P = Q`, not a confidence interval for the
size of the gap. The linear-time statistics (Gretton et al. 2012, §6) pair consecutive
samples, :math:`z_i = (x_{2i-1}, x_{2i}, y_{2i-1}, y_{2i})`, and average a kernel
:math:`h(z_i)` over the :math:`m = \lfloor n/2\rfloor` disjoint pairs. The :math:`h(z_i)`
are iid with mean exactly the population quantity and finite variance (bounded for MMD),
so :func:`verify._estimate.summarise` gives an honest CLT interval whether or not
:math:`P = Q` (it is zero-covering under the null and covers the gap under the
alternative), at the price of a :math:`\sqrt n`-times wider interval than the U-statistic's
null spread. Certification needs the interval, not the test.

Sliced W2² by sorting is a plug-in (V-type) estimate, biased upward at finite n
(the empirical measures are never closer than their sampling noise allows): its evidence is
EMPIRICAL and its ``stderr`` covers only the Monte Carlo noise of the random directions.

Everything that touches n samples is jitted (``equinox.filter_jit``, models traced as
pytrees, times traced) and vmapped in blocks (:func:`verify._score_gap.blocked_map`), so
memory beyond the samples themselves is O(``block_size``). Non-finite generated samples
(a model returning NaN, or an ODE solve that failed) make the affected per-pair values NaN,
hence the estimate NaN with a reason (:mod:`verify._estimate`); nothing is dropped.

References
----------
.. [1] A. Gretton, K. M. Borgwardt, M. J. Rasch, B. Schölkopf, A. Smola, "A kernel
   two-sample test", JMLR 13 (2012) 723–773, §6 (linear-time statistic).
.. [2] G. J. Székely, M. L. Rizzo, "Energy statistics: A class of statistics based on
   distances", J. Stat. Plan. Inference 143 (2013) 1249–1272.
.. [3] Y. Song, J. Sohl-Dickstein, D. P. Kingma, A. Kumar, S. Ermon, B. Poole, "Score-Based
   Generative Modeling through Stochastic Differential Equations", ICLR 2021, eqs. 6, 13.
.. [4] N. Bonneel, J. Rabin, G. Peyré, H. Pfister, "Sliced and Radon Wasserstein
   barycenters of measures", J. Math. Imaging Vis. 51 (2015) 22–45.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from certificates import Evidence
from solvers import (
    AbstractExactMarginals,
    AbstractFokkerPlanckDynamics,
    EulerMaruyama,
    StochasticHeun,
)

from ._estimate import Estimate, summarise
from ._model_views import ScoreOfVelocity, VelocityOfScore
from ._score_gap import blocked_map, require_float64

ModelFn = Callable[[Float[Array, ""], Float[Array, " d"]], Float[Array, " d"]]

FORMULA_MMD = "mmd2-linear-gaussian"
FORMULA_MMD_BLOCK = "mmd2-block-gaussian"
FORMULA_ENERGY = "energy-distance-linear"
FORMULA_SLICED_W2 = "sliced-w2-squared"

SDE_SCHEMES = {"euler-maruyama": EulerMaruyama, "stochastic-heun": StochasticHeun}
DEFAULT_ODE_MAX_STEPS = 16384
ODE_DTMIN_RELATIVE = 1e-12
"""PF-ODE step floor, relative to the window; a solve needing a smaller step fails (NaN)."""

ESTIMATES: dict[str, tuple[str, str]] = {
    "ode_mmd2": ("1", "squared MMD, PF-ODE samples vs exact p(t_min)"),
    "sde_mmd2": ("1", "squared MMD, reverse-SDE samples vs exact p(t_min)"),
    "ode_sde_mmd2": ("1", "squared MMD, PF-ODE vs reverse-SDE samples"),
    "ode_energy": ("x", "energy distance, PF-ODE samples vs exact p(t_min)"),
    "sde_energy": ("x", "energy distance, reverse-SDE samples vs exact p(t_min)"),
    "ode_sde_energy": ("x", "energy distance, PF-ODE vs reverse-SDE samples"),
    "ode_sliced_w2": ("x^2", "squared sliced W2, PF-ODE samples vs exact p(t_min)"),
    "sde_sliced_w2": ("x^2", "squared sliced W2, reverse-SDE samples vs exact p(t_min)"),
}
"""Keys of :attr:`SampleGapResult.estimates` → (units, long name); "x" is the state's unit."""

_ROUNDOFF_ULPS = 64
"""Per-pair deviations below 64 ulps of the summed terms are round-off (tail diagnostic)."""


# --- two-sample statistics -------------------------------------------------------------


def _check_pair(x, y, name: str) -> tuple[Array, Array]:
    x, y = jnp.asarray(x), jnp.asarray(y)
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(
            f"{name}: x and y must be (n, d) sample arrays of the same shape, got {x.shape} "
            f"and {y.shape}"
        )
    if x.shape[0] < 4:
        raise ValueError(f"{name}: need n ≥ 4 samples (two pairs), got {x.shape[0]}")
    return x, y


def _pairs(x: Array, y: Array) -> tuple[Array, Array, Array, Array, Array]:
    """(x₁, x₂, y₁, y₂) of the m = ⌊n/2⌋ consecutive pairs, and whether each pair is finite."""
    m = x.shape[0] // 2
    x1, x2, y1, y2 = x[0 : 2 * m : 2], x[1 : 2 * m : 2], y[0 : 2 * m : 2], y[1 : 2 * m : 2]
    finite = jnp.all(jnp.isfinite(jnp.concatenate([x1, x2, y1, y2], axis=1)), axis=1)
    return x1, x2, y1, y2, finite


def _gaussian_kernel(a: Array, b: Array, bandwidth) -> Array:
    return jnp.exp(-jnp.sum((a - b) ** 2, axis=-1) / (2.0 * bandwidth**2))


def mmd2_linear_terms(
    x: Float[Array, "n d"], y: Float[Array, "n d"], bandwidth
) -> Float[Array, " m"]:
    r"""Per-pair terms :math:`h_i` of the linear-time MMD² (jittable, vmappable, differentiable).

    :math:`h_i = k(x_{2i-1},x_{2i}) + k(y_{2i-1},y_{2i}) - k(x_{2i-1},y_{2i}) -
    k(x_{2i},y_{2i-1})`, :math:`k(a,b) = \exp(-|a-b|^2/(2\,\mathrm{bw}^2))`, for
    i = 1 … ⌊n/2⌋ (the last sample is dropped when n is odd); NaN where any of the four
    samples has a non-finite entry. See :func:`mmd2_linear`.
    """
    x1, x2, y1, y2, finite = _pairs(x, y)
    h = (
        _gaussian_kernel(x1, x2, bandwidth)
        + _gaussian_kernel(y1, y2, bandwidth)
        - _gaussian_kernel(x1, y2, bandwidth)
        - _gaussian_kernel(x2, y1, bandwidth)
    )
    return jnp.where(finite, h, jnp.nan)


def _norm(a: Array) -> Array:
    return jnp.sqrt(jnp.sum(a * a, axis=-1))


def _energy_terms_and_scale(x: Array, y: Array) -> tuple[Array, Array]:
    x1, x2, y1, y2, finite = _pairs(x, y)
    terms = (_norm(x1 - y2), _norm(x2 - y1), _norm(x1 - x2), _norm(y1 - y2))
    h = terms[0] + terms[1] - terms[2] - terms[3]
    return jnp.where(finite, h, jnp.nan), sum(terms)


def energy_distance_linear_terms(
    x: Float[Array, "n d"], y: Float[Array, "n d"]
) -> Float[Array, " m"]:
    r"""Per-pair terms of the linear-time energy distance (jittable, vmappable).

    :math:`h_i = |x_{2i-1}-y_{2i}| + |x_{2i}-y_{2i-1}| - |x_{2i-1}-x_{2i}| - |y_{2i-1}-y_{2i}|`
    (Euclidean norms), NaN where any of the four samples is non-finite. See
    :func:`energy_distance_linear`.
    """
    return _energy_terms_and_scale(x, y)[0]


_mmd2_terms_jit = jax.jit(mmd2_linear_terms)
_energy_terms_jit = jax.jit(_energy_terms_and_scale)


def _roundoff(dtype, scale) -> float:
    scale = np.asarray(scale)
    finite = scale[np.isfinite(scale)]
    top = float(finite.max()) if finite.size else 0.0
    return _ROUNDOFF_ULPS * float(jnp.finfo(dtype).eps) * top


def mmd2_linear(x, y, *, bandwidth: float, allow_float32: bool = False) -> Estimate:
    r"""Linear-time unbiased estimate of the squared MMD with a Gaussian kernel.

    .. math::

        \mathrm{MMD}^2(P, Q) = E\,k(X,X') + E\,k(Y,Y') - 2E\,k(X,Y),\qquad
        k(a,b) = \exp\!\Big(-\frac{|a-b|^2}{2\,\mathrm{bw}^2}\Big),

    estimated by :math:`\frac1m\sum_{i=1}^m h_i` with the iid pair terms of
    :func:`mmd2_linear_terms`, :math:`m = \lfloor n/2\rfloor`, and the CLT standard error
    :math:`\hat\sigma_h/\sqrt m` (Gretton et al. 2012, §6, Lemma 14 and Corollary 16). The
    interval is valid for P = Q and P ≠ Q alike (module docstring); the estimate can be
    negative. Units: none (:math:`0 \le k \le 1`, :math:`|h_i| \le 2`; being bounded, the
    terms skip the heavy-tail diagnostic).

    Parameters
    ----------
    x, y : array, shape (n, d)
        Independent iid samples of P and Q (same n; odd n drops the last sample).
    bandwidth : float
        Kernel bandwidth bw > 0 (for instance :func:`median_bandwidth`).
    allow_float32 : bool, default False
        Estimate without x64 (refused otherwise).

    Returns
    -------
    Estimate
        Formula ``mmd2-linear-gaussian``, evidence STATISTICAL, ``n_samples`` = m pairs.

    References
    ----------
    Gretton, Borgwardt, Rasch, Schölkopf, Smola, "A kernel two-sample test", JMLR 13 (2012)
    723–773, §6.
    """
    require_float64(allow_float32)
    x, y = _check_pair(x, y, "mmd2_linear")
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth}")
    terms = _mmd2_terms_jit(x, y, jnp.asarray(bandwidth, dtype=x.dtype))
    # |h_i| ≤ 2 (kernel values in [0, 1]): every moment is finite, so the heavy-tail guard
    # could only raise false alarms (it fires on skewed light tails at small n).
    return summarise(terms, formula_id=FORMULA_MMD, check_tail=False)


BLOCK_TARGET_COUNT = 128
"""Target number of blocks of the block MMD² (so its CLT rests on ≥ 128 iid block values)."""
BLOCK_MAX_SIZE = 64
"""Largest block: the per-block cost is O(B²) kernel evaluations (n·B in all)."""


def block_size_for(n: int) -> int:
    """Block size B of :func:`mmd2_block`: ⌊n / 128⌋ clamped to [2, 64]."""
    return int(min(BLOCK_MAX_SIZE, max(2, n // BLOCK_TARGET_COUNT)))


def mmd2_block_terms(
    x: Float[Array, "n d"], y: Float[Array, "n d"], bandwidth, block: int
) -> Float[Array, " b"]:
    r"""Per-block unbiased MMD² U-statistics :math:`\eta_j` of :func:`mmd2_block`.

    For block j with samples :math:`x_{j1..jB}, y_{j1..jB}`:

    .. math::

        \eta_j = \frac{1}{B(B-1)}\sum_{i \ne i'} \big[k(x_{ji},x_{ji'}) + k(y_{ji},y_{ji'})\big]
                 - \frac{2}{B^2}\sum_{i,i'} k(x_{ji},y_{ji'}),

    unbiased for MMD²(P, Q) (the cross term may use i = i' since x and y are independent);
    NaN where a block holds a non-finite sample. ``block`` is static (a shape).
    """
    nb = x.shape[0] // block
    xb = x[: nb * block].reshape(nb, block, -1)
    yb = y[: nb * block].reshape(nb, block, -1)

    def gram(a, b):
        sq = jnp.sum((a[:, None, :] - b[None, :, :]) ** 2, axis=-1)
        return jnp.exp(-sq / (2.0 * bandwidth**2))

    def one(a, b):
        off = 1.0 - jnp.eye(block, dtype=a.dtype)
        within = (jnp.sum(gram(a, a) * off) + jnp.sum(gram(b, b) * off)) / (block * (block - 1))
        value = within - 2.0 * jnp.mean(gram(a, b))
        finite = jnp.all(jnp.isfinite(a)) & jnp.all(jnp.isfinite(b))
        return jnp.where(finite, value, jnp.nan)

    return jax.lax.map(lambda ab: one(*ab), (xb, yb))


_mmd2_block_jit = jax.jit(mmd2_block_terms, static_argnums=3)


def mmd2_block(
    x, y, *, bandwidth: float, block: int | None = None, allow_float32: bool = False
) -> Estimate:
    r"""Block estimate of the squared MMD (the "B-test" of Zaremba, Gretton, Blaschko 2013).

    The n samples of each set are cut into :math:`b = \lfloor n/B \rfloor` blocks of size B;
    the block U-statistics :math:`\eta_j` (:func:`mmd2_block_terms`) are iid and unbiased
    for MMD², so :math:`\bar\eta \pm z\,\hat\sigma_\eta/\sqrt b` is a CLT interval valid for
    P = Q and P ≠ Q alike, like the linear-time statistic (:func:`mmd2_linear`, the case
    B = 2), but with a variance smaller by a factor of order B under P ≈ Q (the degenerate
    U-statistic of a block has variance :math:`O(B^{-2})`, against :math:`O(1)` for a
    pair), at a cost of n·B kernel evaluations. B defaults to :func:`block_size_for`
    (≥ 128 blocks). The block values are bounded (:math:`|\eta_j| \le 4`), so the
    heavy-tail diagnostic is skipped, as for :func:`mmd2_linear`.

    Returns
    -------
    Estimate
        Formula ``mmd2-block-gaussian``, evidence STATISTICAL, ``n_samples`` = b blocks.

    References
    ----------
    W. Zaremba, A. Gretton, M. Blaschko, "B-test: A non-parametric, low variance kernel
    two-sample test", NeurIPS 2013.
    """
    require_float64(allow_float32)
    x, y = _check_pair(x, y, "mmd2_block")
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth}")
    block = block_size_for(x.shape[0]) if block is None else int(block)
    if not 2 <= block <= x.shape[0] // 2:
        raise ValueError(f"block must lie in [2, n/2] for two blocks, got {block}")
    terms = _mmd2_block_jit(x, y, jnp.asarray(bandwidth, dtype=x.dtype), block)
    return summarise(terms, formula_id=FORMULA_MMD_BLOCK, check_tail=False)


def energy_distance_linear(x, y, *, allow_float32: bool = False) -> Estimate:
    r"""Linear-time unbiased estimate of the energy distance.

    .. math::

        \mathcal E(P, Q) = 2E|X-Y| - E|X-X'| - E|Y-Y'| \;\ge 0
        \quad(= 0 \text{ iff } P = Q,\ \text{given finite first moments}),

    estimated by :math:`\frac1m\sum_i h_i` with the iid pair terms of
    :func:`energy_distance_linear_terms` (the linear-time construction of Gretton et al.
    2012, §6, applied to the distance kernel, with which the energy distance is the MMD²
    of a negative-type kernel; Székely & Rizzo 2013) and the CLT standard error
    :math:`\hat\sigma_h/\sqrt m`, valid whenever the second moments are finite (the terms
    are unbounded, so the heavy-tail diagnostic of :func:`verify._estimate.summarise` runs;
    with few pairs, m ≲ 512, it can fire on light but skewed terms, giving an infinite
    stderr). Units: those of x. Parameters as :func:`mmd2_linear` (no bandwidth).

    Returns
    -------
    Estimate
        Formula ``energy-distance-linear``, evidence STATISTICAL, ``n_samples`` = m pairs.

    References
    ----------
    Székely, Rizzo, "Energy statistics: A class of statistics based on distances",
    J. Stat. Plan. Inference 143 (2013) 1249–1272.
    """
    require_float64(allow_float32)
    x, y = _check_pair(x, y, "energy_distance_linear")
    terms, scale = _energy_terms_jit(x, y)
    return summarise(terms, formula_id=FORMULA_ENERGY, resolution=_roundoff(x.dtype, scale))


@jax.jit
def _sliced_w2_terms(x: Array, y: Array, directions: Array) -> Array:
    def one(theta):
        # Equal sample sizes: the optimal 1-D coupling matches order statistics.
        px, py = jnp.sort(x @ theta), jnp.sort(y @ theta)
        return jnp.mean((px - py) ** 2)

    # lax.map: one direction at a time, memory O(n).
    return jax.lax.map(one, directions)


def sliced_w2(
    x, y, *, num_projections: int, key: PRNGKeyArray, allow_float32: bool = False
) -> Estimate:
    r"""Squared sliced Wasserstein-2 distance of the empirical measures, random directions.

    .. math::

        \mathrm{SW}_2^2(P, Q) = \int_{S^{d-1}} W_2^2(\theta_\# P, \theta_\# Q)\,d\sigma(\theta)
        \approx \frac1K\sum_{k=1}^K \frac1n\sum_{j=1}^n
        \big(\theta_k\cdot x_{(j)} - \theta_k\cdot y_{(j)}\big)^2,

    with :math:`\theta_k` iid uniform on the sphere (normalised Gaussians) and
    :math:`\cdot_{(j)}` the j-th order statistic of the projections (the exact 1-D W2
    between two n-point empirical measures). ``stderr`` is the standard deviation of the K
    per-direction values over :math:`\sqrt K`: it covers the Monte Carlo error of the
    directions only, *not* the sampling error of x and y, and the plug-in W2 is biased
    upward at finite n (positive even for P = Q), so the evidence is EMPIRICAL and the
    reason says so. No tail diagnostic: for fixed samples the per-direction value is a
    bounded continuous function of θ on the sphere. Units: those of x, squared.

    Parameters
    ----------
    x, y : array, shape (n, d)
        Samples of P and Q (same n).
    num_projections : int
        K ≥ 2 random directions.
    key : PRNG key
        Keyword-only, no default; draws the directions.
    allow_float32 : bool, default False
        Estimate without x64 (refused otherwise).

    Returns
    -------
    Estimate
        Formula ``sliced-w2-squared``, evidence EMPIRICAL, ``n_samples`` = K directions.

    References
    ----------
    Bonneel, Rabin, Peyré, Pfister, "Sliced and Radon Wasserstein barycenters of measures",
    J. Math. Imaging Vis. 51 (2015) 22–45.
    """
    require_float64(allow_float32)
    x, y = _check_pair(x, y, "sliced_w2")
    if num_projections < 2:
        raise ValueError(f"num_projections must be ≥ 2, got {num_projections}")
    directions = jax.random.normal(key, (int(num_projections), x.shape[1]), dtype=x.dtype)
    directions = directions / jnp.linalg.norm(directions, axis=1, keepdims=True)
    reason = (
        f"plug-in sliced W2^2 of two {x.shape[0]}-point empirical measures: biased upward "
        "at finite n; stderr covers the random-direction noise only, not sampling error"
    )
    return summarise(
        _sliced_w2_terms(x, y, directions),
        formula_id=FORMULA_SLICED_W2,
        evidence=Evidence.EMPIRICAL,
        reason=reason,
        check_tail=False,
    )


def median_bandwidth(x, y, *, max_points: int = 1000) -> float:
    r"""Median heuristic: the median of :math:`|z_i - z_j|`, i < j, over a fixed subset.

    The subset is the first ⌈``max_points``/2⌉ rows of x and of y (deterministic; pass
    samples independent of those being compared so the statistics' terms stay iid).
    Raises ``ValueError`` if the median distance is 0 (degenerate samples).

    References
    ----------
    Gretton et al., JMLR 13 (2012), §8 (bandwidth set to the median distance).
    """
    half = -(-int(max_points) // 2)
    z = np.concatenate([np.asarray(x)[:half], np.asarray(y)[:half]]).astype(np.float64)
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError(f"median_bandwidth needs (n, d) samples, got shape {z.shape}")
    distances = np.sqrt(np.sum((z[:, None, :] - z[None, :, :]) ** 2, axis=-1))
    median = float(np.median(distances[np.triu_indices(z.shape[0], k=1)]))
    if not (np.isfinite(median) and median > 0):
        raise ValueError(f"median distance is {median}; cannot set a kernel bandwidth")
    return median


# --- generators ------------------------------------------------------------------------


def _check_start(problem: AbstractFokkerPlanckDynamics, x_start) -> Array:
    x_start = jnp.asarray(x_start)
    if x_start.ndim != 2 or x_start.shape[1] != problem.dim:
        raise ValueError(
            f"x_start must be a batch of shape (n, {problem.dim}), got {x_start.shape}"
        )
    return x_start


@eqx.filter_jit
def _pf_ode_batch(velocity_fn, x_start, t_start, t_end, rtol, atol, max_steps, block):
    term = diffrax.ODETerm(lambda t, y, args: velocity_fn(t, y))
    # A non-finite velocity makes the controller reject and shrink the step forever; the
    # step floor ends such a solve after ~20 rejections instead of ``max_steps``.
    dtmin = ODE_DTMIN_RELATIVE * jnp.abs(t_end - t_start)
    controller = diffrax.PIDController(rtol=rtol, atol=atol, dtmin=dtmin, force_dtmin=False)

    def one(x0):
        solution = diffrax.diffeqsolve(
            term,
            diffrax.Tsit5(),
            t0=t_start,
            t1=t_end,
            dt0=None,
            y0=x0,
            saveat=diffrax.SaveAt(t1=True),
            stepsize_controller=controller,
            max_steps=max_steps,
            # A failed solve (NaN velocity, step budget) returns its last finite state;
            # it is replaced by NaN so that the statistics report it, not a silent error.
            throw=False,
        )
        ok = solution.result == diffrax.RESULTS.successful
        return jnp.where(ok, solution.ys[-1], jnp.nan)

    return blocked_map(one, x_start, block)


def generate_pf_ode_samples(
    problem: AbstractFokkerPlanckDynamics,
    velocity_fn: ModelFn,
    x_start,
    *,
    t_start: float,
    t_end: float,
    rtol: float,
    atol: float,
    block_size: int,
    max_steps: int = DEFAULT_ODE_MAX_STEPS,
) -> Float[Array, "n d"]:
    r"""Push samples through the probability-flow ODE :math:`dx/dt = v(t, x)`.

    Tsit5 (Tsitouras 2011, order 5(4)) with a PID step-size controller, one adaptive solve
    per sample (vmapped in blocks of ``block_size``, ``lax.map`` over blocks), from
    ``t_start`` to ``t_end`` (backward when t_end < t_start). A solve that fails (non-finite
    velocity, more than ``max_steps`` steps, a step below ``ODE_DTMIN_RELATIVE`` = 1e-12 of
    the window) gives a row of NaN.

    Parameters
    ----------
    problem : AbstractFokkerPlanckDynamics
        Supplies d (shape check).
    velocity_fn : callable
        v(t, x) → ``(d,)``; for a score model, f − ½ g² s (Song et al. 2021, eq. 13).
    x_start : array, shape (n, d)
        States at ``t_start``.
    t_start, t_end : float
        Integration window (traced: changing them does not recompile).
    rtol, atol : float
        PID controller tolerances.
    block_size : int
        Samples per vmapped block.
    max_steps : int, default 16384
        Step budget per sample.

    Returns
    -------
    array, shape (n, d)
        States at ``t_end``.
    """
    x_start = _check_start(problem, x_start)
    dtype = x_start.dtype
    return _pf_ode_batch(
        velocity_fn,
        x_start,
        jnp.asarray(t_start, dtype=dtype),
        jnp.asarray(t_end, dtype=dtype),
        float(rtol),
        float(atol),
        int(max_steps),
        int(block_size),
    )


@eqx.filter_jit
def _reverse_sde_batch(problem, score_fn, sampler, x_start, key, t_start, t_end, block):
    def one(args):
        x, k = args
        return sampler(problem, score_fn, x, key=k, t_start=t_start, t_end=t_end)

    return blocked_map(one, (x_start, jax.random.split(key, x_start.shape[0])), block)


def reverse_sde_sampler(scheme: str, n_steps: int):
    """The :mod:`solvers` reverse-SDE sampler named ``scheme`` with ``n_steps`` steps."""
    if scheme not in SDE_SCHEMES:
        raise ValueError(f"sde scheme must be one of {sorted(SDE_SCHEMES)}, got {scheme!r}")
    return SDE_SCHEMES[scheme](n_steps=int(n_steps))


def generate_reverse_sde_samples(
    problem: AbstractFokkerPlanckDynamics,
    score_fn: ModelFn,
    x_start,
    *,
    key: PRNGKeyArray,
    scheme: str,
    n_steps: int,
    t_start: float,
    t_end: float,
    block_size: int,
) -> Float[Array, "n d"]:
    r"""Run the reverse SDE :math:`dx = [f - g^2 s]\,dt + g\,d\bar W` from each start sample.

    Song et al. 2021, eq. 6, by :class:`solvers.EulerMaruyama` (weak order 1) or
    :class:`solvers.StochasticHeun` (weak order 2) on ``n_steps`` uniform steps from
    ``t_start`` down to ``t_end``; one independent Brownian path per sample (``key`` split
    n ways). Vmapped in blocks of ``block_size``.

    Parameters
    ----------
    problem : AbstractFokkerPlanckDynamics
        Supplies f(t, x) and g(t).
    score_fn : callable
        s(t, x) → ``(d,)``.
    x_start : array, shape (n, d)
        States at ``t_start``.
    key : PRNG key
        Keyword-only, no default; the Brownian increments.
    scheme : {"euler-maruyama", "stochastic-heun"}
    n_steps : int
        Uniform steps.
    t_start, t_end : float
        t_start > t_end (traced).
    block_size : int
        Samples per vmapped block.

    Returns
    -------
    array, shape (n, d)
        States at ``t_end`` (NaN rows where the score was not finite).
    """
    x_start = _check_start(problem, x_start)
    sampler = reverse_sde_sampler(scheme, n_steps)
    dtype = x_start.dtype
    return _reverse_sde_batch(
        problem,
        score_fn,
        sampler,
        x_start,
        key,
        jnp.asarray(t_start, dtype=dtype),
        jnp.asarray(t_end, dtype=dtype),
        int(block_size),
    )


@eqx.filter_jit
def _exact_samples(problem, t, n, key):
    return problem.sample(t, n, key=key)


# --- the certificate family ------------------------------------------------------------


@dataclass(frozen=True)
class SampleGapConfig:
    """Settings of :func:`sample_gap` (every one is stored with the result).

    Attributes
    ----------
    n_samples : int, default 4096
        n generated samples per generator, and n exact samples per reference set.
    sde_scheme : {"euler-maruyama", "stochastic-heun"}, default "euler-maruyama"
    sde_steps : int, default 500
        Uniform reverse-SDE steps over [t_min, t_max] (Euler–Maruyama's weak error is O(h)).
    ode_rtol, ode_atol : float, default 1e-6
        PF-ODE tolerances (Tsit5, PID controller).
    bandwidth : float or None, default None
        MMD kernel bandwidth; None → median heuristic on an independent set of exact
        p(t_min) samples.
    num_projections : int, default 128
        Random directions K of the sliced W2.
    block_size : int, default 1024
        Samples per vmapped block.
    ode_max_steps : int, default 16384
        PF-ODE step budget per sample (a sample over budget becomes NaN).
    """

    n_samples: int = 4096
    sde_scheme: Literal["euler-maruyama", "stochastic-heun"] = "euler-maruyama"
    sde_steps: int = 500
    ode_rtol: float = 1e-6
    ode_atol: float = 1e-6
    bandwidth: float | None = None
    num_projections: int = 128
    block_size: int = 1024
    ode_max_steps: int = DEFAULT_ODE_MAX_STEPS

    def __post_init__(self) -> None:
        if self.n_samples < 4:
            raise ValueError(f"n_samples must be ≥ 4 (two pairs), got {self.n_samples}")
        if self.sde_scheme not in SDE_SCHEMES:
            raise ValueError(
                f"sde_scheme must be one of {sorted(SDE_SCHEMES)}, got {self.sde_scheme!r}"
            )
        for name in ("sde_steps", "block_size", "ode_max_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if not (self.ode_rtol > 0 and self.ode_atol > 0):
            raise ValueError(
                f"ode_rtol, ode_atol must be > 0, got {self.ode_rtol}, {self.ode_atol}"
            )
        if self.bandwidth is not None and not self.bandwidth > 0:
            raise ValueError(f"bandwidth must be None or > 0, got {self.bandwidth}")
        if self.num_projections < 2:
            raise ValueError(f"num_projections must be ≥ 2, got {self.num_projections}")

    def parameters(self) -> dict[str, Any]:
        """Every field, JSON-serialisable."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SampleGapResult:
    """Output of :func:`sample_gap`.

    Attributes
    ----------
    estimates : dict of str to Estimate
        Keys of ``ESTIMATES``: ``ode_mmd2``, ``sde_mmd2``, ``ode_sde_mmd2``, ``ode_energy``,
        ``sde_energy``, ``ode_sde_energy``, ``ode_sliced_w2``, ``sde_sliced_w2``.
    bandwidth : float
        The MMD kernel bandwidth used.
    parameters : dict
        JSON-serialisable provenance: config, generators (ODE and SDE scheme parameters),
        t_start, t_end, where the score/velocity came from, bandwidth source.
    """

    estimates: dict[str, Estimate]
    bandwidth: float
    parameters: dict[str, Any]


def _nonfinite_note(samples: Array, label: str) -> str:
    bad = int(np.sum(~np.all(np.isfinite(np.asarray(samples)), axis=1)))
    if not bad:
        return ""
    return (
        f"{bad} of {samples.shape[0]} {label} samples are not finite (model output not "
        "finite, or the solve failed)"
    )


def _with_note(estimate: Estimate, note: str) -> Estimate:
    if not note:
        return estimate
    reason = f"{note}; {estimate.reason}" if estimate.reason else note
    return dataclasses.replace(estimate, reason=reason)


def sample_gap(
    problem,
    *,
    score_fn: ModelFn | None = None,
    velocity_fn: ModelFn | None = None,
    config: SampleGapConfig,
    key: PRNGKeyArray,
    allow_float32: bool = False,
) -> SampleGapResult:
    r"""Sample gaps of the PF-ODE and reverse-SDE samplers of a model (module docstring).

    Start: independent exact samples of :math:`p_{t_{\max}}` for the ODE and for the SDE.
    ODE velocity: ``velocity_fn`` if given, else :math:`f - \tfrac12 g^2 s` (Song et al.
    2021, eq. 13). SDE score: ``score_fn`` if given, else :math:`2(f - v)/g^2` (recorded as
    derived; valid for g > 0). Each generated set at :math:`t_{\min}` is compared with its
    own independent set of exact :math:`p_{t_{\min}}` samples, and the ODE set with the SDE
    set, by :func:`mmd2_block` and :func:`energy_distance_linear`; generated vs exact also
    by :func:`sliced_w2`. With ``config.bandwidth = None`` the bandwidth is the median
    heuristic on a further independent exact set (so the MMD terms stay iid).

    Parameters
    ----------
    problem : AbstractExactMarginals and AbstractFokkerPlanckDynamics
        E.g. :class:`solvers.LinearSDEGMMProblem`.
    score_fn, velocity_fn : callable, optional
        Models ``(t, x) -> (d,)`` (functions, equinox modules or bound methods; traced, not
        hashed). At least one is required.
    config : SampleGapConfig
    key : PRNG key
        Keyword-only, no default; split into named subkeys.
    allow_float32 : bool, default False
        Run without x64 (refused otherwise).

    Returns
    -------
    SampleGapResult
    """
    require_float64(allow_float32)
    if not (
        isinstance(problem, AbstractExactMarginals)
        and isinstance(problem, AbstractFokkerPlanckDynamics)
    ):
        raise TypeError(
            "sample_gap needs a problem with exact marginals and Fokker–Planck dynamics "
            f"(e.g. the linear-sde-gmm family), got {type(problem).__name__}"
        )
    if score_fn is None and velocity_fn is None:
        raise ValueError("sample_gap needs score_fn, velocity_fn or both")
    (
        ode_start_key,
        sde_start_key,
        sde_noise_key,
        ode_reference_key,
        sde_reference_key,
        bandwidth_key,
        ode_projection_key,
        sde_projection_key,
    ) = jax.random.split(key, 8)

    n = int(config.n_samples)
    t_start, t_end = float(problem.t_max), float(problem.t_min)
    velocity = velocity_fn if velocity_fn is not None else VelocityOfScore(problem, score_fn)
    score = score_fn if score_fn is not None else ScoreOfVelocity(problem, velocity_fn)

    def exact(t: float, count: int, k) -> Array:
        return _exact_samples(problem, jnp.asarray(t), count, k)

    x_ode = generate_pf_ode_samples(
        problem,
        velocity,
        exact(t_start, n, ode_start_key),
        t_start=t_start,
        t_end=t_end,
        rtol=config.ode_rtol,
        atol=config.ode_atol,
        block_size=config.block_size,
        max_steps=config.ode_max_steps,
    )
    x_sde = generate_reverse_sde_samples(
        problem,
        score,
        exact(t_start, n, sde_start_key),
        key=sde_noise_key,
        scheme=config.sde_scheme,
        n_steps=config.sde_steps,
        t_start=t_start,
        t_end=t_end,
        block_size=config.block_size,
    )
    ref_ode = exact(t_end, n, ode_reference_key)
    ref_sde = exact(t_end, n, sde_reference_key)
    if config.bandwidth is None:
        # n points (one compilation with the reference sets), of which 1000 are used.
        pool = exact(t_end, n, bandwidth_key)
        bandwidth = median_bandwidth(pool[: n // 2], pool[n // 2 :], max_points=1000)
    else:
        bandwidth = float(config.bandwidth)

    ode_note, sde_note = _nonfinite_note(x_ode, "PF-ODE"), _nonfinite_note(x_sde, "reverse-SDE")
    both_note = "; ".join(note for note in (ode_note, sde_note) if note)
    kw = {"allow_float32": allow_float32}
    K = config.num_projections
    estimates = {
        "ode_mmd2": _with_note(mmd2_block(x_ode, ref_ode, bandwidth=bandwidth, **kw), ode_note),
        "sde_mmd2": _with_note(mmd2_block(x_sde, ref_sde, bandwidth=bandwidth, **kw), sde_note),
        "ode_sde_mmd2": _with_note(mmd2_block(x_ode, x_sde, bandwidth=bandwidth, **kw), both_note),
        "ode_energy": _with_note(energy_distance_linear(x_ode, ref_ode, **kw), ode_note),
        "sde_energy": _with_note(energy_distance_linear(x_sde, ref_sde, **kw), sde_note),
        "ode_sde_energy": _with_note(energy_distance_linear(x_ode, x_sde, **kw), both_note),
        "ode_sliced_w2": _with_note(
            sliced_w2(x_ode, ref_ode, num_projections=K, key=ode_projection_key, **kw), ode_note
        ),
        "sde_sliced_w2": _with_note(
            sliced_w2(x_sde, ref_sde, num_projections=K, key=sde_projection_key, **kw), sde_note
        ),
    }
    parameters = {
        "config": config.parameters(),
        "t_start": t_start,
        "t_end": t_end,
        "ode": {
            "scheme": "probability-flow-ode",
            "solver": "tsit5",
            "controller": "pid",
            "rtol": config.ode_rtol,
            "atol": config.ode_atol,
            "max_steps": config.ode_max_steps,
            "dtmin_relative": ODE_DTMIN_RELATIVE,
            "velocity": "velocity_fn" if velocity_fn is not None else "f - g^2 score_fn / 2",
        },
        "sde": {
            **reverse_sde_sampler(config.sde_scheme, config.sde_steps).parameters(),
            "score": "score_fn" if score_fn is not None else "2 (f - velocity_fn) / g^2",
        },
        "score_derived_from_velocity": score_fn is None,
        "velocity_derived_from_score": velocity_fn is None,
        "reference": "independent exact p(t_min) samples per comparison",
        "bandwidth": bandwidth,
        "mmd_block_size": block_size_for(n),
        "bandwidth_source": "config" if config.bandwidth is not None else "median-heuristic",
        "kernel": "gaussian exp(-|a-b|^2 / (2 bandwidth^2))",
        "formulas": {
            "mmd2": FORMULA_MMD_BLOCK,
            "energy": FORMULA_ENERGY,
            "sliced_w2": FORMULA_SLICED_W2,
        },
    }
    return SampleGapResult(estimates=estimates, bandwidth=bandwidth, parameters=parameters)
