r"""Fourier pseudo-spectral operators on the periodic box [0, L)^d.

A real *scalar field* is an array u of shape ``(n,)*d`` holding u(x_j) at the uniform
periodic grid x_j = j L/n (j ∈ {0, …, n−1}^d, :func:`periodic_grid`); d = ``u.ndim``.
Multi-component states (channels last) are handled one component at a time (index the
channel, or ``jax.vmap`` with ``in_axes=-1, out_axes=-1``). With the discrete Fourier
transform û_m = Σ_j u_j e^{−i k_m·x_j} and wavenumbers k_m = 2π m / L, m ∈ {−n/2, …, n/2−1}:

* derivatives act as multipliers, ∂^p_{x_a} ↔ (i k_a)^p; for odd p the Nyquist mode
  m_a = −n/2 (even n) is set to zero, so that the derivative of a real field is real and
  D_a is skew-symmetric (Trefethen 2000, ch. 3);
* the Laplacian is −|k|² (Nyquist kept: it is real and symmetric);
* the 2/3 rule keeps modes with 3|m_a| < n in every direction: the product of two fields
  supported there has all its aliases k₁ + k₂ ∓ n outside the kept set, so a masked product is
  the exact Galerkin truncation of the quadratic term (Orszag 1971);
* :func:`spectral_interpolate` evaluates the trigonometric interpolant of grid values at
  the points of another grid (zero padding, subsampling, or the periodic-sinc matrix): exact
  for fields band-limited to the source grid, spectrally accurate for smooth ones;
* the discrete L² inner product is the trapezoid rule ⟨u, v⟩ = (L/n)^d Σ_j u_j v_j, exact for
  trigonometric polynomials of degree < n (in each direction, for the product u v).

All functions are jitted (the period L and integer sizes are static arguments, so pass
Python numbers), differentiable, and act on one field; batch with ``jax.vmap``.

References
----------
.. [1] L. N. Trefethen, "Spectral Methods in MATLAB", SIAM (2000), ch. 3.
.. [2] S. A. Orszag, "On the elimination of aliasing in finite-difference schemes by
   filtering high-wavenumber components", J. Atmos. Sci. 28 (1971) 1074.
.. [3] C. Canuto, M. Y. Hussaini, A. Quarteroni, T. A. Zang, "Spectral Methods:
   Fundamentals in Single Domains", Springer (2006), §2.1–2.2.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Complex, Float, Int


def _check_field(u: Array, name: str = "u") -> Array:
    u = jnp.asarray(u)
    if u.ndim == 0 or len(set(u.shape)) != 1:
        raise ValueError(
            f"{name} must be a scalar field of shape (n,)*d, got {u.shape}; spectral functions "
            "act on one field component, batch components and samples with jax.vmap"
        )
    return u


def periodic_grid(n: int, length: float, dim: int) -> Float[Array, "*grid d"]:
    """The grid x_j = j L / n, j ∈ {0, …, n−1}^d, shape ``(n,)*d + (d,)`` (``ij`` indexing)."""
    axis = jnp.arange(n) * (length / n)
    return jnp.stack(jnp.meshgrid(*([axis] * dim), indexing="ij"), axis=-1)


def wavenumbers(n: int, length: float) -> Float[Array, " n"]:
    """k_m = 2π m / L in FFT order, m = 0, 1, …, ⌈n/2⌉−1, −⌊n/2⌋, …, −1."""
    return jnp.asarray(np.fft.fftfreq(n, 1.0 / n) * (2 * math.pi / length))


def _rfft_axes(d: int) -> tuple[int, ...]:
    return tuple(range(d))


def _wavevector(n: int, length: float, d: int, *, odd: bool) -> list[np.ndarray]:
    """k_a for a = 0, …, d−1 broadcastable to the ``rfftn`` shape (n,)*(d−1) + (n//2+1,).

    With ``odd`` the Nyquist mode is zeroed (odd-order derivatives of real fields)."""
    index = np.fft.fftfreq(n, 1.0 / n)
    last = np.fft.rfftfreq(n, 1.0 / n)
    if odd and n % 2 == 0:
        index = np.where(index == -n // 2, 0.0, index)
        last = np.where(last == n // 2, 0.0, last)
    scale = 2 * math.pi / length
    out = []
    for a in range(d):
        k = (last if a == d - 1 else index) * scale
        shape = [1] * d
        shape[a] = k.size
        out.append(k.reshape(shape))
    return out


def rfft(u: Float[Array, "*grid"]) -> Complex[Array, "*modes"]:
    """û = ``rfftn(u)`` over all d axes, shape (n,)*(d−1) + (n//2+1,)."""
    u = _check_field(u)
    return jnp.fft.rfftn(u, axes=_rfft_axes(u.ndim))


def irfft(u_hat: Complex[Array, "*modes"], n: int) -> Float[Array, "*grid"]:
    """Inverse of :func:`rfft` onto the grid with n points per direction."""
    d = u_hat.ndim
    return jnp.fft.irfftn(u_hat, s=(n,) * d, axes=_rfft_axes(d))


def wavevector_multiplier(
    n: int, length: float, d: int, orders: tuple[int, ...]
) -> Complex[Array, "*modes"]:
    """The multiplier Π_a (i k_a)^{p_a} of ∂^{p}/∂x^{p} on the ``rfftn`` modes."""
    if len(orders) != d or any(int(p) != p or p < 0 for p in orders):
        raise ValueError(f"orders must be {d} non-negative integers, got {orders}")
    total = sum(orders)
    ks = _wavevector(n, length, d, odd=total % 2 == 1)
    mult = np.ones((n,) * (d - 1) + (n // 2 + 1,), dtype=complex)
    for k, p in zip(ks, orders, strict=True):
        mult = mult * (1j * k) ** p
    return jnp.asarray(mult)


@functools.partial(jax.jit, static_argnames=("length", "axis", "order"))
def spectral_derivative(
    u: Float[Array, "*grid"], length: float, *, axis: int = 0, order: int = 1
) -> Float[Array, "*grid"]:
    r"""∂^p u / ∂x_a^p by the Fourier multiplier (i k_a)^p (Nyquist zeroed for odd p).

    Parameters
    ----------
    u : array (n,)*d
        Values on :func:`periodic_grid`.
    length : float
        Period L.
    axis : int, default 0
        Direction a.
    order : int, default 1
        p ≥ 0.
    """
    u = _check_field(u)
    d, n = u.ndim, u.shape[0]
    if not 0 <= axis < d:
        raise ValueError(f"axis must be in [0, {d}), got {axis}")
    orders = tuple(order if a == axis else 0 for a in range(d))
    return irfft(wavevector_multiplier(n, length, d, orders) * rfft(u), n)


@functools.partial(jax.jit, static_argnames=("length",))
def spectral_gradient(u: Float[Array, "*grid"], length: float) -> Float[Array, "*grid d"]:
    """∇u, shape ``(n,)*d + (d,)`` (channels last)."""
    u = _check_field(u)
    return jnp.stack([spectral_derivative(u, length, axis=a) for a in range(u.ndim)], axis=-1)


def laplacian_symbol(n: int, length: float, d: int) -> Float[Array, "*modes"]:
    """−|k|² on the ``rfftn`` modes (Nyquist kept)."""
    return jnp.asarray(_laplacian_symbol(n, length, d))


def _laplacian_symbol(n: int, length: float, d: int) -> np.ndarray:
    return -sum(k**2 for k in _wavevector(n, length, d, odd=False))


def inverse_laplacian_symbol(n: int, length: float, d: int) -> Float[Array, "*modes"]:
    """−1/|k|² on the ``rfftn`` modes, 0 at k = 0 (the zero-mean inverse of Δ)."""
    sym = _laplacian_symbol(n, length, d)
    return jnp.asarray(np.where(sym == 0, 0.0, 1.0 / np.where(sym == 0, 1.0, sym)))


@functools.partial(jax.jit, static_argnames=("length",))
def spectral_laplacian(u: Float[Array, "*grid"], length: float) -> Float[Array, "*grid"]:
    """Δu by the multiplier −|k|²."""
    u = _check_field(u)
    n = u.shape[0]
    return irfft(laplacian_symbol(n, length, u.ndim) * rfft(u), n)


@functools.partial(jax.jit, static_argnames=("length",))
def inverse_laplacian(f: Float[Array, "*grid"], length: float) -> Float[Array, "*grid"]:
    """The zero-mean ψ with Δψ = f − mean(f) (multiplier −1/|k|², 0 at k = 0)."""
    f = _check_field(f, "f")
    n = f.shape[0]
    return irfft(inverse_laplacian_symbol(n, length, f.ndim) * rfft(f), n)


def dealias_mask(n: int, d: int) -> Bool[Array, "*modes"]:
    """2/3 rule on the ``rfftn`` modes: True where 3|m_a| < n for every direction a."""
    index = np.abs(np.fft.fftfreq(n, 1.0 / n))
    last = np.fft.rfftfreq(n, 1.0 / n)
    mask = np.ones((n,) * (d - 1) + (n // 2 + 1,), dtype=bool)
    for a in range(d):
        m = last if a == d - 1 else index
        shape = [1] * d
        shape[a] = m.size
        mask = mask & (3 * m.reshape(shape) < n)
    return jnp.asarray(mask)


@jax.jit
def dealias(u: Float[Array, "*grid"]) -> Float[Array, "*grid"]:
    """u with the modes outside the 2/3-rule set removed (:func:`dealias_mask`)."""
    u = _check_field(u)
    n = u.shape[0]
    return irfft(dealias_mask(n, u.ndim) * rfft(u), n)


def _periodic_sinc(theta: np.ndarray, n: int) -> np.ndarray:
    """The cardinal function of the n-point trigonometric interpolant at angle θ = κ(x − y_l).

    S(θ) = sin(nθ/2) / (n tan(θ/2)) for even n (Nyquist as the symmetric cos term),
    sin(nθ/2) / (n sin(θ/2)) for odd n, and S(0) = 1 (Trefethen 2000, ch. 3)."""
    half = theta / 2
    at_node = np.isclose(np.sin(half), 0.0, rtol=0.0, atol=1e-14)
    safe = np.where(at_node, 1.0, half)
    if n % 2 == 0:
        value = np.sin(n * safe) / (n * np.tan(safe))
    else:
        value = np.sin(n * safe) / (n * np.sin(safe))
    return np.where(at_node, 1.0, value)


def _resample_axis(u: Array, m: int, axis: int) -> Array:
    """Values of the trigonometric interpolant along one axis at the m-point grid.

    m > n: zero padding of the coefficients c_k = û_k/n (an even-n Nyquist coefficient split
    equally between ±n/2, the real interpolant's cos term); m | n: subsampling (the coarse
    points are fine points); otherwise the (m, n) matrix of the periodic sinc."""
    n = u.shape[axis]
    if m == n:
        return u
    if m < n and n % m == 0:
        return jnp.take(u, jnp.arange(0, n, n // m), axis=axis)
    if m < n:
        x = np.arange(m) / m
        y = np.arange(n) / n
        matrix = jnp.asarray(_periodic_sinc(2 * math.pi * (x[:, None] - y[None, :]), n))
        return jnp.moveaxis(jnp.tensordot(matrix, u, axes=([1], [axis])), 0, axis)
    c = jnp.moveaxis(jnp.fft.fft(u, axis=axis), axis, 0) / n
    tail = c.shape[1:]
    k = n // 2
    if n % 2 == 0:
        parts = [c[:k], c[k : k + 1] / 2, jnp.zeros((m - n - 1, *tail), c.dtype)]
        parts += [c[k : k + 1] / 2, c[k + 1 :]]
    else:
        parts = [c[: k + 1], jnp.zeros((m - n, *tail), c.dtype), c[k + 1 :]]
    new = jnp.concatenate(parts, axis=0)
    return jnp.moveaxis(jnp.fft.ifft(new * m, axis=0).real, 0, axis)


@functools.partial(jax.jit, static_argnames=("m",))
def spectral_interpolate(u: Float[Array, "*grid"], m: int) -> Float[Array, "*grid_m"]:
    r"""Point values on the m-point grid of the trigonometric interpolant of u (n points).

    The interpolant is the degree-n/2 trigonometric polynomial through the values (an even-n
    Nyquist mode as its symmetric cos term). m > n: zero padding (FFT); m | n: subsampling;
    other m < n: the periodic-sinc matrix. Exact for fields band-limited to |k| < n/2, and
    spectrally accurate for smooth ones. Interpolating to a finer grid and back returns u.
    Values (not the L² projection onto the coarse modes) are what a reference on grid(m)
    must be: the exact solution sampled at the grid points.
    """
    u = _check_field(u)
    if int(m) != m or m < 1:
        raise ValueError(f"m must be a positive integer, got {m}")
    for axis in range(u.ndim):
        u = _resample_axis(u, int(m), axis)
    return u


def cell_volume(n: int, length: float, d: int) -> float:
    """Quadrature weight (L/n)^d of the trapezoid rule on :func:`periodic_grid`."""
    return (length / n) ** d


@functools.partial(jax.jit, static_argnames=("length",))
def l2_inner(u: Float[Array, "*grid"], v: Float[Array, "*grid"], length: float) -> Float[Array, ""]:
    """⟨u, v⟩ = (L/n)^d Σ_j u_j v_j (trapezoid rule; spectrally accurate for smooth fields)."""
    u, v = _check_field(u), _check_field(v, "v")
    if u.shape != v.shape:
        raise ValueError(f"u and v must have the same shape, got {u.shape} and {v.shape}")
    return cell_volume(u.shape[0], length, u.ndim) * jnp.sum(u * v)


@functools.partial(jax.jit, static_argnames=("length",))
def l2_norm(u: Float[Array, "*grid"], length: float) -> Float[Array, ""]:
    """‖u‖ = ⟨u, u⟩^{1/2}."""
    return jnp.sqrt(l2_inner(u, u, length))


@jax.jit
def relative_l2_error(u: Array, reference: Array) -> Float[Array, ""]:
    """‖u − u_ref‖ / ‖u_ref‖ on the same grid (the quadrature weight cancels; any shape)."""
    u, reference = jnp.asarray(u), jnp.asarray(reference)
    if u.shape != reference.shape:
        raise ValueError(f"shapes differ: {u.shape} and {reference.shape}")
    return jnp.sqrt(jnp.sum((u - reference) ** 2) / jnp.sum(reference**2))


class FourierSeries(eqx.Module):
    r"""A real trigonometric polynomial on [0, L)^d, pointwise and on grids.

    .. math::

        u(x) = \sum_{j=1}^{M} a_j \cos(\kappa\, m_j\cdot x) + b_j \sin(\kappa\, m_j\cdot x),
        \qquad \kappa = 2\pi/L,\ m_j \in \mathbb{Z}^d.

    Used for initial data given by Fourier coefficients or on a grid (:meth:`from_grid`, the
    trigonometric interpolant of grid values, exact at the grid points).

    Attributes
    ----------
    length : float
        Period L.
    wavevectors : int array (M, d)
        m_j (integer wavevectors).
    cos_coeffs, sin_coeffs : arrays (M,)
        a_j, b_j.
    """

    length: float = eqx.field(static=True)
    wavevectors: Int[Array, "M d"]
    cos_coeffs: Float[Array, " M"]
    sin_coeffs: Float[Array, " M"]

    def __check_init__(self) -> None:
        m = self.wavevectors
        if (
            m.ndim != 2
            or self.cos_coeffs.shape != (m.shape[0],)
            or self.sin_coeffs.shape != (m.shape[0],)
        ):
            raise ValueError(
                f"need wavevectors (M, d) and coefficients (M,), got {m.shape}, "
                f"{self.cos_coeffs.shape}, {self.sin_coeffs.shape}"
            )

    @property
    def dim(self) -> int:
        """d."""
        return self.wavevectors.shape[1]

    def __call__(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        """u(x) at one point (batch with ``jax.vmap``)."""
        x = jnp.asarray(x)
        if x.shape != (self.dim,):
            raise ValueError(
                f"x must have shape ({self.dim},), got {x.shape}; batch points with jax.vmap"
            )
        phase = (2 * math.pi / self.length) * (self.wavevectors @ x)
        return jnp.sum(self.cos_coeffs * jnp.cos(phase) + self.sin_coeffs * jnp.sin(phase))

    @eqx.filter_jit
    def on_grid(self, n: int) -> Float[Array, "*grid"]:
        """u on :func:`periodic_grid` (n,)*d."""
        x = periodic_grid(n, self.length, self.dim).reshape(-1, self.dim)
        return jax.vmap(self)(x).reshape((n,) * self.dim)

    def max_wavenumber(self) -> int:
        """max_j max_a |m_{j,a}| over modes with a nonzero coefficient (0 if none)."""
        m = np.abs(np.asarray(self.wavevectors))
        live = (np.asarray(self.cos_coeffs) != 0) | (np.asarray(self.sin_coeffs) != 0)
        return int(m[live].max()) if live.any() else 0

    def mean(self) -> Float[Array, ""]:
        """(1/L^d)∫u = the sum of a_j over m_j = 0."""
        zero = jnp.all(self.wavevectors == 0, axis=1)
        return jnp.sum(jnp.where(zero, self.cos_coeffs, 0.0))

    @classmethod
    def from_coefficients(
        cls,
        length: float,
        wavevectors: Sequence[Sequence[int]] | Sequence[int],
        cos_coeffs: Sequence[float],
        sin_coeffs: Sequence[float],
        *,
        dim: int,
    ) -> FourierSeries:
        """Σ_j a_j cos(2π m_j·x/L) + b_j sin(2π m_j·x/L) from plain sequences (m_j in Z^dim)."""
        return cls(
            length=float(length),
            wavevectors=jnp.asarray(np.asarray(wavevectors, dtype=int).reshape(-1, dim)),
            cos_coeffs=jnp.asarray(np.asarray(cos_coeffs, dtype=float)),
            sin_coeffs=jnp.asarray(np.asarray(sin_coeffs, dtype=float)),
        )

    @classmethod
    def from_grid(cls, values: Float[Array, "*grid"], length: float) -> FourierSeries:
        """The trigonometric interpolant of grid values on :func:`periodic_grid`.

        With c_m = û_m / n^d (``rfftn``), u = Σ_m w_m Re(c_m e^{iκ m·x}), w_m = 1 on the
        self-conjugate planes m_d ∈ {0, n/2} (all of their modes are stored) and 2 otherwise.
        Exact at the grid points. Off the grid it equals :func:`spectral_interpolate` except
        for Nyquist modes m_a = −n/2 of the leading axes (even n), kept as one-sided
        exponentials rather than split symmetrically — immaterial for resolved data.
        """
        values = _check_field(np.asarray(values), "values")
        d, n = values.ndim, values.shape[0]
        c = np.fft.rfftn(np.asarray(values, dtype=float), axes=tuple(range(d))) / n**d
        index = np.fft.fftfreq(n, 1.0 / n).astype(int)
        last = np.fft.rfftfreq(n, 1.0 / n).astype(int)
        axes = [last if a == d - 1 else index for a in range(d)]
        grids = np.meshgrid(*axes, indexing="ij")
        m = np.stack([g.ravel() for g in grids], axis=1)
        weight = np.where((m[:, -1] == 0) | (2 * m[:, -1] == n), 1.0, 2.0)
        flat = c.ravel()
        return cls(
            length=float(length),
            wavevectors=jnp.asarray(m),
            cos_coeffs=jnp.asarray(weight * flat.real),
            sin_coeffs=jnp.asarray(-weight * flat.imag),
        )
