r"""Grid metrics of PDE states: relative errors, Fourier bands, invariant drift, growth rate.

States live on the uniform periodic grid x_j = jL/n of a field problem, shape
``(n,)*d + (C,)`` (channels last; :mod:`solvers._field_problem`). Every metric here is a
deterministic function of the grid values (NumPy, float64), so the certificate records it
with zero standard error.

Quadrature. The periodic trapezoidal rule with weights (L/n)^d integrates trigonometric
polynomials of degree < n exactly (Trefethen [1]_, ch. 12); the weights are uniform, so they
cancel in every ratio below and are not applied.

* relative L2 error (formula ``grid-relative-l2``)

  .. math:: e_2 = \frac{\bigl(\sum_{j,c} |q_{jc} - q^*_{jc}|^2\bigr)^{1/2}}
                       {\bigl(\sum_{j,c} |q^*_{jc}|^2\bigr)^{1/2} + \epsilon};

* relative L∞ error (``grid-relative-linf``): max |q − q*| / (max |q*| + ε);
* band errors (``grid-band-relative-l2``): with ê = DFT of e = q − q* over the spatial axes
  and integer wave vectors k (``numpy.fft.fftfreq(n) · n``), k_max = ⌊n/2⌋,

  .. math:: e_b = \frac{\bigl(\sum_{k \in B_b} \sum_c |\hat e_{kc}|^2\bigr)^{1/2}}
                       {\bigl(n^d \sum_{j,c} |q^*_{jc}|^2\bigr)^{1/2} + \epsilon},
     \qquad B_{\rm low} = \{|k| \le f_1 k_{\max}\},\ B_{\rm mid} = \{f_1 k_{\max} < |k|
     \le f_2 k_{\max}\},\ B_{\rm high} = \text{the rest},

  |k| Euclidean, (f₁, f₂) = (1/6, 1/3) by default; by Parseval Σ_b e_b² = e_2² (ε = 0);
* spectral gradient ∂_a q = F⁻¹[i ω_a F q], ω = 2πk/L, the Nyquist mode of an even n set to 0
  (its derivative is not a real trigonometric polynomial);
* growth rate (``log-error-growth-lsq``): the least-squares slope γ of log e_2(t) against t
  over the times where e_2 > 0 (e ∝ e^{γt}); at least two such times.

References
----------
.. [1] L. N. Trefethen, "Spectral Methods in MATLAB", SIAM (2000).
.. [2] L. N. Trefethen, J. A. C. Weideman, "The exponentially convergent trapezoidal rule",
   SIAM Review 56 (2014) 385–458.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BAND_NAMES: tuple[str, ...] = ("low", "mid", "high")
DEFAULT_BAND_EDGES: tuple[float, float] = (1 / 6, 1 / 3)
"""(f₁, f₂): band edges as fractions of the grid's Nyquist wave number k_max = ⌊n/2⌋."""


def _spatial_axes(state: np.ndarray) -> tuple[int, ...]:
    """Spatial axes of one grid state ``(n,)*d + (C,)``."""
    return tuple(range(state.ndim - 1))


def wave_vectors(n: int, dim: int) -> np.ndarray:
    """Integer wave vectors of the DFT of an ``(n,)*d`` grid, shape ``(n,)*d + (d,)``."""
    k = np.fft.fftfreq(n) * n
    return np.stack(np.meshgrid(*([k] * dim), indexing="ij"), axis=-1)


def band_masks(n: int, dim: int, edges: Sequence[float] = DEFAULT_BAND_EDGES) -> np.ndarray:
    """Boolean masks of the low, mid and high bands, shape ``(3,) + (n,)*d`` (a partition)."""
    f1, f2 = edges
    if not 0 < f1 < f2:
        raise ValueError(f"band edges must satisfy 0 < f1 < f2, got {tuple(edges)}")
    k_max = n // 2
    norm = np.sqrt(np.sum(wave_vectors(n, dim) ** 2, axis=-1))
    low = norm <= f1 * k_max
    mid = (norm > f1 * k_max) & (norm <= f2 * k_max)
    return np.stack([low, mid, ~(low | mid)])


