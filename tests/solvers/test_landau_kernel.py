"""Landau collision kernel and particle velocity: identities, method agreement, BKW limits."""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from solvers._bkw import landau_bkw_2d, landau_bkw_3d
from solvers._landau_kernel import (
    LandauKernel,
    landau_entropy_production,
    landau_velocity,
    landau_velocity_and_divergence,
)

EPS = float(np.finfo(np.float64).eps)
# Round-off model of the moment expansion (module docstring of solvers._landau_kernel): the
# error of U_i is at most a modest multiple of ε·scale_i (expansion_scale below). Over 720
# random configurations (d = 2, 3; γ = 0, −3, −1.5, 1; N = 5…200) the worst observed ratio
# was 3.1, so 64 leaves a 20× margin.
ERR_FACTOR = 64
GAMMAS = (0.0, -3.0)
PROBLEMS = {2: landau_bkw_2d(), 3: landau_bkw_3d()}
# Most tests share one ensemble size, block size and C_γ so that jit compilations are reused
# (compiling dominates the run time); N = 37 with blocks of 16 exercises the zero padding.
N, BLOCK, C = 37, 16, 0.3


def kernel_for(gamma: float) -> LandauKernel:
    return LandauKernel(gamma=gamma, C_gamma=C, block_size=BLOCK)


def methods_for(gamma: float) -> list[str]:
    return ["naive", "blocked"] + (["moments"] if gamma == 0 else [])


def numpy_reference(gamma, c_gamma, v, w, s, x=None, sx=None, jac=None):
    """U, ∇·U and the entropy production by direct per-pair float64 NumPy sums (no JAX)."""
    v, w, s = (np.asarray(a, dtype=np.float64) for a in (v, w, s))
    x = v if x is None else np.asarray(x, dtype=np.float64)
    sx = s if sx is None else np.asarray(sx, dtype=np.float64)
    d = v.shape[1]
    z = x[:, None, :] - v[None, :, :]
    r2 = np.sum(z * z, -1)
    with np.errstate(divide="ignore"):
        weight = np.where(r2 > 0, np.abs(r2) ** (gamma / 2), 0.0)
    wk = c_gamma * w[None, :] * weight
    ds = sx[:, None, :] - s[None, :, :]
    zds = np.sum(z * ds, -1)
    u = -np.sum(wk[..., None] * (r2[..., None] * ds - z * zds[..., None]), axis=1)
    div = None
    if jac is not None:
        jac = np.asarray(jac)
        a_jac = r2 * np.trace(jac, axis1=1, axis2=2)[:, None] - np.einsum(
            "ijk,ikl,ijl->ij", z, jac, z
        )
        div = -np.sum(wk * (a_jac - (d - 1) * zds), axis=1)
    quad = np.sum(ds * ds, -1) * r2 - zds**2  # (s_i − s_j)ᵀ Q(z) (s_i − s_j)
    production = -0.5 * np.sum(w[:, None] * wk * quad) if x is v else None
    return u, div, production


def expansion_scale(gamma, c_gamma, v, w, s, x=None, sx=None):
    """scale_i = C_γ Σ_j |w_j| |z_ij|^γ (|x_i| + |v_j| + V)² (|σ_i| + |s_j| + S), centred.

    V = max|v|, S = max|s| (raw): XLA may round the centring of rows and of columns apart
    (one copy fused into an FMA), shifting z and σ − s_j by ~ε V and ε S. For γ = 0
    coincident pairs count too (the moment path sums them)."""
    v, w, s = (np.asarray(a, dtype=np.float64) for a in (v, w, s))
    x = v if x is None else np.asarray(x, dtype=np.float64)
    sx = s if sx is None else np.asarray(sx, dtype=np.float64)
    vc, sc = v.mean(0), s.mean(0)
    floor_v = max(np.abs(v).max(), np.abs(x).max())
    floor_s = max(np.abs(s).max(), np.abs(sx).max())
    r2 = np.sum((x[:, None] - v[None]) ** 2, -1)
    with np.errstate(divide="ignore"):
        weight = np.where(r2 > 0, np.abs(r2) ** (gamma / 2), 0.0) if gamma != 0 else 1.0 + 0 * r2
    nx = np.linalg.norm(x - vc, axis=1)[:, None]
    nv = np.linalg.norm(v - vc, axis=1)[None, :]
    ns = np.linalg.norm(sx - sc, axis=1)[:, None] + np.linalg.norm(s - sc, axis=1)[None, :]
    terms = weight * (nx + nv + floor_v) ** 2 * (ns + floor_s)
    return c_gamma * np.sum(np.abs(w)[None, :] * terms, axis=1)


