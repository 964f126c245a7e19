"""Gaussian mixtures p(x) = Σ_k π_k N(x; μ_k, Σ_k) with exact score, Jacobian and Laplacian.

Each covariance is stored with its eigendecomposition Σ_k = U_k diag(λ_k) U_kᵀ, computed once
(in numpy, at construction). A linear SDE maps N(μ, Σ) to N(αμ, α²Σ + σ²I), which has the
same eigenvectors and eigenvalues α²λ + σ², so :meth:`GaussianMixture.diffused` is exact,
cheap, and differentiable in (α, σ²) — hence in t — without any matrix factorisation.

With r_k = x − μ_k, m_k = −Σ_k⁻¹ r_k and w_k = softmax_k[log π_k + log N(x; μ_k, Σ_k)]:

    s(x) = ∇ log p = Σ_k w_k m_k
    ∇s = Σ_k w_k (m_k m_kᵀ − Σ_k⁻¹) − s sᵀ
    ∇·s = Δ log p = Σ_k w_k (|m_k|² − tr Σ_k⁻¹) − |s|²

(``MATH.md`` § 5). All functions act on one sample ``x`` of shape ``(d,)``; batch with
``jax.vmap``.

References
----------
T. Karras, M. Aittala, T. Kynkäänniemi, J. Lehtinen, T. Aila, S. Laine, "Guiding a
Diffusion Model with a Bad Version of Itself", NeurIPS 2024 (``toy_example.py``: exact
mixture scores with heat-diffused covariances via the eigendecomposition).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, final

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray
from scipy.special import ndtri
from scipy.stats import qmc

from ._problem import ProblemError

WEIGHT_SUM_ATOL = 1e-9
"""|Σ π_k − 1| allowed: decimal weights in a TOML file sum to 1 only up to round-off."""
SYMMETRY_RTOL = 1e-10
"""max |Σ − Σᵀ| / max |Σ| allowed (a file writes both triangles)."""
CONDITION_MAX = 1e12
"""Largest λ_max/λ_min accepted: beyond it float64 inverses lose all but ~4 digits."""

# Tensor Gauss–Hermite orders per dimension for :meth:`GaussianMixture.expectation`. The
# integrands of a mixture are smooth but, for well-separated narrow components (small t),
# switch sharply between components, so the rule converges slowly there. Measured relative
# change of the Fisher information: 2-D built-in problems, order 128 → 256, ≤ 5e-7 at t_min
# and every default time (tests/solvers/test_linear_sde_gmm.py); a random, well-separated
# 3-D mixture under VP, order 40 → 50, ≤ 1e-4 for t ≤ 0.1 and ≤ 1e-9 for t ≥ 0.3.
QUADRATURE_ORDER = {1: 256, 2: 128, 3: 40}
MAX_QUADRATURE_NODES = 2**17
QMC_POINTS = 2**14
"""Sobol points per component used by :meth:`GaussianMixture.expectation` for d > 3."""


def validate_mixture(
    weights: Any, means: Any, covariances: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check mixture parameters; return them as float64 numpy arrays.

    Raises
    ------
    ProblemError
        With a one-line message starting with the offending field (``weights``,
        ``means``, ``covariances[k]``), for ragged or mis-shaped arrays, non-finite
        numbers, negative weights or weights not summing to 1 within ``WEIGHT_SUM_ATOL``,
        and asymmetric, non-positive-definite or ill-conditioned covariances.
    """
    arrays = {}
    for name, value, ndim, shape in (
        ("weights", weights, 1, "(K,)"),
        ("means", means, 2, "(K, d)"),
        ("covariances", covariances, 3, "(K, d, d)"),
    ):
        if isinstance(value, jax.core.Tracer):
            raise TypeError(
                "mixture parameters must be concrete: build the GaussianMixture outside jit "
                "(GaussianMixture.diffused is the traceable transformation)"
            )
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ProblemError(f"{name} must be an array of numbers of shape {shape}") from None
        if array.ndim != ndim:
            raise ProblemError(f"{name} must have shape {shape}, got shape {array.shape}")
        if not np.all(np.isfinite(array)):
            raise ProblemError(f"{name} must be finite")
        arrays[name] = array
    w, mu, cov = arrays["weights"], arrays["means"], arrays["covariances"]
    k, d = mu.shape
    if k == 0 or d == 0:
        raise ProblemError(f"means must have shape (K, d) with K, d >= 1, got {mu.shape}")
    if w.shape != (k,):
        raise ProblemError(f"weights must have shape ({k},) to match means, got {w.shape}")
    if cov.shape != (k, d, d):
        raise ProblemError(f"covariances must have shape ({k}, {d}, {d}), got {cov.shape}")
    if np.any(w < 0):
        raise ProblemError(f"weights must be >= 0, got {w.tolist()}")
    if abs(w.sum() - 1.0) > WEIGHT_SUM_ATOL:
        raise ProblemError(f"weights must sum to 1 (within {WEIGHT_SUM_ATOL}), sum is {w.sum()!r}")
    for i, c in enumerate(cov):
        scale = np.max(np.abs(c))
        if np.max(np.abs(c - c.T)) > SYMMETRY_RTOL * scale:
            raise ProblemError(f"covariances[{i}] is not symmetric")
        eigenvalues = np.linalg.eigvalsh(c)
        if eigenvalues[0] <= 0:
            raise ProblemError(
                f"covariances[{i}] is not positive definite "
                f"(smallest eigenvalue {eigenvalues[0]:.3g})"
            )
        if eigenvalues[-1] > CONDITION_MAX * eigenvalues[0]:
            raise ProblemError(
                f"covariances[{i}] is ill-conditioned "
                f"(condition number {eigenvalues[-1] / eigenvalues[0]:.3g} > {CONDITION_MAX:g})"
            )
    return w, mu, cov


