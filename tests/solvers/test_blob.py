"""Blob method: regularised-entropy identities, conservation, and BKW-2D convergence in N."""

from __future__ import annotations

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from solvers._bkw import landau_bkw_2d
from solvers._blob import (
    BlobConfig,
    BlobScore,
    BlobSolution,
    blob_density,
    blob_entropy,
    blob_entropy_rate,
    blob_initial_particles,
    blob_score,
    cell_centred_grid,
    default_blob_epsilon,
    solve_blob,
)
from solvers._landau_kernel import LandauKernel, landau_velocity

EPS = float(np.finfo(np.float64).eps)
# Algebraic identities between two float64 evaluations of the same O(N²) sums: the
# moment form Σ c ψ (x − v) = x Σ c ψ − Σ c ψ v loses ~|x|/√ε ≈ 10 digits of headroom at most
# on these inputs (|x| ≤ 4, ε ≥ 0.05), so 1e−11 relative leaves a factor ~10 of margin.
RTOL, ATOL = 1e-11, 1e-13


def random_ensemble(n: int, d: int, seed: int):
    key_v, key_w = jax.random.split(jax.random.key(seed))
    v = 1.3 * jax.random.normal(key_v, (n, d))
    w = jax.random.uniform(key_w, (n,), minval=0.5, maxval=1.5)
    return v, w / jnp.sum(w)


def direct_blob_score(v, w, eps):
    """F_i from the definition, with per-pair differences in numpy (O(N² d) memory)."""
    v, w = np.asarray(v), np.asarray(w)
    d = v.shape[1]
    z = v[:, None, :] - v[None, :, :]
    psi = (2 * np.pi * eps) ** (-d / 2) * np.exp(-np.sum(z * z, -1) / (2 * eps))
    grad_psi = -z / eps * psi[..., None]
    f_tilde = psi @ w
    return np.einsum("k,ikd->id", w, grad_psi) / f_tilde[:, None] + np.einsum(
        "k,ikd->id", w / f_tilde, grad_psi
    )


# -- grid and parameters --------------------------------------------------------------------


def test_grid_and_default_epsilon():
    points, h = cell_centred_grid(4, 2.0, 2, centre=(1.0, -1.0))
    assert h == 1.0
    assert points.shape == (16, 2)
    np.testing.assert_allclose(points[:4, 1], [-2.5, -1.5, -0.5, 0.5], rtol=0, atol=1e-15)
    np.testing.assert_allclose(points.mean(axis=0), [1.0, -1.0], rtol=0, atol=1e-15)
    assert default_blob_epsilon(0.4) == pytest.approx(0.64 * 0.4**1.98, rel=1e-15, abs=0)
    with pytest.raises(ValueError, match="centre"):
        cell_centred_grid(4, 2.0, 3, centre=(0.0, 0.0))
    with pytest.raises(ValueError, match="epsilon"):
        BlobScore(epsilon=0.0)


def test_initial_particles_weights_and_dropping():
    """w_i = h^d f₀(v_i); a unit Gaussian on [−6, 6]² sums to 1 (midpoint rule, spectral)."""

    def gauss(x):
        return jnp.exp(-0.5 * jnp.sum(x * x)) / (2 * jnp.pi)

    v, w, h = blob_initial_particles(gauss, n_per_dim=24, half_width=6.0, dim=2)
    assert v.shape == (576, 2)
    np.testing.assert_allclose(w, h**2 * jax.vmap(gauss)(v), rtol=1e-15, atol=0)
    assert float(jnp.sum(w)) == pytest.approx(1.0, rel=0, abs=1e-8)  # mass outside: ~2e−9
    v_kept, w_kept, _ = blob_initial_particles(
        gauss, n_per_dim=24, half_width=6.0, dim=2, drop_below=1e-6
    )
    assert v_kept.shape[0] < v.shape[0]
    assert float(jnp.min(w_kept)) >= 1e-6 * float(jnp.max(w))
    assert float(jnp.sum(w_kept)) == pytest.approx(1.0, rel=0, abs=1e-5)


# -- the regularised entropy and its gradient ----------------------------------------------


@pytest.mark.parametrize("d", [2, 3])
def test_blob_score_matches_definition_and_entropy_gradient(d):
    """F_i equals the direct double sum, and w_i F_i = ∇_{v_i} E_ε (E_ε = Σ w log f̃_i)."""
    v, w = random_ensemble(50, d, seed=d)
    eps = 0.3
    score = blob_score(v, w, eps, block_size=16)  # 4 blocks, the last one padded
    np.testing.assert_allclose(score, direct_blob_score(v, w, eps), rtol=RTOL, atol=ATOL)
    grad = jax.grad(blob_entropy)(v, w, eps)
    np.testing.assert_allclose(grad, w[:, None] * score, rtol=RTOL, atol=ATOL)


