"""Slow validation of the BKW reference and the Landau kernel (``pytest -m slow``).

* exact characteristics against a tight diffrax solve, both dimensions, tails included;
* ∂_t f against the full Landau collision operator (Gauss–Hermite quadrature, exact for γ = 0);
* the particle velocity U_N → −λ(s + v) at the Monte Carlo rate: fitted slope of log RMS
  error against log N over N = 2^10 … 2^16;
* the entropy-production estimate against dH/dt = −λ(I − d) at every default time;
* the Coulomb blocked path on 16,384 BKW samples against direct NumPy sums.
"""

from __future__ import annotations

import math

import diffrax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.spatial

from solvers._bkw import LandauBKWProblem, landau_bkw_2d, landau_bkw_3d
from solvers._landau_kernel import LandauKernel, landau_entropy_production, landau_velocity
from tests.solvers.test_landau_kernel import EPS, ERR_FACTOR, expansion_scale

pytestmark = pytest.mark.slow

PROBLEMS = {2: landau_bkw_2d(), 3: landau_bkw_3d()}


def ode_characteristics(problem: LandauBKWProblem, t0: float, t1: float, x0: jax.Array):
    """dX/dt = U(t, X), d/dt log f = λ(∇·s + d) by diffrax Dopri8, rtol = atol = 1e−12."""

    def rhs(t, y, args):
        x, _ = y
        return problem.velocity(t, x), problem.log_density_rate(t, x)

    def solve(x):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(rhs),
            diffrax.Dopri8(),
            t0,
            t1,
            dt0=0.01,
            y0=(x, problem.log_density(t0, x)),
            stepsize_controller=diffrax.PIDController(rtol=1e-12, atol=1e-12),
            max_steps=100_000,
        )
        return sol.ys[0][-1], sol.ys[1][-1]

    return jax.jit(jax.vmap(solve))(x0)


@pytest.mark.parametrize("d", [2, 3])
def test_characteristics_against_diffrax(d):
    """Closed-form characteristics (CDF inversion) equal the ODE solution to 1e−9 from t_min
    (2D: t = 0, P = 0) to every default time, for radii 0.05 … 6 (both CDF tails); log f
    integrated along the ODE equals log f_exact."""
    problem = PROBLEMS[d]
    radii = jnp.array([0.05, 0.2, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0])
    direction = jax.random.normal(jax.random.key(d), (len(radii), d))
    x0 = radii[:, None] * direction / jnp.linalg.norm(direction, axis=1, keepdims=True)
    for t1 in problem.default_times:
        x_ode, logf_ode = ode_characteristics(problem, problem.t_min, t1, x0)
        x_cf = jax.vmap(problem.characteristic, (None, 0, None))(problem.t_min, x0, t1)
        np.testing.assert_allclose(x_cf, x_ode, rtol=1e-9, atol=1e-10)
        logf = jax.vmap(problem.log_density, (None, 0))(t1, x_ode)
        np.testing.assert_allclose(logf_ode, logf, rtol=1e-9, atol=1e-9)


def landau_operator(problem: LandauBKWProblem, t, v, nodes: int = 8):
    """Q(f, f)(v) = ∇·∫ A(v−w)(f(w)∇f(v) − f(v)∇f(w)) dw by tensor Gauss–Hermite in w.

    With γ = 0 the integrand is a polynomial of degree ≤ 5 in w times e^{−|w|²/(2K)}, so an
    8-point rule per axis (exact to degree 15) integrates it exactly up to round-off."""
    d = problem.dim
    k, _, _ = problem.coefficients(t)
    xi, wi = np.polynomial.hermite.hermgauss(nodes)
    grids = np.meshgrid(*([xi] * d), indexing="ij")
    pts = jnp.sqrt(2 * k) * jnp.stack([g.ravel() for g in grids], axis=1)
    wts = np.prod(np.meshgrid(*([wi] * d), indexing="ij"), axis=0).ravel()
    # ∫ h(w) dw = (2K)^{d/2} Σ ω e^{ξ²} h(√(2K) ξ): the Gaussian is divided out analytically
    weights = (2 * k) ** (d / 2) * jnp.asarray(wts) * jnp.exp(jnp.sum(pts**2, 1) / (2 * k))

    def a(z):
        return problem.B * (jnp.dot(z, z) * jnp.eye(d) - jnp.outer(z, z))

    f = lambda w: problem.density(t, w)  # noqa: E731
    grad_f = jax.grad(f)
    fw, gw = jax.vmap(f)(pts), jax.vmap(grad_f)(pts)

    def flux(v):
        av = jax.vmap(lambda w: a(v - w))(pts)
        inner = fw[:, None] * grad_f(v)[None, :] - f(v) * gw
        return jnp.einsum("n,nij,nj->i", weights, av, inner)

    return jnp.trace(jax.jacfwd(flux)(v))


