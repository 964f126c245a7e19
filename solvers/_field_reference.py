"""Numerical references for field problems: run, interpolate to the output grid, self-converge.

A numerical reference is a run ``run(times, n_run, dt) -> (T, *grid, C)`` (states at sorted
times on grid(n_run), channels last). The reference on grid(n) is the run at
N = max(n, grid_size) with the problem's step, spectrally interpolated to n (so a coarse output
grid does not make the reference coarse). Its error is estimated by *self-convergence*: the
relative L2 difference, on grid(n) and per time, from runs with the resolution doubled
("space"), the step halved ("time") or both ("combined"). For a spectrally accurate method of
temporal order p, "combined" ≈ (1 − 2^{−p}) × the true error of the base run when the latter is
dominated by time stepping and ≈ the true error when dominated by resolution — an estimate of
the error's size, not a bound.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import numpy as np
from jaxtyping import Array, Float

from ._spectral import relative_l2_error, spectral_interpolate

Run = Callable[[tuple[float, ...], int, float], Float[Array, "T *grid C"]]

SELF_CONVERGENCE_RUNS = {"space": (2, 1.0), "time": (1, 0.5), "combined": (2, 0.5)}
"""Name → (resolution factor, step factor) of the comparison runs."""


def sorted_times(times: Sequence[float], t_min: float) -> tuple[tuple[float, ...], np.ndarray]:
    """(times sorted as a tuple of floats, the permutation that restores the given order)."""
    times = np.asarray(times, dtype=float)
    if times.ndim != 1 or times.size == 0 or not np.all(np.isfinite(times)):
        raise ValueError(f"times must be a non-empty 1-d sequence of finite floats, got {times}")
    if np.any(times < t_min):
        raise ValueError(f"times must be ≥ t_min = {t_min}, got {times}")
    order = np.argsort(times, kind="stable")
    return tuple(times[order].tolist()), np.argsort(order)


def _to_grid(states: Array, n: int) -> Array:
    """(T, *grid_N, C) → (T, *grid_n, C) by spectral interpolation of each channel."""
    per_channel = jax.vmap(lambda f: spectral_interpolate(f, n), in_axes=-1, out_axes=-1)
    return jax.vmap(per_channel)(states)


def reference_on_grid(
    run: Run, times: Sequence[float], t_min: float, n: int, grid_size: int, dt: float
) -> Float[Array, "T *grid C"]:
    """The run at N = max(n, grid_size) and step dt, on grid(n), in the order of ``times``."""
    ordered, back = sorted_times(times, t_min)
    return _to_grid(run(ordered, max(n, grid_size), dt), n)[back]


def self_convergence(
    run: Run,
    times: Sequence[float],
    t_min: float,
    n: int,
    grid_size: int,
    dt: float,
    which: Sequence[str] = tuple(SELF_CONVERGENCE_RUNS),
) -> dict[str, Float[Array, " T"]]:
    """Relative L2 differences on grid(n) between the reference run and the runs ``which``
    (keys of :data:`SELF_CONVERGENCE_RUNS`), per time in the order of ``times``."""
    ordered, back = sorted_times(times, t_min)
    big = max(n, grid_size)
    base = _to_grid(run(ordered, big, dt), n)
    out = {}
    for name in which:
        grid_factor, dt_factor = SELF_CONVERGENCE_RUNS[name]
        fine = _to_grid(run(ordered, grid_factor * big, dt * dt_factor), n)
        out[name] = jax.vmap(relative_l2_error)(base, fine)[back]
    return out
