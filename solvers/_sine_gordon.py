r"""Sine-Gordon equation on a periodic interval: exact breather, Störmer–Verlet spectral solver.

.. math::

    u_{tt} = u_{xx} - \sin u, \qquad x \in [0, L) \text{ periodic},

the nonlinear Klein–Gordon equation with potential V(u) = 1 − cos u, written as a first-order
system for the state q = (u, u_t) (C = 2); a pointwise model outputs the field u (F = 1).

**Hamiltonian.** H = ∫ ½u_t² + ½u_x² + 1 − cos u dx and the momentum P = −∫ u_t u_x dx are
conserved. The Fourier pseudo-spectral semi-discretisation u̇ = v, v̇ = D²u − sin u (D² the
spectral second derivative, −k² including the Nyquist mode) is a canonical Hamiltonian system
for the discrete

.. math::

    H_\Delta = \Delta x \sum_j \tfrac12 v_j^2 - \tfrac12 u_j (D^2 u)_j + 1 - \cos u_j,

(−½⟨u, D²u⟩ = ½∫u_x² by Parseval, the spectral ½Σ(u_x)²Δx plus the Nyquist mode), which the
Störmer–Verlet integrator (:mod:`solvers._symplectic`) preserves up to O(Δt²) without drift;
P is conserved by the semi-discretisation only up to the aliasing error of sin u.

**Breather** (Ablowitz–Kaup–Newell–Segur 1973), for 0 < ω < 1, β = √(1 − ω²):

.. math::

    u(t, x) = 4 \arctan\!\left(\frac{\beta}{\omega}\,
      \frac{\sin \omega t}{\cosh(\beta (x - x_0))}\right), \qquad H = 16\beta,\ P = 0.

It is an exact solution on the line; on the box it is centred at x₀ = L/2 and periodised. The
mismatch at the boundary is |u| + |u_x| ≲ 8(β/ω)(1 + β) e^{−βL/2}, below 1e−13 for the
registered ω = 0.5, L = 80 (e^{−βL/2} = e^{−34.6} ≈ 1e−15), so the periodic problem has the
breather as its solution to that accuracy. Its Fourier coefficients decay like
e^{−π|k|/(2β)} (poles at Im βx = ±π/2), so 512 points (k_max = 20) resolve it to ~1e−15.

**Kinks.** The kink 4 arctan e^{γ(x − vt)}, γ = (1 − v²)^{−1/2}, winds by 2π over the box
and is not periodic, so it is not a periodic test problem; it and the kink–antikink collision
4 arctan(sinh(γvt)/(v cosh γx)) (Perring & Skyrme 1962; → 0 as |x| → ∞, so periodisable with
error ~e^{−γ(L/2 − v|t|)}) are provided as pointwise functions (:func:`sine_gordon_kink`,
:func:`sine_gordon_kink_antikink`).

References
----------
.. [1] M. J. Ablowitz, D. J. Kaup, A. C. Newell, H. Segur, "Method for solving the
   sine-Gordon equation", Phys. Rev. Lett. 30 (1973) 1262–1264.
.. [2] J. K. Perring, T. H. R. Skyrme, "A model unified field equation", Nucl. Phys. 31
   (1962) 550–555.
.. [3] E. Hairer, C. Lubich, G. Wanner, "Geometric Numerical Integration", Springer (2006),
   §I.5 (sine-Gordon/wave equations), §XIII (oscillatory problems).
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
from ._field_problem import AbstractExactFieldProblem, FieldFn
from ._problem import ProblemError
from ._spectral import cell_volume, periodic_grid, spectral_derivative, spectral_laplacian
from ._symplectic import second_order_save_at


def sine_gordon_kink(t, x, velocity: float) -> Float[Array, ""]:
    """The moving kink u = 4 arctan exp(γ(x − vt)), γ = (1 − v²)^{−1/2} (scalars t, x)."""
    gamma = 1.0 / math.sqrt(1.0 - velocity**2)
    return 4.0 * jnp.arctan(jnp.exp(gamma * (x - velocity * t)))


def sine_gordon_kink_antikink(t, x, velocity: float) -> Float[Array, ""]:
    """Kink–antikink collision u = 4 arctan(sinh(γvt) / (v cosh γx)), 0 < v < 1 (scalars)."""
    gamma = 1.0 / math.sqrt(1.0 - velocity**2)
    return 4.0 * jnp.arctan(jnp.sinh(gamma * velocity * t) / (velocity * jnp.cosh(gamma * x)))


def sine_gordon_breather(t, x, omega: float) -> Float[Array, ""]:
    """The standing breather 4 arctan((β/ω) sin ωt / cosh βx), β = √(1 − ω²) (scalars)."""
    beta = math.sqrt(1.0 - omega**2)
    return 4.0 * jnp.arctan(beta / omega * jnp.sin(omega * t) / jnp.cosh(beta * x))


@functools.partial(jax.jit, static_argnames=("length",))
def sine_gordon_force(u: Float[Array, " n"], length: float) -> Float[Array, " n"]:
    """u_tt = D²u − sin u on the grid (spectral D², no dealiasing: sin u is not a product)."""
    return spectral_laplacian(u, length) - jnp.sin(u)


@functools.partial(jax.jit, static_argnames=("length",))
def sine_gordon_hamiltonian(state: Float[Array, "n 2"], length: float) -> Float[Array, ""]:
    """H_Δ = Δx Σ ½v² − ½u D²u + 1 − cos u (module docstring)."""
    u, v = state[:, 0], state[:, 1]
    w = cell_volume(u.shape[0], length, 1)
    return w * jnp.sum(0.5 * v * v - 0.5 * u * spectral_laplacian(u, length) + 1 - jnp.cos(u))


@functools.partial(jax.jit, static_argnames=("length",))
def _sine_gordon_invariants(state: Array, length: float) -> dict[str, Array]:
    u_x = spectral_derivative(state[:, 0], length)
    w = cell_volume(state.shape[0], length, 1)
    return {
        "hamiltonian": sine_gordon_hamiltonian(state, length),
        "momentum": -w * jnp.sum(state[:, 1] * u_x),
    }


@eqx.filter_jit
def solve_sine_gordon(
    state0: Float[Array, "n 2"],
    times: Sequence[float],
    *,
    length: float,
    dt: float,
    t0: float = 0.0,
    method: str = "stormer-verlet",
) -> Float[Array, "T n 2"]:
    """(u, u_t) at ``times`` from a gridded state at t₀: spectral in x, Störmer–Verlet (or
    ``method="rk4"``) in t with steps ≤ Δt. Jittable, batch with ``jax.vmap``.

    Störmer–Verlet is stable for Δt k_max < 2, k_max = πn/L (the fastest grid mode).
    """
    state0 = jnp.asarray(state0)
    if state0.ndim != 2 or state0.shape[1] != 2:
        raise ValueError(f"state0 must have shape (n, 2), got {state0.shape}; use jax.vmap")
    u, v = second_order_save_at(
        lambda q: sine_gordon_force(q, length),
        state0[:, 0],
        state0[:, 1],
        t0=float(t0),
        times=[float(t) for t in times],
        dt=float(dt),
        method=method,
    )
    return jnp.stack([u, v], axis=-1)


class SineGordonBreatherProblem(AbstractExactFieldProblem):
    r"""u_tt = u_xx − sin u on [0, L) with the breather centred at L/2 (module docstring).

    State q = (u, u_t), field u. Build the registered problem with :func:`sine_gordon_1d`.

    Attributes
    ----------
    problem_id : str
        Registry id.
    omega : float
        Breather frequency 0 < ω < 1.
    length : float
        L, large enough that 8(β/ω)(1 + β)e^{−βL/2} < 1e−12.
    t_min, t_max, default_times : float, float, tuple
        Window and certification times.
    grid_size : int
        Reference resolution.
    dt : float
        Step of :meth:`solve` (numerical comparison).
    """

    problem_id: str = eqx.field(static=True)
    omega: float = eqx.field(static=True)
    length: float = eqx.field(static=True)
    t_min: float = eqx.field(static=True)
    t_max: float = eqx.field(static=True)
    default_times: tuple[float, ...] = eqx.field(static=True)
    grid_size: int = eqx.field(static=True)
    dt: float = eqx.field(static=True)
    dim: int = eqx.field(static=True, default=1, init=False)
    n_components: int = eqx.field(static=True, default=2, init=False)
    component_names: tuple[str, ...] = eqx.field(static=True, default=("u", "u_t"), init=False)
    field_components: int = eqx.field(static=True, default=1, init=False)

    def __check_init__(self) -> None:
        name = self.problem_id
        if not 0 < self.omega < 1:
            raise ProblemError(f"{name}: omega must be in (0, 1), got {self.omega}")
        if self.periodisation_error > 1e-12:
            raise ProblemError(
                f"{name}: length {self.length} too small: periodisation error "
                f"{self.periodisation_error:.2g} > 1e-12"
            )
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

    @property
    def beta(self) -> float:
        """β = √(1 − ω²)."""
        return math.sqrt(1.0 - self.omega**2)

    @property
    def periodisation_error(self) -> float:
        """8(β/ω)(1 + β) e^{−βL/2}: bound on |u| + |u_x| at the box edge."""
        b = self.beta
        return 8 * b / self.omega * (1 + b) * math.exp(-b * self.length / 2)

    def parameters(self) -> dict[str, Any]:
        """JSON-serialisable parameters (``problem_json``)."""
        return {
            "id": self.problem_id,
            "equation": "sine-gordon",
            "pde": "u_tt = u_xx - sin u, x in [0, L) periodic",
            "solution": "breather",
            "formula": "u = 4 arctan((beta/omega) sin(omega t) / cosh(beta (x - L/2)))",
            "dim": 1,
            "omega": float(self.omega),
            "beta": float(self.beta),
            "length": float(self.length),
            "periodisation_error": float(self.periodisation_error),
            "t_min": float(self.t_min),
            "t_max": float(self.t_max),
            "default_times": [float(t) for t in self.default_times],
            "grid_size": int(self.grid_size),
            "dt": float(self.dt),
            "state": list(self.component_names),
            "field": ["u"],
            "reference": "exact",
        }

    def grid(self, n: int) -> Float[Array, "n 1"]:
        """x_j = j L / n, shape (n, 1)."""
        return periodic_grid(n, self.length, 1)

    def exact_state(self, t, x) -> Float[Array, " 2"]:
        """(u, u_t): u_t = 4ġ/(1 + g²), g = (β/ω) sin ωt / cosh β(x − L/2)."""
        t, x = pw.check_point(t, x, 1)
        b, w = self.beta, self.omega
        sech = 1.0 / jnp.cosh(b * (x[0] - self.length / 2))
        g = b / w * jnp.sin(w * t) * sech
        g_t = b * jnp.cos(w * t) * sech
        return jnp.stack([4.0 * jnp.arctan(g), 4.0 * g_t / (1.0 + g * g)])

    def initial_state(self, x) -> Float[Array, " 2"]:
        """q(t_min, x)."""
        return self.exact_state(self.t_min, x)

    def state_from_field(self, field_fn: FieldFn, t, x) -> Float[Array, " 2"]:
        """(u, ∂ₜu) of a field model (∂ₜ by ``jax.jvp``)."""
        t, x = pw.check_point(t, x, 1)
        u, u_t = pw.time_derivatives(pw.component(field_fn, 0, 1), t, x, 1)
        return jnp.stack([u, u_t])

    def field_residual(self, field_fn: FieldFn, t, x) -> Float[Array, " 1"]:
        """u_tt − u_xx + sin u by autodiff."""
        t, x = pw.check_point(t, x, 1)
        f = pw.component(field_fn, 0, 1)
        u, _, u_tt = pw.time_derivatives(f, t, x, 2)
        u_xx = pw.hessian(f, t, x)[0, 0]
        return jnp.reshape(u_tt - u_xx + jnp.sin(u), (1,))

    def _check_state(self, state: Array) -> Array:
        state = jnp.asarray(state)
        if state.ndim != 2 or state.shape[1] != 2:
            raise ValueError(
                f"state must have shape (n, 2), got {state.shape}; batch with jax.vmap"
            )
        return state

    def rhs(self, t, state: Float[Array, "n 2"]) -> Float[Array, "n 2"]:
        """(u_t, u_xx − sin u) with the spectral u_xx."""
        state = self._check_state(state)
        force = sine_gordon_force(state[:, 0], self.length)
        return jnp.stack([state[:, 1], force], axis=-1)

    def reference(self, times: Sequence[float], n: int) -> Float[Array, "T n 2"]:
        """The exact breather on grid(n)."""
        return self._exact_on_grid(jnp.asarray(np.asarray(times, dtype=float)), n)

    @eqx.filter_jit
    def _exact_on_grid(self, t: Array, n: int) -> Array:
        x = self.grid(n)
        return jax.vmap(lambda s: jax.vmap(lambda y: self.exact_state(s, y))(x))(t)

    def reference_error(self, times: Sequence[float], n: int) -> Float[Array, " T"]:
        """0: exact (to the periodisation bound, < 1e−12)."""
        return jnp.zeros(len(times))

    def invariants(self, state: Float[Array, "n 2"]) -> dict[str, Float[Array, ""]]:
        """Hamiltonian H_Δ (module docstring) and momentum P = −Δx Σ u_t (Du)."""
        return _sine_gordon_invariants(self._check_state(state), self.length)

    def invariant_laws(self, t) -> dict[str, Float[Array, ""]]:
        """H = 16β and P = 0 (the breather on the line; periodisation error < 1e−12)."""
        zero = jnp.zeros_like(jnp.asarray(t, dtype=float))
        return {"hamiltonian": 16.0 * self.beta + zero, "momentum": zero}

    def solve(
        self, times: Sequence[float], n: int, dt: float, *, method: str = "stormer-verlet"
    ) -> Float[Array, "T n 2"]:
        """The spectral Störmer–Verlet (or RK4) solution from the exact state at t_min."""
        q0 = jax.vmap(self.initial_state)(self.grid(n))
        return solve_sine_gordon(
            q0,
            tuple(float(t) for t in times),
            length=self.length,
            dt=float(dt),
            t0=float(self.t_min),
            method=method,
        )


def sine_gordon_1d() -> SineGordonBreatherProblem:
    """``sine-gordon-1d``: breather ω = 0.5 (period 4π, H = 8√3) on [0, 80), t ∈ [0, 10].

    Default times avoid the zeros of sin ωt (where u ≡ 0 and only u_t carries the state).
    """
    return SineGordonBreatherProblem(
        problem_id="sine-gordon-1d",
        omega=0.5,
        length=80.0,
        t_min=0.0,
        t_max=10.0,
        default_times=(1.0, 2.5, 5.0, 10.0),
        grid_size=512,
        dt=1e-2,
    )
