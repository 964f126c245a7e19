r"""The heat equation on the periodic box [0, L)^d with an exact Fourier solution.

.. math::

    \partial_t u = \kappa \Delta u,\qquad
    u(t, x) = c_0 + \sum_m e^{-\kappa |\omega_m|^2 t}
              \bigl(a_m \cos(\omega_m\cdot x) + b_m \sin(\omega_m\cdot x)\bigr),
    \quad \omega_m = 2\pi k_m / L,

for a few integer wave vectors k_m ≠ 0, one of each ±k pair (its first non-zero component
positive), so that the modes are L²-orthogonal. State = field = u (C = F = 1).

Exact laws (Parseval; cos² and sin² average to ½ over the box):

* mass M = ∫u dx = c₀ L^d, conserved;
* energy E(t) = ½∫u² dx = ½ L^d [c₀² + ½ Σ_m (a_m² + b_m²) e^{−2κ|ω_m|² t}].

On the grid x_j = jL/n the discrete invariants (L/n)^d Σ_j u_j and ½(L/n)^d Σ_j u_j² equal
these exactly (up to round-off) when every |k_m|_∞ < n/2: the periodic trapezoidal rule is
exact for trigonometric polynomials of degree < n, and u² has degree 2 max|k_m|_∞.

The grid right-hand side κΔu is spectral, κ·F⁻¹[−|ω|² F u], exact for such u. The reference
is the exact solution, so its error estimate is 0.

References
----------
.. [1] L. N. Trefethen, "Spectral Methods in MATLAB", SIAM (2000), ch. 3 (periodic grids,
   spectral differentiation) and ch. 12 (accuracy of the trapezoidal rule).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._field_problem import AbstractExactFieldProblem, FieldFn
from ._problem import ProblemError

_MODE_TOLERANCE = 1e-14
"""Fourier coefficients below this fraction of the largest are dropped by
:func:`heat_problem_from_grid`: the FFT's round-off (~1e-16 log₂ N relative) of a
band-limited field, which must not turn into spurious (e.g. Nyquist) modes."""


def _canonical(k: tuple[int, ...]) -> bool:
    """Whether k ≠ 0 has its first non-zero component positive (one of each ±k pair)."""
    for component in k:
        if component != 0:
            return component > 0
    return False


class HeatProblem(AbstractExactFieldProblem):
    r"""u_t = κΔu on [0, L)^d, periodic, from a finite Fourier series (module docstring).

    Build with :func:`heat_1d`, :func:`heat_2d` or :func:`heat_problem_from_grid`.

    Attributes
    ----------
    problem_id : str
        Registry id.
    dim : int
        Spatial dimension d ∈ {1, 2, 3}.
    kappa : float
        Diffusivity κ > 0.
    mean : float
        c₀, the mean of u (conserved).
    wave_vectors : tuple of tuple of int
        k_m: non-zero, distinct, one of each ±k pair (first non-zero component positive).
    cos_coefficients, sin_coefficients : tuple of float
        a_m, b_m at t = 0.
    t_min, t_max : float
        Time window (t_min ≥ 0).
    default_times : tuple of float
        Certification times inside the window.
    grid_size : int
        n of the reference grid; every |k_m|_∞ < n/2 (resolved, invariants exact).
    length : float
        Period L (default 2π).
    """

    problem_id: str = eqx.field(static=True)
    dim: int = eqx.field(static=True)
    kappa: float = eqx.field(static=True)
    mean: float = eqx.field(static=True)
    wave_vectors: tuple[tuple[int, ...], ...] = eqx.field(static=True)
    cos_coefficients: tuple[float, ...] = eqx.field(static=True)
    sin_coefficients: tuple[float, ...] = eqx.field(static=True)
    t_min: float = eqx.field(static=True)
    t_max: float = eqx.field(static=True)
    default_times: tuple[float, ...] = eqx.field(static=True)
    grid_size: int = eqx.field(static=True)
    # keyword-only: the parent declares them before grid_size, which has no default
    length: float = eqx.field(static=True, default=2 * math.pi, kw_only=True)
    n_components: int = eqx.field(static=True, default=1, kw_only=True)
    component_names: tuple[str, ...] = eqx.field(static=True, default=("u",), kw_only=True)
    field_components: int = eqx.field(static=True, default=1, kw_only=True)

    def __check_init__(self) -> None:
        name, d = self.problem_id, self.dim
        if d not in (1, 2, 3):
            raise ProblemError(f"{name}: dim must be 1, 2 or 3, got {d}")
        for label, value in (("kappa", self.kappa), ("length", self.length)):
            if not (math.isfinite(value) and value > 0):
                raise ProblemError(f"{name}: {label} must be positive and finite, got {value}")
        m = len(self.wave_vectors)
        if len(self.cos_coefficients) != m or len(self.sin_coefficients) != m:
            raise ProblemError(f"{name}: need one cos and one sin coefficient per wave vector")
        coefficients = (self.mean, *self.cos_coefficients, *self.sin_coefficients)
        if not all(math.isfinite(c) for c in coefficients):
            raise ProblemError(f"{name}: Fourier coefficients must be finite")
        for k in self.wave_vectors:
            if len(k) != d or not all(isinstance(c, int) for c in k) or not _canonical(k):
                raise ProblemError(
                    f"{name}: wave vector {k} must be {d} integers, non-zero, first non-zero "
                    "component positive (one of each ±k pair)"
                )
            if max(abs(c) for c in k) >= self.grid_size / 2:
                raise ProblemError(
                    f"{name}: wave vector {k} is not resolved by grid_size {self.grid_size} "
                    "(need |k|_inf < n/2)"
                )
        if len(set(self.wave_vectors)) != m:
            raise ProblemError(f"{name}: wave vectors must be distinct")
        if not 0.0 <= self.t_min < self.t_max:
            raise ProblemError(f"{name}: need 0 <= t_min < t_max, got {self.t_min}, {self.t_max}")
        bad = [t for t in self.default_times if not self.t_min <= t <= self.t_max]
        if not self.default_times or bad:
            raise ProblemError(
                f"{name}: default_times must be non-empty and inside "
                f"[{self.t_min}, {self.t_max}], got {self.default_times}"
            )

    # -- coefficients ----------------------------------------------------------------------

    def _omega(self) -> Array:
        """ω_m = 2π k_m / L, shape (M, d) (M ≥ 1: a zero mode keeps the shapes static)."""
        k = np.asarray(self.wave_vectors or [(0,) * self.dim], dtype=np.float64)
        return jnp.asarray(2 * np.pi * k.reshape(-1, self.dim) / self.length)

    def _amplitudes(self, t: Array) -> tuple[Array, Array, Array]:
        """(ω, a_m e^{−κ|ω|²t}, b_m e^{−κ|ω|²t})."""
        omega = self._omega()
        decay = jnp.exp(-self.kappa * jnp.sum(omega * omega, axis=-1) * jnp.asarray(t))
        a = jnp.asarray(self.cos_coefficients or (0.0,), dtype=decay.dtype)
        b = jnp.asarray(self.sin_coefficients or (0.0,), dtype=decay.dtype)
        return omega, a * decay, b * decay

    def parameters(self) -> dict[str, Any]:
        """JSON-serialisable parameters (``problem_json``)."""
        return {
            "id": self.problem_id,
            "equation": "heat",
            "pde": "u_t = kappa * laplacian(u), periodic",
            "dim": int(self.dim),
            "kappa": float(self.kappa),
            "length": float(self.length),
            "mean": float(self.mean),
            "modes": [
                {"k": list(k), "cos": float(a), "sin": float(b)}
                for k, a, b in zip(
                    self.wave_vectors, self.cos_coefficients, self.sin_coefficients, strict=True
                )
            ],
            "solution": "c0 + sum_m exp(-kappa |w_m|^2 t)(a_m cos(w_m.x) + b_m sin(w_m.x))",
            "grid_size": int(self.grid_size),
            "t_min": float(self.t_min),
            "t_max": float(self.t_max),
            "default_times": [float(t) for t in self.default_times],
        }

    # -- pointwise -------------------------------------------------------------------------

    def _check_x(self, x: Array) -> Array:
        x = jnp.asarray(x)
        if x.shape != (self.dim,):
            raise ValueError(
                f"x must have shape ({self.dim},), got {x.shape}; functions act on one point, "
                "batch with jax.vmap"
            )
        return x

    def exact_state(self, t: Float[Array, ""], x: Float[Array, " d"]) -> Float[Array, " C"]:
        """u(t, x) as a (1,) array."""
        x = self._check_x(x)
        omega, a, b = self._amplitudes(t)
        phase = omega @ x
        return jnp.reshape(self.mean + jnp.sum(a * jnp.cos(phase) + b * jnp.sin(phase)), (1,))

    def initial_state(self, x: Float[Array, " d"]) -> Float[Array, " C"]:
        """u(t_min, x)."""
        return self.exact_state(jnp.asarray(self.t_min), x)

    def state_from_field(
        self, field_fn: FieldFn, t: Float[Array, ""], x: Float[Array, " d"]
    ) -> Float[Array, " C"]:
        """The state is the field: q = u."""
        return field_fn(t, self._check_x(x))

    def field_residual(
        self, field_fn: FieldFn, t: Float[Array, ""], x: Float[Array, " d"]
    ) -> Float[Array, " R"]:
        """R = ∂ₜu − κΔu by forward-mode ∂ₜ and the trace of the Hessian in x, shape (1,)."""
        x = self._check_x(x)
        t = jnp.asarray(t, dtype=x.dtype)
        _, u_t = jax.jvp(lambda s: field_fn(s, x)[0], (t,), (jnp.ones_like(t),))
        laplacian = jnp.trace(jax.hessian(lambda y: field_fn(t, y)[0])(x))
        return jnp.reshape(u_t - self.kappa * laplacian, (1,))

    # -- grid ------------------------------------------------------------------------------

    def grid(self, n: int) -> Float[Array, "*grid d"]:
        """x_j = jL/n in every direction, shape ``(n,)*d + (d,)``."""
        axis = jnp.arange(n) * (self.length / n)
        return jnp.stack(jnp.meshgrid(*([axis] * self.dim), indexing="ij"), axis=-1)

    def _wave_numbers_squared(self, n: int) -> Array:
        """|ω|² of the FFT modes of ``grid(n)``, shape ``(n,)*d``."""
        omega = 2 * jnp.pi * jnp.fft.fftfreq(n, d=self.length / n)
        axes = jnp.meshgrid(*([omega] * self.dim), indexing="ij")
        return sum(w * w for w in axes)

    def rhs(self, t: Float[Array, ""], state: Float[Array, "*grid C"]) -> Float[Array, "*grid C"]:
        """κΔu by the spectral Laplacian κ·F⁻¹[−|ω|² F u] (exact for resolved modes)."""
        state = jnp.asarray(state)
        n = state.shape[0]
        expected = (n,) * self.dim + (1,)
        if state.shape != expected:
            raise ValueError(
                f"state must have shape {expected} (grid, then channels), got {state.shape}"
            )
        axes = tuple(range(self.dim))
        k2 = self._wave_numbers_squared(n)[..., None]
        return jnp.real(jnp.fft.ifftn(-self.kappa * k2 * jnp.fft.fftn(state, axes=axes), axes=axes))

    def reference(self, times: Sequence[float], n: int) -> Float[Array, "T *grid C"]:
        """The exact state on ``grid(n)`` at ``times``, shape ``(T,) + (n,)*d + (1,)``."""
        return _exact_on_grid(self, jnp.asarray(times, dtype=self.grid(1).dtype), n)

    def reference_error(self, times: Sequence[float], n: int) -> Float[Array, " T"]:
        """0: the reference is exact."""
        return jnp.zeros((len(times),))

    # -- invariants ------------------------------------------------------------------------

    def invariants(self, state: Float[Array, "*grid C"]) -> dict[str, Float[Array, ""]]:
        """mass (L/n)^d Σ u_j and energy ½(L/n)^d Σ u_j² (exact for resolved modes)."""
        state = jnp.asarray(state)
        cell = (self.length / state.shape[0]) ** self.dim
        return {"mass": cell * jnp.sum(state), "energy": 0.5 * cell * jnp.sum(state * state)}

    def invariant_laws(self, t: Float[Array, ""]) -> dict[str, Float[Array, ""]]:
        """M = c₀L^d (conserved); E(t) = ½L^d[c₀² + ½Σ(a_m² + b_m²)e^{−2κ|ω_m|²t}]."""
        _, a, b = self._amplitudes(t)
        volume = self.length**self.dim
        mass = jnp.asarray(self.mean * volume, dtype=a.dtype)
        energy = 0.5 * volume * (self.mean**2 + 0.5 * jnp.sum(a * a + b * b))
        return {"mass": mass, "energy": energy}


@eqx.filter_jit
def _exact_on_grid(problem: HeatProblem, times: Array, n: int) -> Array:
    """u(t_i, x_j) on ``grid(n)`` (compiled once per number of times)."""
    points = problem.grid(n).reshape(-1, problem.dim)
    values = jax.vmap(lambda t: jax.vmap(lambda x: problem.exact_state(t, x))(points))(times)
    return values.reshape((times.shape[0],) + (n,) * problem.dim + (1,))


def heat_1d() -> HeatProblem:
    """1-D heat test: κ = 0.1, L = 2π, modes k = 1, 2, 4 around the mean ½, t ∈ [0, 1].

    Decay rates κk² = 0.1, 0.4, 1.6; reference grid n = 64 (all modes in the low band
    |k| ≤ n/12 of the field checks, so a perturbation in a higher band stands out).
    """
    return HeatProblem(
        problem_id="heat-1d",
        dim=1,
        kappa=0.1,
        mean=0.5,
        wave_vectors=((1,), (2,), (4,)),
        cos_coefficients=(1.0, 0.0, 0.3),
        sin_coefficients=(0.5, 0.8, -0.2),
        t_min=0.0,
        t_max=1.0,
        default_times=(0.25, 0.5, 1.0),
        grid_size=64,
    )


def heat_2d() -> HeatProblem:
    """2-D heat test: κ = 0.05, L = 2π, modes (1,0), (0,1), (1,−1), (2,1), t ∈ [0, 1].

    Decay rates κ|k|² = 0.05, 0.05, 0.1, 0.25; reference grid n = 32.
    """
    return HeatProblem(
        problem_id="heat-2d",
        dim=2,
        kappa=0.05,
        mean=-0.25,
        wave_vectors=((1, 0), (0, 1), (1, -1), (2, 1)),
        cos_coefficients=(1.0, 0.0, 0.4, 0.0),
        sin_coefficients=(0.0, 0.7, 0.3, -0.5),
        t_min=0.0,
        t_max=1.0,
        default_times=(0.25, 0.5, 1.0),
        grid_size=32,
    )


def heat_problem_from_grid(
    u0: np.ndarray,
    *,
    kappa: float,
    problem_id: str = "heat-custom",
    t_max: float = 1.0,
    default_times: tuple[float, ...] = (0.25, 0.5, 1.0),
    length: float = 2 * math.pi,
) -> HeatProblem:
    r"""The heat problem whose initial state is the band-limited grid field ``u0``.

    ``u0`` has shape ``(n,)*d`` on x_j = jL/n (as :func:`verify.strategies.
    periodic_initial_conditions` draws them). Its DFT û gives c₀ = û₀/n^d and, for each
    canonical k with |k|_∞ < n/2, a_k = 2 Re û_k / n^d, b_k = −2 Im û_k / n^d (so that
    u = c₀ + Σ a_k cos + b_k sin on the grid); coefficients below 1e−14 of the largest are
    dropped. Nyquist modes (|k_i| = n/2) are refused: they are not resolved.
    """
    u0 = np.asarray(u0, dtype=np.float64)
    d, n = u0.ndim, u0.shape[0]
    if d not in (1, 2, 3) or u0.shape != (n,) * d:
        raise ProblemError(f"{problem_id}: u0 must be an (n,)*d grid with d <= 3, got {u0.shape}")
    hat = np.fft.fftn(u0) / n**d
    scale = float(np.max(np.abs(hat))) or 1.0
    modes, cos_c, sin_c = [], [], []
    for index in np.ndindex(*hat.shape):
        k = tuple(int(i) if i < n / 2 else int(i) - n for i in index)
        if not _canonical(k) or abs(hat[index]) <= _MODE_TOLERANCE * scale:
            continue
        if max(abs(c) for c in k) >= n / 2:
            raise ProblemError(f"{problem_id}: u0 has a Nyquist mode {k}; refine the grid")
        modes.append(k)
        cos_c.append(2 * float(hat[index].real))
        sin_c.append(-2 * float(hat[index].imag))
    return HeatProblem(
        problem_id=problem_id,
        dim=d,
        kappa=float(kappa),
        mean=float(hat[(0,) * d].real),
        wave_vectors=tuple(modes),
        cos_coefficients=tuple(cos_c),
        sin_coefficients=tuple(sin_c),
        t_min=0.0,
        t_max=float(t_max),
        default_times=tuple(default_times),
        grid_size=n,
        length=float(length),
    )
