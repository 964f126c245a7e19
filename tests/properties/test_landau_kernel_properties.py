"""Hypothesis properties of the Landau particle velocity: invariants for arbitrary inputs.

For any positions, positive weights and score values, the semi-discrete Landau flow conserves
momentum Σ w_i U_i and energy Σ w_i V_i·U_i (antisymmetry of the pair sum and zᵀA(z) = 0),
dissipates the entropy estimate, is permutation equivariant and invariant under shifts of the
positions or of the scores. Every tolerance is the round-off model of the blocked expansion
(``expansion_scale`` in tests/solvers/test_landau_kernel.py, a 20× margin over the worst ratio
observed). Shapes are fixed (N = 37, d = 2, 3) so jit compiles once per shape.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from solvers._landau_kernel import landau_entropy_production, landau_velocity
from tests.solvers.test_landau_kernel import EPS, ERR_FACTOR, C, N, expansion_scale, kernel_for

GAMMA_METHODS = [(0.0, "moments"), (0.0, "blocked"), (-3.0, "blocked")]


def finite(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


def scaled(bound: float) -> st.SearchStrategy[float]:
    """0 or a float with 1e−3 ≤ |x| ≤ bound: O(1) data; products of values near the underflow
    threshold (which hypothesis finds otherwise) leave the relative round-off model."""
    return st.one_of(st.just(0.0), finite(1e-3, bound), finite(-bound, -1e-3))


@st.composite
def ensembles(draw):
    """(γ, method, v, w, s): positions in [−3, 3]^d, weights in [0.1, 1]/N, scores in [−5, 5]
    (positions and scores 0 or of magnitude ≥ 1e−3)."""
    gamma, method = draw(st.sampled_from(GAMMA_METHODS))
    d = draw(st.sampled_from([2, 3]))
    v = draw(arrays(np.float64, (N, d), elements=scaled(3.0)))
    w = draw(arrays(np.float64, (N,), elements=finite(0.1, 1.0))) / N
    s = draw(arrays(np.float64, (N, d), elements=scaled(5.0)))
    return gamma, method, v, w, s


def velocity(gamma, method, v, w, s):
    return np.asarray(
        landau_velocity(
            kernel_for(gamma), jnp.asarray(v), jnp.asarray(w), jnp.asarray(s), method=method
        )
    )


@given(ensembles())
def test_momentum_and_energy_are_conserved(ensemble):
    gamma, method, v, w, s = ensemble
    u = velocity(gamma, method, v, w, s)
    scale = expansion_scale(gamma, C, v, w, s)
    bound = ERR_FACTOR * EPS * float(np.sum(w * scale))
    assert np.all(np.abs(np.sum(w[:, None] * u, axis=0)) <= bound)
    arm = 1.0 + float(np.linalg.norm(v, axis=1).max())
    assert abs(float(np.sum(w * np.sum(v * u, axis=1)))) <= bound * arm


@given(ensembles())
def test_entropy_estimate_is_dissipated(ensemble):
    gamma, method, v, w, s = ensemble
    production = float(
        landau_entropy_production(
            kernel_for(gamma), jnp.asarray(v), jnp.asarray(w), jnp.asarray(s), method=method
        )
    )
    scale = expansion_scale(gamma, C, v, w, s)
    assert production <= ERR_FACTOR * EPS * float(np.sum(w * scale)) * 2 * float(np.abs(s).max())


@given(ensembles(), st.randoms(use_true_random=False))
def test_permutation_equivariance(ensemble, rng):
    gamma, method, v, w, s = ensemble
    perm = np.arange(N)
    rng.shuffle(perm)
    u = velocity(gamma, method, v, w, s)
    u_perm = velocity(gamma, method, v[perm], w[perm], s[perm])
    bound = 2 * ERR_FACTOR * EPS * expansion_scale(gamma, C, v, w, s)
    assert np.all(np.abs(u_perm - u[perm]) <= bound[perm, None])


@given(ensembles(), finite(-2.0, 2.0), finite(-2.0, 2.0))
def test_invariance_under_shifts(ensemble, shift_v, shift_s):
    """U(v + a, s + b) = U(v, s): A depends on v_i − v_j and U on s_i − s_j only."""
    gamma, method, v, w, s = ensemble
    u = velocity(gamma, method, v, w, s)
    u_shift = velocity(gamma, method, v + shift_v, w, s + shift_s)
    # both evaluations' round-off; the rounding of v + a, s + b is covered by the raw
    # magnitudes in the shifted scale
    scale = expansion_scale(gamma, C, v, w, s) + expansion_scale(
        gamma, C, v + shift_v, w, s + shift_s
    )
    bound = 2 * ERR_FACTOR * EPS * scale
    assert np.all(np.abs(u_shift - u) <= bound[:, None])
