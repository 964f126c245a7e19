"""Trajectory artefacts for the tests: one from the reference particle solver, and the
plain-NumPy ones of ``numpy_trajectory_writer.py`` (written in a subprocess without JAX)."""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from certificates import TrajectoryArtefact, write_trajectories
from solvers import ForwardEuler, ScoreFunction, get_problem, landau_velocity, transport_particles

REPO = Path(__file__).resolve().parents[2]
WRITER = Path(__file__).with_name("numpy_trajectory_writer.py")

BKW_T0, BKW_DT = 0.5, 0.05
BKW_TIMES = (0.5, 1.0)


@functools.cache
def bkw_forward_euler(n: int, *, seed: int = 0, every_step: bool = False) -> TrajectoryArtefact:
    """landau-bkw-2d by ``transport_particles`` with ForwardEuler and the exact BKW score.

    Exact samples of f(0.5) with weights 1/N, transported to t = 1 in steps of 0.05 with the
    log-density; the artefact stores the positions, the exact scores at them, the
    transported log-density and the per-step increments Δt² Σ w|U|² the solver reports.
    With ``every_step`` the frames are every step and the velocities U_i are stored too.
    Cached: one solver run per session and size.
    """
    problem = get_problem("landau-bkw-2d")
    v0 = problem.sample(jnp.asarray(BKW_T0), n, key=jax.random.key(seed))
    w = jnp.full(n, 1.0 / n)
    log_f0 = jax.vmap(problem.log_density, (None, 0))(BKW_T0, v0)
    times = (
        tuple(BKW_T0 + BKW_DT * k for k in range(round((BKW_TIMES[-1] - BKW_T0) / BKW_DT) + 1))
        if every_step
        else BKW_TIMES
    )
    run = transport_particles(
        ForwardEuler(),
        ScoreFunction(problem.score),
        problem.kernel,
        v0,
        w,
        t0=BKW_T0,
        dt=BKW_DT,
        save_times=times,
        log_density0=log_f0,
    )
    positions = np.asarray(run.positions)
    scores = jax.vmap(jax.vmap(problem.score, (None, 0)))(run.times, run.positions)
    common = {
        "time": np.asarray(run.times),
        "positions": positions,
        "weights": np.asarray(w),
        "score": np.asarray(scores),
        "log_density": np.asarray(run.log_density),
        "problem_id": "landau-bkw-2d",
        "stepper": run.stepper,  # "forward-euler": the audit folds case and hyphens
        "step_size": BKW_DT,
        "producer": "solvers.transport_particles (ForwardEuler, exact BKW score)",
    }
    velocity = None
    if every_step:
        velocity = jax.vmap(lambda v, s: landau_velocity(problem.kernel, v, w, s))(
            run.positions, scores
        )
    return TrajectoryArtefact(
        **common,
        velocity=None if velocity is None else np.asarray(velocity),
        step_time=np.asarray(run.grid_times[:-1]),
        second_moment_increment=np.asarray(run.second_moment_increment),
    )


def write_bkw(folder: Path, n: int, **kw) -> Path:
    return write_trajectories(folder / f"bkw_fe_{n}.nc", bkw_forward_euler(n, **kw))


def write_numpy_artefacts(folder: Path, n: int) -> Path:
    """Run the NumPy writer in a fresh interpreter; it fails if JAX gets imported."""
    completed = subprocess.run(
        [sys.executable, "-W", "error", str(WRITER), str(folder), str(n)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "ok"
    return folder