@pytest.mark.parametrize("d", [2, 3])
def test_density_solves_full_landau_equation(d):
    """∂_t f (autodiff) equals the full Landau operator at 16 points and every default time."""
    problem = PROBLEMS[d]
    x = 1.5 * jax.random.normal(jax.random.key(20 + d), (16, d))
    times = jnp.asarray(problem.default_times)
    op = jax.jit(
        jax.vmap(jax.vmap(lambda t, v: landau_operator(problem, t, v), (None, 0)), (0, None))
    )
    q = op(times, x)
    dt = jax.vmap(jax.vmap(jax.grad(problem.density, argnums=0), (None, 0)), (0, None))(times, x)
    np.testing.assert_allclose(q, dt, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("d", [2, 3])
def test_particle_velocity_monte_carlo_rate(d):
    """RMS of U_N(x) − U(x) over 32 targets × 8 replicates ∝ N^{−1/2}: the least-squares slope
    of log RMS against log N over N = 2^10 … 2^16 lies in [−0.6, −0.4] (the RMS over 256·d
    components has ≈ 3% relative noise, i.e. ±0.02 on the slope)."""
    problem = PROBLEMS[d]
    t = problem.default_times[1]
    kernel = LandauKernel(gamma=0.0, C_gamma=problem.B)
    x = problem.sample(t, 32, key=jax.random.key(300 + d))
    sx = jax.vmap(problem.score, (None, 0))(t, x)
    u_exact = jax.vmap(problem.velocity, (None, 0))(t, x)
    sizes = [2**k for k in range(10, 17)]
    rms = []
    for n in sizes:
        keys = jax.random.split(jax.random.key(1000 * d + n.bit_length()), 8)
        errors = []
        for key in keys:
            v = problem.sample(t, n, key=key)
            s = jax.vmap(problem.score, (None, 0))(t, v)
            w = jnp.full((n,), 1.0 / n)
            u = landau_velocity(kernel, v, w, s, x=x, sx=sx)
            errors.append(np.asarray(u - u_exact))
        rms.append(math.sqrt(float(np.mean(np.square(errors)))))
    slope = np.polyfit(np.log(sizes), np.log(rms), 1)[0]
    assert -0.6 <= slope <= -0.4, (slope, rms)


@pytest.mark.parametrize("d", [2, 3])
def test_entropy_production_at_all_times(d):
    """Ḣ_N ≈ −λ(I − d) within 4 batch standard errors (16 batches of 8,192) at every time."""
    problem = PROBLEMS[d]
    kernel = LandauKernel(gamma=0.0, C_gamma=problem.B)
    n, batches = 8192, 16
    w = jnp.full((n,), 1.0 / n)
    for i, t in enumerate(problem.default_times):
        v = problem.sample(t, n * batches, key=jax.random.key(500 + 10 * d + i))
        s = jax.vmap(problem.score, (None, 0))(t, v)
        estimates = np.asarray(
            jax.vmap(lambda v, s: landau_entropy_production(kernel, v, w, s))(
                v.reshape(batches, n, d), s.reshape(batches, n, d)
            )
        )
        stderr = estimates.std(ddof=1) / math.sqrt(batches)
        exact = float(problem.entropy_rate(t))
        assert estimates.mean() == pytest.approx(exact, abs=4 * stderr, rel=0), (t, stderr)


def test_coulomb_blocked_path_on_bkw_samples():
    """γ = −3 on 16,384 BKW samples: the 32 rows with the closest neighbours and 64 other rows
    agree with direct NumPy sums within the round-off model."""
    problem = PROBLEMS[2]
    t, n = 1.0, 2**14
    v = problem.sample(t, n, key=jax.random.key(7))
    s = jax.vmap(problem.score, (None, 0))(t, v)
    w = jnp.full((n,), 1.0 / n)
    kernel = LandauKernel(gamma=-3.0, C_gamma=problem.B)
    u = np.asarray(landau_velocity(kernel, v, w, s))
    vn, sn, wn = np.asarray(v), np.asarray(s), np.asarray(w)
    dist, _ = scipy.spatial.cKDTree(vn).query(vn, k=2)
    close = np.argsort(dist[:, 1])[:32]
    rows = np.concatenate([close, np.arange(64)])
    z = vn[rows][:, None] - vn[None]
    r2 = np.sum(z * z, -1)
    with np.errstate(divide="ignore"):
        weight = np.where(r2 > 0, r2**-1.5, 0.0)
    ds = sn[rows][:, None] - sn[None]
    zds = np.sum(z * ds, -1)
    ref = -problem.B * np.sum(
        (wn[None] * weight)[..., None] * (r2[..., None] * ds - z * zds[..., None]), 1
    )
    scale = expansion_scale(-3.0, problem.B, vn, wn, sn, x=vn[rows], sx=sn[rows])
    err = np.abs(u[rows] - ref).max(axis=1)
    assert np.all(err <= ERR_FACTOR * EPS * scale), (err / (EPS * scale)).max()
