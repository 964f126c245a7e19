"""Properties of random Gaussian-mixture problems under OU / VP / VE SDEs (hypothesis).

Mixtures are drawn with a few fixed (d, K, SDE) cases (a new one retriggers jit), bounded
means, weights bounded away from 0, and covariances L Lᵀ + c I with |L_ij| ≤ 1 and
c ∈ [0.05, 1] (condition number ≤ (d + 1)/0.05 ≤ 80), so float64 identities hold to
~1e-13 and a 1e-9 tolerance leaves a wide margin. Each SDE kind has fixed parameters and
the problem window is fixed, so that compiled functions are reused across examples.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from solvers._gmm import GaussianMixture
from solvers._linear_sde_gmm import LinearSDEGMMProblem, linear_sde_gmm_from_mapping
from solvers._sde_schedules import OUSDE, VESDE, VPSDE

# (d, K, SDE kind): three fixed cases, so three compilations serve every example.
CASES = ((1, 2, "ve"), (2, 3, "vp"), (3, 2, "ou"))
SDES = {
    "ou": OUSDE(rate=1.0, diffusion_coefficient=1.0),
    "vp": VPSDE(beta_min=0.1, beta_max=20.0),
    "ve": VESDE(sigma_min=0.01, sigma_max=50.0),
}
MEAN_RANGE = (-3.0, 3.0)
FACTOR_RANGE = (-1.0, 1.0)
SHIFT_RANGE = (0.05, 1.0)
WEIGHT_RANGE = (0.1, 1.0)
TIME_RANGE = (0.01, 1.0)
IDENTITY_RTOL = 1e-9
IDENTITY_ATOL = 1e-9
N_SAMPLES = 4000
MC_STANDARD_ERRORS = 5.0


def bounded(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


def arrays(shape: tuple[int, ...], low: float, high: float) -> st.SearchStrategy[np.ndarray]:
    size = int(np.prod(shape))
    return st.lists(bounded(low, high), min_size=size, max_size=size).map(
        lambda v: np.asarray(v).reshape(shape)
    )


@st.composite
def problems(draw: st.DrawFn) -> LinearSDEGMMProblem:
    d, k, kind = draw(st.sampled_from(CASES))
    raw_weights = draw(arrays((k,), *WEIGHT_RANGE))
    means = draw(arrays((k, d), *MEAN_RANGE))
    factors = draw(arrays((k, d, d), *FACTOR_RANGE))
    shifts = draw(arrays((k,), *SHIFT_RANGE))
    covariances = factors @ factors.transpose(0, 2, 1) + shifts[:, None, None] * np.eye(d)
    covariances = 0.5 * (covariances + covariances.transpose(0, 2, 1))
    data = GaussianMixture(raw_weights / raw_weights.sum(), means, covariances)
    sde = SDES[kind]
    return LinearSDEGMMProblem("random", sde, data, t_min=0.0, t_max=1.0, default_times=(1.0,))


@eqx.filter_jit
def evaluate(problem, t, key):
    """Exact samples of p_t, and the score and ∇ log p_t (autodiff) at 64 of them, spread
    out to the tails. One compilation per (shape, SDE kind)."""
    samples = problem.sample(t, N_SAMPLES, key=key)
    x = jnp.concatenate([samples[:32], 3.0 * samples[:32]])
    score = jax.vmap(problem.score, (None, 0))(t, x)
    gradient = jax.vmap(jax.grad(problem.log_density, 1), (None, 0))(t, x)
    return samples, score, gradient


@settings(max_examples=15)
@given(problem=problems(), t=bounded(*TIME_RANGE), seed=st.integers(0, 2**16))
def test_score_is_gradient_and_samples_have_the_closed_form_mean(problem, t, seed):
    samples, score, gradient = evaluate(problem, jnp.asarray(t), jax.random.key(seed))
    np.testing.assert_allclose(score, gradient, rtol=IDENTITY_RTOL, atol=IDENTITY_ATOL)
    mean = np.asarray(problem.mean(t))
    se = np.sqrt(np.diag(np.asarray(problem.covariance(t))) / N_SAMPLES)
    # 5 SE per coordinate: false-failure probability ≤ 3 · 5.7e-7 per example.
    np.testing.assert_array_less(
        np.abs(np.asarray(samples).mean(0) - mean), MC_STANDARD_ERRORS * se
    )


@settings(max_examples=20)
@given(problem=problems())
def test_problem_file_round_trip(problem):
    again = linear_sde_gmm_from_mapping(problem.parameters(), "round-trip")
    assert again.parameters() == problem.parameters()