def assert_within(actual, expected, bound, what):
    err = np.abs(np.asarray(actual) - np.asarray(expected))
    bound = np.broadcast_to(np.asarray(bound), err.shape)
    worst = np.unravel_index(np.argmax(err / bound), err.shape)
    assert np.all(err <= bound), (
        f"{what}: |error| {err[worst]:.3e} > bound {bound[worst]:.3e} at {worst}"
    )


def ensemble(d, n, seed, spread=2.0):
    """Random particles (offset from the origin), positive weights and unrelated scores."""
    key_v, key_o, key_s, key_w, key_j = jax.random.split(jax.random.key(seed), 5)
    v = spread * jax.random.normal(key_v, (n, d)) + 3 * jax.random.normal(key_o, (d,))
    s = 3 * jax.random.normal(key_s, (n, d))
    w = jax.random.uniform(key_w, (n,), minval=0.5, maxval=1.5) / n
    jac = jax.random.normal(key_j, (n, d, d))
    return v, w, s, jac


# -- the kernel matrix ----------------------------------------------------------------------


@pytest.mark.parametrize("gamma", [0.0, -3.0, -2.0, -1.5, 1.0, 2.0])
def test_kernel_matrix_values(gamma):
    """A(z) = C|z|^γ(|z|²I − zzᵀ) in each branch of the radial power (even, odd < 0 via
    rsqrt, odd > 0 via sqrt, non-integer via exp/log); A(0) = 0."""
    kernel = LandauKernel(gamma=gamma, C_gamma=0.7)
    z = np.random.default_rng(0).normal(size=(16, 3))
    r = np.linalg.norm(z, axis=1)[:, None, None]
    expected = 0.7 * r**gamma * (r**2 * np.eye(3) - z[:, :, None] * z[:, None, :])
    a = jax.vmap(kernel.matrix)(jnp.asarray(z))
    np.testing.assert_allclose(a, expected, rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(kernel.matrix(jnp.zeros(3)), np.zeros((3, 3)))


@pytest.mark.parametrize(("gamma", "d"), [(0.0, 2), (-3.0, 3)])
def test_kernel_matrix_identities(gamma, d):
    """A(z)z = 0, A = Aᵀ ⪰ 0, A(−z) = A(z), A(0) = 0, row divergence −(d−1)C|z|^γ z."""
    kernel = LandauKernel(gamma=gamma, C_gamma=0.7)
    z = jax.random.normal(jax.random.key(d), (32, d))

    @jax.jit
    def evaluate(z):
        # jac[n, i, j, k] = ∂_k A_ij, so the row divergence Σ_j ∂_j A_ij is "nijj->ni"
        jac = jax.vmap(jax.jacfwd(kernel.matrix))(z)
        a = jax.vmap(kernel.matrix)(z)
        return a, jax.vmap(kernel.matrix)(-z), jnp.linalg.eigvalsh(a), jnp.einsum("nijj->ni", jac)

    a, a_minus, eig, div = evaluate(z)
    norm_a = float(jnp.max(jnp.linalg.norm(a, axis=(1, 2))))
    tol = 16 * EPS * norm_a
    r = jnp.linalg.norm(z, axis=1)
    expected = (
        0.7
        * r[:, None, None] ** gamma
        * (r[:, None, None] ** 2 * jnp.eye(d) - z[:, :, None] * z[:, None, :])
    )
    np.testing.assert_allclose(a, expected, rtol=1e-13, atol=tol)
    np.testing.assert_allclose(jnp.einsum("nij,nj->ni", a, z), 0.0, rtol=0, atol=tol * 4)
    np.testing.assert_array_equal(a, jnp.swapaxes(a, 1, 2))
    np.testing.assert_array_equal(a, a_minus)
    assert float(jnp.min(eig)) >= -tol
    np.testing.assert_array_equal(kernel.matrix(jnp.zeros(d)), jnp.zeros((d, d)))
    np.testing.assert_allclose(div, -(d - 1) * 0.7 * r[:, None] ** gamma * z, rtol=1e-12, atol=tol)


def test_kernel_config_validation():
    with pytest.raises(ValueError, match="C_gamma"):
        LandauKernel(gamma=0.0, C_gamma=-1.0)
    with pytest.raises(ValueError, match="gamma"):
        LandauKernel(gamma=float("nan"), C_gamma=1.0)
    with pytest.raises(ValueError, match="block_size"):
        LandauKernel(gamma=0.0, C_gamma=1.0, block_size=0)


# -- evaluation methods ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gamma", "d", "n", "targets"),
    [
        (0.0, 2, N, "particles"),
        (0.0, 3, N, "particles"),
        (-3.0, 2, N, "particles"),
        (-3.0, 3, N, "particles"),
        (-3.0, 2, N, "points"),
        (-3.0, 2, 32, "particles"),  # N divisible by the block size
    ],
)
def test_methods_match_numpy_reference(gamma, d, n, targets):
    """The blocked and moment paths equal the direct NumPy sums within the round-off model.

    (The naive JAX path, a reference itself, is checked in the next test.)"""
    kernel = kernel_for(gamma)
    v, w, s, jac = ensemble(d, n, seed=n + d)
    extra = {}
    if targets == "points":
        x, _, sx, _ = ensemble(d, 7, seed=99)
        jac = jac[:7]
        extra = {"x": x + 0.1, "sx": sx}
    u_ref, div_ref, _ = numpy_reference(gamma, C, v, w, s, jac=jac, **extra)
    scale = expansion_scale(gamma, C, v, w, s, **extra)
    jac_scale = np.linalg.norm(np.asarray(jac), axis=(1, 2)) * d + 1.0
    for method in ["blocked"] + (["moments"] if gamma == 0 else []):
        u, div = landau_velocity_and_divergence(kernel, v, w, s, jac, method=method, **extra)
        assert u.shape == u_ref.shape
        assert div.shape == div_ref.shape
        assert_within(u, u_ref, ERR_FACTOR * EPS * scale[:, None], f"U[{method}]")
        assert_within(div, div_ref, ERR_FACTOR * EPS * scale * jac_scale, f"div U[{method}]")
        if d == 2 and n == N and targets == "particles":  # the velocity-only entry point
            u_only = landau_velocity(kernel, v, w, s, method=method, **extra)
            np.testing.assert_array_equal(u_only, u)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_naive_matches_numpy_reference(gamma):
    kernel = kernel_for(gamma)
    v, w, s, jac = ensemble(2, N, seed=N + 2)
    u_ref, div_ref, _ = numpy_reference(gamma, C, v, w, s, jac=jac)
    u, div = landau_velocity_and_divergence(kernel, v, w, s, jac, method="naive")
    # direct sums on both sides: only summation-order round-off
    np.testing.assert_allclose(u, u_ref, rtol=1e-12, atol=1e-12 * float(np.abs(u_ref).max()))
    np.testing.assert_allclose(div, div_ref, rtol=1e-12, atol=1e-12 * float(np.abs(div_ref).max()))
    np.testing.assert_array_equal(landau_velocity(kernel, v, w, s, method="naive"), u)
    # and the blocked path equals it within the round-off model (N = 37: a padded block)
    u_b, div_b = landau_velocity_and_divergence(kernel, v, w, s, jac, method="blocked")
    scale = expansion_scale(gamma, C, v, w, s)
    jac_scale = np.linalg.norm(np.asarray(jac), axis=(1, 2)) * 2 + 1.0
    assert_within(u_b, u, ERR_FACTOR * EPS * scale[:, None], "U blocked vs naive")
    assert_within(div_b, div, ERR_FACTOR * EPS * scale * jac_scale, "div U blocked vs naive")


