r"""2-D incompressible Navier–Stokes in vorticity form on the periodic square: Taylor–Green and
an ETDRK4 pseudo-spectral reference.

.. math::

    \omega_t + \mathbf u\cdot\nabla\omega = \nu\Delta\omega,\qquad
    \omega = -\Delta\psi,\quad \mathbf u = (\psi_y, -\psi_x),\qquad x \in [0, L)^2,

so ω = ∂ₓv − ∂_y u and u·∇ω = ψ_y ω_x − ψ_x ω_y. The state is q = ω (C = 1); a pointwise model
outputs the stream function ψ (F = 1), from which ω = −Δψ and the residual
ω_t + ψ_y ω_x − ψ_x ω_y − νΔω are local (fourth derivatives of ψ by autodiff).

**Invariants.** Kinetic energy E = ½∫|u|² and enstrophy Z = ½∫ω² obey
dE/dt = −2νZ and dZ/dt = −ν∫|∇ω|²: both are conserved for ν = 0. The 2/3-rule Fourier
Galerkin truncation conserves both exactly for ν = 0 (every triad exchanges energy and
enstrophy in detailed balance), so the semi-discrete solver conserves them to round-off and
ETDRK4 (= RK4 for ν = 0) to O(Δt⁴). ∫ω = 0 always (circulation on a torus).

**Taylor–Green vortex** (Taylor & Green 1937), K = 2πk/L:

.. math::

    \psi = \tfrac1K \sin Kx \sin Ky\, e^{-2\nu K^2 t},\quad
    \omega = 2K \sin Kx \sin Ky\, e^{-2\nu K^2 t},\quad
    \mathbf u = (\sin Kx \cos Ky, -\cos Kx \sin Ky)\, e^{-2\nu K^2 t}.

ω is a function of ψ (ω = 2K²ψ), so u·∇ω = 0: a steady solution of the Euler nonlinearity,
decaying by viscosity alone, with E = (L²/4) e^{−4νK²t} and Z = (K²L²/2) e^{−4νK²t}.
Because the nonlinear term vanishes on it, the numerical solver is also tested on other
initial data (:class:`NavierStokesProblem`) by self-convergence and the invariants.

**Numerical reference.** ETDRK4 (:mod:`solvers._etdrk4`) on ω̂ with L = −ν|k|² and
N(ω̂) = −P F[u·∇ω], where u, ∇ω are computed spectrally from Pω̂ (P the 2/3-rule projection).

References
----------
.. [1] G. I. Taylor, A. E. Green, "Mechanism of the production of small eddies from large
   ones", Proc. R. Soc. Lond. A 158 (1937) 499–521.
.. [2] C. Canuto, M. Y. Hussaini, A. Quarteroni, T. A. Zang, "Spectral Methods: Evolution to
   Complex Geometries and Applications to Fluid Dynamics", Springer (2007), §3.3.
.. [3] A.-K. Kassam, L. N. Trefethen, SIAM J. Sci. Comput. 26 (2005) 1214–1233.
.. [4] R. H. Kraichnan, D. Montgomery, "Two-dimensional turbulence", Rep. Prog. Phys. 43
   (1980) 547 (conservation by the Galerkin truncation).
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
    inverse_laplacian_symbol,
    irfft,
    laplacian_symbol,
    periodic_grid,
    rfft,
    wavevector_multiplier,
)


def _stream_multiplier(n: int, length: float) -> Array:
    """ψ̂ = ω̂ / |k|² (0 at k = 0): the inverse of −Δ on zero-mean fields."""
    return -inverse_laplacian_symbol(n, length, 2)


def _advection_hat(omega_hat: Array, n: int, length: float) -> Array:
    """F[u·∇ω] from ω̂ (products on the grid; not projected)."""
    psi_hat = _stream_multiplier(n, length) * omega_hat
    dx = wavevector_multiplier(n, length, 2, (1, 0))
    dy = wavevector_multiplier(n, length, 2, (0, 1))
    u, v = irfft(dy * psi_hat, n), irfft(-dx * psi_hat, n)
    w_x, w_y = irfft(dx * omega_hat, n), irfft(dy * omega_hat, n)
    return rfft(u * w_x + v * w_y)


def _nonlinear(omega_hat: Array, n: int, length: float) -> Array:
    """−P F[u·∇ω] computed from Pω̂ (2/3 rule: the exact Galerkin truncation)."""
    mask = dealias_mask(n, 2)
    return jnp.where(mask, -_advection_hat(jnp.where(mask, omega_hat, 0.0), n, length), 0.0)


@functools.partial(jax.jit, static_argnames=("length",))
def velocity_from_vorticity(omega: Float[Array, "n n"], length: float) -> Float[Array, "n n 2"]:
    """u = (ψ_y, −ψ_x) with ψ = (−Δ)^{−1}ω (zero mean), spectral; shape (n, n, 2)."""
    omega = _check_omega(omega)
    n = omega.shape[0]
    psi_hat = _stream_multiplier(n, length) * rfft(omega)
    dx = wavevector_multiplier(n, length, 2, (1, 0))
    dy = wavevector_multiplier(n, length, 2, (0, 1))
    return jnp.stack([irfft(dy * psi_hat, n), irfft(-dx * psi_hat, n)], axis=-1)


def _check_omega(omega: Array) -> Array:
    omega = jnp.asarray(omega)
    if omega.ndim != 2 or omega.shape[0] != omega.shape[1]:
        raise ValueError(f"omega must have shape (n, n), got {omega.shape}; use jax.vmap")
    return omega


@functools.partial(jax.jit, static_argnames=("nu", "length"))
def navier_stokes_rhs(
    omega: Float[Array, "n n"], *, nu: float, length: float
) -> Float[Array, "n n"]:
    """νΔω − u·∇ω on the grid (spectral derivatives, 2/3-dealiased product)."""
    omega = _check_omega(omega)
    n = omega.shape[0]
    w_hat = rfft(omega)
    return irfft(nu * laplacian_symbol(n, length, 2) * w_hat + _nonlinear(w_hat, n, length), n)


@functools.partial(jax.jit, static_argnames=("length",))
def navier_stokes_invariants(
    omega: Float[Array, "n n"], length: float
) -> dict[str, Float[Array, ""]]:
    """energy ½∫|u|², enstrophy ½∫ω², circulation ∫ω (trapezoid rule, spectral u)."""
    omega = _check_omega(omega)
    u = velocity_from_vorticity(omega, length)
    w = cell_volume(omega.shape[0], length, 2)
    return {
        "energy": 0.5 * w * jnp.sum(u * u),
        "enstrophy": 0.5 * w * jnp.sum(omega * omega),
        "circulation": w * jnp.sum(omega),
    }


@eqx.filter_jit
def solve_navier_stokes(
    omega0: Float[Array, "n n"],
    times: Sequence[float],
    *,
    nu: float,
    length: float,
    dt: float,
    t0: float = 0.0,
) -> Float[Array, "T n n"]:
    """ω at ``times`` from grid values ω₀ = ω(t₀): pseudo-spectral (2/3 rule) with ETDRK4
    steps ≤ Δt. Jittable, batch with ``jax.vmap``, differentiable in ω₀.

    Parameters
    ----------
    omega0 : array (n, n)
        Vorticity on :func:`~solvers._spectral.periodic_grid` (its mean is ignored: ψ and u
        see only k ≠ 0, and the k = 0 mode of ω is conserved).
    times : sequence of float
        Non-decreasing save times ≥ t₀ (concrete).
    nu : float
        Viscosity ν ≥ 0.
    length : float
        Period L.
    dt : float
        Largest step Δt.
    t0 : float, default 0
        Initial time.
    """
    omega0 = _check_omega(omega0)
    n = omega0.shape[0]
    w_hat = etdrk4_save_at(
        nu * laplacian_symbol(n, length, 2),
        lambda t, v: _nonlinear(v, n, length),
        rfft(omega0),
        t0=float(t0),
        times=[float(t) for t in times],
        dt=float(dt),
    )
    return jax.vmap(lambda v: irfft(v, n))(w_hat)


class AbstractNavierStokesProblem(AbstractFieldProblem):
    """ω_t + u·∇ω = νΔω on [0, L)²: the parts common to the exact and numerical problems
    (state ω, field ψ). Final subclasses have fields ``nu`` (ν) and ``dt`` (reference step)."""

    def _check_common(self) -> None:
        name = self.problem_id
        fixed = (self.dim, self.n_components, self.component_names, self.field_components)
        if fixed != (2, 1, ("omega",), 1):
            raise ProblemError(f"{name}: vorticity Navier-Stokes has d = 2, C = F = 1: {fixed}")
        if not (math.isfinite(self.nu) and self.nu >= 0):
            raise ProblemError(f"{name}: nu must be ≥ 0, got {self.nu}")
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
            "equation": "navier-stokes-2d-vorticity",
            "pde": "omega_t + u . grad omega = nu lap omega, omega = -lap psi, "
            "u = (psi_y, -psi_x), x in [0, L)^2 periodic",
            "dim": 2,
            "nu": float(self.nu),
            "length": float(self.length),
            "t_min": float(self.t_min),
            "t_max": float(self.t_max),
            "default_times": [float(t) for t in self.default_times],
            "grid_size": int(self.grid_size),
            "dt": float(self.dt),
            "state": ["omega"],
            "field": ["psi"],
        }

    def grid(self, n: int) -> Float[Array, "n n 2"]:
        """x_{ij} = (i, j) L / n, shape (n, n, 2)."""
        return periodic_grid(n, self.length, 2)

    def state_from_field(self, field_fn: FieldFn, t, x) -> Float[Array, " 1"]:
        """ω = −Δψ by autodiff."""
        t, x = pw.check_point(t, x, 2)
        return jnp.reshape(-pw.laplacian(pw.component(field_fn, 0, 1), t, x), (1,))

    def field_residual(self, field_fn: FieldFn, t, x) -> Float[Array, " 1"]:
        """ω_t + ψ_y ω_x − ψ_x ω_y − νΔω with ω = −Δψ (derivatives of ψ up to order 4)."""
        t, x = pw.check_point(t, x, 2)
        psi = pw.component(field_fn, 0, 1)

        def omega(s, y):
            return -pw.laplacian(psi, s, y)

        _, w_t = pw.time_derivatives(omega, t, x, 1)
        grad_psi = pw.gradient(psi, t, x)
        grad_w = pw.gradient(omega, t, x)
        lap_w = pw.laplacian(omega, t, x)
        advection = grad_psi[1] * grad_w[0] - grad_psi[0] * grad_w[1]
        return jnp.reshape(w_t + advection - self.nu * lap_w, (1,))

    def _check_state(self, state: Array) -> Array:
        state = jnp.asarray(state)
        if state.ndim != 3 or state.shape[0] != state.shape[1] or state.shape[2] != 1:
            raise ValueError(
                f"state must have shape (n, n, 1), got {state.shape}; batch with jax.vmap"
            )
        return state[..., 0]

    def rhs(self, t, state: Float[Array, "n n 1"]) -> Float[Array, "n n 1"]:
        """νΔω − u·∇ω (spectral derivatives, 2/3-dealiased product)."""
        omega = self._check_state(state)
        return navier_stokes_rhs(omega, nu=self.nu, length=self.length)[..., None]

    def invariants(self, state: Float[Array, "n n 1"]) -> dict[str, Float[Array, ""]]:
        """energy ½∫|u|², enstrophy ½∫ω², circulation ∫ω (trapezoid rule, spectral u)."""
        return navier_stokes_invariants(self._check_state(state), self.length)

    def solve(self, times: Sequence[float], n: int, dt: float) -> Float[Array, "T n n 1"]:
        """The ETDRK4 pseudo-spectral solution from :meth:`initial_state` on grid(n)."""
        x = self.grid(n).reshape(-1, 2)
        omega0 = jax.vmap(self.initial_state)(x)[:, 0].reshape(n, n)
        omega = solve_navier_stokes(
            omega0,
            tuple(float(t) for t in times),
            nu=self.nu,
            length=self.length,
            dt=float(dt),
            t0=float(self.t_min),
        )
        return omega[..., None]


class TaylorGreenProblem(AbstractNavierStokesProblem, AbstractExactFieldProblem):
    r"""The decaying Taylor–Green vortex (module docstring), exact.

    Build the registered problem with :func:`ns_taylor_green_2d`.

    Attributes
    ----------
    problem_id : str
        Registry id.
    nu : float
        ν ≥ 0.
    wavenumber : int
        k ≥ 1 (K = 2πk/L).
    length : float
        L.
    t_min, t_max, default_times : float, float, tuple
        Window and certification times.
    grid_size : int
        Reference resolution (the reference is exact at any n > 2k).
    dt : float
        Step of :meth:`solve` (numerical comparison).
    """

    problem_id: str = eqx.field(static=True)
    nu: float = eqx.field(static=True)
    wavenumber: int = eqx.field(static=True)
    length: float = eqx.field(static=True)
    t_min: float = eqx.field(static=True)
    t_max: float = eqx.field(static=True)
    default_times: tuple[float, ...] = eqx.field(static=True)
    grid_size: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    dim: int = eqx.field(static=True, default=2, init=False)
    n_components: int = eqx.field(static=True, default=1, init=False)
    component_names: tuple[str, ...] = eqx.field(static=True, default=("omega",), init=False)
    field_components: int = eqx.field(static=True, default=1, init=False)

    def __check_init__(self) -> None:
        self._check_common()
        if int(self.wavenumber) != self.wavenumber or self.wavenumber < 1:
            raise ProblemError(f"{self.problem_id}: wavenumber must be an integer ≥ 1")

    @property
    def kappa(self) -> float:
        """K = 2πk/L."""
        return 2 * math.pi * self.wavenumber / self.length

    @property
    def decay_rate(self) -> float:
        """4νK²: E and Z decay as e^{−4νK²t}."""
        return 4 * self.nu * self.kappa**2

    def parameters(self) -> dict[str, Any]:
        """JSON-serialisable parameters (``problem_json``)."""
        return {
            **self._common_parameters(),
            "solution": "taylor-green",
            "formula": "psi = sin(K x) sin(K y) exp(-2 nu K^2 t) / K, K = 2 pi k / L",
            "wavenumber": int(self.wavenumber),
            "reference": "exact",
        }

    def stream_function(self, t, x) -> Float[Array, " 1"]:
        """ψ(t, x) = (1/K) sin Kx sin Ky e^{−2νK²t}: the exact field (F = 1)."""
        t, x = pw.check_point(t, x, 2)
        k = self.kappa
        value = jnp.sin(k * x[0]) * jnp.sin(k * x[1]) * jnp.exp(-2 * self.nu * k**2 * t) / k
        return jnp.reshape(value, (1,))

    def exact_state(self, t, x) -> Float[Array, " 1"]:
        """ω = 2K sin Kx sin Ky e^{−2νK²t} (= 2K²ψ)."""
        return 2 * self.kappa**2 * self.stream_function(t, x)

    def initial_state(self, x) -> Float[Array, " 1"]:
        """ω(t_min, x)."""
        return self.exact_state(self.t_min, x)

    def reference(self, times: Sequence[float], n: int) -> Float[Array, "T n n 1"]:
        """The exact vorticity on grid(n)."""
        return self._exact_on_grid(jnp.asarray(np.asarray(times, dtype=float)), n)

    @eqx.filter_jit
    def _exact_on_grid(self, t: Array, n: int) -> Array:
        x = self.grid(n)
        point = jax.vmap(jax.vmap(self.exact_state, (None, 0)), (None, 0))
        return jax.vmap(lambda s: point(s, x))(t)

    def reference_error(self, times: Sequence[float], n: int) -> Float[Array, " T"]:
        """0: exact."""
        return jnp.zeros(len(times))

    def invariant_laws(self, t) -> dict[str, Float[Array, ""]]:
        """E = (L²/4)e^{−4νK²t}, Z = (K²L²/2)e^{−4νK²t}, circulation 0 (exact on grids
        with n > 2k, where the trapezoid rule integrates the squared modes exactly)."""
        t = jnp.asarray(t, dtype=float)
        decay = jnp.exp(-self.decay_rate * t)
        area = self.length**2
        return {
            "energy": area / 4 * decay,
            "enstrophy": self.kappa**2 * area / 2 * decay,
            "circulation": jnp.zeros_like(t),
        }


class NavierStokesProblem(AbstractNavierStokesProblem):
    r"""Vorticity Navier–Stokes with any initial vorticity (a 2-d Fourier series) and the
    ETDRK4 reference: on grid(n) the run at N = max(n, ``grid_size``), interpolated; error by
    self-convergence (:mod:`solvers._field_reference`). Build with
    :func:`navier_stokes_from_fourier` or :func:`ns_perturbed_taylor_green_2d`.

    Attributes
    ----------
    initial : FourierSeries
        ω(t_min, ·) (d = 2, period ``length``, zero mean).
    (others as :class:`TaylorGreenProblem`)
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
    dim: int = eqx.field(static=True, default=2, init=False)
    n_components: int = eqx.field(static=True, default=1, init=False)
    component_names: tuple[str, ...] = eqx.field(static=True, default=("omega",), init=False)
    field_components: int = eqx.field(static=True, default=1, init=False)

    def __check_init__(self) -> None:
        self._check_common()
        if self.initial.dim != 2 or self.initial.length != self.length:
            raise ProblemError(
                f"{self.problem_id}: the initial vorticity must be a 2-d Fourier series of "
                f"period {self.length}"
            )
        if float(self.initial.mean()) != 0.0:
            raise ProblemError(f"{self.problem_id}: the initial vorticity must have zero mean")

    def parameters(self) -> dict[str, Any]:
        """JSON-serialisable parameters, the initial Fourier coefficients included."""
        return {
            **self._common_parameters(),
            "solution": "numerical",
            "initial_condition": "omega0 = sum_j a_j cos(2 pi m_j . x / L) "
            "+ b_j sin(2 pi m_j . x / L)",
            "wavevectors": np.asarray(self.initial.wavevectors).tolist(),
            "cos_coeffs": np.asarray(self.initial.cos_coeffs).tolist(),
            "sin_coeffs": np.asarray(self.initial.sin_coeffs).tolist(),
            "reference": "ETDRK4 Fourier pseudo-spectral, 2/3 rule, run at max(n, grid_size)",
        }

    def initial_state(self, x) -> Float[Array, " 1"]:
        """ω(t_min, x) = the Fourier series."""
        _, x = pw.check_point(0.0, x, 2)
        return jnp.reshape(self.initial(x), (1,))

    def _run(self, times: tuple[float, ...], n_run: int, dt: float) -> Array:
        omega0 = self.initial.on_grid(n_run)
        omega = solve_navier_stokes(
            omega0, times, nu=self.nu, length=self.length, dt=dt, t0=float(self.t_min)
        )
        return omega[..., None]

    def reference(self, times: Sequence[float], n: int) -> Float[Array, "T n n 1"]:
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
        """circulation 0; for ν = 0 also energy and enstrophy = their initial values
        (computed from ω₀ on a grid with n > 2 max|m|, where the trapezoid rule is exact)."""
        t = jnp.asarray(t, dtype=float)
        zero = jnp.zeros_like(t)
        laws = {"circulation": zero}
        if self.nu == 0:
            n = max(8, 2 * self.initial.max_wavenumber() + 2)
            initial = navier_stokes_invariants(self.initial.on_grid(n), self.length)
            laws["energy"] = initial["energy"] + zero
            laws["enstrophy"] = initial["enstrophy"] + zero
        return laws


