"""Fixed-step time integration to a list of save times, in one nested ``lax.scan``.

Save times t₀ ≤ t₁ ≤ … ≤ t_T need not lie on a common grid. Every interval [t_{i−1}, t_i]
is split into the same number M = max_i ⌈(t_i − t_{i−1})/Δt⌉ of equal steps
h_i = (t_i − t_{i−1})/M ≤ Δt, so that one compiled inner scan of M steps serves every interval
(the outer scan runs over intervals; the step size is traced). Shorter intervals get smaller
steps, never larger ones, so the error bound of a run with step Δt holds; a repeated save time
gives h = 0 (the state is copied). Runs are jittable, batch with ``jax.vmap`` over initial
states, and are reverse-differentiable (scans of static length).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Float

State = TypeVar("State")
StepFn = Callable[[State, Float[Array, ""]], State]
"""One step ``step(state, t) -> state`` of a fixed size chosen by the factory."""


def step_plan(t0: float, times: Sequence[float], dt: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Interval starts, step sizes h_i and the common step count M (module docstring).

    Raises
    ------
    ValueError
        ``dt`` not positive, or ``times`` empty, decreasing, or before ``t0``.
    """
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or times.size == 0 or not np.all(np.isfinite(times)):
        raise ValueError(f"times must be a non-empty 1-d sequence of finite floats, got {times}")
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be positive, got {dt}")
    starts = np.concatenate([[t0], times[:-1]])
    widths = times - starts
    if np.any(widths < 0):
        raise ValueError(f"times must be non-decreasing and >= t0 = {t0}, got {times}")
    # the relative slack keeps e.g. 0.3/0.1 = 2.9999999999999996 at 3 steps, not 4
    m = max(1, math.ceil(float(np.max(widths)) / dt * (1 - 1e-12)))
    return starts, widths / m, m


def integrate_to_times(
    make_step: Callable[[Float[Array, ""]], StepFn],
    state0: State,
    *,
    t0: float,
    times: Sequence[float],
    dt: float,
) -> State:
    """States at ``times`` (stacked on a new leading axis) of a fixed-step integrator.

    Parameters
    ----------
    make_step : callable
        ``make_step(h)`` returns ``step(state, t) -> state`` advancing by h; it is called once
        per interval (so step-size-dependent coefficients are computed once per interval).
    state0 : pytree of arrays
        State at t₀.
    t0, dt : float
        Initial time and largest step Δt > 0.
    times : sequence of float
        Non-decreasing save times ≥ t₀ (concrete numbers).
    """
    starts, widths, m = step_plan(float(t0), times, float(dt))
    dtype = jnp.result_type(float)

    def interval(state, xs):
        t_start, h = xs
        step = make_step(h)

        def inner(s, i):
            return step(s, t_start + i * h), None

        state, _ = lax.scan(inner, state, jnp.arange(m, dtype=dtype))
        return state, state

    xs = (jnp.asarray(starts, dtype=dtype), jnp.asarray(widths, dtype=dtype))
    _, states = lax.scan(interval, state0, xs)
    return states