@pytest.mark.parametrize("d", [2, 3])
def test_moments_equal_blocked_to_round_off(d):
    """γ = 0: the O(N) moment sums equal the blocked pairwise sums to round-off.

    Both evaluate the same polynomial expansion with coefficient sums of size ~ scale_i, so
    they differ by a few ε·scale_i (≈ 1e−14 relative to |U| here); rtol 1e−12 is the bound."""
    kernel = kernel_for(0.0)
    v, w, s, jac = ensemble(d, N, seed=7)
    blocked, div_b = landau_velocity_and_divergence(kernel, v, w, s, jac, method="blocked")
    moments, div_m = landau_velocity_and_divergence(kernel, v, w, s, jac, method="moments")
    scale = expansion_scale(0.0, C, v, w, s)
    assert_within(moments, blocked, ERR_FACTOR * EPS * scale[:, None], "U moments vs blocked")
    u_max, div_max = float(jnp.max(jnp.abs(blocked))), float(jnp.max(jnp.abs(div_b)))
    np.testing.assert_allclose(moments, blocked, rtol=1e-12, atol=1e-12 * u_max)
    np.testing.assert_allclose(div_m, div_b, rtol=1e-12, atol=1e-12 * div_max)


@pytest.mark.parametrize("gamma", GAMMAS)
def test_self_and_coincident_pairs_contribute_nothing(gamma):
    """Duplicated particles (z = 0) and the j = i self-term add 0, also for Coulomb."""
    kernel = kernel_for(gamma)
    v, w, s, jac = ensemble(2, N, seed=3)
    v = v.at[5].set(v[2])  # an exact duplicate with a different score
    u_ref, _, _ = numpy_reference(gamma, C, v, w, s, jac=jac)
    scale = expansion_scale(gamma, C, v, w, s)
    for method in methods_for(gamma):
        u, div = landau_velocity_and_divergence(kernel, v, w, s, jac, method=method)
        assert bool(jnp.all(jnp.isfinite(u)))
        assert bool(jnp.all(jnp.isfinite(div)))
        assert_within(u, u_ref, ERR_FACTOR * EPS * scale[:, None], f"U[{method}]")


