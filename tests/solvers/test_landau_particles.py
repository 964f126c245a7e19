"""Landau particle transport with a given score: conservation laws, orders, BKW agreement."""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from solvers._bkw import landau_bkw_2d, landau_bkw_3d
from solvers._landau_coulomb import landau_coulomb_2d
from solvers._landau_kernel import LandauKernel, landau_velocity, landau_velocity_and_divergence
from solvers._landau_particles import (
    RK4,
    ForwardEuler,
    Heun,
    ParticleTrajectory,
    ScoreFunction,
    time_grid,
    transport_particles,
)

EPS = float(np.finfo(np.float64).eps)
BKW = {2: landau_bkw_2d(), 3: landau_bkw_3d()}
T0 = {2: 0.5, 3: 6.0}  # away from the 2D singular score at t = 0 (P = 0)
STEPPERS = {"forward-euler": ForwardEuler(), "heun": Heun(), "rk4": RK4()}


@functools.cache
def bkw_ensemble(d: int, n: int, seed: int = 0):
    """Exact BKW samples at T0[d], weights 1/N and exact log-density there."""
    problem = BKW[d]
    v = problem.sample(T0[d], n, key=jax.random.key(seed))
    logf = jax.vmap(problem.log_density, (None, 0))(T0[d], v)
    return v, jnp.full(n, 1.0 / n), logf


def bkw_setup(d: int):
    problem = BKW[d]
    return problem, LandauKernel(gamma=0.0, C_gamma=problem.B), ScoreFunction(problem.score)


def coulomb_setup(n: int):
    """Coulomb kernel with the (frozen) initial two-Maxwellian score on its exact samples."""
    problem = landau_coulomb_2d()
    v = problem.sample_initial(n, key=jax.random.key(3))
    frozen = ScoreFunction(lambda t, x: problem.initial_score(x))
    return problem.kernel, frozen, v, jnp.full(n, 1.0 / n)


# -- the time grid --------------------------------------------------------------------------


def test_time_grid():
    assert time_grid(0.5, 0.25, [0.5, 1.0, 1.5])[0] == 4
    np.testing.assert_array_equal(time_grid(0.0, 0.1, [0.3, 1.0])[1], [3, 10])
    for times, match in (([1.0, 0.5], "increasing"), ([0.25], "increasing"), ([0.55], "grid")):
        with pytest.raises(ValueError, match=match):
            time_grid(0.5, 0.1, times)
    with pytest.raises(ValueError, match="dt"):
        time_grid(0.0, -0.1, [1.0])


def test_shape_errors_mention_vmap():
    _, kernel, provider = bkw_setup(2)
    v, w, _ = bkw_ensemble(2, 32)
    with pytest.raises(ValueError, match="vmap"):
        transport_particles(
            ForwardEuler(), provider, kernel, v[None], w, t0=0.5, dt=0.1, save_times=[0.6]
        )
    with pytest.raises(ValueError, match="w must"):
        transport_particles(
            ForwardEuler(), provider, kernel, v, w[:-1], t0=0.5, dt=0.1, save_times=[0.6]
        )


# -- conservation (MATH.md §2.4) ------------------------------------------------------------


def conservation_case(case: str):
    if case == "coulomb-2d":
        kernel, provider, v, w = coulomb_setup(256)
        return kernel, provider, v, w, 0.0
    d = int(case[-2])
    _, kernel, provider = bkw_setup(d)
    v, w, _ = bkw_ensemble(d, 256)
    return kernel, provider, v, w, T0[d]


