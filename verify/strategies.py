"""Hypothesis strategies for valid reference problems, certification times and fields.

For property tests of learned solvers and of estimators: every drawn problem passes its
constructor's validation, has finite Fisher information at every time of its window, and
shrinks towards a simple one (one component, small parameters, identity rotations).
Needs Hypothesis, which is not a runtime dependency: ``pip install solvercert[test]``.

Every float is bounded (``allow_nan=False, allow_infinity=False`` and an explicit range).
Shapes are fixed per strategy call — d is an argument, never drawn — so that jitted
functions are not recompiled for new shapes; only the number of mixture components varies
(1 to ``max_components``, at most that many shapes). Problem ids and time windows are
fixed per SDE kind and dimension. Problems are built through the public constructors
(:func:`solvers.linear_sde_gmm_from_mapping`, :class:`solvers.LandauBKWProblem`), so a
drawn problem is exactly what a problem file could describe.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from solvers import AbstractProblem, LandauBKWProblem, LinearSDEGMMProblem
from solvers import linear_sde_gmm_from_mapping as _from_mapping

SDE_KINDS = ("vp", "ve", "ou")

EIGENVALUE_RANGE = (0.1, 2.0)
"""Eigenvalues of each covariance: condition number ≤ 20."""
MEAN_RANGE = (-3.0, 3.0)
"""Each coordinate of each mean."""
WEIGHT_RATIO_RANGE = (1.0, 10.0)
"""Unnormalised weights; after normalising every π_k ≥ 1 / (1 + 10 (K − 1))."""

SDE_PARAMETER_RANGES: dict[str, dict[str, tuple[float, float]]] = {
    "ou": {"rate": (0.2, 2.0), "diffusion": (0.2, 2.0)},
    # beta_max = beta_min + beta_span; sigma_max = sigma_min * sigma_ratio
    "vp": {"beta_min": (0.01, 1.0), "beta_span": (1.0, 20.0)},
    "ve": {"sigma_min": (0.01, 0.5), "sigma_ratio": (2.0, 100.0)},
}
SDE_WINDOWS = {"vp": (1e-3, 1.0), "ve": (1e-3, 1.0), "ou": (1e-3, 5.0)}
"""(t_min, t_max) per SDE kind: the windows of the built-in problems."""

BKW_B_RANGE = (1 / 32, 1 / 4)
BKW_C_RANGE = (0.0, 1.0)
BKW_K_MARGIN = 0.05
"""K(t_min) ≥ d/(d+2) + margin: at K = d/(d+2) the score is singular at v = 0."""
BKW_START_RANGE = (0.0, 1.0)
"""Extra delay of t_min after the earliest admissible start."""
BKW_LENGTH_RANGE = (1.0, 10.0)
BKW_TIME_FRACTIONS = (0.1, 0.5, 1.0)
"""Default times of a drawn BKW problem: these fractions of the window after t_min."""


def _floats(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


def sde_parameters(kind: str) -> st.SearchStrategy[dict[str, float]]:
    """Parameters of one SDE schedule, as the ``[sde]`` keys of a problem file.

    Parameters
    ----------
    kind : {"vp", "ve", "ou"}
        ``ou``: rate θ ∈ [0.2, 2], diffusion ∈ [0.2, 2]; ``vp``: β_min ∈ [0.01, 1],
        β_max − β_min ∈ [1, 20]; ``ve``: σ_min ∈ [0.01, 0.5], σ_max/σ_min ∈ [2, 100].
    """
    if kind not in SDE_PARAMETER_RANGES:
        raise ValueError(f"kind must be one of {SDE_KINDS}, got {kind!r}")
    ranges = SDE_PARAMETER_RANGES[kind]
    draws = st.fixed_dictionaries({key: _floats(*bounds) for key, bounds in ranges.items()})
    if kind == "vp":
        return draws.map(
            lambda p: {"beta_min": p["beta_min"], "beta_max": p["beta_min"] + p["beta_span"]}
        )
    if kind == "ve":
        return draws.map(
            lambda p: {"sigma_min": p["sigma_min"], "sigma_max": p["sigma_min"] * p["sigma_ratio"]}
        )
    return draws


def _rotation(angles: list[float], dim: int) -> np.ndarray:
    """Product of Givens rotations, one per coordinate pair (the identity at angle 0)."""
    u = np.eye(dim)
    pairs = [(i, j) for i in range(dim) for j in range(i + 1, dim)]
    for (i, j), angle in zip(pairs, angles, strict=True):
        g = np.eye(dim)
        c, s = math.cos(angle), math.sin(angle)
        g[i, i], g[i, j], g[j, i], g[j, j] = c, -s, s, c
        u = g @ u
    return u


@st.composite
def _covariances(draw: st.DrawFn, dim: int) -> list[list[float]]:
    """Σ = U diag(λ) Uᵀ with λ ∈ ``EIGENVALUE_RANGE``, U a product of Givens rotations."""
    eigenvalues = draw(st.lists(_floats(*EIGENVALUE_RANGE), min_size=dim, max_size=dim))
    n_pairs = dim * (dim - 1) // 2
    angles = draw(st.lists(_floats(0.0, math.pi), min_size=n_pairs, max_size=n_pairs))
    u = _rotation(angles, dim)
    cov = u @ np.diag(eigenvalues) @ u.T
    return (0.5 * (cov + cov.T)).tolist()


@st.composite
def gmm_problems(
    draw: st.DrawFn,
    dim: int = 2,
    max_components: int = 3,
    sde: tuple[str, ...] = SDE_KINDS,
) -> LinearSDEGMMProblem:
    """Gaussian-mixture data under a linear SDE (:class:`solvers.LinearSDEGMMProblem`).

    Parameters
    ----------
    dim : int, default 2
        d (fixed; the Fisher information uses quadrature for d ≤ 3).
    max_components : int, default 3
        K is drawn in [1, max_components] (shrinks to 1).
    sde : tuple of str, default ("vp", "ve", "ou")
        SDE kinds to draw from (shrinks to the first); parameters from
        :func:`sde_parameters`, window ``SDE_WINDOWS[kind]``, default times those of a
        problem file without ``times``.
    """
    sde = (sde,) if isinstance(sde, str) else tuple(sde)
    if dim < 1 or max_components < 1 or not sde or not set(sde) <= set(SDE_KINDS):
        raise ValueError(
            f"need dim >= 1, max_components >= 1 and SDE kinds among {SDE_KINDS}, got "
            f"dim={dim}, max_components={max_components}, sde={sde}"
        )
    kind = draw(st.sampled_from(sde))
    n = draw(st.integers(1, max_components))
    raw = draw(st.lists(_floats(*WEIGHT_RATIO_RANGE), min_size=n, max_size=n))
    weights = [w / math.fsum(raw) for w in raw]
    means = [draw(st.lists(_floats(*MEAN_RANGE), min_size=dim, max_size=dim)) for _ in range(n)]
    covariances = [draw(_covariances(dim)) for _ in range(n)]
    t_min, t_max = SDE_WINDOWS[kind]
    mapping = {
        "id": f"hypothesis-{kind}-gmm-{dim}d",
        "family": "linear-sde-gmm",
        "sde": {"kind": kind, **draw(sde_parameters(kind)), "t_min": t_min, "t_max": t_max},
        "data": {"weights": weights, "means": means, "covariances": covariances},
    }
    return _from_mapping(mapping, "verify.strategies.gmm_problems")


@st.composite
def bkw_problems(draw: st.DrawFn, dim: int = 2) -> LandauBKWProblem:
    """BKW solutions of the Landau equation (:class:`solvers.LandauBKWProblem`).

    B ∈ [1/32, 1/4], C ∈ [0, 1]; t_min is the earliest time with
    K(t) = 1 − C e^{−2B(d−1)t} ≥ d/(d+2) + ``BKW_K_MARGIN`` (0 when C is small enough),
    delayed by a draw from ``BKW_START_RANGE``; the window is ``BKW_LENGTH_RANGE`` long.

    Parameters
    ----------
    dim : int, default 2
        d ≥ 2 (fixed).
    """
    if dim < 2:
        raise ValueError(f"the BKW solution needs dim >= 2, got {dim}")
    b = draw(_floats(*BKW_B_RANGE))
    c = draw(_floats(*BKW_C_RANGE))
    rate = b * (dim - 1)
    k_star = dim / (dim + 2) + BKW_K_MARGIN
    earliest = max(0.0, math.log(c / (1.0 - k_star)) / (2.0 * rate)) if c > 0 else 0.0
    t_min = earliest + draw(_floats(*BKW_START_RANGE))
    length = draw(_floats(*BKW_LENGTH_RANGE))
    return LandauBKWProblem(
        problem_id=f"hypothesis-bkw-{dim}d",
        dim=dim,
        B=b,
        C_bkw=c,
        t_min=t_min,
        t_max=t_min + length,
        default_times=tuple(t_min + f * length for f in BKW_TIME_FRACTIONS),
    )


def certification_times(
    problem: AbstractProblem, max_size: int = 4
) -> st.SearchStrategy[tuple[float, ...]]:
    """Sorted, distinct times in ``[problem.t_min, problem.t_max]`` (1 to ``max_size``).

    Use with a drawn problem through ``flatmap`` or ``st.data()``::

        gmm_problems().flatmap(lambda p: st.tuples(st.just(p), certification_times(p)))
    """
    t_min, t_max = float(problem.t_min), float(problem.t_max)
    return st.lists(_floats(t_min, t_max), min_size=1, max_size=max_size, unique=True).map(
        lambda times: tuple(sorted(times))
    )


@st.composite
def periodic_initial_conditions(
    draw: st.DrawFn,
    n_points: int = 64,
    *,
    dim: int = 1,
    n_modes: int = 4,
    amplitude: float = 1.0,
    length: float = 2 * math.pi,
) -> np.ndarray:
    r"""Smooth periodic fields on a uniform grid, for the PDE problems (Burgers, heat, …).

    .. math::

        u(x) = c_0 + \sum_{1 \le |k|_\infty \le K} \frac{a_k \cos(2\pi k\cdot x/L)
               + b_k \sin(2\pi k\cdot x/L)}{(1 + |k|^2)}

    with K = ``n_modes``, coefficients drawn in [−``amplitude``, ``amplitude``] and the
    1/(1 + |k|²) decay (so u is smooth: only K modes, band-limited well below the grid's
    Nyquist mode when ``n_points`` > 2K). Returns a float64 array of shape
    ``(n_points,) * dim`` on the cell-vertex grid x_j = jL/n; the shape is fixed per call
    (no recompilation), and the draw shrinks to the constant field 0.
    """
    if dim not in (1, 2):
        raise ValueError(f"dim must be 1 or 2, got {dim}")
    if not 2 * n_modes < n_points:
        raise ValueError(f"need n_points > 2 n_modes for a resolved field, got {n_points}")
    modes = [k for k in np.ndindex(*(2 * n_modes + 1,) * dim)]
    waves = [np.asarray(k) - n_modes for k in modes]
    # one of each ±k pair (cos and sin already span it), the zero mode separately
    waves = [k for k in waves if tuple(k) > tuple(-k)]
    coefficient = _floats(-amplitude, amplitude)
    c0 = draw(coefficient)
    a = draw(st.lists(coefficient, min_size=len(waves), max_size=len(waves)))
    b = draw(st.lists(coefficient, min_size=len(waves), max_size=len(waves)))
    axes = np.meshgrid(*([np.arange(n_points) * length / n_points] * dim), indexing="ij")
    field = np.full((n_points,) * dim, c0, dtype=np.float64)
    for k, ak, bk in zip(waves, a, b, strict=True):
        phase = sum(2 * math.pi * kk * x / length for kk, x in zip(k, axes, strict=True))
        field += (ak * np.cos(phase) + bk * np.sin(phase)) / (1.0 + float(k @ k))
    return field


__all__ = [
    "SDE_KINDS",
    "bkw_problems",
    "certification_times",
    "gmm_problems",
    "periodic_initial_conditions",
    "sde_parameters",
]