def _check_point(x: Array, d: int) -> None:
    if x.shape != (d,):
        raise ValueError(
            f"expected one point x of shape ({d},), got shape {x.shape}; "
            "functions act on one sample, batch with jax.vmap"
        )


def sobol_normal_nodes(dim: int, n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic quasi-Monte Carlo rule for E f(z), z ~ N(0, I_d): ``n_points`` nodes.

    Unscrambled Sobol points (``scipy.stats.qmc.Sobol``, a power of two) shifted by
    1/(2n) into the open cube and mapped by the inverse normal CDF; equal weights 1/n.
    Error O((log n)^d / n) for integrands of bounded variation after the map (Koksma–Hlawka);
    no random seed is involved, so the result is reproducible bit for bit.
    """
    m = max(0, math.ceil(math.log2(n_points)))
    u = qmc.Sobol(dim, scramble=False).random_base2(m)
    u = u + 0.5 / 2**m
    return ndtri(u), np.full(2**m, 1.0 / 2**m)


def gauss_hermite_nodes(dim: int, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Tensor Gauss–Hermite rule for E f(z), z ~ N(0, I_d): nodes ``(order**d, d)``, weights.

    The 1-D rule (probabilists' Hermite, ``numpy.polynomial.hermite_e.hermegauss``) with n
    nodes integrates polynomials of degree ≤ 2n − 1 exactly against N(0, 1); for analytic
    integrands the error decays geometrically in n.
    """
    if order**dim > MAX_QUADRATURE_NODES:
        raise ValueError(
            f"{order}**{dim} Gauss–Hermite nodes exceed {MAX_QUADRATURE_NODES}; "
            "use a Monte Carlo estimate in this dimension"
        )
    z, w = np.polynomial.hermite_e.hermegauss(order)
    w = w / math.sqrt(2 * math.pi)
    grids = np.meshgrid(*([z] * dim), indexing="ij")
    nodes = np.stack([g.ravel() for g in grids], axis=-1)
    weights = np.prod(np.stack(np.meshgrid(*([w] * dim), indexing="ij")), axis=0).ravel()
    return nodes, weights


@final
class GaussianMixture(eqx.Module):
    """p(x) = Σ_k π_k N(x; μ_k, Σ_k) with full covariances.

    Parameters
    ----------
    weights : array ``(K,)``
        π_k ≥ 0, Σ π_k = 1 (within ``WEIGHT_SUM_ATOL``).
    means : array ``(K, d)``
        μ_k.
    covariances : array ``(K, d, d)``
        Σ_k, symmetric positive definite with condition number ≤ ``CONDITION_MAX``.

    Construction validates concrete values (raises :class:`ProblemError`); build the
    mixture outside ``jit``. :meth:`diffused` is the traceable way to get new mixtures.
    """

    weights: Float[Array, " k"]
    means: Float[Array, "k d"]
    covariances: Float[Array, "k d d"]
    eigenvalues: Float[Array, "k d"]
    eigenvectors: Float[Array, "k d d"]

    def __init__(self, weights: Any, means: Any, covariances: Any):
        w, mu, cov = validate_mixture(weights, means, covariances)
        eigenvalues, eigenvectors = np.linalg.eigh(cov)
        self.weights = jnp.asarray(w)
        self.means = jnp.asarray(mu)
        self.covariances = jnp.asarray(cov)
        self.eigenvalues = jnp.asarray(eigenvalues)
        self.eigenvectors = jnp.asarray(eigenvectors)

    @property
    def dim(self) -> int:
        """d."""
        return self.means.shape[-1]

    @property
    def n_components(self) -> int:
        """K."""
        return self.means.shape[0]

    def diffused(self, alpha: ArrayLike, sigma2: ArrayLike) -> GaussianMixture:
        """Law of α x + σ ε, x ~ p, ε ~ N(0, I): components N(α μ_k, α² Σ_k + σ² I).

        Traceable and differentiable in ``alpha`` and ``sigma2`` (no factorisation).
        """
        alpha = jnp.asarray(alpha)
        sigma2 = jnp.asarray(sigma2)
        eye = jnp.eye(self.dim, dtype=self.covariances.dtype)
        return eqx.tree_at(
            lambda m: (m.means, m.covariances, m.eigenvalues),
            self,
            (
                alpha * self.means,
                alpha**2 * self.covariances + sigma2 * eye,
                alpha**2 * self.eigenvalues + sigma2,
            ),
        )

    def _components(self, x: Float[Array, " d"]) -> tuple[Array, Array, Array]:
        """(log π_k N(x; μ_k, Σ_k), m_k = −Σ_k⁻¹(x − μ_k), tr Σ_k⁻¹) for all k."""
        _check_point(x, self.dim)
        r = x - self.means
        # z = U_kᵀ r_k: coordinates in the eigenbasis, where Σ_k⁻¹ is diagonal.
        z = jnp.einsum("kij,ki->kj", self.eigenvectors, r)
        quad = jnp.sum(z**2 / self.eigenvalues, axis=-1)
        log_det = jnp.sum(jnp.log(self.eigenvalues), axis=-1)
        log_normal = -0.5 * (self.dim * math.log(2 * math.pi) + log_det + quad)
        m = -jnp.einsum("kij,kj->ki", self.eigenvectors, z / self.eigenvalues)
        trace_precision = jnp.sum(1 / self.eigenvalues, axis=-1)
        return jnp.log(self.weights) + log_normal, m, trace_precision

    def log_density(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        """log p(x) = logsumexp_k [log π_k + log N(x; μ_k, Σ_k)]."""
        logits, _, _ = self._components(x)
        return jax.nn.logsumexp(logits)

    def responsibilities(self, x: Float[Array, " d"]) -> Float[Array, " k"]:
        """w_k(x) = π_k N(x; μ_k, Σ_k) / p(x)."""
        logits, _, _ = self._components(x)
        return jax.nn.softmax(logits)

    def score(self, x: Float[Array, " d"]) -> Float[Array, " d"]:
        """s(x) = ∇ log p(x) = Σ_k w_k m_k, m_k = −Σ_k⁻¹(x − μ_k)."""
        logits, m, _ = self._components(x)
        return jax.nn.softmax(logits) @ m

    def score_jacobian(self, x: Float[Array, " d"]) -> Float[Array, "d d"]:
        """∇s = ∇² log p = Σ_k w_k (m_k m_kᵀ − Σ_k⁻¹) − s sᵀ (symmetric)."""
        logits, m, _ = self._components(x)
        w = jax.nn.softmax(logits)
        s = w @ m
        precision = jnp.einsum(
            "kij,kj,klj->kil", self.eigenvectors, 1 / self.eigenvalues, self.eigenvectors
        )
        second_moment = jnp.einsum("k,ki,kj->ij", w, m, m)
        return second_moment - jnp.einsum("k,kij->ij", w, precision) - jnp.outer(s, s)

    def score_divergence(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        """∇·s = Δ log p = Σ_k w_k (|m_k|² − tr Σ_k⁻¹) − |s|²."""
        logits, m, trace_precision = self._components(x)
        w = jax.nn.softmax(logits)
        s = w @ m
        return w @ (jnp.sum(m**2, axis=-1) - trace_precision) - s @ s

    def transform_uniform(self, u: Float[Array, " d+1"]) -> Float[Array, " d"]:
        """The sample x(u) that maps u ~ U(0, 1)^{d+1} to x ~ p (deterministic, single sample).

        k = #{j < K − 1 : π_0 + … + π_j ≤ u_0} (inverse CDF of Categorical(π), so a
        component with π_k = 0 is never chosen), ε_i = Φ⁻¹(u_i), i = 1..d, and
        x = μ_k + U_k diag(√λ_k) ε. Uniforms must lie in (0, 1) for ε to be finite.
        """
        if u.shape != (self.dim + 1,):
            raise ValueError(
                f"expected u of shape ({self.dim + 1},), got {u.shape}; batch with jax.vmap"
            )
        k = jnp.sum(u[0] >= jnp.cumsum(self.weights)[:-1])
        eps = jax.scipy.special.ndtri(u[1:])
        return self.means[k] + self.eigenvectors[k] @ (jnp.sqrt(self.eigenvalues[k]) * eps)

    def uniforms(self, n: int | None = None, *, key: PRNGKeyArray) -> Array:
        """U(0, 1) draws in (0, 1) of shape ``(d + 1,)`` or ``(n, d + 1)`` for the transform.

        The lower bound is the smallest normal float, so Φ⁻¹ stays finite (≥ −38 in float64).
        """
        shape = (self.dim + 1,) if n is None else (n, self.dim + 1)
        tiny = jnp.finfo(self.means.dtype).tiny
        return jax.random.uniform(key, shape, dtype=self.means.dtype, minval=tiny, maxval=1.0)

    def sample(self, *, key: PRNGKeyArray) -> Float[Array, " d"]:
        """One exact sample: k ~ Categorical(π), x = μ_k + U_k diag(√λ_k) ε, ε ~ N(0, I).

        One call to the random generator (``d + 1`` uniforms, :meth:`transform_uniform`).
        """
        return self.transform_uniform(self.uniforms(key=key))

    def sample_n(self, n: int, *, key: PRNGKeyArray) -> Float[Array, "n d"]:
        """``n`` iid exact samples from one ``(n, d + 1)`` uniform draw (``n`` static).

        Equivalent in law to vmapping :meth:`sample` over split keys, with one generator
        call instead of n (cheaper to compile and run).
        """
        return jax.vmap(self.transform_uniform)(self.uniforms(n, key=key))

    def mean(self) -> Float[Array, " d"]:
        """E x = Σ_k π_k μ_k."""
        return self.weights @ self.means

    def covariance(self) -> Float[Array, "d d"]:
        """Cov x = Σ_k π_k (Σ_k + μ_k μ_kᵀ) − E x E xᵀ."""
        mean = self.mean()
        second = jnp.einsum("k,kij->ij", self.weights, self.covariances) + jnp.einsum(
            "k,ki,kj->ij", self.weights, self.means, self.means
        )
        return second - jnp.outer(mean, mean)

    def expectation(
        self, fn: Callable[[Float[Array, " d"]], Array], order: int | None = None
    ) -> Array:
        """E_p fn(x) by a deterministic rule in each component's whitened frame.

        E_p fn = Σ_k π_k Σ_j ω_j fn(μ_k + U_k diag(√λ_k) z_j), where (z_j, ω_j) is

        * for d ≤ 3 (or when ``order`` is given): the tensor Gauss–Hermite rule of
          :func:`gauss_hermite_nodes` with ``order`` (default ``QUADRATURE_ORDER[d]``) nodes
          per dimension — exact for polynomial fn of degree ≤ 2·order − 1, and geometrically
          convergent for the smooth, Gaussian-tailed integrands of a mixture;
        * for d > 3: the ``QMC_POINTS`` unscrambled Sobol nodes of :func:`sobol_normal_nodes`
          (error O((log n)^d / n); check it against a Monte Carlo estimate when it matters).

        Parameters
        ----------
        fn : callable
            One point ``(d,)`` → array; vmapped over the nodes.
        order : int, optional
            Gauss–Hermite nodes per dimension (``order**d`` ≤ ``MAX_QUADRATURE_NODES``).
        """
        if order is None and self.dim not in QUADRATURE_ORDER:
            nodes, node_weights = sobol_normal_nodes(self.dim, QMC_POINTS)
        else:
            order = QUADRATURE_ORDER[self.dim] if order is None else order
            nodes, node_weights = gauss_hermite_nodes(self.dim, order)
        nodes = jnp.asarray(nodes, dtype=self.means.dtype)
        # x_kj = μ_k + U_k (√λ_k ⊙ z_j)
        points = self.means[:, None, :] + jnp.einsum(
            "kil,kjl->kji", self.eigenvectors, jnp.sqrt(self.eigenvalues)[:, None, :] * nodes
        )
        values = jax.vmap(jax.vmap(fn))(points)
        weights = self.weights[:, None] * jnp.asarray(node_weights, dtype=self.means.dtype)
        return jnp.tensordot(weights, values, axes=2)

    def fisher_information(self, order: int | None = None) -> Float[Array, ""]:
        """I = E_p |∇ log p|² by the deterministic rule of :meth:`expectation`."""
        return self.expectation(lambda x: jnp.sum(self.score(x) ** 2), order)

    def parameters(self) -> dict[str, Any]:
        """``{"weights", "means", "covariances"}`` as nested lists (the ``[data]`` table)."""
        return {
            "weights": np.asarray(self.weights).tolist(),
            "means": np.asarray(self.means).tolist(),
            "covariances": np.asarray(self.covariances).tolist(),
        }