@pytest.mark.parametrize("case", ["bkw-2d", "coulomb-2d"])
def test_momentum_and_forward_euler_energy_law(case):
    """Σ w V is conserved and Σ w|V|² grows by exactly Δt² Σ w|U|² per Euler step.

    Tolerances are summation round-off: one step changes Σ_i w_i V_i by Δt Σ_i w_i U_i = 0 up
    to ~N ε max|V| (the sum of N rounded terms), so after n steps the momentum moves by at
    most n N ε max|V|; the second moments M₂ = Σ w|V|² on both sides of the law carry
    ~N ε M₂ each, and 2Δt Σ w V·U (= 0 exactly) adds Δt times the velocity round-off.
    """
    kernel, provider, v, w, t0 = conservation_case(case)
    n_steps, dt = 20, 0.05
    traj = transport_particles(
        ForwardEuler(), provider, kernel, v, w, t0=t0, dt=dt, save_times=[t0 + n_steps * dt]
    )
    n = v.shape[0]
    v_max = float(jnp.max(jnp.abs(traj.positions)))
    drift = np.abs(np.asarray(traj.grid_momentum - traj.grid_momentum[0]))
    assert drift.max() <= n_steps * n * EPS * v_max
    m2 = np.asarray(traj.grid_second_moment)
    incr = np.asarray(traj.second_moment_increment)
    assert np.all(incr > 0)
    np.testing.assert_allclose(np.diff(m2), incr, rtol=1e-12, atol=2 * n * EPS * m2.max())
    # the record's momentum/energy at the save time agree with the grid diagnostics
    np.testing.assert_allclose(traj.momentum()[-1], traj.grid_momentum[-1], rtol=0, atol=1e-15)
    np.testing.assert_allclose(2 * traj.energy()[-1], m2[-1], rtol=1e-15, atol=0)


# -- temporal convergence -------------------------------------------------------------------

ORDER_DTS = (0.5, 0.25, 0.125)
ORDER_WINDOW = (0.5, 2.5)


@functools.cache
def order_run(name: str, dt: float) -> ParticleTrajectory:
    """N = 256 exact BKW-2D samples on [0.5, 2.5]; one compilation per scheme (bucket 64)."""
    _, kernel, provider = bkw_setup(2)
    v, w, logf = bkw_ensemble(2, 256)
    t0, t1 = ORDER_WINDOW
    return transport_particles(
        STEPPERS[name],
        provider,
        kernel,
        v,
        w,
        t0=t0,
        dt=dt,
        save_times=[t1],
        log_density0=logf,
        step_bucket=64,
    )


@pytest.mark.parametrize(("name", "order"), [("forward-euler", 1), ("heun", 2), ("rk4", 4)])
def test_observed_temporal_order(name, order):
    """Fitted slope of the max position / log-density error over Δt = 0.5, 0.25, 0.125.

    Reference: RK4 with Δt = 2/63 (error ≈ (0.032/0.125)⁴ ≈ 0.4% of the finest RK4 error).
    The window [0.5, 2.5] is resolved (λ = 1/16), so the fits are asymptotic to ±0.15
    (Euler 1.04, Heun 2.00, RK4 3.92 observed).
    """
    ref = order_run("rk4", (ORDER_WINDOW[1] - ORDER_WINDOW[0]) / 63)
    errors = np.array(
        [
            [
                float(jnp.max(jnp.abs(order_run(name, dt).positions - ref.positions))),
                float(jnp.max(jnp.abs(order_run(name, dt).log_density - ref.log_density))),
            ]
            for dt in ORDER_DTS
        ]
    )
    slopes = [np.polyfit(np.log(ORDER_DTS), np.log(errors[:, k]), 1)[0] for k in range(2)]
    np.testing.assert_allclose(slopes, order, rtol=0, atol=0.15)


def energy_drift(name: str, dt: float) -> float:
    m2 = order_run(name, dt).grid_second_moment
    return abs(float(m2[-1] - m2[0]))


def test_energy_drift_orders():
    """Euler's drift is its exact law (order 1); RK4 drifts by O(Δt⁴) (observed slope ≈ 4.3).

    Δt = 0.125: Euler 4.4e−4, RK4 4.0e−10 — six orders of magnitude smaller.
    """
    log_dt = np.log(ORDER_DTS)
    euler = [energy_drift("forward-euler", dt) for dt in ORDER_DTS]
    rk4 = [energy_drift("rk4", dt) for dt in ORDER_DTS]
    assert np.polyfit(log_dt, np.log(euler), 1)[0] == pytest.approx(1.0, abs=0.15)
    assert np.polyfit(log_dt, np.log(rk4), 1)[0] > 3.5
    assert rk4[-1] < 1e-5 * euler[-1]
    for dt, drift in zip(ORDER_DTS, euler, strict=True):
        law = float(jnp.sum(order_run("forward-euler", dt).second_moment_increment))
        assert drift == pytest.approx(law, rel=1e-9, abs=0)


# -- agreement with the exact BKW dynamics (MATH.md §2.6) -----------------------------------

AGREEMENT_N, AGREEMENT_SPAN = 4096, 1.0


