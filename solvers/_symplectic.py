r"""Integrators for second-order systems q̈ = f(q): Störmer–Verlet and, for comparison, RK4.

**Störmer–Verlet** (velocity form, "kick–drift–kick"):

.. math::

    v_{n+1/2} = v_n + \tfrac{h}{2} f(q_n),\quad
    q_{n+1} = q_n + h\, v_{n+1/2},\quad
    v_{n+1} = v_{n+1/2} + \tfrac{h}{2} f(q_{n+1}).

Second order, symmetric and symplectic when f = −∇V (a separable Hamiltonian
H = ½|v|² + V(q), in the inner product in which ∇ is taken). By backward error analysis the
numerical flow is, up to exponentially small terms, the exact flow of a modified Hamiltonian
H̃ = H + O(h²), so the energy error stays O(h²) *without drift* over times exponentially long
in 1/h (Hairer, Lubich & Wanner 2006, Thm. IX.8.1). One force evaluation per step (the force at
q_{n+1} is reused). Linear stability for an oscillation of frequency ω needs hω < 2.

**RK4** (classical Runge–Kutta on y = (q, v), y' = (v, f(q))) is fourth order but not
symplectic: on a harmonic oscillator its amplification |R(iy)|² = 1 − y⁶/72 + y⁸/576, y = hω,
is < 1 for 0 < y < 2√2, so energy decays by a fixed fraction per step — a drift linear in t
(the comparison in tests/validation/test_pde_solver_orders.py).

Both take a time-independent force f acting on one state (any array shape), run in one
``lax.scan`` and can record an observable (an energy) at every step.

References
----------
.. [1] E. Hairer, C. Lubich, G. Wanner, "Geometric Numerical Integration", 2nd ed., Springer
   (2006), §I.1.4, §VI.3, §IX.8.
.. [2] L. Verlet, Phys. Rev. 159 (1967) 98–103.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float

from ._stepping import integrate_to_times

Force = Callable[[Float[Array, "*shape"]], Float[Array, "*shape"]]
Observe = Callable[[Float[Array, "*shape"], Float[Array, "*shape"]], Any]


def stormer_verlet_step(force: Force, q: Array, v: Array, h: Array) -> tuple[Array, Array]:
    """One kick–drift–kick step of size h (two force evaluations; see :func:`stormer_verlet`)."""
    v_half = v + 0.5 * h * force(q)
    q = q + h * v_half
    return q, v_half + 0.5 * h * force(q)


def rk4_second_order_step(force: Force, q: Array, v: Array, h: Array) -> tuple[Array, Array]:
    """One classical RK4 step for (q, v)' = (v, f(q))."""
    k1q, k1v = v, force(q)
    k2q, k2v = v + 0.5 * h * k1v, force(q + 0.5 * h * k1q)
    k3q, k3v = v + 0.5 * h * k2v, force(q + 0.5 * h * k2q)
    k4q, k4v = v + h * k3v, force(q + h * k3q)
    q = q + h / 6 * (k1q + 2 * k2q + 2 * k3q + k4q)
    return q, v + h / 6 * (k1v + 2 * k2v + 2 * k3v + k4v)


_STEPS = {"stormer-verlet": stormer_verlet_step, "rk4": rk4_second_order_step}


def _check_method(method: str):
    if method not in _STEPS:
        raise ValueError(f"method must be one of {sorted(_STEPS)}, got {method!r}")
    return _STEPS[method]


def stormer_verlet(
    force: Force,
    q0: Array,
    v0: Array,
    *,
    dt: float,
    n_steps: int,
    observe: Observe | None = None,
) -> tuple[tuple[Array, Array], Any]:
    """``n_steps`` Störmer–Verlet steps of q̈ = f(q) in one ``lax.scan``.

    The force at q_{n+1} is carried to the next step: one evaluation per step.

    Returns
    -------
    (q, v) : arrays
        Final state.
    observed : pytree or None
        ``observe(q_n, v_n)`` for n = 1, …, n_steps stacked on a leading axis.
    """
    q0, v0 = jnp.asarray(q0), jnp.asarray(v0)

    def body(carry, _):
        q, v, fq = carry
        v_half = v + 0.5 * dt * fq
        q = q + dt * v_half
        fq = force(q)
        v = v_half + 0.5 * dt * fq
        return (q, v, fq), None if observe is None else observe(q, v)

    (q, v, _), observed = lax.scan(body, (q0, v0, force(q0)), None, length=int(n_steps))
    return (q, v), observed


def rk4_second_order(
    force: Force,
    q0: Array,
    v0: Array,
    *,
    dt: float,
    n_steps: int,
    observe: Observe | None = None,
) -> tuple[tuple[Array, Array], Any]:
    """``n_steps`` classical RK4 steps of (q, v)' = (v, f(q)) (the non-symplectic comparison)."""

    def body(carry, _):
        q, v = rk4_second_order_step(force, *carry, dt)
        return (q, v), None if observe is None else observe(q, v)

    (q, v), observed = lax.scan(body, (jnp.asarray(q0), jnp.asarray(v0)), None, length=int(n_steps))
    return (q, v), observed


def second_order_save_at(
    force: Force,
    q0: Array,
    v0: Array,
    *,
    t0: float,
    times: Sequence[float],
    dt: float,
    method: str = "stormer-verlet",
) -> tuple[Array, Array]:
    """(q, v) at each of ``times`` with steps ≤ Δt (:mod:`solvers._stepping`).

    Parameters
    ----------
    method : {"stormer-verlet", "rk4"}
        The integrator.
    """
    step = _check_method(method)

    def make_step(h):
        return lambda state, t: step(force, *state, h)

    return integrate_to_times(
        make_step, (jnp.asarray(q0), jnp.asarray(v0)), t0=t0, times=times, dt=dt
    )
