"""Observed weak and strong convergence orders of the reverse-SDE schemes (slow).

Set-up: data N(μ, Σ) (one Gaussian component) under the OU, VP and VE SDEs, the exact
score, and the reverse SDE from t_start to t_end started at the exact law p_{t_start}.
Everything is linear, so the law of the numerical solution is Gaussian and *exactly*
computable: a scheme with n steps maps (x₀, ξ₁..ξ_n) affinely to
x_n = M x₀ + B ξ + c, with M, B the Jacobians (jax.jacrev) and c the image of zero, hence
E x_n = M E x₀ + c and Cov x_n = M Cov x₀ Mᵀ + B Bᵀ. No Monte Carlo noise enters.

* Weak error e(h) = |E x_n − α μ| + ‖Cov x_n − Σ^{t_end}‖_F against the exact p_{t_end}
  (the reverse SDE with the exact score has marginals p_t).
* Strong error: the root-mean-square difference between the solutions with n and 2n steps
  driven by one Brownian path (the path on the finest grid, increments summed onto the
  coarser ones), E|x_n − x_{2n}|² = |ΔM E x₀ + Δc|² + tr(ΔM Cov x₀ ΔMᵀ) + ‖ΔB‖_F²; it
  scales like the strong error itself.

Orders are least-squares slopes of log e against log h over the step counts below.
Expected (Kloeden & Platen 1992): Euler–Maruyama weak 1, strong 1 (additive noise);
stochastic Heun weak 2, strong 1. Measured successive-halving slopes, n = 16 → 1024:

* weak, EM: OU 1.08 → 1.00, VP 1.17 → 1.00, VE 1.96 → 1.32 (still pre-asymptotic: the O(h²)
  term dominates until h ~ 1e-3 because g² = 2σ(t)² ln(σ_max/σ_min) varies by 10³ over the
  window; hence VE uses n = 1024…4096);
* weak, Heun: OU 2.09 → 2.01, VP 2.04 → 2.00, VE 2.21 → 2.00;
* strong (n = 16 → 512), EM: OU 1.09 → 1.01, VP 1.19 → 1.01, VE 1.11 → 1.00;
  Heun: OU 1.02 → 1.00, VP 1.03 → 1.00, VE 1.76 → 1.00 (hence strong fits start at n = 32).

The bands allow for the remaining pre-asymptotic curvature.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from solvers._sde_samplers import EulerMaruyama, StochasticHeun
from tests.solvers.test_sde_samplers import (
    check_characteristic,
    check_flow_jacobian,
    single_gaussian_problem,
)

WINDOWS = {"ou": (3.0, 0.2), "vp": (1.0, 0.1), "ve": (1.0, 0.2)}
WEAK_STEPS = {"ou": (16, 32, 64, 128), "vp": (16, 32, 64, 128), "ve": (1024, 2048, 4096)}
STRONG_STEPS = (32, 64, 128, 256)
WEAK_BANDS = {EulerMaruyama: (0.9, 1.25), StochasticHeun: (1.85, 2.25)}
STRONG_BAND = (0.85, 1.25)


def fitted_order(steps, errors) -> float:
    h = 1.0 / np.asarray(steps, dtype=float)
    slope, _ = np.polyfit(np.log(h), np.log(np.asarray(errors)), 1)
    return float(slope)


def affine_map(sampler, problem, t_start, t_end, aggregate):
    """(M, B, c) of x_n = M x₀ + B ξ + c, ξ the finest-grid noise mapped by ``aggregate``."""
    n_fine = aggregate.shape[1]

    def run(x0, xi):
        noise = aggregate @ xi  # (n, n_fine) @ (n_fine, d)
        return sampler.integrate(problem, problem.score, x0, noise, t_start=t_start, t_end=t_end)

    x0, xi = jnp.zeros(problem.dim), jnp.zeros((n_fine, problem.dim))
    m, b = jax.jit(jax.jacrev(run, argnums=(0, 1)))(x0, xi)
    return m, b.reshape(problem.dim, -1), run(x0, xi)


def aggregation(n: int, n_fine: int) -> jnp.ndarray:
    """Sum blocks of n_fine/n standard normals, scaled to unit variance."""
    block = n_fine // n
    return jnp.kron(jnp.eye(n), jnp.ones((1, block))) / jnp.sqrt(block)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["ou", "vp", "ve"])
@pytest.mark.parametrize("scheme", [EulerMaruyama, StochasticHeun], ids=lambda s: s.name)
def test_weak_order(scheme, kind):
    problem = single_gaussian_problem(kind)
    t_start, t_end = WINDOWS[kind]
    mean0, cov0 = problem.mean(t_start), problem.covariance(t_start)
    errors = []
    for n in WEAK_STEPS[kind]:
        m, b, c = affine_map(scheme(n), problem, t_start, t_end, jnp.eye(n))
        mean, cov = m @ mean0 + c, m @ cov0 @ m.T + b @ b.T
        errors.append(
            float(
                jnp.linalg.norm(mean - problem.mean(t_end))
                + jnp.linalg.norm(cov - problem.covariance(t_end))
            )
        )
    order = fitted_order(WEAK_STEPS[kind], errors)
    low, high = WEAK_BANDS[scheme]
    assert low <= order <= high, f"{scheme.name} {kind}: weak order {order:.3f}, errors {errors}"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["ou", "vp", "ve"])
@pytest.mark.parametrize("scheme", [EulerMaruyama, StochasticHeun], ids=lambda s: s.name)
def test_strong_order(scheme, kind):
    problem = single_gaussian_problem(kind)
    t_start, t_end = WINDOWS[kind]
    mean0, cov0 = problem.mean(t_start), problem.covariance(t_start)
    n_fine = 2 * STRONG_STEPS[-1]
    maps = {
        n: affine_map(scheme(n), problem, t_start, t_end, aggregation(n, n_fine))
        for n in (*STRONG_STEPS, n_fine)
    }
    errors = []
    for n in STRONG_STEPS:
        (m1, b1, c1), (m2, b2, c2) = maps[n], maps[2 * n]
        dm, db, dc = m1 - m2, b1 - b2, c1 - c2
        mean_part = jnp.sum((dm @ mean0 + dc) ** 2)
        errors.append(float(jnp.sqrt(mean_part + jnp.trace(dm @ cov0 @ dm.T) + jnp.sum(db**2))))
    order = fitted_order(STRONG_STEPS, errors)
    low, high = STRONG_BAND
    assert low <= order <= high, f"{scheme.name} {kind}: strong order {order:.3f}, errors {errors}"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["ou", "vp", "ve"])
def test_pf_ode_follows_the_closed_form_characteristic(kind):
    """Saved trajectories (``save_times``), backward and forward, for each SDE."""
    check_characteristic(kind)


@pytest.mark.slow
def test_pf_ode_reverse_mode_jacobian():
    """jax.jacrev through diffrax's RecursiveCheckpointAdjoint (the fast suite uses jacfwd)."""
    check_flow_jacobian("reverse")
