"""Linear SDE + Gaussian mixture: schedules, exact marginals, FP residuals, problem files.

Tolerances (float64):

* schedule moment ODEs and identities by autodiff: round-off of exp/expm1 chains, 1e-12.
* normalisation on a grid: the trapezoid rule on a Gaussian with spacing h ≤ σ/4 errs by
  ~exp(−2π²σ²/h²) ≤ e^{−300} (spectral accuracy for smooth, rapidly decaying integrands),
  and the box of ±12 standard deviations around the means truncates e^{−72}; what is left
  is summation round-off over ~1e5 terms, so 1e-10.
* Fokker–Planck residuals: the exact marginals make each residual a sum of terms that
  cancel exactly; float64 leaves a few ulps of the sum of the terms' magnitudes (measured
  ≤ 1e-15 of it for the log form, ≤ 3e-13 for the score form, whose autodiff chains are
  longer), so |R| ≤ 1e-9 · scale + 1e-12.
* Monte Carlo: 5 standard errors.
"""

from __future__ import annotations

import math
import tomllib

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import solvers._linear_sde_gmm as lsg
from solvers._gmm import GaussianMixture
from solvers._linear_sde_gmm import (
    LinearSDEGMMProblem,
    linear_sde_gmm_from_mapping,
    ou_gmm_2d,
    ve_gmm_2d,
    vp_gmm_2d,
)
from solvers._problem import ProblemError
from solvers._sde_schedules import OUSDE, VESDE, VPSDE

BUILDERS = {"vp-gmm-2d": vp_gmm_2d, "ve-gmm-2d": ve_gmm_2d, "ou-gmm-2d": ou_gmm_2d}
SCHEDULES = {
    "ou": OUSDE(rate=1.3, diffusion_coefficient=0.7),
    "vp": VPSDE(beta_min=0.1, beta_max=20.0),
    "ve": VESDE(sigma_min=0.01, sigma_max=50.0),
}
FP_RTOL = 1e-9
FP_ATOL = 1e-12
MC_STANDARD_ERRORS = 5.0


@pytest.fixture(params=sorted(BUILDERS), scope="module")
def problem(request) -> LinearSDEGMMProblem:
    return BUILDERS[request.param]()


def check_times(problem: LinearSDEGMMProblem) -> jax.Array:
    return jnp.asarray((problem.t_min, *problem.default_times))


@eqx.filter_jit
def exact_samples(problem: LinearSDEGMMProblem, t: jax.Array, key: jax.Array, n: int):
    return problem.sample(t, n, key=key)