@functools.cache
def agreement_run(d: int) -> ParticleTrajectory:
    """RK4, Δt = 0.25 on [t₀, t₀ + 1] from 4096 exact samples with their exact log f."""
    _, kernel, provider = bkw_setup(d)
    v, w, logf = bkw_ensemble(d, AGREEMENT_N)
    t0 = T0[d]
    times = [t0, t0 + 0.5 * AGREEMENT_SPAN, t0 + AGREEMENT_SPAN]
    return transport_particles(
        RK4(), provider, kernel, v, w, t0=t0, dt=0.25, save_times=times, log_density0=logf
    )


def rms(x: jax.Array) -> float:
    """Root mean square over particles of the Euclidean norm of each particle's entry."""
    return float(jnp.sqrt(jnp.mean(jnp.sum(x.reshape(x.shape[0], -1) ** 2, -1))))


def test_follows_exact_characteristics_and_log_density():
    """With exact samples and score, particles follow the exact characteristics to O(N^{−1/2}).

    Error model (first-order propagation): the particle velocity U_N and −∇·U_N differ from
    the mean-field U = −λ(s + v) and λ(∇·s + d) by Monte Carlo errors δU, δdiv = O(N^{−1/2})
    that are nearly frozen over the short window T, so the position error is ≈ T·δU
    (observed 0.8·T·RMS δU(t₀) over 18 runs) and the log-density error ≈ T·(δdiv + |s|·δU).
    The bounds are twice these, evaluated with the t₀ errors. RK4 with Δt = 0.25 adds a
    time error < 1e−5, negligible against δU ≈ 2e−3 at N = 4096. 2D here; 2D and 3D with
    the N^{−1/2} rate fitted over N = 1024 … 65536 in tests/validation.
    """
    d = 2
    problem, kernel, provider = bkw_setup(d)
    n, t0, span = AGREEMENT_N, T0[d], AGREEMENT_SPAN
    v, w, _ = bkw_ensemble(d, n)
    traj = agreement_run(d)

    @jax.jit
    def errors_at_t0(v):
        s, jac = provider.scores_and_jacobians(t0, v, w)
        u, div = landau_velocity_and_divergence(kernel, v, w, s, jac)
        du = u - jax.vmap(problem.velocity, (None, 0))(t0, v)
        ddiv = -div - jax.vmap(problem.log_density_rate, (None, 0))(t0, v)
        return s, du, ddiv

    s, du, ddiv = errors_at_t0(v)
    exact = jax.vmap(problem.characteristic, (None, 0, None))(t0, v, t0 + span)
    assert rms(traj.positions[-1] - exact) <= 2 * span * rms(du)
    logf_exact = jax.vmap(problem.log_density, (None, 0))(t0 + span, traj.positions[-1])
    assert rms(traj.log_density[-1] - logf_exact) <= 2 * span * (rms(ddiv) + rms(s) * rms(du))
    assert rms(du) < 5 / np.sqrt(n)  # the N^{−1/2} scale itself (σ_U ≈ 0.1–0.2 observed)


@pytest.mark.parametrize("d", [2, 3])
def test_entropy_and_entropy_rate_estimates(d):
    """H_N = Σ w log f_i and Ḣ_N = Σ w s·U match H(t), −λ(I − d) within Monte Carlo error.

    H_N at t₀ is a sample mean of log f (5 standard errors); later it also carries the
    transported log f error, bounded as in the characteristics test (≤ 0.01 here). Ḣ_N is a
    V-statistic whose Hoeffding projection is ≈ 2·(s·U)(V_i), so 5 · 2 std(s·U)/√N.
    """
    problem, kernel, _ = bkw_setup(d)
    n = AGREEMENT_N
    _, w, logf = bkw_ensemble(d, n)
    traj = agreement_run(d)
    se_h = float(jnp.std(logf)) / np.sqrt(n)

    @jax.jit
    def projection(t, x):
        s = jax.vmap(problem.score, (None, 0))(t, x)
        return jnp.sum(s * landau_velocity(kernel, x, w, s), -1)

    for k, t in enumerate(np.asarray(traj.times)):
        assert float(traj.entropy[k]) == pytest.approx(
            float(problem.entropy(t)), abs=5 * se_h + (0.01 if k else 0.0), rel=0
        )
        se_rate = 2 * float(jnp.std(projection(t, traj.positions[k]))) / np.sqrt(n)
        assert float(traj.entropy_rate[k]) == pytest.approx(
            float(problem.entropy_rate(t)), abs=5 * se_rate, rel=0
        )
        assert float(traj.entropy_rate[k]) < 0
    np.testing.assert_array_equal(traj.entropy_rate, traj.grid_entropy_rate[::2])


