"""Public Hypothesis strategies (verify.strategies): valid problems, exact scores, shrinking.

Few examples each (every drawn problem has new static fields, hence a new compilation of
the score gap). The exact score has a gap of exactly zero: s − ∇log p_t is the same
function evaluated twice at the same points, so every difference is 0 in floating point.
"""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from solvers import LandauBKWProblem, LinearSDEGMMProblem, linear_sde_gmm_from_mapping
from verify._score_gap import score_gap
from verify.strategies import (
    EIGENVALUE_RANGE,
    bkw_problems,
    certification_times,
    gmm_problems,
    sde_parameters,
)
from verify.testing import gmm_problems as reexported_gmm_problems

FEW = settings(max_examples=10, deadline=None)
N_SAMPLES = 256  # the gap is exactly 0 whatever n is; small n keeps each example fast


def with_times(problems: st.SearchStrategy) -> st.SearchStrategy:
    return problems.flatmap(lambda p: st.tuples(st.just(p), certification_times(p)))


def assert_exact_score_has_zero_gap(problem, times) -> None:
    estimates = score_gap(problem.score, problem, times, n_samples=N_SAMPLES, key=jax.random.key(0))
    assert [e.estimate for e in estimates] == [0.0] * len(times)
    fisher = [float(problem.fisher_information(t)) for t in times]
    assert all(math.isfinite(i) and i > 0 for i in fisher), fisher


@FEW
@given(with_times(gmm_problems()))
def test_gmm_problems_are_valid_with_finite_fisher_and_zero_exact_gap(drawn) -> None:
    problem, times = drawn
    assert isinstance(problem, LinearSDEGMMProblem)
    # Valid as a problem file: the mapping round-trips through the public parser.
    again = linear_sde_gmm_from_mapping(problem.parameters(), "round trip")
    assert again.parameters() == problem.parameters()
    weights = np.asarray(problem.data.parameters()["weights"])
    assert weights.min() >= 1 / 31 - 1e-12  # 1 / (1 + 10 (K - 1)) at K = 3
    for cov in np.asarray(problem.data.parameters()["covariances"]):
        eigenvalues = np.linalg.eigvalsh(cov)
        # Σ = U diag(λ) Uᵀ with orthogonal U: eigenvalues kept up to float64 round-off.
        assert EIGENVALUE_RANGE[0] - 1e-12 <= eigenvalues.min()
        assert eigenvalues.max() <= EIGENVALUE_RANGE[1] + 1e-12
    assert_exact_score_has_zero_gap(problem, times)


@FEW
@given(with_times(bkw_problems()))
def test_bkw_problems_are_valid_with_finite_fisher_and_zero_exact_gap(drawn) -> None:
    problem, times = drawn
    assert isinstance(problem, LandauBKWProblem)
    k, p, _ = (float(v) for v in problem.coefficients(problem.t_min))
    assert k >= problem.dim / (problem.dim + 2)
    assert p > 0
    assert_exact_score_has_zero_gap(problem, times)


@FEW
@given(with_times(st.one_of(gmm_problems(dim=3, max_components=2), bkw_problems(dim=3))))
def test_certification_times_are_sorted_unique_and_inside_the_window(drawn) -> None:
    problem, times = drawn
    assert problem.dim == 3
    assert 1 <= len(times) <= 4
    assert list(times) == sorted(set(times))
    assert all(problem.t_min <= t <= problem.t_max for t in times)


@pytest.mark.parametrize("kind", ["vp", "ve", "ou"])
def test_sde_parameters_build_the_schedule(kind: str) -> None:
    @FEW
    @given(sde_parameters(kind))
    def check(parameters):
        mapping = {
            "id": "x",
            "family": "linear-sde-gmm",
            "sde": {"kind": kind, **parameters, "t_min": 1e-3, "t_max": 1.0},
            "data": {"weights": [1.0], "means": [[0.0]], "covariances": [[[1.0]]]},
        }
        assert all(math.isfinite(v) for v in parameters.values())
        assert linear_sde_gmm_from_mapping(mapping, "test").sde.parameters()["kind"] == kind

    check()


def test_strategies_shrink_to_minimal_examples() -> None:
    quick = settings(max_examples=50, database=None, deadline=None)
    two = find(gmm_problems(), lambda p: p.data.weights.shape[0] >= 2, settings=quick)
    assert two.data.weights.shape[0] == 2
    assert two.parameters()["sde"]["kind"] == "vp"  # the first kind
    pair = find(with_times(bkw_problems()), lambda drawn: len(drawn[1]) >= 2, settings=quick)
    assert len(pair[1]) == 2
    assert reexported_gmm_problems is gmm_problems


def test_unknown_sde_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        sde_parameters("heat")


@settings(max_examples=20, deadline=None)
@given(st.data())
def test_periodic_initial_conditions_are_smooth_band_limited_and_periodic(data) -> None:
    from verify.strategies import periodic_initial_conditions

    for dim, n, modes in ((1, 64, 4), (2, 32, 3)):
        u = data.draw(periodic_initial_conditions(n, dim=dim, n_modes=modes))
        assert u.shape == (n,) * dim
        assert u.dtype == np.float64
        assert np.all(np.isfinite(u))
        # Band-limited: no Fourier mode beyond n_modes (round-off: 1e-12 of the field scale).
        spectrum = np.abs(np.fft.fftn(u)) / u.size
        wavenumbers = np.meshgrid(*([np.fft.fftfreq(n, 1.0 / n)] * dim), indexing="ij")
        outside = np.max(np.abs(np.stack(wavenumbers)), axis=0) > modes
        assert np.all(spectrum[outside] <= 1e-12 * (1.0 + np.max(np.abs(u))))


def test_periodic_initial_conditions_shrink_to_zero() -> None:
    from verify.strategies import periodic_initial_conditions

    minimal = find(periodic_initial_conditions(16, n_modes=2), lambda u: True)
    assert np.all(minimal == 0.0)
