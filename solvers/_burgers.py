r"""Viscous Burgers equation on a periodic interval: Cole–Hopf exact solution and ETDRK4 reference.

.. math::

    u_t + u\,u_x = \nu\, u_{xx}, \qquad x \in [0, L) \text{ periodic}.

**Cole–Hopf.** If φ > 0 solves the heat equation φ_t = ν φ_xx then u = −2ν ∂ₓ log φ solves
Burgers (Hopf 1950, Cole 1951). For u₀ = A sin(κx), κ = 2π/L,
φ₀ = exp(−(1/2ν)∫₀ˣ u₀) = e^{−a} e^{a cos κx} with a = A/(2νκ), and the generating function of
the modified Bessel functions, e^{a cos θ} = I₀(a) + 2Σ_{k≥1} I_k(a) cos kθ, gives

.. math::

    u(t, x) = 2\nu\kappa\,
      \frac{\sum_{k\ge1} k\, c_k e^{-\nu\kappa^2 k^2 t} \sin(k\kappa x)}
           {\sum_{k\ge0} c_k e^{-\nu\kappa^2 k^2 t} \cos(k\kappa x)},
    \qquad c_0 = \tilde I_0(a),\ c_k = 2\tilde I_k(a),

with the scaled Bessel functions Ĩ_k(a) = I_k(a) e^{−|a|} (I_k(−a) = (−1)^k I_k(a)). They are
computed once, in float64, by Miller's backward recurrence I_{k−1} = I_{k+1} + (2k/a) I_k
normalised by Ĩ₀ + 2Σ Ĩ_k = 1 (the generating function at θ = 0), and the series is cut
where Ĩ_k < 10⁻²² (Ĩ_k ≈ (a/2)^k e^{−a}/k! for k ≫ a). The evaluation is pointwise, jittable
and differentiable in (t, x).

*Conditioning.* The denominator φ̃ ranges from 1 down to e^{−2|a|} (at the point opposite the
maximum of φ₀, t = 0) while its terms are O(1): round-off ε in the terms becomes a relative
error ≈ ε e^{2|a|} there. For the registered ν = 0.1, A = 1, L = 2π (a = 5) that is
≈ 2·10⁻¹² (measured: max |u(0, x) − sin x| = 1.6e−12, tests/solvers/test_burgers.py);
a = 10 (ν = 0.05) would lose 9 digits — hence ν = 0.1 (and |a| ≤ 12 is enforced).

**Numerical reference.** Fourier pseudo-spectral in x with the 2/3 rule and ETDRK4 in time
(:mod:`solvers._etdrk4`) on û: û_t = −νk² û − (ik/2) P F[(F⁻¹Pû)²], P the 2/3-rule projection
(the exact Galerkin truncation of the quadratic term; modes outside the kept set decay
linearly and never feed back). Its error is estimated by self-convergence (a run at twice the
resolution and half the step, compared on the output grid).

Problems: :class:`ColeHopfBurgersProblem` (exact; the registered ``burgers-1d``) and
:class:`BurgersProblem` (any initial condition given as a :class:`~solvers._spectral.FourierSeries`,
e.g. from grid values; numerical reference). The class says which one is exact.

References
----------
.. [1] E. Hopf, "The partial differential equation u_t + uu_x = μu_xx", Comm. Pure Appl.
   Math. 3 (1950) 201–230; J. D. Cole, "On a quasi-linear parabolic equation occurring in
   aerodynamics", Quart. Appl. Math. 9 (1951) 225–236.
.. [2] A.-K. Kassam, L. N. Trefethen, SIAM J. Sci. Comput. 26 (2005) 1214–1233.
.. [3] NIST DLMF §10.35 (generating function), §3.6 (Miller's algorithm).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from . import _pointwise as pw
from ._etdrk4 import etdrk4_save_at
from ._field_problem import AbstractExactFieldProblem, AbstractFieldProblem, FieldFn
from ._field_reference import reference_on_grid, self_convergence
from ._problem import ProblemError
from ._spectral import (
    FourierSeries,
    cell_volume,
    dealias_mask,
    irfft,
    laplacian_symbol,
    periodic_grid,
    rfft,
    wavevector_multiplier,
)

_BESSEL_CUTOFF = 1e-22


@functools.cache
def scaled_bessel_i(a: float) -> np.ndarray:
    """Ĩ_k(a) = I_k(a) e^{−|a|}, k = 0 … K, until Ĩ_k < 1e−22 (Miller's backward recurrence).

    Relative accuracy ~1e−16 for the leading terms (tested against ``i0e``/``i1e``).
    """
    x = abs(float(a))
    if x == 0.0:
        return np.array([1.0])
    # start well past the cutoff: Ĩ_k drops faster than (x/2)^k/k!
    start = int(2 * x + 60)
    values = np.zeros(start + 2)
    values[start] = 1.0
    for k in range(start, 0, -1):
        values[k - 1] = values[k + 1] + (2 * k / x) * values[k]
        if values[k - 1] > 1e250:  # rescale; only ratios matter before normalising
            values /= 1e250
    values /= values[0] + 2 * values[1:].sum()
    keep = int(np.nonzero(values >= _BESSEL_CUTOFF)[0].max()) + 1
    out = values[:keep]
    if a < 0:
        out = out * (-1.0) ** np.arange(keep)
    return out


# -- spectral operators of the equation ------------------------------------------------------


def _nonlinear(u_hat: Array, n: int, length: float) -> Array:
    """−(ik/2) P(P û)²: the 2/3-dealiased advection term on the rfft modes."""
    mask = dealias_mask(n, 1)
    ik = wavevector_multiplier(n, length, 1, (1,))
    u = irfft(jnp.where(mask, u_hat, 0.0), n)
    return jnp.where(mask, -0.5 * ik * rfft(u * u), 0.0)


@functools.partial(jax.jit, static_argnames=("nu", "length"))
def burgers_rhs(u: Float[Array, " n"], *, nu: float, length: float) -> Float[Array, " n"]:
    """ν u_xx − u u_x on the grid: spectral derivatives, 2/3-dealiased product."""
    u = jnp.asarray(u)
    if u.ndim != 1:
        raise ValueError(f"u must have shape (n,), got {u.shape}; batch with jax.vmap")
    n = u.shape[0]
    u_hat = rfft(u)
    return irfft(nu * laplacian_symbol(n, length, 1) * u_hat + _nonlinear(u_hat, n, length), n)


@eqx.filter_jit
def solve_burgers(
    u0: Float[Array, " n"],
    times: Sequence[float],
    *,
    nu: float,
    length: float,
    dt: float,
    t0: float = 0.0,
) -> Float[Array, "T n"]:
    r"""u at ``times`` from grid values u₀ = u(t₀) on :func:`~solvers._spectral.periodic_grid`.

    Fourier pseudo-spectral (2/3 rule) with ETDRK4 steps ≤ Δt (module docstring). Jittable,
    batch initial conditions with ``jax.vmap``, differentiable in u₀.

    Parameters
    ----------
    u0 : array (n,)
        Initial values at x_j = jL/n.
    times : sequence of float
        Non-decreasing save times ≥ t₀ (concrete).
    nu : float
        Viscosity ν > 0.
    length : float
        Period L.
    dt : float
        Largest time step Δt.
    t0 : float, default 0
        Initial time.
    """
    u0 = jnp.asarray(u0)
    if u0.ndim != 1:
        raise ValueError(f"u0 must have shape (n,), got {u0.shape}; batch with jax.vmap")
    n = u0.shape[0]
    linear = nu * laplacian_symbol(n, length, 1)
    u_hat = etdrk4_save_at(
        linear,
        lambda t, v: _nonlinear(v, n, length),
        rfft(u0),
        t0=float(t0),
        times=[float(t) for t in times],
        dt=float(dt),
    )
    return jax.vmap(lambda v: irfft(v, n))(u_hat)


# -- problems -------------------------------------------------------------------------------


class AbstractBurgersProblem(AbstractFieldProblem):
    """Burgers u_t + u u_x = ν u_xx on [0, L): the parts common to the exact and numerical
    problems (state = field = u, C = F = 1). Final subclasses have fields ``nu`` (ν) and
    ``dt`` (the reference step)."""

    def _check_common(self) -> None:
        name = self.problem_id
        fixed = (self.dim, self.n_components, self.component_names, self.field_components)
        if fixed != (1, 1, ("u",), 1):
            raise ProblemError(f"{name}: Burgers has d = C = F = 1, got {fixed}")
        if not (math.isfinite(self.nu) and self.nu > 0):
            raise ProblemError(f"{name}: nu must be positive, got {self.nu}")
        if not (math.isfinite(self.length) and self.length > 0):
            raise ProblemError(f"{name}: length must be positive, got {self.length}")
        if not (math.isfinite(self.dt) and self.dt > 0):
            raise ProblemError(f"{name}: dt must be positive, got {self.dt}")
        if int(self.grid_size) != self.grid_size or self.grid_size < 4:
            raise ProblemError(f"{name}: grid_size must be an integer ≥ 4, got {self.grid_size}")
        if not self.t_min < self.t_max:
            raise ProblemError(f"{name}: need t_min < t_max, got {self.t_min}, {self.t_max}")
        bad = [t for t in self.default_times if not self.t_min <= t <= self.t_max]
        if not self.default_times or bad:
            raise ProblemError(
                f"{name}: default_times must be non-empty and inside "
                f"[{self.t_min}, {self.t_max}], got {self.default_times}"
            )

    def _common_parameters(self) -> dict[str, Any]:
        return {
            "id": self.problem_id,
            "equation": "burgers",
            "pde": "u_t + u u_x = nu u_xx, x in [0, L) periodic",
            "dim": 1,
            "nu": float(self.nu),
            "length": float(self.length),
            "t_min": float(self.t_min),
            "t_max": float(self.t_max),
            "default_times": [float(t) for t in self.default_times],
            "grid_size": int(self.grid_size),
            "dt": float(self.dt),
            "state": ["u"],
            "field": ["u"],
        }

    def grid(self, n: int) -> Float[Array, "n 1"]:
        """x_j = j L / n, shape (n, 1)."""
        return periodic_grid(n, self.length, 1)

    def state_from_field(self, field_fn: FieldFn, t, x) -> Float[Array, " 1"]:
        """q = u: the field itself."""
        t, x = pw.check_point(t, x, 1)
        return jnp.reshape(pw.component(field_fn, 0, 1)(t, x), (1,))

    def field_residual(self, field_fn: FieldFn, t, x) -> Float[Array, " 1"]:
        """u_t + u u_x − ν u_xx by autodiff (forward mode)."""
        t, x = pw.check_point(t, x, 1)
        f = pw.component(field_fn, 0, 1)
        u, u_t = pw.time_derivatives(f, t, x, 1)
        u_x = pw.gradient(f, t, x)[0]
        u_xx = pw.hessian(f, t, x)[0, 0]
        return jnp.reshape(u_t + u * u_x - self.nu * u_xx, (1,))

    def _check_state(self, state: Array) -> Array:
        state = jnp.asarray(state)
        if state.ndim != 2 or state.shape[1] != 1:
            raise ValueError(
                f"state must have shape (n, 1), got {state.shape}; batch with jax.vmap"
            )
        return state

    def rhs(self, t, state: Float[Array, "n 1"]) -> Float[Array, "n 1"]:
        """ν u_xx − u u_x (spectral derivatives, 2/3-dealiased product)."""
        u = self._check_state(state)[:, 0]
        return burgers_rhs(u, nu=self.nu, length=self.length)[:, None]

    def invariants(self, state: Float[Array, "n 1"]) -> dict[str, Float[Array, ""]]:
        """mass ∫u (conserved) and energy ½∫u² (decays: dE/dt = −ν∫u_x²), trapezoid rule."""
        u = self._check_state(state)[:, 0]
        w = cell_volume(u.shape[0], self.length, 1)
        return {"mass": w * jnp.sum(u), "energy": 0.5 * w * jnp.sum(u * u)}

    def solve(self, times: Sequence[float], n: int, dt: float) -> Float[Array, "T n 1"]:
        """The ETDRK4 pseudo-spectral solution from :meth:`initial_state` on grid(n), step dt."""
        x = self.grid(n)
        u0 = jax.vmap(self.initial_state)(x)[:, 0]
        u = solve_burgers(
            u0,
            tuple(float(t) for t in times),
            nu=self.nu,
            length=self.length,
            dt=float(dt),
            t0=float(self.t_min),
        )
        return u[..., None]


class ColeHopfBurgersProblem(AbstractBurgersProblem, AbstractExactFieldProblem):
    r"""Burgers with u₀ = A sin(2πx/L) and its exact Cole–Hopf solution (module docstring).

    Build the registered problem with :func:`burgers_1d`.

    Attributes
    ----------
    problem_id : str
        Registry id.
    nu : float
        ν > 0.
    amplitude : float
        A ≠ 0.
    length : float
        L.
    t_min, t_max, default_times : float, float, tuple
        Window (the initial condition is at t = 0 ≤ t_min) and certification times.
    grid_size : int
        Reference resolution (the reference is exact at any n).
    dt : float
        Step of :meth:`solve` when used as a comparison.
    """

    problem_id: str = eqx.field(static=True)
    nu: float = eqx.field(static=True)
    amplitude: float = eqx.field(static=True)
    length: float = eqx.field(static=True)
    t_min: float = eqx.field(static=True)
    t_max: float = eqx.field(static=True)
    default_times: tuple[float, ...] = eqx.field(static=True)
    grid_size: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    dim: int = eqx.field(static=True, default=1, init=False)
    n_components: int = eqx.field(static=True, default=1, init=False)
    component_names: tuple[str, ...] = eqx.field(static=True, default=("u",), init=False)
    field_components: int = eqx.field(static=True, default=1, init=False)

    def __check_init__(self) -> None:
        self._check_common()
        if not (math.isfinite(self.amplitude) and self.amplitude != 0):
            raise ProblemError(f"{self.problem_id}: amplitude must be nonzero and finite")
        if self.t_min < 0:
            raise ProblemError(f"{self.problem_id}: t_min must be ≥ 0 (u₀ is given at t = 0)")
        if abs(self.bessel_argument) > 12:
            raise ProblemError(
                f"{self.problem_id}: |a| = |A|/(2 nu kappa) = {abs(self.bessel_argument):.3g} > "
                "12 loses more than 10 digits in the Cole-Hopf series (module docstring)"
            )

    @property
    def bessel_argument(self) -> float:
        """a = A / (2νκ), κ = 2π/L."""
        return self.amplitude / (2 * self.nu * 2 * math.pi / self.length)

    def parameters(self) -> dict[str, Any]:
        """JSON-serialisable parameters (``problem_json``)."""
        return {
            **self._common_parameters(),
            "solution": "cole-hopf",
            "initial_condition": "u0 = A sin(2 pi x / L)",
            "amplitude": float(self.amplitude),
            "bessel_argument": float(self.bessel_argument),
            "series_terms": len(scaled_bessel_i(self.bessel_argument)),
            "reference": "exact",
        }

    def exact_state(self, t, x) -> Float[Array, " 1"]:
        """u(t, x) by the Cole–Hopf series (module docstring)."""
        t, x = pw.check_point(t, x, 1)
        coeffs = scaled_bessel_i(self.bessel_argument)
        c = jnp.asarray(np.concatenate([coeffs[:1], 2 * coeffs[1:]]))
        kappa = 2 * math.pi / self.length
        k = jnp.arange(c.shape[0], dtype=c.dtype)
        weights = c * jnp.exp(-self.nu * kappa**2 * k**2 * t)
        phase = k * kappa * x[0]
        num = jnp.sum(k * weights * jnp.sin(phase))
        den = jnp.sum(weights * jnp.cos(phase))
        return jnp.reshape(2 * self.nu * kappa * num / den, (1,))

    def initial_state(self, x) -> Float[Array, " 1"]:
        """u(t_min, x)."""
        return self.exact_state(self.t_min, x)

    def reference(self, times: Sequence[float], n: int) -> Float[Array, "T n 1"]:
        """The exact solution on grid(n)."""
        return self._exact_on_grid(jnp.asarray(np.asarray(times, dtype=float)), n)

    @eqx.filter_jit
    def _exact_on_grid(self, t: Array, n: int) -> Array:
        x = self.grid(n)
        return jax.vmap(lambda s: jax.vmap(lambda y: self.exact_state(s, y))(x))(t)

    def reference_error(self, times: Sequence[float], n: int) -> Float[Array, " T"]:
        """0: the reference is exact (to the conditioning bound of the module docstring)."""
        return jnp.zeros(len(times))

    def invariant_laws(self, t) -> dict[str, Float[Array, ""]]:
        """mass = ∫A sin(κx) dx = 0 at every t."""
        return {"mass": jnp.zeros_like(jnp.asarray(t, dtype=float))}


class BurgersProblem(AbstractBurgersProblem):
    r"""Burgers with any initial condition (a Fourier series) and the ETDRK4 reference.

    ``reference(times, n)`` runs at N = max(n, ``grid_size``) with step ``dt`` and
    interpolates spectrally to grid(n); ``reference_error`` is its self-convergence estimate
    (the run at 2N and dt/2). Build with :func:`burgers_from_fourier` or
    :func:`burgers_from_grid`.

    Attributes
    ----------
    length : float
        Period L.
    initial : FourierSeries
        u(t_min, ·) (d = 1, period L).
    (others as :class:`ColeHopfBurgersProblem`)
    """

    problem_id: str = eqx.field(static=True)
    nu: float = eqx.field(static=True)
    length: float = eqx.field(static=True)
    initial: FourierSeries
    t_min: float = eqx.field(static=True)
    t_max: float = eqx.field(static=True)
    default_times: tuple[float, ...] = eqx.field(static=True)
    grid_size: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    dim: int = eqx.field(static=True, default=1, init=False)
    n_components: int = eqx.field(static=True, default=1, init=False)
    component_names: tuple[str, ...] = eqx.field(static=True, default=("u",), init=False)
    field_components: int = eqx.field(static=True, default=1, init=False)

    def __check_init__(self) -> None:
        self._check_common()
        if self.initial.dim != 1 or self.initial.length != self.length:
            raise ProblemError(
                f"{self.problem_id}: the initial condition must be a 1-d Fourier series of "
                f"period {self.length}"
            )

    def parameters(self) -> dict[str, Any]:
        """JSON-serialisable parameters, the initial Fourier coefficients included."""
        return {
            **self._common_parameters(),
            "solution": "numerical",
            "initial_condition": "u0 = sum_j a_j cos(2 pi m_j x / L) + b_j sin(2 pi m_j x / L)",
            "wavevectors": np.asarray(self.initial.wavevectors)[:, 0].tolist(),
            "cos_coeffs": np.asarray(self.initial.cos_coeffs).tolist(),
            "sin_coeffs": np.asarray(self.initial.sin_coeffs).tolist(),
            "reference": "ETDRK4 Fourier pseudo-spectral, 2/3 rule, run at max(n, grid_size)",
        }

    def initial_state(self, x) -> Float[Array, " 1"]:
        """u(t_min, x) = the Fourier series."""
        _, x = pw.check_point(0.0, x, 1)
        return jnp.reshape(self.initial(x), (1,))

    def _run(self, times: tuple[float, ...], n_run: int, dt: float) -> Array:
        u0 = self.initial.on_grid(n_run)
        u = solve_burgers(u0, times, nu=self.nu, length=self.length, dt=dt, t0=float(self.t_min))
        return u[..., None]

    def reference(self, times: Sequence[float], n: int) -> Float[Array, "T n 1"]:
        """ETDRK4 at N = max(n, grid_size), step dt, interpolated to grid(n)."""
        return reference_on_grid(self._run, times, self.t_min, n, self.grid_size, self.dt)

    def self_convergence(self, times: Sequence[float], n: int) -> dict[str, Float[Array, " T"]]:
        """Relative L2 differences on grid(n) of the reference run (N, dt) from runs at
        (2N, dt) "space", (N, dt/2) "time" and (2N, dt/2) "combined"."""
        return self_convergence(self._run, times, self.t_min, n, self.grid_size, self.dt)

    def reference_error(self, times: Sequence[float], n: int) -> Float[Array, " T"]:
        """Self-convergence: relative L2 difference from the run at 2N and dt/2."""
        estimates = self_convergence(
            self._run, times, self.t_min, n, self.grid_size, self.dt, which=("combined",)
        )
        return estimates["combined"]

    def invariant_laws(self, t) -> dict[str, Float[Array, ""]]:
        """mass = L · mean(u₀) at every t (periodic flux form)."""
        t = jnp.asarray(t, dtype=float)
        return {"mass": self.length * self.initial.mean() + jnp.zeros_like(t)}


# -- builders -------------------------------------------------------------------------------


def burgers_1d() -> ColeHopfBurgersProblem:
    """``burgers-1d``: ν = 0.1, u₀ = sin x on [0, 2π), t ∈ [0, 3] (a = 5, 30 series terms).

    The front at x = π steepens until t ≈ 1.6 (max |u_x| ≈ 3.7) and then decays. With the
    2/3 rule, 256 points resolve it below the Cole–Hopf round-off (ETDRK4 at Δt = 1e−3 agrees
    with the series to 7e−13, tests/validation).
    """
    return ColeHopfBurgersProblem(
        problem_id="burgers-1d",
        nu=0.1,
        amplitude=1.0,
        length=2 * math.pi,
        t_min=0.0,
        t_max=3.0,
        default_times=(0.5, 1.0, 2.0, 3.0),
        grid_size=256,
        dt=1e-3,
    )


def burgers_from_fourier(
    wavenumbers: Sequence[int],
    cos_coeffs: Sequence[float],
    sin_coeffs: Sequence[float],
    *,
    nu: float = 0.1,
    length: float = 2 * math.pi,
    problem_id: str = "burgers-1d-fourier",
    t_min: float = 0.0,
    t_max: float = 3.0,
    default_times: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0),
    grid_size: int = 256,
    dt: float = 1e-3,
) -> BurgersProblem:
    """Burgers with u₀ = Σ_j a_j cos(2π m_j x/L) + b_j sin(2π m_j x/L) (numerical reference)."""
    initial = FourierSeries.from_coefficients(length, wavenumbers, cos_coeffs, sin_coeffs, dim=1)
    return BurgersProblem(
        problem_id=problem_id,
        nu=float(nu),
        length=float(length),
        initial=initial,
        t_min=float(t_min),
        t_max=float(t_max),
        default_times=tuple(float(t) for t in default_times),
        grid_size=int(grid_size),
        dt=float(dt),
    )


def burgers_from_grid(
    u0: Float[Array, " n"], *, length: float = 2 * math.pi, **kwargs: Any
) -> BurgersProblem:
    """Burgers with u₀ the trigonometric interpolant of grid values on [0, L) (numerical
    reference); keyword arguments as :func:`burgers_from_fourier`."""
    series = FourierSeries.from_grid(np.asarray(u0, dtype=float), length)
    m = np.asarray(series.wavevectors)[:, 0]
    return burgers_from_fourier(
        m, np.asarray(series.cos_coeffs), np.asarray(series.sin_coeffs), length=length, **kwargs
    )
