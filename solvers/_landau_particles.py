"""Deterministic Landau particle transport for a given score field.

Particles V_i with fixed weights w_i move with the Landau particle velocity

    dV_i/dt = U_i = −Σ_j w_j A(V_i − V_j) (s_i − s_j),    s_i = s(t, V_i) ≈ ∇log f(t, V_i),

and, along each trajectory, the log-density of the transported measure obeys

    d/dt log f(t, V_i) = −∇·U(V_i),
    ∇·U(v) = −Σ_j w_j [A(v − V_j) : ∇s(v) − (d−1) C_γ |v − V_j|^γ (v − V_j)·(s(v) − s_j)],

which needs the score Jacobian ∇s at the particles. The particle entropy estimate is
H_N = Σ_i w_i log f_i and its rate is estimated by

    Ḣ_N = Σ_i w_i s_i·U_i = −½ Σ_{i,j} w_i w_j (s_i − s_j)ᵀ A(V_i − V_j) (s_i − s_j) ≤ 0.

The score comes from a *score provider* (:class:`AbstractScoreProvider`): an analytic or
learned single-sample function (:class:`ScoreFunction`), or the blob score computed from the
particles themselves (:class:`solvers._blob.BlobScore`). The velocity, its divergence and the
kernel are evaluated by :mod:`solvers._landau_kernel` (O(N) memory, O(N) time for γ = 0).

**Time stepping.** The augmented state y = (V, log f) obeys dy/dt = (U, −∇·U); a stepper
(:class:`ForwardEuler`, order 1; :class:`Heun`, explicit trapezoid, order 2;
:class:`RK4`, classical Runge–Kutta, order 4) advances it on a uniform grid t_n = t₀ + nΔt
inside one ``lax.scan`` (one compilation for the whole run).

**Conservation after time discretisation** (MATH.md §2.4). Σ_i w_i U_i = 0 and
Σ_i w_i V_i·U_i = 0 for any score (antisymmetry, A(z) z = 0). Hence every explicit
Runge–Kutta step conserves the momentum Σ w_i V_i to round-off, and forward Euler changes
the second moment M₂ = Σ w_i |V_i|² by exactly

    M₂^{n+1} − M₂^n = Δt² Σ_i w_i |U_i^n|²   (> 0; the energy ½M₂ by half of it),

an O(Δt) drift over a fixed window. Higher-order schemes drift by O(Δt^p) (observed in the
tests, not a law).

References
----------
.. [1] J. A. Carrillo, J. Hu, L. Wang, J. Wu, "A particle method for the homogeneous Landau
   equation", J. Comput. Phys. X 7 (2020) 100066.
.. [2] Y. Huang, L. Wang, "A score-based particle method for homogeneous Landau equation",
   J. Comput. Phys. 536 (2025) 114053 (log-density update and entropy estimate).
.. [3] V. Ilin, J. Hu, Z. Wang, arXiv:2405.10392 (2024) (score-based transport modelling
   for the Landau equation: the same particle ODE with a learned score).
.. [4] E. Hairer, S. P. Nørsett, G. Wanner, "Solving Ordinary Differential Equations I",
   Springer 1993, §II.1 (Runge–Kutta orders).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float

from ._landau_kernel import LandauKernel, Method, landau_velocity, landau_velocity_and_divergence

ScoreFn = Callable[[Float[Array, ""], Float[Array, " d"]], Float[Array, " d"]]
State = tuple[Array, Array | None]


# -- score providers ----------------------------------------------------------------------


class AbstractScoreProvider(eqx.Module):
    """Supplies score values s_i (and Jacobians ∇s_i) at the particles of one ensemble."""

    @abc.abstractmethod
    def scores(
        self, t: Float[Array, ""], v: Float[Array, "N d"], w: Float[Array, " N"]
    ) -> Float[Array, "N d"]:
        """s(t, V_i) for every particle."""

    @abc.abstractmethod
    def scores_and_jacobians(
        self, t: Float[Array, ""], v: Float[Array, "N d"], w: Float[Array, " N"]
    ) -> tuple[Float[Array, "N d"], Float[Array, "N d d"]]:
        """(s_i, ∇s_i) with ``jac[i, k, l] = ∂_l s_k(V_i)``, for the log-density update."""

    @abc.abstractmethod
    def parameters(self) -> dict[str, Any]:
        """JSON-serialisable description, for provenance."""


class ScoreFunction(AbstractScoreProvider):
    """A single-sample score field ``score_fn(t, v) -> (d,)``, analytic or learned.

    The field is vmapped over particles; its Jacobian is ``jax.jacfwd`` in v, vmapped. The
    weights are not used. A learned model (an equinox module) is a pytree field, so its
    parameters are traced, not baked into the compiled step; a plain function is static
    (compiled in, so pass the same function object to reuse a compilation).

    Attributes
    ----------
    score_fn : callable
        s(t, v) for one v of shape ``(d,)`` and a scalar t.
    name : str, default "score-function"
        Recorded by :meth:`parameters`.
    """

    score_fn: ScoreFn
    name: str = eqx.field(static=True, default="score-function")

    def scores(self, t, v, w):
        return jax.vmap(self.score_fn, in_axes=(None, 0))(t, v)

    def scores_and_jacobians(self, t, v, w):
        s = self.scores(t, v, w)
        jac = jax.vmap(jax.jacfwd(self.score_fn, argnums=1), in_axes=(None, 0))(t, v)
        return s, jac

    def parameters(self) -> dict[str, Any]:
        return {"provider": self.name}


# -- steppers -----------------------------------------------------------------------------

Rhs = Callable[[Array, State], State]


def _axpy(y: State, h: Array, k: State) -> State:
    return jax.tree.map(lambda a, b: a + h * b, y, k)


class AbstractParticleStepper(eqx.Module):
    """An explicit one-step scheme for the augmented particle ODE dy/dt = F(t, y).

    ``step(rhs, t, dt, y, k1)`` returns y_{n+1} given the first stage k1 = F(t, y), which the
    driver evaluates once (it also yields the diagnostics of step n).
    """

    name: eqx.AbstractClassVar[str]
    order: eqx.AbstractClassVar[int]

    @abc.abstractmethod
    def step(self, rhs: Rhs, t: Array, dt: Array, y: State, k1: State) -> State:
        """One step from t to t + dt."""


class ForwardEuler(AbstractParticleStepper):
    """y_{n+1} = y_n + Δt F(t_n, y_n); order 1, one evaluation per step (Huang & Wang 2025)."""

    name: ClassVar[str] = "forward-euler"
    order: ClassVar[int] = 1

    def step(self, rhs, t, dt, y, k1):
        return _axpy(y, dt, k1)


class Heun(AbstractParticleStepper):
    """Explicit trapezoid (Heun, RK2): y' = y + ½Δt [k1 + F(t + Δt, y + Δt k1)]; order 2."""

    name: ClassVar[str] = "heun"
    order: ClassVar[int] = 2

    def step(self, rhs, t, dt, y, k1):
        k2 = rhs(t + dt, _axpy(y, dt, k1))
        return _axpy(y, 0.5 * dt, jax.tree.map(jnp.add, k1, k2))