@pytest.mark.parametrize("gamma", GAMMAS)
@pytest.mark.parametrize("d", [2, 3])
def test_momentum_energy_and_entropy_production(gamma, d):
    """Σ w_i U_i = 0, Σ w_i V_i·U_i = 0 to round-off; Ḣ_N = −½ΣΣ w w ΔsᵀAΔs ≤ 0."""
    kernel = kernel_for(gamma)
    v, w, s, _ = ensemble(d, N, seed=11 * d)
    scale = expansion_scale(gamma, C, v, w, s)
    arm = np.linalg.norm(np.asarray(v), axis=1)
    _, _, production_ref = numpy_reference(gamma, C, v, w, s)
    for method in ["blocked"] + (["moments"] if gamma == 0 else []):
        u = landau_velocity(kernel, v, w, s, method=method)
        momentum = jnp.sum(w[:, None] * u, axis=0)
        energy = jnp.sum(w * jnp.sum(v * u, axis=1))
        bound = ERR_FACTOR * EPS * float(np.sum(np.asarray(w) * scale))
        assert_within(momentum, 0.0, bound, f"momentum[{method}]")
        assert_within(energy, 0.0, bound * (1 + arm.max()), f"energy[{method}]")
    production = landau_entropy_production(kernel, v, w, s)  # Σ w_i s_i·U_i, default method
    assert float(production) < 0
    s_max = float(np.abs(np.asarray(s)).max())
    bound_h = ERR_FACTOR * EPS * float(np.sum(np.asarray(w) * scale)) * 2 * s_max
    assert_within(production, production_ref, bound_h, "entropy production")


# -- BKW: the particle velocity converges to the exact one ---------------------------------


