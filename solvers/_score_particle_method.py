r"""Score-based particle method for the homogeneous Landau equation (Huang & Wang 2025).

Particles :math:`V_i` with fixed weights :math:`w_i` move by forward Euler with the Landau
particle velocity of a *learned* score, refitted to the particles at every step:

.. math::

    V_i^{n+1} = V_i^n + \Delta t\, U_i^n,\qquad
    U_i^n = -\sum_j w_j A(V_i^n - V_j^n)\bigl(s_n(V_i^n) - s_n(V_j^n)\bigr),

where :math:`s_n` is a network :math:`s_\theta(v)` (no time input) fitted at :math:`t_n` by
implicit score matching on the current particles,

.. math::

    J(\theta) = \sum_i w_i\bigl(|s_\theta(V_i^n)|^2 + 2\,\nabla\cdot s_\theta(V_i^n)\bigr)
    \quad(= \|s_\theta - \nabla\log f\|^2_{L^2(f)} - I(f) \text{ for } V_i \sim f),

with the exact divergence (Jacobian trace), a fixed number of full-batch Adamax iterations
per step, warm-started from the previous step's network and optimiser state. The first
network is fitted to the known initial score by relative L² regression,
:math:`\sum_i|s_\theta(V_i^0) - \nabla\log f_0(V_i^0)|^2 / \sum_i|\nabla\log f_0(V_i^0)|^2`,
until it falls below a tolerance (or an iteration cap).

Along each trajectory the log-density is transported with the same score,
:math:`\log f_i^{n+1} = \log f_i^n - \Delta t\,\nabla\cdot U(V_i^n)`
(:func:`solvers.landau_velocity_and_divergence`). As for any score (MATH.md §2.4), the
momentum :math:`\sum_i w_i V_i` is conserved to round-off and forward Euler raises the
second moment by exactly :math:`\Delta t^2\sum_i w_i|U_i^n|^2` per step; both are recorded.

The kernel sums are those of :mod:`solvers._landau_kernel` (O(N) for Maxwell molecules, so
the interaction needs no random batches); the Euler update is :class:`solvers.ForwardEuler`
and the record a :class:`solvers.ParticleTrajectory`. The whole run (initial fit, steps and
refits) is one jitted ``lax.scan``; it is deterministic (full-batch optimisation).

References
----------
.. [1] Y. Huang, L. Wang, "A score-based particle method for homogeneous Landau equation",
   J. Comput. Phys. 536 (2025) 114053; arXiv:2405.05187.
.. [2] A. Hyvärinen, "Estimation of non-normalized statistical models by score matching",
   J. Mach. Learn. Res. 6 (2005) 695–709.
.. [3] D. P. Kingma, J. Ba, "Adam: a method for stochastic optimization", ICLR 2015 (§7.1,
   AdaMax).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float, PRNGKeyArray

from ._landau_kernel import LandauKernel, Method, landau_velocity_and_divergence
from ._landau_particles import ForwardEuler, ParticleTrajectory, time_grid

ScoreNet = Callable[[Float[Array, " d"]], Float[Array, " d"]]


def score_mlp(*, dim: int, width: int, depth: int, key: PRNGKeyArray) -> eqx.nn.MLP:
    """A time-independent score network s_θ(v): SiLU MLP R^d → R^d (Huang & Wang's choice).

    Parameters
    ----------
    dim : int
        d.
    width, depth : int
        Hidden width and number of hidden layers (Huang & Wang: 32 and 5 for BKW).
    key : PRNG key
        Keyword-only; initialises the weights.
    """
    return eqx.nn.MLP(dim, dim, int(width), int(depth), activation=jax.nn.silu, key=key)


class ScoreMatchingSchedule(eqx.Module):
    """How the score network is fitted: initial regression, then ISM refits per step.

    Both use full-batch AdaMax (β₁, β₂, ε as below); the optimiser state carries over from
    step to step (warm start).

    Attributes
    ----------
    iterations : int, default 25
        AdaMax iterations of implicit score matching after every step (0: no refit; the
        score stays the initial fit). Huang & Wang: 50 epochs (BKW).
    learning_rate : float, default 5e-4
        Step size of the refits (Huang & Wang, BKW).
    initial_iterations : int, default 2000
        Cap on the iterations of the initial regression (0: no initial fit).
    initial_tolerance : float, default 1e-4
        Stop the initial regression once the relative L² error is below this (Huang & Wang).
    initial_learning_rate : float, default 1e-3
        Step size of the initial regression (Huang & Wang, BKW).
    b1, b2, eps : float, default 0.9, 0.999, 1e-8
        AdaMax constants (Kingma & Ba 2015).
    """

    iterations: int = eqx.field(static=True, default=25)
    learning_rate: float = eqx.field(static=True, default=5e-4)
    initial_iterations: int = eqx.field(static=True, default=2000)
    initial_tolerance: float = eqx.field(static=True, default=1e-4)
    initial_learning_rate: float = eqx.field(static=True, default=1e-3)
    b1: float = eqx.field(static=True, default=0.9)
    b2: float = eqx.field(static=True, default=0.999)
    eps: float = eqx.field(static=True, default=1e-8)

    def __check_init__(self) -> None:
        for name in ("iterations", "initial_iterations"):
            value = getattr(self, name)
            if int(value) != value or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value}")
        for name in ("learning_rate", "initial_learning_rate", "initial_tolerance", "eps"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value}")
        if not (0 <= self.b1 < 1 and 0 <= self.b2 < 1):
            raise ValueError(f"b1, b2 must lie in [0, 1), got {self.b1}, {self.b2}")

    def parameters(self) -> dict[str, Any]:
        """JSON-serialisable form, for provenance."""
        return {
            "optimiser": "adamax",
            "iterations": int(self.iterations),
            "learning_rate": float(self.learning_rate),
            "initial_iterations": int(self.initial_iterations),
            "initial_tolerance": float(self.initial_tolerance),
            "initial_learning_rate": float(self.initial_learning_rate),
            "b1": float(self.b1),
            "b2": float(self.b2),
            "eps": float(self.eps),
        }


class ScoreParticleSolution(eqx.Module):
    """Result of :func:`score_particle_method`.

    Attributes
    ----------
    trajectory : ParticleTrajectory
        Positions, weights, transported log-density (when an initial one was given),
        entropy-rate estimates, per-grid-time second moment and momentum, and the per-step
        increments Δt² Σ w_i |U_i^n|².
    score : array (n_save, N, d)
        s_n(V_i) at the save times (the network fitted at that time).
    score_divergence : array (n_save, N)
        ∇·s_n(V_i) (Jacobian trace).
    score_matching : array (n_steps + 1,)
        J(θ_n) on the particles at every grid time, after that time's fit.
    initial_error : scalar array
        Relative L² error of the initial fit when it stopped (NaN without an initial fit).
    initial_iterations : scalar int array
        Iterations the initial fit used.
    score_net : PyTree
        The network after the last refit.
    """

    trajectory: ParticleTrajectory
    score: Array
    score_divergence: Array
    score_matching: Array
    initial_error: Array
    initial_iterations: Array
    score_net: Any


def _adamax(schedule: ScoreMatchingSchedule, learning_rate: float):
    """AdaMax on a pytree: m ← β₁m + (1−β₁)g, u ← max(β₂u, |g|), θ ← θ − η m/((1−β₁^k)(u+ε))."""

    def init(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return zeros, zeros, jnp.zeros((), jnp.int32)

    def update(params, state, grads):
        m, u, k = state
        k = k + 1
        m = jax.tree.map(lambda a, g: schedule.b1 * a + (1 - schedule.b1) * g, m, grads)
        u = jax.tree.map(lambda a, g: jnp.maximum(schedule.b2 * a, jnp.abs(g)), u, grads)
        scale = learning_rate / (1 - schedule.b1 ** k.astype(jnp.result_type(float)))
        params = jax.tree.map(lambda p, a, b: p - scale * a / (b + schedule.eps), params, m, u)
        return params, (m, u, k)

    return init, update


def _values_and_jacobians(net: ScoreNet, v: Array) -> tuple[Array, Array]:
    """s(V_i) and ∇s(V_i) (``jac[i, k, l] = ∂_l s_k``) by d forward passes per particle."""
    basis = jnp.eye(v.shape[-1], dtype=v.dtype)

    def one(x):
        return jax.vmap(lambda e: jax.jvp(net, (x,), (e,)), out_axes=(None, 1))(basis)

    return jax.vmap(one)(v)


def _ism(net: ScoreNet, v: Array, w: Array) -> Array:
    s, jac = _values_and_jacobians(net, v)
    return jnp.sum(w * (jnp.sum(s * s, -1) + 2.0 * jnp.trace(jac, axis1=-2, axis2=-1)))


def _regression(net: ScoreNet, v: Array, target: Array) -> Array:
    s = jax.vmap(net)(v)
    return jnp.sum((s - target) ** 2) / jnp.sum(target**2)


def score_particle_method(
    score_net: Any,
    kernel: LandauKernel,
    v0: Float[Array, "N d"],
    w: Float[Array, " N"],
    *,
    t0: float,
    dt: float,
    save_times: Sequence[float],
    initial_score: Float[Array, "N d"] | None = None,
    log_density0: Float[Array, " N"] | None = None,
    schedule: ScoreMatchingSchedule | None = None,
    method: Method = "auto",
) -> ScoreParticleSolution:
    r"""Run the score-based particle method of Huang & Wang (module docstring).

    .. math::

        V^{n+1}_i = V^n_i + \Delta t\,U_i^n,\quad
        U_i^n = -\sum_j w_j A(V^n_i - V^n_j)(s_n(V^n_i) - s_n(V^n_j)),\quad
        s_{n+1} = \text{ISM refit of } s_n \text{ on } V^{n+1}

    on t_n = t₀ + nΔt up to the last save time.

    Parameters
    ----------
    score_net : equinox module
        Initial network, a single-sample map ``(d,) -> (d,)`` (e.g. :func:`score_mlp`).
    kernel : LandauKernel
        A(z) = C_γ |z|^γ (|z|² I − z zᵀ).
    v0 : array (N, d)
        Initial particles V⁰_i.
    w : array (N,)
        Weights w_i (1/N for samples).
    t0, dt : float
        Initial time and step Δt > 0.
    save_times : sequence of float
        Increasing times on the grid t₀ + nΔt (t₀ allowed).
    initial_score : array (N, d), optional
        ∇log f₀(V⁰_i), the target of the initial regression (skipped when None, or when
        ``schedule.initial_iterations`` is 0).
    log_density0 : array (N,), optional
        log f₀(V⁰_i); when given, log f is transported along the trajectories.
    schedule : ScoreMatchingSchedule, optional
        Optimisation settings (default ``ScoreMatchingSchedule()``).
    method : {"auto", "blocked", "moments", "naive"}
        Kernel evaluation method of :func:`solvers.landau_velocity_and_divergence`.

    Returns
    -------
    ScoreParticleSolution

    References
    ----------
    .. [1] Y. Huang, L. Wang, J. Comput. Phys. 536 (2025) 114053.
    """
    if jnp.ndim(v0) != 2:
        raise ValueError(
            f"v0 must have shape (N, d), got {jnp.shape(v0)}; batch ensembles with jax.vmap"
        )
    n, d = jnp.shape(v0)
    for name, arr, shape in (
        ("w", w, (n,)),
        ("initial_score", initial_score, (n, d)),
        ("log_density0", log_density0, (n,)),
    ):
        if arr is not None and jnp.shape(arr) != shape:
            raise ValueError(f"{name} must have shape {shape}, got {jnp.shape(arr)}")
    schedule = ScoreMatchingSchedule() if schedule is None else schedule
    n_steps, indices = time_grid(float(t0), float(dt), save_times)
    n_save = len(indices)
    slot = np.full(n_steps + 1, n_save, dtype=np.int32)
    slot[indices] = np.arange(n_save, dtype=np.int32)
    dtype = jnp.result_type(v0)
    params, static = eqx.partition(score_net, eqx.is_array)
    out = _run(
        params,
        static,
        schedule,
        kernel,
        method,
        jnp.asarray(v0),
        jnp.asarray(w),
        None if initial_score is None else jnp.asarray(initial_score),
        None if log_density0 is None else jnp.asarray(log_density0),
        jnp.asarray(t0, dtype=dtype),
        jnp.asarray(dt, dtype=dtype),
        jnp.asarray(slot),
        n_save,
    )
    params, buffers, diags, init_error, init_iters = out
    positions, scores, divergences, log_density = buffers
    m2, momentum, rate, increment, ism = diags
    t_grid = t0 + jnp.arange(n_steps + 1, dtype=dtype) * dt
    trajectory = ParticleTrajectory(
        times=t_grid[indices],
        positions=positions,
        weights=jnp.asarray(w),
        log_density=log_density,
        entropy=None if log_density is None else log_density @ jnp.asarray(w),
        entropy_rate=rate[indices],
        grid_times=t_grid,
        grid_second_moment=m2,
        grid_momentum=momentum,
        grid_entropy_rate=rate,
        second_moment_increment=increment[:n_steps],
        stepper=ForwardEuler.name,
    )
    return ScoreParticleSolution(
        trajectory=trajectory,
        score=scores,
        score_divergence=divergences,
        score_matching=ism,
        initial_error=init_error,
        initial_iterations=init_iters,
        score_net=eqx.combine(params, static),
    )


@eqx.filter_jit
def _run(params, static, schedule, kernel, method, v0, w, target, logf0, t0, dt, slot, n_save):
    net = lambda p: eqx.combine(p, static)  # noqa: E731
    n_steps = slot.shape[0] - 1

    # -- initial regression on the known score --------------------------------------------
    init_fit, init_update = _adamax(schedule, schedule.initial_learning_rate)
    if target is None or schedule.initial_iterations == 0:
        init_error = jnp.full((), jnp.nan, v0.dtype)
        init_iters = jnp.zeros((), jnp.int32)
    else:
        loss_and_grad = jax.value_and_grad(lambda p: _regression(net(p), v0, target))

        def fitting(carry):
            _, _, error, k = carry
            return (error > schedule.initial_tolerance) & (k < schedule.initial_iterations)

        def fit_step(carry):
            p, state, _, k = carry
            error, g = loss_and_grad(p)
            p, state = init_update(p, state, g)
            return p, state, error, k + 1

        inf = jnp.full((), jnp.inf, v0.dtype)
        params, _, _, init_iters = lax.while_loop(
            fitting, fit_step, (params, init_fit(params), inf, jnp.zeros((), jnp.int32))
        )
        init_error = _regression(net(params), v0, target)

    # -- steps with refits ---------------------------------------------------------------
    refit_init, refit_update = _adamax(schedule, schedule.learning_rate)
    ism_grad = jax.grad(lambda p, v: _ism(net(p), v, w))
    stepper = ForwardEuler()

    def refit(p, state, v):
        def one(_, carry):
            p, state = carry
            return refit_update(p, state, ism_grad(p, v))

        return lax.fori_loop(0, schedule.iterations, one, (p, state))

    def write(buffer, index, value):
        return None if buffer is None else lax.dynamic_update_index_in_dim(buffer, value, index, 0)

    def body(carry, k):
        p, state, v, logf, buffers = carry
        s, jac = _values_and_jacobians(net(p), v)
        div_s = jnp.trace(jac, axis1=-2, axis2=-1)
        u, div_u = landau_velocity_and_divergence(kernel, v, w, s, jac, method=method)
        diag = (
            jnp.sum(w * jnp.sum(v * v, -1)),
            w @ v,
            # centring s removes s̄·Σ w_i U_i (zero in exact arithmetic) from the round-off
            jnp.sum(w * jnp.sum((s - jnp.mean(s, axis=0)) * u, -1)),
            dt**2 * jnp.sum(w * jnp.sum(u * u, -1)),
            jnp.sum(w * (jnp.sum(s * s, -1) + 2.0 * div_s)),
        )
        index = slot[k]
        buffers = tuple(
            write(b, index, value) for b, value in zip(buffers, (v, s, div_s, logf), strict=True)
        )
        dy = (u, None if logf is None else -div_u)

        def advance(args):
            p, state, y = args
            y = stepper.step(None, t0 + k * dt, dt, y, dy)
            p, state = refit(p, state, y[0])
            return p, state, y

        p, state, (v, logf) = lax.cond(
            k < n_steps, advance, lambda args: args, (p, state, (v, logf))
        )
        return (p, state, v, logf, buffers), diag

    n, d = v0.shape
    buffers = (
        jnp.zeros((n_save + 1, n, d), v0.dtype),
        jnp.zeros((n_save + 1, n, d), v0.dtype),
        jnp.zeros((n_save + 1, n), v0.dtype),
        None if logf0 is None else jnp.zeros((n_save + 1, n), v0.dtype),
    )
    init = (params, refit_init(params), v0, logf0, buffers)
    (params, _, _, _, buffers), diags = lax.scan(body, init, jnp.arange(n_steps + 1))
    buffers = tuple(None if b is None else b[:n_save] for b in buffers)
    return params, buffers, diags, init_error, init_iters