@dataclass(frozen=True)
class GridErrors:
    """Errors of one grid state against the reference (module docstring).

    Attributes
    ----------
    relative_l2, relative_linf : float
        e₂ and the relative L∞ error.
    bands : tuple of float
        (e_low, e_mid, e_high).
    reference_rms : float
        RMS of the reference over grid points and components (the normaliser's scale).
    reason : str
        Why the values are NaN, if they are.
    """

    relative_l2: float
    relative_linf: float
    bands: tuple[float, float, float]
    reference_rms: float
    reason: str = ""


def nonfinite_reason(what: str, values: np.ndarray) -> str:
    """Empty if every value is finite, else how many are not (NaN is never dropped)."""
    bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
    return f"{what} has {bad} non-finite values (NaN or inf)" if bad else ""


def grid_errors(
    state: np.ndarray,
    reference: np.ndarray,
    *,
    edges: Sequence[float] = DEFAULT_BAND_EDGES,
    eps: float = 0.0,
) -> GridErrors:
    """Relative L2, L∞ and band errors of ``state`` against ``reference`` (same shape)."""
    q = np.asarray(state, dtype=np.float64)
    ref = np.asarray(reference, dtype=np.float64)
    if q.shape != ref.shape:
        raise ValueError(f"state shape {q.shape} differs from the reference's {ref.shape}")
    reason = nonfinite_reason("model state", q)
    ref_norm = math.sqrt(float(np.sum(ref * ref)))
    rms = ref_norm / math.sqrt(ref.size)
    if reason:
        return GridErrors(math.nan, math.nan, (math.nan,) * 3, rms, reason)
    if ref_norm + eps == 0:
        reason = "the reference state is 0 and eps = 0: relative errors undefined"
        return GridErrors(math.nan, math.nan, (math.nan,) * 3, rms, reason)
    error = q - ref
    axes = _spatial_axes(q)
    dim, n = len(axes), q.shape[0]
    spectrum = np.sum(np.abs(np.fft.fftn(error, axes=axes)) ** 2, axis=-1)
    masks = band_masks(n, dim, edges)
    # Parseval: sum_k |ê_k|² = n^d sum_j |e_j|²
    scale = math.sqrt(n**dim) * ref_norm + eps
    bands = tuple(math.sqrt(float(np.sum(spectrum[m]))) / scale for m in masks)
    ref_max = float(np.max(np.abs(ref)))
    return GridErrors(
        relative_l2=math.sqrt(float(np.sum(error * error))) / (ref_norm + eps),
        relative_linf=float(np.max(np.abs(error))) / (ref_max + eps),
        bands=bands,  # type: ignore[arg-type]
        reference_rms=rms,
    )


def spectral_gradient(state: np.ndarray, length: float) -> np.ndarray:
    """∇q of a grid state by FFT, shape ``(n,)*d + (C, d)`` (module docstring)."""
    q = np.asarray(state, dtype=np.float64)
    axes = _spatial_axes(q)
    n = q.shape[0]
    k = np.fft.fftfreq(n) * n
    if n % 2 == 0:
        k[n // 2] = 0.0
    omega = 2 * np.pi * k / length
    hat = np.fft.fftn(q, axes=axes)
    parts = []
    for a in axes:
        shape = [1] * q.ndim
        shape[a] = n
        parts.append(np.real(np.fft.ifftn(1j * omega.reshape(shape) * hat, axes=axes)))
    return np.stack(parts, axis=-1)


def rms(values: np.ndarray) -> float:
    """Root mean square over every entry."""
    values = np.asarray(values, dtype=np.float64)
    return math.sqrt(float(np.mean(values * values)))


def growth_rate(times: Sequence[float], errors: Sequence[float]) -> tuple[float, int, str]:
    """(γ, number of points, reason): least-squares slope of log e against t.

    Times with e = 0 are skipped (log undefined); γ = 0 when every error is 0 (nothing
    grows); NaN with a reason when an error is not finite or fewer than two remain.
    """
    t = np.asarray(times, dtype=np.float64)
    e = np.asarray(errors, dtype=np.float64)
    reason = nonfinite_reason("the error series", e)
    if reason:
        return math.nan, int(e.size), reason
    keep = e > 0
    if not keep.any():
        return 0.0, 0, "every error is 0"
    if keep.sum() < 2:
        return math.nan, int(keep.sum()), "fewer than two times with a non-zero error"
    slope = np.polyfit(t[keep], np.log(e[keep]), 1)[0]
    return float(slope), int(keep.sum()), ""
