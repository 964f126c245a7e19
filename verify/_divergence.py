r"""Divergence of a single-sample vector field: exact and Hutchinson estimates.

For :math:`F: \mathbb R^d \to \mathbb R^d` with Jacobian :math:`J = \partial F/\partial x`,
:math:`\nabla\cdot F = \operatorname{tr} J`.

* :func:`divergence_exact`: :math:`\operatorname{tr}` of ``jax.jacfwd`` (d JVPs).
* :func:`divergence_hutchinson`: :math:`\frac1K \sum_k \varepsilon_k^\top J \varepsilon_k`
  with K iid Rademacher probes (entries ±1), each :math:`J\varepsilon_k` one JVP. Unbiased
  since :math:`E\,\varepsilon\varepsilon^\top = I`. Single-probe variance, with
  :math:`J_{\rm sym} = (J + J^\top)/2` (the Jacobian of a learned score need not be
  symmetric):

  .. math::

      \operatorname{Var}(\varepsilon^\top J \varepsilon)
      = 2\Big(\|J_{\rm sym}\|_F^2 - \sum_i J_{ii}^2\Big)
      \quad\text{(Rademacher; Gaussian probes give } 2\|J_{\rm sym}\|_F^2\text{)},

  so the K-probe mean has variance :math:`2(\|J_{\rm sym}\|_F^2 - \sum_i J_{ii}^2)/K`.
  :func:`rademacher_variance` evaluates it; the estimator returns the sample variance of
  the K single-probe values (ddof = 1, NaN for K = 1), an unbiased estimate of it.

Functions act on one sample ``x`` of shape ``(d,)``; batch with ``jax.vmap``.

References
----------
.. [1] M. F. Hutchinson, "A stochastic estimator of the trace of the influence matrix for
   Laplacian smoothing splines", Commun. Stat. Simul. Comput. 19 (1990) 433–450.
.. [2] H. Avron, S. Toledo, "Randomized algorithms for estimating the trace of an implicit
   symmetric positive semi-definite matrix", J. ACM 58 (2011) 8.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

VectorField = Callable[[Float[Array, " d"]], Float[Array, " d"]]


def _check_point(x: Array) -> Array:
    x = jnp.asarray(x)
    if x.ndim != 1:
        raise ValueError(
            f"x must have shape (d,), got {x.shape}; functions act on one sample, "
            "batch with jax.vmap"
        )
    return x


def divergence_exact(fn: VectorField, x: Float[Array, " d"]) -> Float[Array, ""]:
    """∇·F(x) = tr ∂F/∂x by ``jax.jacfwd`` (d forward passes)."""
    x = _check_point(x)
    return jnp.trace(jax.jacfwd(fn)(x))


def rademacher_probes(num_probes: int, dim: int, dtype, *, key: PRNGKeyArray) -> Array:
    """``(num_probes, dim)`` iid Rademacher (±1) probes."""
    return jax.random.rademacher(key, (num_probes, dim), dtype=dtype)


def divergence_probes(
    fn: VectorField, x: Float[Array, " d"], probes: Float[Array, "k d"]
) -> Float[Array, " k"]:
    """Single-probe estimates εₖᵀ (∂F/∂x) εₖ, one JVP each."""
    x = _check_point(x)
    jvp = jax.vmap(lambda v: jax.jvp(fn, (x,), (v,))[1])(probes)
    return jnp.sum(probes * jvp, axis=-1)


def divergence_hutchinson(
    fn: VectorField, x: Float[Array, " d"], *, key: PRNGKeyArray, num_probes: int = 1
) -> tuple[Float[Array, ""], Float[Array, ""]]:
    r"""Hutchinson estimate of ∇·F(x) with K Rademacher probes.

    Parameters
    ----------
    fn : callable
        F, ``(d,) -> (d,)``.
    x : array, shape (d,)
        Point.
    key : PRNG key
        Probe key (keyword-only, no default).
    num_probes : int, default 1
        K (static).

    Returns
    -------
    estimate : scalar
        :math:`\frac1K\sum_k \varepsilon_k^\top J\varepsilon_k`.
    probe_variance : scalar
        Sample variance of the K single-probe values (ddof = 1; NaN for K = 1), an unbiased
        estimate of the single-probe variance :math:`2(\|J_{\rm sym}\|_F^2 - \sum_i J_{ii}^2)`;
        the estimate's variance is this divided by K.
    """
    x = _check_point(x)
    probes = rademacher_probes(num_probes, x.shape[0], x.dtype, key=key)
    values = divergence_probes(fn, x, probes)
    variance = jnp.var(values, ddof=1) if num_probes > 1 else jnp.full((), jnp.nan, x.dtype)
    return jnp.mean(values), variance


def rademacher_variance(jacobian: Float[Array, "d d"]) -> Float[Array, ""]:
    """Single-probe Rademacher variance 2(‖J_sym‖_F² − Σᵢ Jᵢᵢ²), J_sym = (J + Jᵀ)/2."""
    sym = 0.5 * (jacobian + jacobian.T)
    return 2.0 * (jnp.sum(sym**2) - jnp.sum(jnp.diag(jacobian) ** 2))
