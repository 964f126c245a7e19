r"""Relative error of a learned velocity field against the exact probability-flow velocity.

For a problem with exact marginals :math:`p_t` and Fokker–Planck dynamics
:math:`\partial_t p = -\nabla\cdot(fp) + \tfrac12 g^2 \Delta p`, the deterministic
characteristics that transport :math:`p_t` have the velocity

.. math::

    v^*(t, x) = f(t, x) - \tfrac12 g(t)^2\, \nabla\log p_t(x),

the probability-flow velocity of a diffusion model (Song et al. 2021, eq. 13) and, for the
BKW problems (:math:`f = -\lambda x`, :math:`g^2 = 2\lambda`), the exact Landau particle
velocity :math:`U = -\lambda(\nabla\log f + x)` (MATH.md §2.6). The check (formula
``velocity-error-relative``) is the ratio of means

.. math::

    \frac{E_{p_t}|v(t,x) - v^*(t,x)|^2}{E_{p_t}|v^*(t,x)|^2 + \epsilon}

from n exact samples, with the delta-method standard error of a ratio of means
(:func:`verify._estimate.ratio_estimate`).

References
----------
.. [1] Y. Song et al., "Score-based generative modeling through stochastic differential
   equations", ICLR 2021, eq. 13.
.. [2] A. B. Owen, "Monte Carlo theory, methods and examples" (2013), §9.2 (ratio estimates).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import PRNGKeyArray

from solvers import AbstractExactMarginals, AbstractFokkerPlanckDynamics

from ._estimate import Estimate, ratio_estimate
from ._model_views import VelocityOfScore
from ._score_gap import (
    DEFAULT_BLOCK_SIZE,
    blocked_map,
    require_float64,
    roundoff_resolution,
    time_keys,
)

FORMULA_VELOCITY = "velocity-error-relative"
NORMALISER_VELOCITY = "mean_squared_exact_velocity"


@eqx.filter_jit
def _velocity_values(velocity_fn, problem, t, key, n: int, block: int):
    x = problem.sample(t, n, key=key)

    def one(xi):
        exact = VelocityOfScore(problem, problem.score)(t, xi)
        diff = velocity_fn(t, xi) - exact
        return jnp.sum(diff * diff), jnp.sum(exact * exact)

    return blocked_map(one, x, block)


def velocity_error(
    velocity_fn: Callable,
    problem: AbstractExactMarginals,
    times: Sequence[float],
    *,
    n_samples: int,
    key: PRNGKeyArray,
    eps: float = 0.0,
    block_size: int = DEFAULT_BLOCK_SIZE,
    allow_float32: bool = False,
) -> list[Estimate]:
    """Relative mean-square velocity error at each time (module docstring).

    Parameters
    ----------
    velocity_fn : callable
        Learned velocity ``v(t, x) -> (d,)``.
    problem : AbstractExactMarginals and AbstractFokkerPlanckDynamics
        Exact samples and score, drift and diffusion.
    times : sequence of float
        Certification times (traced: one compilation).
    n_samples : int
        Exact samples per time.
    key : PRNG key
        Keyword-only; split per time.
    eps : float
        Added to the normaliser E|v*|².
    """
    require_float64(allow_float32)
    if not isinstance(problem, AbstractFokkerPlanckDynamics):
        raise TypeError(f"{type(problem).__name__} has no Fokker–Planck dynamics")
    times, keys = time_keys(times, key)
    out = []
    for t, k in zip(times, keys, strict=True):
        a, b = (
            np.asarray(v)
            for v in _velocity_values(
                velocity_fn, problem, jnp.asarray(t), k, int(n_samples), block_size
            )
        )
        out.append(
            ratio_estimate(
                a,
                b,
                formula_id=FORMULA_VELOCITY,
                normaliser=NORMALISER_VELOCITY,
                eps=eps,
                resolution=roundoff_resolution(b),
            )
        )
    return out