class RK4(AbstractParticleStepper):
    """Classical fourth-order Runge–Kutta; order 4, four evaluations per step."""

    name: ClassVar[str] = "rk4"
    order: ClassVar[int] = 4

    def step(self, rhs, t, dt, y, k1):
        half = 0.5 * dt
        k2 = rhs(t + half, _axpy(y, half, k1))
        k3 = rhs(t + half, _axpy(y, half, k2))
        k4 = rhs(t + dt, _axpy(y, dt, k3))
        incr = jax.tree.map(lambda a, b, c, e: (a + 2.0 * b + 2.0 * c + e) / 6.0, k1, k2, k3, k4)
        return _axpy(y, dt, incr)


# -- trajectory record --------------------------------------------------------------------


class ParticleTrajectory(eqx.Module):
    """Record of a particle run: states at the save times, scalar diagnostics at every step.

    Attributes
    ----------
    times : array (n_save,)
        Save times.
    positions : array (n_save, N, d)
        V_i at the save times.
    weights : array (N,)
        w_i (fixed).
    log_density : array (n_save, N) or None
        Transported log f(t, V_i); ``None`` when no initial log-density was given.
    entropy : array (n_save,) or None
        H_N = Σ_i w_i log f_i (``None`` as above).
    entropy_rate : array (n_save,)
        Ḣ_N = Σ_i w_i s_i·U_i at the save times.
    grid_times : array (n_steps + 1,)
        t_n = t₀ + nΔt.
    grid_second_moment : array (n_steps + 1,)
        M₂ = Σ_i w_i |V_i|² at every grid time.
    grid_momentum : array (n_steps + 1, d)
        Σ_i w_i V_i at every grid time.
    grid_entropy_rate : array (n_steps + 1,)
        Ḣ_N at every grid time.
    second_moment_increment : array (n_steps,)
        Δt² Σ_i w_i |U_i^n|², the exact forward-Euler change of M₂ in step n (MATH.md §2.4).
    stepper : str
        Scheme name.
    """

    times: Array
    positions: Array
    weights: Array
    log_density: Array | None
    entropy: Array | None
    entropy_rate: Array
    grid_times: Array
    grid_second_moment: Array
    grid_momentum: Array
    grid_entropy_rate: Array
    second_moment_increment: Array
    stepper: str = eqx.field(static=True)

    def momentum(self) -> Float[Array, "n_save d"]:
        """Σ_i w_i V_i at the save times."""
        return jnp.einsum("i,sid->sd", self.weights, self.positions)

    def energy(self) -> Float[Array, " n_save"]:
        """Kinetic energy ½ Σ_i w_i |V_i|² at the save times."""
        return 0.5 * jnp.einsum("i,sid->s", self.weights, self.positions**2)