# -- builders -------------------------------------------------------------------------------


def ns_taylor_green_2d() -> TaylorGreenProblem:
    """``ns-taylor-green-2d``: k = 1 on [0, 2π)², ν = 0.05, t ∈ [0, 5] (E, Z decay by e^{−1})."""
    return TaylorGreenProblem(
        problem_id="ns-taylor-green-2d",
        nu=0.05,
        wavenumber=1,
        length=2 * math.pi,
        t_min=0.0,
        t_max=5.0,
        default_times=(0.5, 1.0, 2.5, 5.0),
        grid_size=64,
        dt=1e-2,
    )


def navier_stokes_from_fourier(
    wavevectors: Sequence[Sequence[int]],
    cos_coeffs: Sequence[float],
    sin_coeffs: Sequence[float],
    *,
    nu: float = 0.05,
    length: float = 2 * math.pi,
    problem_id: str = "ns-fourier-2d",
    t_min: float = 0.0,
    t_max: float = 5.0,
    default_times: tuple[float, ...] = (0.5, 1.0, 2.5, 5.0),
    grid_size: int = 64,
    dt: float = 1e-2,
) -> NavierStokesProblem:
    """ω₀ = Σ_j a_j cos(2π m_j·x/L) + b_j sin(2π m_j·x/L), m_j ≠ 0 (numerical reference)."""
    initial = FourierSeries.from_coefficients(length, wavevectors, cos_coeffs, sin_coeffs, dim=2)
    return NavierStokesProblem(
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


def ns_perturbed_taylor_green_2d(
    nu: float = 0.05, epsilon: float = 0.3, *, grid_size: int = 64, dt: float = 1e-2
) -> NavierStokesProblem:
    """Taylor–Green (k = 1) plus ε × (modes (2, 1), (1, 3), (3, −2)): a genuinely nonlinear
    flow (u·∇ω ≠ 0) for the numerical solver, ν = 0 allowed (then E and Z are conserved)."""
    return navier_stokes_from_fourier(
        [(1, 1), (1, -1), (2, 1), (1, 3), (3, -2)],
        # 2 sin x sin y = cos(x − y) − cos(x + y)
        [-1.0, 1.0, epsilon, 0.0, 0.5 * epsilon],
        [0.0, 0.0, 0.0, epsilon, 0.5 * epsilon],
        nu=nu,
        problem_id="ns-perturbed-taylor-green-2d",
        grid_size=grid_size,
        dt=dt,
    )
