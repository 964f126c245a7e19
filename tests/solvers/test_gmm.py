"""GaussianMixture: closed-form score, Jacobian, Laplacian, sampling, quadrature, validation.

Tolerances (float64):

* closed form vs autodiff (``IDENTITY_RTOL``/``ATOL``): both evaluate the same smooth
  function through different sequences of float64 operations (eigenbasis solves vs
  reverse-mode through logsumexp). With covariance condition numbers ≤ 1e2 here the
  round-off is ≲ 1e-13 relative; 1e-10 leaves three orders of margin.
* Monte Carlo moments: 5 standard errors (two-sided normal tail 5.7e-7 per check).
* Gauss–Hermite on polynomials: exact up to summation round-off over ≤ 1e5 nodes.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from solvers._gmm import GaussianMixture, gauss_hermite_nodes, sobol_normal_nodes
from solvers._linear_sde_gmm import builtin_mixture_2d
from solvers._problem import ProblemError

IDENTITY_RTOL = 1e-10
IDENTITY_ATOL = 1e-10
MC_STANDARD_ERRORS = 5.0
N_MC = 40_000


def mixture_1d() -> GaussianMixture:
    return GaussianMixture([0.3, 0.7], [[-1.5], [1.0]], [[[0.2]], [[0.6]]])


def mixture_3d() -> GaussianMixture:
    rng = np.random.default_rng(3)
    factors = rng.uniform(-0.5, 0.5, size=(2, 3, 3))
    covariances = factors @ factors.transpose(0, 2, 1) + 0.2 * np.eye(3)
    return GaussianMixture([0.6, 0.4], [[0.0, 1.0, -1.0], [1.5, -0.5, 0.5]], covariances)


MIXTURES = {"1d": mixture_1d, "2d": builtin_mixture_2d, "3d": mixture_3d}


@pytest.fixture(params=sorted(MIXTURES), scope="module")
def mixture(request) -> GaussianMixture:
    return MIXTURES[request.param]()


# Module-level filter_jit functions take the mixture as an argument, so one compilation
# serves every mixture of the same shapes (jit compiles dominate these tests' run time).
@eqx.filter_jit
def batched(gmm: GaussianMixture, name: str, x: jax.Array) -> jax.Array:
    """vmap of the closed-form method ``name``."""
    return jax.vmap(getattr(gmm, name))(x)


@eqx.filter_jit
def autodiff(gmm: GaussianMixture, x: jax.Array) -> dict[str, jax.Array]:
    """Autodiff references: ∇ log p, jacfwd(score) and its trace."""
    jacobian = jax.vmap(jax.jacfwd(gmm.score))(x)
    return {
        "score": jax.vmap(jax.grad(gmm.log_density))(x),
        "score_jacobian": jacobian,
        "score_divergence": jnp.trace(jacobian, axis1=-2, axis2=-1),
    }


@eqx.filter_jit
def samples(gmm: GaussianMixture, key: jax.Array, n: int) -> jax.Array:
    return gmm.sample_n(n, key=key)


def points(gmm: GaussianMixture, n: int = 64, seed: int = 0) -> jax.Array:
    """Samples of the mixture and a wider spread (tails, where softmax saturates)."""
    x = samples(gmm, jax.random.key(seed), n)
    return jnp.concatenate([x, 3.0 * x])


@pytest.mark.parametrize("name", ["score", "score_jacobian", "score_divergence"])
def test_closed_forms_match_autodiff(mixture, name):
    """s = ∇ log p; ∇s = jacfwd(s); ∇·s = tr jacfwd(s)."""
    x = points(mixture)
    np.testing.assert_allclose(
        batched(mixture, name, x),
        autodiff(mixture, x)[name],
        rtol=IDENTITY_RTOL,
        atol=IDENTITY_ATOL,
    )


def test_score_jacobian_is_symmetric(mixture):
    jacobian = batched(mixture, "score_jacobian", points(mixture))
    np.testing.assert_allclose(
        jacobian, jnp.swapaxes(jacobian, -1, -2), rtol=IDENTITY_RTOL, atol=IDENTITY_ATOL
    )


def test_single_gaussian_matches_closed_form():
    mean, cov = np.array([1.0, -2.0]), np.array([[0.5, 0.1], [0.1, 0.2]])
    gmm = GaussianMixture([1.0], [mean], [cov])
    x = jnp.array([0.3, -1.1])
    precision = np.linalg.inv(cov)
    r = np.asarray(x) - mean
    log_p = -0.5 * (r @ precision @ r + np.log(np.linalg.det(2 * np.pi * cov)))
    np.testing.assert_allclose(gmm.log_density(x), log_p, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(gmm.score(x), -precision @ r, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(gmm.score_jacobian(x), -precision, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(
        gmm.score_divergence(x), -np.trace(precision), rtol=1e-13, atol=1e-13
    )


def test_diffused_equals_directly_built_mixture(mixture):
    alpha, sigma2 = 0.7, 0.3
    direct = GaussianMixture(
        mixture.weights,
        alpha * mixture.means,
        alpha**2 * mixture.covariances + sigma2 * np.eye(mixture.dim),
    )
    diffused = mixture.diffused(alpha, sigma2)
    x = points(mixture)
    for name in ("log_density", "score", "score_divergence"):
        np.testing.assert_allclose(
            batched(diffused, name, x),
            batched(direct, name, x),
            rtol=IDENTITY_RTOL,
            atol=IDENTITY_ATOL,
            err_msg=name,
        )


def test_samples_have_the_mixture_mean_and_covariance(mixture):
    x = np.asarray(samples(mixture, jax.random.key(1), N_MC))
    mean, cov = np.asarray(mixture.mean()), np.asarray(mixture.covariance())
    # Standard errors: sqrt(Var x_i / n) for the mean; the sample standard deviation of the
    # centred products (x_i − m_i)(x_j − m_j) over √n for the covariance (known mean m).
    centred = x - mean
    products = centred[:, :, None] * centred[:, None, :]
    np.testing.assert_array_less(
        np.abs(x.mean(0) - mean), MC_STANDARD_ERRORS * np.sqrt(np.diag(cov) / N_MC)
    )
    np.testing.assert_array_less(
        np.abs(products.mean(0) - cov),
        MC_STANDARD_ERRORS * products.std(0, ddof=1) / np.sqrt(N_MC),
    )


def test_component_frequencies_match_weights():
    gmm = builtin_mixture_2d()
    x = samples(gmm, jax.random.key(2), N_MC)
    # The components are separated enough that the most responsible one is the one drawn
    # for all but ~1e-3 of the samples; the binomial standard error is sqrt(π(1-π)/n).
    labels = np.asarray(jnp.argmax(batched(gmm, "responsibilities", x), axis=-1))
    frequencies = np.bincount(labels, minlength=3) / N_MC
    weights = np.asarray(gmm.weights)
    misassigned = 2e-3
    np.testing.assert_array_less(
        np.abs(frequencies - weights),
        MC_STANDARD_ERRORS * np.sqrt(weights * (1 - weights) / N_MC) + misassigned,
    )


@pytest.mark.parametrize(("dim", "order"), [(1, 5), (2, 4), (3, 3)])
def test_gauss_hermite_rule_is_exact_for_low_degree_moments(dim, order):
    nodes, weights = gauss_hermite_nodes(dim, order)
    assert nodes.shape == (order**dim, dim)
    np.testing.assert_allclose(weights.sum(), 1.0, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(weights @ nodes, np.zeros(dim), rtol=0, atol=1e-14)
    np.testing.assert_allclose(
        np.einsum("j,ji,jk->ik", weights, nodes, nodes), np.eye(dim), rtol=1e-13, atol=1e-14
    )
    # E z⁴ = 3 needs degree 4 <= 2·order − 1.
    np.testing.assert_allclose(weights @ nodes[:, 0] ** 4, 3.0, rtol=1e-13, atol=1e-13)


def test_sobol_rule_is_deterministic_and_nearly_standard_normal():
    nodes, weights = sobol_normal_nodes(5, 2**12)
    again, _ = sobol_normal_nodes(5, 2**12)
    np.testing.assert_array_equal(nodes, again)
    # QMC error for these smooth moments is O(log(n)^d / n); 1e-2 is a loose envelope.
    np.testing.assert_allclose(weights @ nodes, np.zeros(5), rtol=0, atol=1e-2)
    np.testing.assert_allclose(nodes.T @ (weights[:, None] * nodes), np.eye(5), rtol=0, atol=2e-2)


def test_expectation_reproduces_mean_and_covariance(mixture):
    # Polynomials of degree 2 are integrated exactly by any rule with order >= 2.
    mean = mixture.expectation(lambda x: x)
    cov = mixture.expectation(lambda x: jnp.outer(x, x)) - jnp.outer(mean, mean)
    np.testing.assert_allclose(mean, mixture.mean(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cov, mixture.covariance(), rtol=1e-12, atol=1e-12)


def test_fisher_information_of_a_gaussian_is_trace_of_precision():
    cov = np.array([[0.5, 0.1], [0.1, 0.2]])
    gmm = GaussianMixture([1.0], [[0.0, 1.0]], [cov])
    np.testing.assert_allclose(
        gmm.fisher_information(), np.trace(np.linalg.inv(cov)), rtol=1e-12, atol=1e-12
    )


def test_expectation_in_four_dimensions_uses_qmc_and_agrees_with_closed_form():
    gmm = GaussianMixture([0.5, 0.5], [[0.0] * 4, [1.0] * 4], [np.eye(4), 0.5 * np.eye(4)])
    # Linear functions: QMC error O(log(n)^4 / n) with n = 2^14; 1e-3 is a loose envelope.
    np.testing.assert_allclose(gmm.expectation(lambda x: x), gmm.mean(), rtol=0, atol=1e-3)


@pytest.mark.parametrize(
    ("weights", "means", "covariances", "message"),
    [
        ([0.5, 0.5], [[0.0], [1.0]], [[[1.0]]], "covariances must have shape"),
        ([1.0], [[0.0, 1.0], [1.0]], [[[1.0]]], "means must be an array"),
        ([1.0], [0.0, 1.0], [[[1.0]]], "means must have shape"),
        ([0.5, 0.5, 0.0], [[0.0], [1.0]], [[[1.0]], [[1.0]]], "weights must have shape"),
        ([1.2, -0.2], [[0.0], [1.0]], [[[1.0]], [[1.0]]], "weights must be >= 0"),
        ([0.5, 0.4], [[0.0], [1.0]], [[[1.0]], [[1.0]]], "weights must sum to 1"),
        ([1.0], [[float("nan")]], [[[1.0]]], "means must be finite"),
        ([1.0], [[0.0, 0.0]], [[[1.0, 0.5], [0.0, 1.0]]], r"covariances\[0\] is not symmetric"),
        ([1.0], [[0.0, 0.0]], [[[1.0, 2.0], [2.0, 1.0]]], r"covariances\[0\] is not positive"),
        ([1.0], [[0.0, 0.0]], [[[1.0, 0.0], [0.0, 1e-14]]], r"covariances\[0\] is ill-cond"),
    ],
)
def test_invalid_mixtures_raise_problem_error(weights, means, covariances, message):
    with pytest.raises(ProblemError, match=message):
        GaussianMixture(weights, means, covariances)


def test_weights_summing_to_one_within_tolerance_are_accepted():
    GaussianMixture([0.1, 0.2, 0.7 + 5e-10], [[0.0], [1.0], [2.0]], [[[1.0]]] * 3)


def test_wrong_point_shape_mentions_vmap():
    gmm = builtin_mixture_2d()
    with pytest.raises(ValueError, match="vmap"):
        gmm.score(jnp.zeros((4, 2)))


def test_functions_jit_vmap_and_grad():
    gmm = builtin_mixture_2d()
    x = points(gmm)
    names = ("log_density", "score", "score_jacobian", "score_divergence")
    # One compiled function for all four: filter_jit(vmap(method)) with the mixture as an
    # argument; row 3 must equal the unbatched eager call.
    batched = eqx.filter_jit(lambda m, y: {n: jax.vmap(getattr(m, n))(y) for n in names})(gmm, x)
    for name in names:
        np.testing.assert_allclose(
            batched[name][3], getattr(gmm, name)(x[3]), rtol=1e-13, atol=1e-13, err_msg=name
        )
    # First-order grads against finite differences, both modes (jitted: eager is slow).
    check_grads(jax.jit(lambda y: gmm.log_density(y)), (x[0],), order=1, modes=("fwd", "rev"))


def test_sample_is_jittable_vmappable_and_keyed():
    gmm = builtin_mixture_2d()
    key = jax.random.key(7)
    one = gmm.sample(key=key)
    np.testing.assert_array_equal(eqx.filter_jit(gmm.sample)(key=key), one)
    keys = jax.random.split(key, 3)
    batched = jax.jit(jax.vmap(lambda k: gmm.sample(key=k)))(keys)
    np.testing.assert_array_equal(batched[2], eqx.filter_jit(gmm.sample)(key=keys[2]))
    with pytest.raises(TypeError):
        gmm.sample()  # no default key


def test_uniform_transform_picks_components_by_inverse_cdf():
    gmm = GaussianMixture([0.25, 0.0, 0.75], [[-5.0], [0.0], [5.0]], [[[1.0]]] * 3)
    u = jnp.array([[0.1, 0.5], [0.25, 0.5], [0.9, 0.5], [1e-300, 1e-300], [1 - 2**-53, 0.5]])
    x = jax.jit(jax.vmap(gmm.transform_uniform))(u)
    # u_0 < 0.25 → component 0; otherwise component 2 (the zero-weight one is skipped);
    # Φ⁻¹(0.5) = 0 puts the sample at the mean, and tiny uniforms stay finite.
    np.testing.assert_allclose(x[[0, 1, 2, 4], 0], [-5.0, 5.0, 5.0, 5.0], rtol=0, atol=1e-15)
    assert np.isfinite(x[3, 0])
    assert gmm.uniforms(4, key=jax.random.key(0)).min() > 0


def test_parameters_round_trip():
    gmm = mixture_3d()
    again = GaussianMixture(**gmm.parameters())
    for a, b in zip(jax.tree.leaves(gmm), jax.tree.leaves(again), strict=True):
        np.testing.assert_array_equal(a, b)


def test_construction_inside_jit_is_refused_with_a_hint():
    with pytest.raises(TypeError, match="outside jit"):
        jax.jit(lambda w: GaussianMixture(w, [[0.0]], [[[1.0]]]).weights)(jnp.array([1.0]))