def test_score_function_jacobian_matches_exact_divergence():
    problem, _, provider = bkw_setup(3)
    v, w = bkw_ensemble(3, AGREEMENT_N)[0][:64], jnp.full(64, 1 / 64)

    @jax.jit
    def compare(v):
        s, jac = provider.scores_and_jacobians(6.0, v, w)
        exact_s = jax.vmap(problem.score, (None, 0))(6.0, v)
        exact_div = jax.vmap(problem.score_divergence, (None, 0))(6.0, v)
        return s, exact_s, jnp.trace(jac, axis1=1, axis2=2), exact_div

    s, exact_s, div, exact_div = compare(v)
    np.testing.assert_allclose(s, exact_s, rtol=1e-15, atol=0)
    np.testing.assert_allclose(div, exact_div, rtol=1e-12, atol=1e-12)
    assert provider.parameters() == {"provider": "score-function"}


# -- jit, vmap, grad ------------------------------------------------------------------------


def test_jit_matches_eager_and_step_bucket_shares_one_compilation():
    problem, kernel, _ = bkw_setup(2)
    v, w, logf = bkw_ensemble(2, 32)
    traces = []

    def score(t, x):
        traces.append(None)  # runs only while tracing
        return problem.score(t, x)

    provider = ScoreFunction(score)
    run = functools.partial(
        transport_particles,
        ForwardEuler(),
        provider,
        kernel,
        t0=0.5,
        log_density0=logf,
        step_bucket=8,
    )
    a = run(v, w, dt=0.1, save_times=[0.7, 1.0])
    n_traces = len(traces)
    b = run(v, w, dt=0.125, save_times=[0.75, 1.0])  # 4 steps instead of 5: same scan length
    assert len(traces) == n_traces
    # Euler's global error O(Δt) ≈ 1e−3 separates the two runs, no more
    np.testing.assert_allclose(a.positions[-1], b.positions[-1], rtol=0, atol=1e-3)
    jitted = jax.jit(lambda v: run(v, w, dt=0.1, save_times=[0.7, 1.0]).positions)
    np.testing.assert_allclose(jitted(v), a.positions, rtol=1e-14, atol=1e-15)


def test_vmap_over_ensembles():
    _, kernel, provider = bkw_setup(2)
    vs = jnp.stack([bkw_ensemble(2, 32, seed)[0] for seed in range(3)])
    w = jnp.full(32, 1 / 32)

    @jax.jit
    def final(v):
        return transport_particles(
            ForwardEuler(), provider, kernel, v, w, t0=0.5, dt=0.1, save_times=[0.8]
        ).positions[-1]

    batched = jax.vmap(final)(vs)
    for k in range(3):
        np.testing.assert_allclose(batched[k], final(vs[k]), rtol=1e-13, atol=1e-14)


def test_grads_through_euler_steps():
    """check_grads (fwd and rev) of ½Σw|V(T)|² + Σ w log f(T) w.r.t. V(0) and a score parameter.

    The score is a "learned" module s = α s_exact (an equinox pytree), so its parameter α is
    traced through the provider; three Euler steps, N = 8.
    """
    problem, kernel, _ = bkw_setup(2)
    v, _, logf = (x[:8] for x in bkw_ensemble(2, 32))
    w = jnp.full(8, 1 / 8)

    class Scaled(eqx.Module):
        alpha: jax.Array

        def __call__(self, t, x):
            return self.alpha * problem.score(t, x)

    @jax.jit
    def final(v0, alpha):
        traj = transport_particles(
            ForwardEuler(),
            ScoreFunction(Scaled(alpha)),
            kernel,
            v0,
            w,
            t0=0.5,
            dt=0.1,
            save_times=[0.8],
            log_density0=logf,
        )
        return traj.energy()[-1] + traj.entropy[-1]

    check_grads(final, (v, jnp.asarray(1.0)), order=1, modes=("fwd", "rev"), atol=1e-6, rtol=1e-6)