# --- schedules ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(SCHEDULES))
def test_schedule_moments_solve_their_odes(kind):
    """dα/dt = a α and dσ²/dt = 2a σ² + g², with α(0) = 1 and σ²(0) = 0."""
    sde = SCHEDULES[kind]
    t = jnp.linspace(0.0, 1.0, 11)

    @jax.jit
    def residuals(t):
        dalpha = jax.vmap(jax.grad(sde.alpha))(t)
        dsigma2 = jax.vmap(jax.grad(sde.sigma2))(t)
        a, g = jax.vmap(sde.drift_coefficient)(t), jax.vmap(sde.diffusion)(t)
        alpha, sigma2 = jax.vmap(sde.alpha)(t), jax.vmap(sde.sigma2)(t)
        return dalpha - a * alpha, dsigma2 - (2 * a * sigma2 + g**2)

    for residual in residuals(t):
        np.testing.assert_allclose(
            residual, 0.0, rtol=0, atol=1e-12 * (1 + sde.diffusion(1.0) ** 2)
        )
    np.testing.assert_allclose(sde.alpha(0.0), 1.0, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(sde.sigma2(0.0), 0.0, rtol=0, atol=1e-15)
    x = jnp.array([1.0, -2.0])
    np.testing.assert_allclose(
        sde.drift(0.4, x), sde.drift_coefficient(0.4) * x, rtol=1e-15, atol=1e-15
    )


def test_schedule_closed_forms():
    t = 0.37
    ou = OUSDE(rate=1.0, diffusion_coefficient=1.0)
    np.testing.assert_allclose(ou.sigma2(t), 0.5 * (1 - math.exp(-2 * t)), rtol=1e-14, atol=0)
    vp = SCHEDULES["vp"]
    log_alpha = -0.5 * t * 0.1 - 0.25 * t**2 * 19.9
    np.testing.assert_allclose(vp.alpha(t), math.exp(log_alpha), rtol=1e-14, atol=0)
    np.testing.assert_allclose(vp.sigma2(t), 1 - math.exp(2 * log_alpha), rtol=1e-14, atol=0)
    ve = SCHEDULES["ve"]
    sigma = 0.01 * 5000**t
    np.testing.assert_allclose(ve.sigma2(t), sigma**2 - 0.01**2, rtol=1e-13, atol=0)
    np.testing.assert_allclose(
        ve.diffusion(t) ** 2, jax.grad(lambda s: ve.sigma(s) ** 2)(t), rtol=1e-13, atol=0
    )
    # expm1 keeps relative precision as t → 0 (1 − α² would cancel catastrophically).
    np.testing.assert_allclose(vp.sigma2(1e-9), 0.1 * 1e-9, rtol=1e-7, atol=0)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: OUSDE(rate=0.0, diffusion_coefficient=1.0), "rate must be > 0"),
        (lambda: OUSDE(rate=1.0, diffusion_coefficient=-1.0), "diffusion must be > 0"),
        (lambda: OUSDE(rate=float("inf"), diffusion_coefficient=1.0), "rate must be a finite"),
        (lambda: VPSDE(beta_min=-0.1, beta_max=1.0), "beta_min must be >= 0"),
        (lambda: VPSDE(beta_min=2.0, beta_max=1.0), "beta_max must be > 0 and >= beta_min"),
        (lambda: VESDE(sigma_min=0.0, sigma_max=1.0), "sigma_min must be > 0"),
        (lambda: VESDE(sigma_min=2.0, sigma_max=1.0), "sigma_max must be > sigma_min"),
    ],
)
def test_invalid_schedules_raise(build, message):
    with pytest.raises(ProblemError, match=message):
        build()


# --- exact marginals -----------------------------------------------------------------------


def test_builtin_problems_match_the_specification():
    vp, ve, ou = vp_gmm_2d(), ve_gmm_2d(), ou_gmm_2d()
    assert (vp.problem_id, ve.problem_id, ou.problem_id) == ("vp-gmm-2d", "ve-gmm-2d", "ou-gmm-2d")
    assert vp.sde.parameters() == {"kind": "vp", "beta_min": 0.1, "beta_max": 20.0}
    assert ve.sde.parameters() == {"kind": "ve", "sigma_min": 0.01, "sigma_max": 50.0}
    assert ou.sde.parameters() == {"kind": "ou", "rate": 1.0, "diffusion": 1.0}
    assert (vp.t_min, vp.t_max, ve.t_min, ve.t_max, ou.t_min, ou.t_max) == (
        1e-3, 1.0, 1e-3, 1.0, 1e-3, 5.0,
    )  # fmt: skip
    for p in (vp, ve, ou):
        assert p.dim == 2
        assert all(p.t_min <= t <= p.t_max for t in p.default_times)
        assert p.parameters()["data"] == {
            "weights": [0.5, 0.3, 0.2],
            "means": [[-2.0, 0.0], [2.0, 1.0], [0.0, 2.5]],
            "covariances": [
                [[0.3, 0.0], [0.0, 0.3]],
                [[0.5, 0.0], [0.0, 0.1]],
                [[0.4, 0.2], [0.2, 0.3]],
            ],
        }