def bkw_summands(problem, t, samples, x):
    """Y_ij = −B A(x_i − V_j)(s(x_i) − s(V_j)) and Z_ij (its divergence), for MC errors."""
    s = np.asarray(jax.vmap(problem.score, (None, 0))(t, samples))
    sx = np.asarray(jax.vmap(problem.score, (None, 0))(t, x))
    jac = np.asarray(jax.vmap(jax.jacfwd(problem.score, 1), (None, 0))(t, x))
    z = np.asarray(x)[:, None, :] - np.asarray(samples)[None, :, :]
    r2 = np.sum(z * z, -1)
    ds = sx[:, None, :] - s[None, :, :]
    zds = np.sum(z * ds, -1)
    y = -problem.B * (r2[..., None] * ds - z * zds[..., None])
    z_jac_z = np.einsum("ijk,ikl,ijl->ij", z, jac, z)
    a_jac = r2 * np.trace(jac, axis1=1, axis2=2)[:, None] - z_jac_z
    div = -problem.B * (a_jac - (problem.dim - 1) * zds)
    return y, div, sx, jac


@pytest.mark.parametrize("d", [2])
def test_bkw_velocity_converges_at_monte_carlo_rate(d):
    """U_N(x) → −λ(s(x) + x) and ∇·U_N(x) → −λ(∇·s(x) + d) with exact samples and score.

    U_N(x) is the mean of N iid summands Y_j, so (U_N − U)/(σ̂/√N) is ≈ N(0, 1) per component
    (σ̂ the sample standard deviation of Y_j). At N = 2^11 and 2^15 (16× apart, so the error
    shrinks 4×) the mean of the squared z-scores over 24·d components must lie in [0.3, 2.5]
    (a χ² mean over 24d correlated components; failure probability < 1e−4 under the model)
    and every |z| < 5. The smaller N is the first 2^11 samples with the other weights 0 (one
    compiled shape). 3D: tests/validation."""
    problem = PROBLEMS[d]
    t = problem.default_times[0]
    kernel = LandauKernel(gamma=0.0, C_gamma=problem.B)
    draws = problem.sample(t, 24 + 2**15, key=jax.random.key(100 + d))
    x, samples = draws[:24], draws[24:]
    u_exact = jax.vmap(problem.velocity, (None, 0))(t, x)
    div_exact = -problem.rate * (jax.vmap(problem.score_divergence, (None, 0))(t, x) + d)
    s = jax.vmap(problem.score, (None, 0))(t, samples)
    y_all, ydiv_all, sx, jac = bkw_summands(problem, t, samples, x)
    for n in (2**11, 2**15):
        w = jnp.where(jnp.arange(2**15) < n, 1.0 / n, 0.0)
        y, ydiv = y_all[:, :n], ydiv_all[:, :n]
        u, div = landau_velocity_and_divergence(
            kernel, samples, w, s, jnp.asarray(jac), x=x, sx=jnp.asarray(sx)
        )
        # the library's U_N is exactly the summands' mean (to round-off)
        np.testing.assert_allclose(u, y.mean(1), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(div, ydiv.mean(1), rtol=1e-10, atol=1e-12)
        for est, exact, summands in ((u, u_exact, y), (div, div_exact, ydiv)):
            zscore = (np.asarray(est) - np.asarray(exact)) / (summands.std(1) / math.sqrt(n))
            assert np.all(np.abs(zscore) < 5), zscore
            assert 0.3 < float(np.mean(zscore**2)) < 2.5, float(np.mean(zscore**2))


@pytest.mark.parametrize("d", [2])
def test_bkw_entropy_production_matches_exact_rate(d):
    """Ḣ_N (exact samples, exact score) ≈ dH/dt = −λ(I − d) within 4 batch standard errors.

    16 independent batches of 4,096 give 16 estimates; their standard deviation / 4 is the
    standard error of their mean (the V-statistic bias (1 − 1/4096) is 1e−4 relative).
    (3D: tests/validation.)"""
    problem = PROBLEMS[d]
    t = problem.default_times[1]
    kernel = LandauKernel(gamma=0.0, C_gamma=problem.B)
    n, batches = 4096, 16
    samples = problem.sample(t, n * batches, key=jax.random.key(200 + d)).reshape(batches, n, d)
    scores = jax.vmap(jax.vmap(problem.score, (None, 0)), (None, 0))(t, samples)
    w = jnp.full((n,), 1.0 / n)
    estimates = np.asarray(
        jax.vmap(lambda v, s: landau_entropy_production(kernel, v, w, s))(samples, scores)
    )
    stderr = estimates.std(ddof=1) / math.sqrt(batches)
    exact = float(problem.entropy_rate(t))
    assert estimates.mean() == pytest.approx(exact, abs=4 * stderr, rel=0)
    assert stderr < 0.1 * abs(exact)  # the check has teeth


# -- transformations ------------------------------------------------------------------------


def test_jit_and_vmap_over_ensembles():
    """jax.jit(jax.vmap(·)) over a batch of ensembles, the kernel passed as an argument (a
    pytree whose fields are all static), equals one call per ensemble."""
    kernel = kernel_for(-3.0)
    batch = [ensemble(2, N, seed=k) for k in range(3)]
    stacked = [jnp.stack(a) for a in zip(*batch, strict=True)]
    batched = jax.jit(
        jax.vmap(
            lambda k, *a: landau_velocity_and_divergence(k, *a, method="blocked"),
            in_axes=(None, 0, 0, 0, 0),
        )
    )
    u, div = batched(kernel, *stacked)
    for i, args in enumerate(batch):
        u_i, div_i = landau_velocity_and_divergence(kernel, *args, method="blocked")
        np.testing.assert_allclose(u[i], u_i, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(div[i], div_i, rtol=1e-13, atol=1e-13)


def test_no_retrace_for_new_values():
    kernel = kernel_for(-3.0)

    @eqx.filter_jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def velocity(v, w, s):
        return landau_velocity(kernel, v, w, s)

    for seed in range(3):
        velocity(*ensemble(2, N, seed=seed)[:3])


@pytest.mark.parametrize(
    ("gamma", "method", "mode"), [(0.0, "moments", "fwd"), (-3.0, "blocked", "rev")]
)
def test_grad_with_respect_to_positions(gamma, method, mode):
    """check_grads of a scalar of U and ∇·U in V (particles ≥ 0.5 apart; one mode each, as
    compiling the transposed blocked loop dominates the test time)."""
    kernel = LandauKernel(gamma=gamma, C_gamma=C, block_size=4)
    grid = jnp.stack(jnp.meshgrid(jnp.arange(3.0), jnp.arange(2.0)), -1).reshape(-1, 2)
    v = grid + 0.2 * jax.random.uniform(jax.random.key(0), grid.shape, minval=-1, maxval=1)
    s = jax.random.normal(jax.random.key(1), v.shape)
    w = jnp.full((6,), 1 / 6)
    c = jax.random.normal(jax.random.key(2), v.shape)
    jac = jax.random.normal(jax.random.key(3), (6, 2, 2))

    @jax.jit
    def scalar(v):
        u, div = landau_velocity_and_divergence(kernel, v, w, s, jac, method=method)
        return jnp.sum(c * u) + jnp.sum(div)

    check_grads(scalar, (v,), order=1, modes=[mode])


# -- input validation -----------------------------------------------------------------------


def test_input_validation():
    kernel = kernel_for(-3.0)
    v, w, s, jac = ensemble(2, N, seed=0)
    with pytest.raises(ValueError, match="vmap"):
        landau_velocity(kernel, v[None], w, s)
    with pytest.raises(ValueError, match="vmap"):
        landau_velocity(kernel, v, w[:5], s)
    with pytest.raises(ValueError, match="jac"):
        landau_velocity_and_divergence(kernel, v, w, s, jac[:, :1])
    with pytest.raises(ValueError, match="float64"):
        landau_velocity(kernel, v.astype(jnp.float32), w.astype(jnp.float32), s.astype(jnp.float32))
    with pytest.raises(ValueError, match="gamma = 0"):
        landau_velocity(kernel, v, w, s, method="moments")
    with pytest.raises(ValueError, match="method"):
        landau_velocity(kernel, v, w, s, method="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="both"):
        landau_velocity(kernel, v, w, s, x=v)
    loose = LandauKernel(gamma=-3.0, C_gamma=C, block_size=BLOCK, allow_float32=True)
    v32, w32, s32 = (a.astype(jnp.float32) for a in (v, w, s))
    assert landau_velocity(loose, v32, w32, s32).dtype == jnp.float32