# -- driver -------------------------------------------------------------------------------


def time_grid(
    t0: float, dt: float, save_times: Sequence[float], *, rtol: float = 1e-9
) -> tuple[int, np.ndarray]:
    """Number of steps and the grid index of each save time on t_n = t₀ + nΔt.

    Save times must be increasing, ≥ t₀, and on the grid to ``rtol`` (relative to Δt).

    Returns
    -------
    n_steps : int
        Steps to the last save time.
    indices : numpy int array (n_save,)
        n with t_n = save time.
    """
    times = np.asarray(save_times, dtype=float)
    if times.ndim != 1 or times.size == 0:
        raise ValueError(f"save_times must be a non-empty 1-d sequence, got shape {times.shape}")
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be positive, got {dt}")
    if np.any(np.diff(times) <= 0) or times[0] < t0:
        raise ValueError(f"save_times must be strictly increasing and >= t0 = {t0}, got {times}")
    steps = (times - t0) / dt
    indices = np.rint(steps).astype(np.int64)
    if np.any(np.abs(steps - indices) > rtol * np.maximum(1.0, steps)):
        raise ValueError(f"save_times {times} are not on the grid t0 + n dt (t0 = {t0}, dt = {dt})")
    return int(indices[-1]), indices


def transport_particles(
    stepper: AbstractParticleStepper,
    provider: AbstractScoreProvider,
    kernel: LandauKernel,
    v0: Float[Array, "N d"],
    w: Float[Array, " N"],
    *,
    t0: float,
    dt: float,
    save_times: Sequence[float],
    log_density0: Float[Array, " N"] | None = None,
    method: Method = "auto",
    step_bucket: int = 1,
) -> ParticleTrajectory:
    r"""Integrate the Landau particle system dV_i/dt = U_i (and log f along trajectories).

    .. math::

        U_i = -\sum_j w_j A(V_i - V_j)\,(s_i - s_j), \qquad
        \frac{d}{dt}\log f(t, V_i) = -\nabla\cdot U(V_i)

    on the uniform grid t_n = t₀ + nΔt up to the last save time, inside one ``lax.scan``.
    The scan runs n_steps + 1 iterations (the last one only evaluates the diagnostics of the
    final state) rounded up to a multiple of ``step_bucket``; iterations past the end are
    skipped by ``lax.cond``. One compilation serves every call with the same stepper,
    provider, kernel, N, number of save times and scan length; t₀, Δt and the step count
    are traced. The time arguments must be concrete Python numbers; the arrays (and a
    learned score model's parameters) may be traced, so the function can be wrapped in
    ``jax.jit``, ``jax.vmap`` (over ensembles) and differentiated (reverse mode stores every
    iteration's carry, which includes the save buffer: O(n_steps · n_save · N · d) memory).

    Parameters
    ----------
    stepper : AbstractParticleStepper
        :class:`ForwardEuler`, :class:`Heun` or :class:`RK4`.
    provider : AbstractScoreProvider
        Score at the particles (:class:`ScoreFunction` or the blob score).
    kernel : LandauKernel
        A(z) = C_γ |z|^γ (|z|² I − z zᵀ).
    v0 : array (N, d)
        Initial positions V_i(t₀).
    w : array (N,)
        Weights w_i (1/N for samples, h^d f₀(v_i) on a grid).
    t0, dt : float
        Initial time and step Δt > 0.
    save_times : sequence of float
        Increasing times on the grid (t₀ itself allowed).
    log_density0 : array (N,), optional
        log f(t₀, V_i(t₀)); when given, log f is transported (needs score Jacobians).
    method : {"auto", "blocked", "moments", "naive"}
        Kernel evaluation method (:func:`~solvers._landau_kernel.landau_velocity`).
    step_bucket : int, default 1
        Round the scan length up to a multiple of this, so that runs with different Δt
        share one compilation (a convergence study); skipped iterations cost ~nothing.

    Returns
    -------
    ParticleTrajectory

    References
    ----------
    .. [1] Y. Huang, L. Wang, J. Comput. Phys. 536 (2025) 114053.
    .. [2] J. A. Carrillo, J. Hu, L. Wang, J. Wu, J. Comput. Phys. X 7 (2020) 100066.
    """
    if jnp.ndim(v0) != 2:
        raise ValueError(
            f"v0 must have shape (N, d), got {jnp.shape(v0)}; batch ensembles with jax.vmap"
        )
    n = jnp.shape(v0)[0]
    if jnp.shape(w) != (n,):
        raise ValueError(f"w must have shape ({n},), got {jnp.shape(w)}")
    if log_density0 is not None and jnp.shape(log_density0) != (n,):
        raise ValueError(f"log_density0 must have shape ({n},), got {jnp.shape(log_density0)}")
    if int(step_bucket) != step_bucket or step_bucket < 1:
        raise ValueError(f"step_bucket must be a positive integer, got {step_bucket}")
    n_steps, indices = time_grid(float(t0), float(dt), save_times)
    length = -(-(n_steps + 1) // step_bucket) * step_bucket
    # slot[n] is where the state at grid time t_n is saved: its index among the save times,
    # or the spare slot n_save (dropped) when t_n is not a save time or n > n_steps
    n_save = len(indices)
    slot = np.full(length + 1, n_save, dtype=np.int32)
    slot[indices] = np.arange(n_save, dtype=np.int32)
    dtype = jnp.result_type(v0)
    record = _integrate(
        stepper,
        provider,
        kernel,
        method,
        jnp.asarray(v0),
        jnp.asarray(w),
        None if log_density0 is None else jnp.asarray(log_density0),
        jnp.asarray(t0, dtype=dtype),
        jnp.asarray(dt, dtype=dtype),
        jnp.asarray(n_steps),
        jnp.asarray(slot),
        length,
        n_save,
    )
    positions, log_density, m2, mom, rate, incr = record
    t_grid = t0 + jnp.arange(n_steps + 1, dtype=dtype) * dt
    rate = rate[: n_steps + 1]
    return ParticleTrajectory(
        times=t_grid[indices],
        positions=positions,
        weights=jnp.asarray(w),
        log_density=log_density,
        entropy=None if log_density is None else log_density @ jnp.asarray(w),
        entropy_rate=rate[indices],
        grid_times=t_grid,
        grid_second_moment=m2[: n_steps + 1],
        grid_momentum=mom[: n_steps + 1],
        grid_entropy_rate=rate,
        second_moment_increment=incr[:n_steps],
        stepper=stepper.name,
    )


def _evaluate(provider, kernel, method, w, t, y: State) -> tuple[State, Array]:
    """(dy/dt, s) at one state: U from the scores; −∇·U only if log f is tracked."""
    v, logf = y
    if logf is None:
        s = provider.scores(t, v, w)
        return (landau_velocity(kernel, v, w, s, method=method), None), s
    s, jac = provider.scores_and_jacobians(t, v, w)
    u, div = landau_velocity_and_divergence(kernel, v, w, s, jac, method=method)
    return (u, -div), s


def _entropy_rate(w: Array, s: Array, u: Array) -> Array:
    # centring s removes s̄·Σ w_i U_i (zero in exact arithmetic) from the round-off
    return jnp.sum(w * jnp.sum((s - jnp.mean(s, axis=0)) * u, axis=-1))


@eqx.filter_jit
def _integrate(
    stepper, provider, kernel, method, v0, w, logf0, t0, dt, n_steps, slot, length, n_save
):
    """The scan: saved states and per-iteration diagnostics (padded to ``length``)."""

    def rhs(t, y):
        return _evaluate(provider, kernel, method, w, t, y)[0]

    def write(buffer, index, value):
        return None if buffer is None else lax.dynamic_update_index_in_dim(buffer, value, index, 0)

    def active(n, y):
        t = t0 + n * dt
        k1, s1 = _evaluate(provider, kernel, method, w, t, y)
        u1, v = k1[0], y[0]
        diag = (
            jnp.sum(w * jnp.sum(v * v, -1)),
            w @ v,
            _entropy_rate(w, s1, u1),
            dt**2 * jnp.sum(w * jnp.sum(u1 * u1, -1)),
        )
        y_new = lax.cond(n < n_steps, lambda y: stepper.step(rhs, t, dt, y, k1), lambda y: y, y)
        return y_new, diag

    def idle(n, y):
        zero = jnp.zeros((), v0.dtype)
        return y, (zero, jnp.zeros(v0.shape[1], v0.dtype), zero, zero)

    def body(carry, n):
        y, buf_v, buf_l = carry
        y_new, diag = lax.cond(n <= n_steps, active, idle, n, y)
        carry = (y_new, write(buf_v, slot[n + 1], y_new[0]), write(buf_l, slot[n + 1], y_new[1]))
        return carry, diag

    buf_v = write(jnp.zeros((n_save + 1, *v0.shape), v0.dtype), slot[0], v0)
    buf_l = (
        None
        if logf0 is None
        else write(jnp.zeros((n_save + 1, *logf0.shape), logf0.dtype), slot[0], logf0)
    )
    init = ((v0, logf0), buf_v, buf_l)
    (_, buf_v, buf_l), diags = lax.scan(body, init, jnp.arange(length))
    return (buf_v[:n_save], None if buf_l is None else buf_l[:n_save], *diags)