def test_marginal_density_integrates_to_one(problem):
    n = 601  # one grid size for every t: one compilation per problem
    totals = []
    for t in check_times(problem):
        marginal = problem.marginal(t)
        std_max = float(jnp.sqrt(marginal.eigenvalues.max()))
        std_min = float(jnp.sqrt(marginal.eigenvalues.min()))
        half_width = float(jnp.abs(marginal.means).max()) + 12 * std_max
        axis = jnp.linspace(-half_width, half_width, n)
        assert axis[1] - axis[0] <= std_min / 4  # the error model above needs h <= σ/4
        grid = jnp.stack(jnp.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
        density = jnp.exp(_log_density(problem, t, grid))
        totals.append(float(density.sum() * (axis[1] - axis[0]) ** 2))
    np.testing.assert_allclose(totals, 1.0, rtol=1e-10, atol=1e-10)


@eqx.filter_jit
def _log_density(problem, t, x):
    return jax.vmap(problem.log_density, (None, 0))(t, x)


@eqx.filter_jit
def _fp_residuals(marginals, dynamics, t: jax.Array, x: jax.Array):
    """Log-density and score FP residuals (MATH.md § 3.2) and the scale of their terms.

    R_log = ∂_t u + ∇·f + f·∇u − ½g²(Δu + |∇u|²),
    R_score = ∂_t s − ∇[½g²(∇·s + |s|²) − f·s − ∇·f],

    with ∂_t by autodiff, ∇u = s and Δu = ∇·s in closed form (test_gmm.py checks them
    against autodiff), ∇ of the score-FP potential and ∇·f by autodiff; u, s from
    ``marginals``, f, g from ``dynamics``.
    """

    def one(t, x):
        g2 = dynamics.diffusion(t) ** 2
        f = dynamics.drift(t, x)
        div_f = jnp.trace(jax.jacfwd(dynamics.drift, 1)(t, x))
        s = marginals.score(t, x)
        laplacian = marginals.score_divergence(t, x)
        du_dt = jax.grad(marginals.log_density, 0)(t, x)
        log_terms = jnp.stack([du_dt, div_f, f @ s, -0.5 * g2 * laplacian, -0.5 * g2 * (s @ s)])

        def potential_terms(y):
            # The four terms of ½g²(∇·s + |s|²) − f·s − ∇·f, kept apart so that the scale
            # of R_score sees their magnitudes (they cancel to O(1) in the tails).
            sy = marginals.score(t, y)
            return jnp.stack(
                [
                    0.5 * g2 * marginals.score_divergence(t, y),
                    0.5 * g2 * (sy @ sy),
                    -dynamics.drift(t, y) @ sy,
                    -jnp.trace(jax.jacfwd(dynamics.drift, 1)(t, y)),
                ]
            )

        ds_dt = jax.jacfwd(marginals.score, 0)(t, x)
        grad_terms = jax.jacfwd(potential_terms)(x)
        return (
            log_terms.sum(),
            jnp.abs(log_terms).sum(),
            ds_dt - grad_terms.sum(0),
            jnp.abs(ds_dt) + jnp.abs(grad_terms).sum(0),
        )

    return jax.vmap(jax.vmap(one, (None, 0)), (0, None))(t, x)


def test_exact_marginals_solve_the_fokker_planck_equation(problem):
    times = check_times(problem)
    # Points spread over every marginal's support: samples of p_t at a middle time, and
    # the same scaled out (VE at t = 1 has σ_t = 50; the tails test the softmax).
    x = exact_samples(problem, jnp.asarray(problem.default_times[2]), jax.random.key(4), 64)
    x = jnp.concatenate([x, 4.0 * x, 30.0 * x])
    r_log, scale_log, r_score, scale_score = _fp_residuals(problem, problem, times, x)
    assert np.all(np.isfinite(r_log))
    assert np.all(np.isfinite(r_score))
    # Not vacuous: the terms are O(1e-2) or larger and cancel to round-off.
    assert np.median(scale_log) > 1e-2
    assert np.median(scale_score) > 1e-2
    np.testing.assert_array_less(np.abs(r_log), FP_RTOL * scale_log + FP_ATOL)
    np.testing.assert_array_less(np.abs(r_score), FP_RTOL * scale_score + FP_ATOL)


def test_exact_samples_have_closed_form_moments(problem):
    n = 20_000
    for i, t in enumerate(problem.default_times):
        x = np.asarray(exact_samples(problem, jnp.asarray(t), jax.random.key(10 + i), n))
        mean, cov = np.asarray(problem.mean(t)), np.asarray(problem.covariance(t))
        centred = x - mean
        products = centred[:, :, None] * centred[:, None, :]
        np.testing.assert_array_less(
            np.abs(x.mean(0) - mean), MC_STANDARD_ERRORS * np.sqrt(np.diag(cov) / n)
        )
        np.testing.assert_array_less(
            np.abs(products.mean(0) - cov),
            MC_STANDARD_ERRORS * products.std(0, ddof=1) / np.sqrt(n),
        )


def test_mean_and_covariance_closed_forms(problem):
    data = problem.data
    for t in problem.default_times:
        alpha, sigma2 = problem.sde.alpha(t), problem.sde.sigma2(t)
        np.testing.assert_allclose(problem.mean(t), alpha * data.mean(), rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(
            problem.covariance(t),
            alpha**2 * data.covariance() + sigma2 * jnp.eye(2),
            rtol=1e-12,
            atol=1e-12,
        )


def test_sample_data_draws_from_p0():
    problem = ou_gmm_2d()
    x = np.asarray(eqx.filter_jit(problem.sample_data)(20_000, key=jax.random.key(5)))
    se = np.sqrt(np.diag(np.asarray(problem.data.covariance())) / x.shape[0])
    np.testing.assert_array_less(np.abs(x.mean(0) - problem.data.mean()), MC_STANDARD_ERRORS * se)


# --- Fisher information --------------------------------------------------------------------


@eqx.filter_jit
def _fisher(problem, times, order):
    def one(t):
        marginal = problem.marginal(t)
        return jnp.stack(
            [
                marginal.fisher_information(order),
                marginal.expectation(lambda x: -marginal.score_divergence(x), order),
            ]
        )

    return jax.vmap(one)(times)


def test_fisher_information_quadrature_is_converged(problem):
    """Default order vs twice the order, and I = E|s|² = −E ∇·s (Hyvärinen 2005)."""
    # The smallest times are the hardest (sharpest switches between components).
    times = check_times(problem)[:3]
    default = _fisher(problem, times, 128)
    doubled = _fisher(problem, times, 256)
    np.testing.assert_allclose(
        problem.fisher_information(times[1]), default[1, 0], rtol=1e-13, atol=0
    )
    # Measured ≤ 4.1e-7 (slow convergence at small t: sharp switches between components).
    np.testing.assert_allclose(default[:, 0], doubled[:, 0], rtol=1e-6, atol=0)
    np.testing.assert_allclose(default[:, 0], default[:, 1], rtol=1e-6, atol=0)


def test_fisher_information_agrees_with_monte_carlo():
    problem = vp_gmm_2d()  # the rule is shared code; one problem is an independent check
    t = problem.default_times[1]
    estimate, stderr = eqx.filter_jit(problem.fisher_information_estimate)(
        t, 50_000, key=jax.random.key(6)
    )
    assert abs(float(estimate - problem.fisher_information(t))) < MC_STANDARD_ERRORS * stderr


def test_fisher_information_in_four_dimensions_uses_qmc():
    data = GaussianMixture(
        [0.4, 0.6], [[0.0, 0.5, 0.0, 0.0], [1.5, 0.0, -1.0, 0.5]], [np.eye(4), 0.3 * np.eye(4)]
    )
    problem = LinearSDEGMMProblem(
        "g4", OUSDE(rate=1.0, diffusion_coefficient=1.0), data, t_min=0.0, t_max=1.0,
        default_times=(0.5,),
    )  # fmt: skip
    t = jnp.asarray(0.5)
    quadrature = eqx.filter_jit(problem.fisher_information)(t)
    estimate, stderr = eqx.filter_jit(problem.fisher_information_estimate)(
        t, 50_000, key=jax.random.key(8)
    )
    assert abs(float(estimate - quadrature)) < MC_STANDARD_ERRORS * stderr


# --- dynamics ------------------------------------------------------------------------------


def test_probability_flow_and_reverse_drifts(problem):
    t, x = jnp.asarray(problem.default_times[1]), jnp.array([0.4, -1.2])

    def score_fn(t, x):
        return jnp.array([1.0, 2.0]) + 0 * x

    f, g2 = problem.drift(t, x), problem.diffusion(t) ** 2
    np.testing.assert_allclose(
        problem.probability_flow_drift(t, x, score_fn), f - 0.5 * g2 * jnp.array([1.0, 2.0]),
        rtol=1e-14, atol=1e-14,
    )  # fmt: skip
    np.testing.assert_allclose(
        problem.reverse_sde_drift(t, x, score_fn), f - g2 * jnp.array([1.0, 2.0]),
        rtol=1e-14, atol=1e-14,
    )  # fmt: skip
    np.testing.assert_allclose(f, problem.sde.drift_coefficient(t) * x, rtol=1e-15, atol=1e-15)


# --- jit / vmap / grad ---------------------------------------------------------------------


@eqx.filter_jit
def _batched(problem, t, x):
    names = ("log_density", "score", "score_jacobian", "score_divergence")
    return {name: jax.vmap(getattr(problem, name))(t, x) for name in names}


def test_problem_functions_jit_vmap_and_grad():
    problem = vp_gmm_2d()
    times = jnp.array([0.05, 0.3, 0.9])
    x = jnp.array([[0.5, -0.2], [2.0, 1.0], [-1.0, 3.0]])
    for name, batched in _batched(problem, times, x).items():
        np.testing.assert_allclose(
            batched[1], getattr(problem, name)(times[1], x[1]), rtol=1e-13, atol=1e-13, err_msg=name
        )
    # Differentiable in t and x (∂_t is what the FP residual uses).
    check_grads(
        jax.jit(lambda t, y: problem.log_density(t, y)), (0.3, x[0]), order=1, modes=("fwd", "rev")
    )
    check_grads(jax.jit(lambda t: problem.fisher_information(t)), (0.3,), order=1, modes=("fwd",))


def test_sampling_compiles_once_for_all_times():
    problem = ou_gmm_2d()

    @eqx.filter_jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def draw(problem, t, key):
        return problem.sample(t, 16, key=key)

    for i, t in enumerate(problem.default_times):
        assert draw(problem, jnp.asarray(t), jax.random.key(i)).shape == (16, 2)


def test_sample_needs_an_explicit_key():
    with pytest.raises(TypeError):
        vp_gmm_2d().sample(0.5, 4)


# --- problem files -------------------------------------------------------------------------


def documented_example() -> dict:
    """The TOML example of the module docstring, parsed with tomllib."""
    doc = lsg.__doc__
    start = doc.index('    id = "my-ou-mixture"')
    end = doc.index("References")
    text = "\n".join(line[4:] for line in doc[start:end].splitlines())
    return tomllib.loads(text)


def test_documented_problem_file_is_accepted():
    problem = linear_sde_gmm_from_mapping(documented_example(), "example.toml")
    assert problem.problem_id == "my-ou-mixture"
    assert problem.sde.parameters() == {"kind": "ou", "rate": 1.0, "diffusion": 1.0}
    assert (problem.t_min, problem.t_max) == (1e-3, 10.0)
    assert problem.default_times == (0.1, 0.5, 1.0, 3.0)
    assert problem.dim == 2
    assert problem.data.n_components == 2


@pytest.mark.parametrize("build", sorted(BUILDERS))
def test_parameters_round_trip_through_the_parser(build):
    problem = BUILDERS[build]()
    again = linear_sde_gmm_from_mapping(problem.parameters(), "round-trip")
    assert again.parameters() == problem.parameters()


def test_times_default_to_fractions_of_t_max():
    mapping = documented_example()
    del mapping["sde"]["times"]
    problem = linear_sde_gmm_from_mapping(mapping, "example.toml")
    assert problem.default_times == (0.5, 1.0, 3.0, 5.0, 10.0)


def test_vp_and_ve_files_and_other_dimensions():
    mapping = {
        "id": "ve-3d",
        "family": "linear-sde-gmm",
        "sde": {"kind": "ve", "sigma_min": 0.01, "sigma_max": 10.0, "t_min": 0.0, "t_max": 1},
        "data": {"weights": [1], "means": [[0, 0, 1]], "covariances": [np.eye(3).tolist()]},
    }
    assert linear_sde_gmm_from_mapping(mapping, "ve.toml").dim == 3
    mapping["sde"] = {"kind": "vp", "beta_min": 0.1, "beta_max": 20, "t_min": 1e-3, "t_max": 1}
    assert linear_sde_gmm_from_mapping(mapping, "vp.toml").sde.parameters()["kind"] == "vp"


def _mutate(path: str, value):
    """Set (or with value=... delete) mapping[path] in a copy of the documented example."""

    def apply():
        mapping = documented_example()
        *parents, last = path.split(".")
        table = mapping
        for key in parents:
            table = table[key]
        if value is ...:
            del table[last]
        else:
            table[last] = value
        return mapping

    return apply


PD_FAIL = [[[0.2, 0.0], [0.0, 0.2]], [[0.2, 0.5], [0.5, 0.2]]]
BAD_FILES = [
    ("id", ..., "missing key.*id"),
    ("extra", 1, "unknown key.*extra"),
    ("family", "bkw", "family must be 'linear-sde-gmm'"),
    ("id", "", "id must be a non-empty string"),
    ("sde", 3, r"\[sde\] must be a table"),
    ("sde.kind", "cosine", "sde.kind must be one of"),
    ("sde.rate", ..., "missing key.*sde.rate"),
    ("sde.beta_min", 0.1, "unknown key.*sde.beta_min"),
    ("sde.rate", "fast", "sde.rate must be a number"),
    ("sde.rate", True, "sde.rate must be a number"),
    ("sde.rate", -1.0, "sde.rate must be > 0"),
    ("sde.diffusion", 0.0, "sde.diffusion must be > 0"),
    ("sde.t_min", 20.0, "sde.t_min must be < t_max"),
    ("sde.t_min", -1.0, "sde.t_min must be >= 0"),
    ("sde.t_max", ..., "missing key.*sde.t_max"),
    ("sde.times", [0.1, 11.0], r"sde.times\[1\] = 11.0 lies outside"),
    ("sde.times", [0.5, 0.1], "sde.times must be strictly increasing"),
    ("sde.times", [], "sde.times must not be empty"),
    ("sde.times", 0.5, "sde.times must be a list"),
    ("sde.times", [0.1, "x"], r"sde.times\[1\] must be a number"),
    ("data.weights", ..., "missing key.*data.weights"),
    ("data.labels", [0, 1], "unknown key.*data.labels"),
    ("data.weights", [0.5, 0.6], "data.weights must sum to 1"),
    ("data.weights", [1.5, -0.5], "data.weights must be >= 0"),
    ("data.weights", [1.0], r"data.weights must have shape \(2,\)"),
    ("data.means", [[-1.0, 0.0], [1.0]], "data.means must be an array"),
    ("data.means", [[-1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], "data.covariances must have shape"),
    ("data.covariances", PD_FAIL, r"data.covariances\[1\] is not positive definite"),
]


@pytest.mark.parametrize(("path", "value", "message"), BAD_FILES)
def test_invalid_problem_files_raise_one_line_errors(path, value, message):
    with pytest.raises(ProblemError, match=message) as info:
        linear_sde_gmm_from_mapping(_mutate(path, value)(), "bad.toml")
    text = str(info.value)
    assert text.startswith("bad.toml: ")
    assert "\n" not in text


def test_ve_and_vp_parameter_errors_name_the_key():
    mapping = documented_example()
    mapping["sde"] = {"kind": "ve", "sigma_min": 5.0, "sigma_max": 1.0, "t_min": 0, "t_max": 1}
    with pytest.raises(ProblemError, match=r"bad\.toml: sde\.sigma_max must be > sigma_min"):
        linear_sde_gmm_from_mapping(mapping, "bad.toml")
    mapping["sde"] = {"kind": "vp", "beta_min": -1, "beta_max": 1.0, "t_min": 0, "t_max": 1}
    with pytest.raises(ProblemError, match=r"bad\.toml: sde\.beta_min must be >= 0"):
        linear_sde_gmm_from_mapping(mapping, "bad.toml")