def test_blob_jacobian_is_symmetric_and_matches_autodiff():
    """∇F = Hessian of Φ(x) = log f̃(x) + Σ_k (w_k/f̃_k) ψ_ε(x − v_k): symmetric, = jax.hessian."""
    v, w = random_ensemble(40, 2, seed=7)
    eps = 0.2
    provider = BlobScore(epsilon=eps, block_size=16)

    @jax.jit
    def jacobians(v):
        score, jac = provider.scores_and_jacobians(0.0, v, w)
        f_k = blob_density(v, v, w, eps)

        def phi(x):
            psi = jnp.exp(-jnp.sum((x - v) ** 2, -1) / (2 * eps)) / (2 * jnp.pi * eps)
            return jnp.log(psi @ w) + psi @ (w / f_k)

        return score, jac, jax.vmap(jax.hessian(phi))(v)

    score, jac, hess = jacobians(v)
    np.testing.assert_allclose(score, blob_score(v, w, eps), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(jac, jnp.swapaxes(jac, 1, 2), rtol=RTOL, atol=1e-11)
    np.testing.assert_allclose(jac, hess, rtol=1e-9, atol=1e-9)
    assert provider.parameters()["epsilon"] == eps


@pytest.mark.parametrize("gamma", [0.0, -3.0])
def test_entropy_dissipation_identity(gamma):
    """dE_ε/dt = Σ w F·U = −½ Σ w_i w_j (F_i − F_j)ᵀ A (F_i − F_j) ≤ 0 (Maxwell and Coulomb)."""
    v, w = random_ensemble(30, 2, seed=11)
    eps = 0.25
    kernel = LandauKernel(gamma=gamma, C_gamma=1 / 16)

    @jax.jit
    def rates(v):
        score = blob_score(v, w, eps)
        a = jax.vmap(jax.vmap(kernel.matrix))(v[:, None, :] - v[None, :, :])
        df = score[:, None, :] - score[None, :, :]
        double_sum = -0.5 * jnp.einsum("i,j,ijk,ijkl,ijl->", w, w, df, a, df)
        u = landau_velocity(kernel, v, w, score)
        directional = jax.jvp(lambda x: blob_entropy(x, w, eps), (v,), (u,))[1]
        return blob_entropy_rate(kernel, v, w, eps), double_sum, directional

    rate, double_sum, directional = (float(r) for r in rates(v))
    assert rate < 0
    assert rate == pytest.approx(double_sum, rel=1e-10, abs=1e-14)
    assert directional == pytest.approx(rate, rel=1e-10, abs=1e-14)


def test_blob_density_integrates_to_the_total_weight():
    """Σ_grid f̃ h² = Σ w: each ψ_ε(· − v_i) (std 0.5) is integrated spectrally by the midpoint
    rule with h = 0.16 (aliasing error ~exp(−2π²·0.25/0.0256) ≈ 1e−84) on [−8, 8]²."""
    v, w = random_ensemble(20, 2, seed=3)
    grid, h = cell_centred_grid(100, 8.0, 2)
    total = float(jnp.sum(blob_density(jnp.asarray(grid), v, w, 0.25)) * h**2)
    assert total == pytest.approx(float(jnp.sum(w)), rel=1e-12, abs=0)


# -- blob method on BKW-2D ------------------------------------------------------------------

BKW = landau_bkw_2d()
FAST_NV = (10, 20, 30)
BKW_TIMES = tuple(np.round(np.linspace(0.0, 1.0, 11), 12))
ERROR_GRID = jnp.asarray(cell_centred_grid(100, 4.0, 2)[0])  # Huang–Wang's 100² grid


@functools.cache
def bkw_blob(n_v: int) -> BlobSolution:
    """Carrillo et al.'s 2D set-up: [−4, 4]², ε = 0.64 h^1.98, forward Euler Δt = 0.01."""
    config = BlobConfig(n_per_dim=n_v, half_width=4.0, dt=0.01)
    kernel = LandauKernel(gamma=0.0, C_gamma=BKW.B)
    return solve_blob(
        lambda x: BKW.density(0.0, x),
        kernel,
        config,
        dim=2,
        save_times=BKW_TIMES,
        grid=ERROR_GRID,
        problem_id=BKW.problem_id,
    )


def relative_l2_error(solution: BlobSolution, k: int) -> float:
    exact = jax.vmap(BKW.density, (None, 0))(BKW_TIMES[k], solution.grid)
    return float(jnp.linalg.norm(solution.density[k] - exact) / jnp.linalg.norm(exact))


@pytest.mark.parametrize("n_v", FAST_NV)
def test_bkw_blob_conservation(n_v):
    """Mass exactly, momentum to round-off, Euler energy law, E_ε non-increasing.

    Momentum: n steps of Δt Σ w U (= 0 exactly) each rounded to ~N ε max|V|. Euler law:
    two second moments each rounded to ~N ε M₂. Mass: the weights never change, and the
    reconstruction integrates to Σ w up to its truncation outside [−4, 4]² (≲ 1e−5 here).
    E_ε must not increase: its semi-discrete rate is ≤ −1e−3 and forward Euler changes it by
    Δt·rate + O(Δt²) per step.
    """
    solution = bkw_blob(n_v)
    traj = solution.trajectory
    n, n_steps = traj.weights.shape[0], traj.second_moment_increment.shape[0]
    v_max = float(jnp.max(jnp.abs(traj.positions)))
    drift = np.abs(np.asarray(traj.grid_momentum - traj.grid_momentum[0]))
    assert drift.max() <= n_steps * n * EPS * v_max
    m2 = np.asarray(traj.grid_second_moment)
    np.testing.assert_allclose(
        np.diff(m2), traj.second_moment_increment, rtol=1e-12, atol=2 * n * EPS * m2.max()
    )
    # f̃ at the final time on [−8, 8]² (blob tails inside; midpoint rule with h ≤ √ε/2 is
    # spectrally accurate for Gaussians) integrates to Σ w
    grid, h = cell_centred_grid(100, 8.0, 2)
    mass = jnp.sum(blob_density(jnp.asarray(grid), traj.positions[-1], traj.weights, 0.05))
    assert float(mass) * h**2 == pytest.approx(float(jnp.sum(traj.weights)), rel=1e-12, abs=0)
    assert np.all(np.diff(np.asarray(solution.regularised_entropy)) < 0)
    assert np.all(np.asarray(traj.entropy_rate) < 0)
    params = solution.parameters()
    assert json.loads(json.dumps(params)) == params
    assert params["n_particles"] == n_v**2
    assert params["epsilon"] == pytest.approx(default_blob_epsilon(8.0 / n_v), rel=1e-15)


def test_bkw_blob_error_decreases_with_n():
    """Relative L2 error of f̃ at t = 1 on the 100² grid decreases with N_v.

    Observed: 0.256, 0.0945, 0.0489 for N_v = 10, 20, 30 (slope ≈ −1.5 in N_v; the smoothing
    bias O(ε) = O(h²) dominates, so the slope tends to 2 — see tests/validation). At t = 0
    the error is the same order (the reconstruction, not the dynamics, dominates).
    """
    errors = [relative_l2_error(bkw_blob(n_v), -1) for n_v in FAST_NV]
    assert errors[0] > errors[1] > errors[2]
    slope = np.polyfit(np.log(FAST_NV), np.log(errors), 1)[0]
    assert slope < -1.0
    assert errors[-1] < 0.06


# -- jit, vmap, grad ------------------------------------------------------------------------


def test_vmap_and_jit():
    vs = jnp.stack([random_ensemble(16, 2, seed)[0] for seed in range(3)])
    w = jnp.full(16, 1 / 16)
    x = jnp.asarray(cell_centred_grid(5, 3.0, 2)[0])
    batched = jax.vmap(lambda v: blob_density(x, v, w, 0.3))(vs)
    scores = jax.jit(jax.vmap(lambda v: blob_score(v, w, 0.3)))(vs)
    for k in range(3):
        np.testing.assert_allclose(batched[k], blob_density(x, vs[k], w, 0.3), rtol=1e-14, atol=0)
        np.testing.assert_allclose(scores[k], blob_score(vs[k], w, 0.3), rtol=1e-13, atol=1e-14)


def test_grads():
    """check_grads of E_ε in v and ε, and of f̃ in the evaluation points."""
    v, w = random_ensemble(10, 2, seed=5)
    entropy = jax.jit(lambda v, e: blob_entropy(v, w, e))
    check_grads(entropy, (v, 0.3), order=1, modes=("fwd", "rev"))
    x = jnp.asarray(cell_centred_grid(3, 2.0, 2)[0])
    density = jax.jit(lambda x: blob_density(x, v, w, 0.3))
    check_grads(density, (x,), order=1, modes=("fwd", "rev"))


def test_shape_and_dtype_errors():
    v, w = random_ensemble(8, 2, seed=0)
    with pytest.raises(ValueError, match="vmap"):
        blob_score(v[None], w, 0.3)
    with pytest.raises(ValueError, match="float64"):
        blob_score(v.astype(jnp.float32), w.astype(jnp.float32), 0.3)
    with pytest.raises(ValueError, match="x must"):
        blob_density(jnp.zeros((4, 3)), v, w, 0.3)
