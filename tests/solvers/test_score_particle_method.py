"""Score-based particle method (Huang & Wang): Euler energy identity, refits, momentum."""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from solvers._bkw import LandauBKWProblem, landau_bkw_2d
from solvers._landau_particles import ForwardEuler, ScoreFunction, transport_particles
from solvers._score_particle_method import (
    ScoreMatchingSchedule,
    score_mlp,
    score_particle_method,
)

EPS = float(np.finfo(np.float64).eps)
BKW = landau_bkw_2d()
T0 = 0.5  # the 2D BKW score is singular at t = 0; start where it is smooth
N = 400


class FrozenScore(eqx.Module):
    """The exact BKW score at a fixed time, as a time-independent 'network'."""

    problem: LandauBKWProblem
    t: float

    def __call__(self, x):
        return self.problem.score(jnp.asarray(self.t), x)


@functools.cache
def ensemble():
    v = BKW.sample(T0, N, key=jax.random.key(0))
    return v, jnp.full(N, 1.0 / N)


def frozen_run(dt=0.25, save_times=(0.5, 1.0, 1.5)):
    v, w = ensemble()
    no_fit = ScoreMatchingSchedule(iterations=0, initial_iterations=0)
    return score_particle_method(
        FrozenScore(BKW, T0),
        BKW.kernel,
        v,
        w,
        t0=T0,
        dt=dt,
        save_times=save_times,
        schedule=no_fit,
    )


def test_euler_second_moment_change_equals_the_recorded_increments():
    sol = frozen_run()
    tr = sol.trajectory
    change = np.diff(np.asarray(tr.grid_second_moment))
    # M₂ ≈ 2 is a sum of N terms: its round-off is a few ε·M₂; the increments are ~1e−4
    np.testing.assert_allclose(change, tr.second_moment_increment, rtol=0, atol=64 * EPS)
    assert float(jnp.min(tr.second_moment_increment)) > 1e3 * 64 * EPS  # resolved, > 0
    assert tr.stepper == "forward-euler"
    assert bool(jnp.isnan(sol.initial_error))  # no initial fit


def _frozen_fn(t, x):
    return BKW.score(jnp.asarray(T0), x)


def test_frozen_score_run_agrees_with_transport_particles():
    sol = frozen_run()
    v, w = ensemble()
    reference = transport_particles(
        ForwardEuler(),
        ScoreFunction(_frozen_fn),
        BKW.kernel,
        v,
        w,
        t0=T0,
        dt=0.25,
        save_times=(0.5, 1.0, 1.5),
    )
    # the same Euler steps with the same velocities, evaluated by different code (jvp
    # Jacobians here): U (|U| ≲ 0.2) agrees to a few ulps, positions (|V| ≲ 4) to a few ulps
    # per step; 1e3 ε ≈ 2e−13 leaves room for 3 steps of differently fused arithmetic
    np.testing.assert_allclose(
        sol.trajectory.positions, reference.positions, rtol=0, atol=1e3 * EPS
    )
    # Δt² Σ w|U|² from U equal to ~1e−15 relative: 1e−10 is loose but far below any bug
    np.testing.assert_allclose(
        sol.trajectory.second_moment_increment,
        reference.second_moment_increment,
        rtol=1e-10,
        atol=0,
    )
    s = jax.vmap(FrozenScore(BKW, T0))(sol.trajectory.positions[-1])
    # the stored score is the same function at the same points (jvp primal vs plain call)
    np.testing.assert_allclose(sol.score[-1], s, rtol=1e-13, atol=1e-13)


def test_momentum_is_conserved_to_round_off_with_refits():
    v, w = ensemble()
    net = score_mlp(dim=2, width=16, depth=2, key=jax.random.key(1))
    schedule = ScoreMatchingSchedule(iterations=3, initial_iterations=20)
    target = jax.vmap(BKW.score, (None, 0))(jnp.asarray(T0), v)
    sol = score_particle_method(
        net,
        BKW.kernel,
        v,
        w,
        t0=T0,
        dt=0.1,
        save_times=(0.5, 0.8),
        initial_score=target,
        schedule=schedule,
    )
    momentum = np.asarray(sol.trajectory.grid_momentum)
    # Σ w_i U_i = 0 exactly; each step adds round-off of size ε·Σ w_i |V_i| ~ ε, 3 steps
    np.testing.assert_allclose(momentum - momentum[0], 0.0, rtol=0, atol=32 * EPS)
    moved = float(jnp.max(jnp.abs(sol.trajectory.positions[-1] - v)))
    assert moved > 1e-4  # the particles did move
    assert int(sol.initial_iterations) == 20


def test_refits_lower_the_score_matching_loss():
    v, w = ensemble()
    net = score_mlp(dim=2, width=16, depth=2, key=jax.random.key(2))
    target = jax.vmap(BKW.score, (None, 0))(jnp.asarray(T0), v)
    runs = {
        k: score_particle_method(
            net,
            BKW.kernel,
            v,
            w,
            t0=T0,
            dt=0.1,
            save_times=(0.5, 0.6),
            initial_score=target,
            schedule=ScoreMatchingSchedule(iterations=k, learning_rate=1e-3, initial_iterations=50),
        )
        for k in (0, 20)
    }
    # same initial fit and first step, so the same particles at t = 0.6; the refit starts
    # from the network the run without refits keeps
    np.testing.assert_array_equal(
        runs[0].trajectory.positions[-1], runs[20].trajectory.positions[-1]
    )
    before, after = runs[0].score_matching[-1], runs[20].score_matching[-1]
    # a rough initial fit (J ≈ −0.66 against −I ≈ −2.9 for the exact score): 20 iterations
    # lowered J by 0.30 in the run that fixed this threshold; 0.05 is a clear decrease, far
    # above round-off, that a refit going the wrong way or doing nothing fails
    assert float(after) < float(before) - 0.05, (before, after)
    # before the first refit both runs are the same computation: equal to round-off
    np.testing.assert_allclose(
        runs[0].score_matching[0], runs[20].score_matching[0], rtol=1e-14, atol=1e-15
    )


def test_initial_fit_stops_at_the_tolerance():
    v, w = ensemble()
    net = score_mlp(dim=2, width=16, depth=2, key=jax.random.key(3))
    target = jax.vmap(BKW.score, (None, 0))(jnp.asarray(T0), v)
    schedule = ScoreMatchingSchedule(iterations=0, initial_iterations=500, initial_tolerance=0.5)
    sol = score_particle_method(
        net,
        BKW.kernel,
        v,
        w,
        t0=T0,
        dt=0.1,
        save_times=(0.5,),
        initial_score=target,
        schedule=schedule,
    )
    used = int(sol.initial_iterations)
    assert 0 < used < 500
    assert float(sol.initial_error) <= 0.5


def test_bad_arguments_are_refused():
    v, w = ensemble()
    with pytest.raises(ValueError, match="vmap"):
        score_particle_method(
            FrozenScore(BKW, T0), BKW.kernel, v[0], w, t0=T0, dt=0.1, save_times=(0.5,)
        )
    with pytest.raises(ValueError, match="initial_score"):
        score_particle_method(
            FrozenScore(BKW, T0),
            BKW.kernel,
            v,
            w,
            t0=T0,
            dt=0.1,
            save_times=(0.5,),
            initial_score=v[:3],
        )
    with pytest.raises(ValueError, match="iterations"):
        ScoreMatchingSchedule(iterations=-1)
