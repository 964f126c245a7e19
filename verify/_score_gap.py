r"""Score-matching gap of a learned score against a problem with exact marginals.

For a learned score :math:`s(t, x)` and exact marginals :math:`p_t`:

* **direct gap** (formula ``score-gap-direct``), from n exact samples :math:`x_i \sim p_t`:

  .. math::

      G(t) = E_{p_t}|s(t,x) - \nabla\log p_t(x)|^2
      \approx \frac1n\sum_i |s(t,x_i) - \nabla\log p_t(x_i)|^2,

  and its relative form :math:`G(t)/(I(t) + \epsilon)`, :math:`I(t) = E_{p_t}|\nabla\log p_t|^2`
  (normaliser ``fisher_information``);
* **direct gap by defensive importance sampling** (``score-gap-direct-defensive-is``, the
  default of :func:`score_gap`): the same :math:`G(t)`, from n iid draws of the defensive
  mixture [2]_

  .. math::

      q_t = \lambda\,p_t + (1-\lambda)\,\mathcal N(\hat m_t, \kappa^2 \hat C_t),\qquad
      G(t) \approx \frac1n\sum_i w(x_i)\,|s(t,x_i) - \nabla\log p_t(x_i)|^2,\quad
      w = \frac{p_t}{q_t} \le \frac1\lambda,

  with :math:`\hat m_t, \hat C_t` the mean and covariance of an independent pilot sample of
  :math:`p_t` (so q is fixed given the pilot and the terms are iid), λ = 0.25, κ = 1.5
  (:class:`DefensiveProposal`). Why: a learned score is accurate where the training data
  were and its error grows outside, so under :math:`p_t` the squared error is carried by a
  few rare draws in the tails and between modes; at small t the heavy-tail diagnostic of
  :func:`verify._estimate.summarise` then withholds the interval even when the estimate is
  far inside its bound (vp-gmm-2d, DSM fixture, n = 10⁴, t = 0.05: top-10 share 0.5–0.98
  under :math:`p_t`). The wider component visits those regions ~(1−λ)/λ times more often and
  down-weights them, so no single draw dominates (same fixture: share 0.11–0.15 over 8 seeds
  at t = 0.05 and 0.1). The estimator stays unbiased; since :math:`w \le 1/\lambda`, its
  variance is at most :math:`E_{p_t}[h^2]/\lambda` (h the squared error), i.e. its standard
  error at most 2× that of exact sampling in the worst case. It needs the normalised
  density :math:`p_t` (``log_density``), which exact-marginal problems provide; the tail
  diagnostic is applied to the weighted terms;
* **Hyvärinen gap** (``hyvarinen-2005-thm1``, MATH.md §1.3 a, §6), which needs only
  :math:`s` and samples, plus the constant :math:`I(t)`:

  .. math::

      G(t) = J_t(s) + I(t),\qquad J_t(s) = E_{p_t}\big[|s|^2 + 2\nabla\cdot s\big],

  with :math:`\nabla\cdot s` exact (``jax.jacfwd``) or Hutchinson (K Rademacher probes per
  sample, :mod:`verify._divergence`). The probe noise is part of the per-sample integrand
  :math:`h_i = |s(x_i)|^2 + 2\widehat{\nabla\cdot s}(x_i)`, so the sample variance of
  :math:`h_i`, hence ``stderr``, includes it (:math:`\operatorname{Var} h = \operatorname{Var}_x
  + E_x \operatorname{Var}_{\rm probe}/K`). When :math:`I(t)` is unknown,
  :func:`hyvarinen_loss` returns :math:`J_t(s)` alone (``hyvarinen-2005-loss``), which
  certifies the gap only up to that constant.

Every estimate is the CLT mean ± stderr of iid per-sample values (:func:`verify._estimate.
summarise`, with its heavy-tail diagnostic and NaN policy). Per-sample work is jitted,
vmapped within blocks of ``block_size`` samples and ``lax.map``-ped over blocks, so memory
beyond the n samples themselves is O(block_size); time is a traced argument, so all
certification times share one compilation.

References
----------
.. [1] A. Hyvärinen, "Estimation of non-normalized statistical models by score matching",
   JMLR 6 (2005) 695–709, Theorem 1.
.. [2] T. Hesterberg, "Weighted average importance sampling and defensive mixture
   distributions", Technometrics 37 (1995) 185–194.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from solvers import AbstractExactMarginals

from ._divergence import divergence_exact, divergence_probes, rademacher_probes
from ._estimate import Estimate, summarise

ScoreFn = Callable[[Float[Array, ""], Float[Array, " d"]], Float[Array, " d"]]

DEFAULT_BLOCK_SIZE = 1024
FORMULA_DIRECT = "score-gap-direct"
FORMULA_DIRECT_IS = "score-gap-direct-defensive-is"
FORMULA_HYVARINEN_GAP = "hyvarinen-2005-thm1"
FORMULA_HYVARINEN_LOSS = "hyvarinen-2005-loss"
NORMALISER_FISHER = "fisher_information"
REASON_CONSTANT_UNKNOWN = "additive constant I(t) unknown: the loss is the score gap minus I(t)"


def require_float64(allow_float32: bool) -> None:
    """Refuse to estimate in float32 unless asked (``allow_float32``; record it)."""
    if jax.dtypes.canonicalize_dtype(jnp.float64) != jnp.float64 and not allow_float32:
        raise ValueError(
            "estimators need float64 (JAX x64 mode): the CLI and tests switch it on; pass "
            "allow_float32=True to estimate in float32 and record it"
        )


ROUNDOFF_RELATIVE = 1e-16
"""Squared quantities below 1e-16 × the largest squared term (|·| below 1e-8 of the terms
that cancel, ~1e8 ulps) are round-off for the tail diagnostic (:mod:`verify._estimate`)."""


ROUNDOFF_ULPS = 1e4
"""In a lower precision than float64 (``--float32``), |·| below 1e4 ulps of the terms is
round-off too: (1e4 · 1.2e-7)² ≈ 1.4e-6 relative in float32; in float64 ROUNDOFF_RELATIVE
(1e-16 ≫ (1e4 · 2.2e-16)²) applies."""


def roundoff_resolution(scale) -> float:
    """Round-off resolution of a squared integrand from per-sample squared term sizes.

    ``ROUNDOFF_RELATIVE`` times the largest term, or (``ROUNDOFF_ULPS`` · machine epsilon of
    the terms' dtype)² times it when that is larger (float32).
    """
    scale = np.asarray(scale)
    finite = scale[np.isfinite(scale)]
    if not finite.size:
        return 0.0
    eps = float(np.finfo(scale.dtype).eps) if np.issubdtype(scale.dtype, np.floating) else 0.0
    relative = max(ROUNDOFF_RELATIVE, (ROUNDOFF_ULPS * eps) ** 2)
    return float(relative * finite.max())


def blocked_map(fn: Callable, xs, block_size: int):
    """``vmap(fn)`` over the leading axis of the pytree ``xs``, ``lax.map``-ped over blocks.

    The n inputs are padded (with copies of the first) to a multiple of the block size and
    the padding is dropped from the outputs; peak memory is O(block_size) evaluations.
    """
    leaves = jax.tree_util.tree_leaves(xs)
    n = leaves[0].shape[0]
    block = max(1, min(int(block_size), n))
    n_blocks = -(-n // block)
    pad = n_blocks * block - n

    def to_blocks(a):
        if pad:
            a = jnp.concatenate([a, jnp.repeat(a[:1], pad, axis=0)], axis=0)
        return a.reshape(n_blocks, block, *a.shape[1:])

    out = jax.lax.map(jax.vmap(fn), jax.tree_util.tree_map(to_blocks, xs))
    return jax.tree_util.tree_map(lambda o: o.reshape(n_blocks * block, *o.shape[2:])[:n], out)


def time_keys(times: Sequence[float], key: PRNGKeyArray) -> tuple[np.ndarray, Array]:
    times = np.atleast_1d(np.asarray(times, dtype=np.float64))
    if times.ndim != 1 or times.size == 0:
        raise ValueError(f"times must be a non-empty 1-d sequence, got shape {times.shape}")
    return times, jax.random.split(key, times.size)


def _squared_error_and_scale(score_fn: ScoreFn, problem, t: Array, xi: Array):
    """|s − ∇log p|² at one point and the squared size of the two terms (round-off scale)."""
    s, exact = score_fn(t, xi), problem.score(t, xi)
    diff = s - exact
    return jnp.sum(diff * diff), jnp.sum(s * s) + jnp.sum(exact * exact)


@eqx.filter_jit
def _direct_values(
    score_fn: ScoreFn, problem: AbstractExactMarginals, t: Array, key: Array, n: int, block: int
) -> tuple[Array, Array]:
    """Per-sample |s − ∇log p|² and the squared magnitude of the terms (round-off scale)."""
    x = problem.sample(t, n, key=key)

    return blocked_map(lambda xi: _squared_error_and_scale(score_fn, problem, t, xi), x, block)


class DefensiveProposal(eqx.Module):
    r"""Defensive mixture :math:`q_t = \lambda p_t + (1-\lambda) N(\hat m_t, \kappa^2\hat C_t)`.

    Parameters
    ----------
    exact_fraction : float, default 0.25
        λ ∈ (0, 1]: the share of draws from :math:`p_t`; weights are at most 1/λ.
    inflation : float, default 1.5
        κ > 0: the wide component's standard deviations relative to those of :math:`p_t`.
    pilot_samples : int, default 4096
        Size of the independent pilot sample giving :math:`\hat m_t, \hat C_t`.
    """

    exact_fraction: float = eqx.field(static=True, default=0.25)
    inflation: float = eqx.field(static=True, default=1.5)
    pilot_samples: int = eqx.field(static=True, default=4096)

    def __check_init__(self):
        if not 0.0 < self.exact_fraction <= 1.0:
            raise ValueError(f"exact_fraction must be in (0, 1], got {self.exact_fraction}")
        if not self.inflation > 0.0:
            raise ValueError(f"inflation must be positive, got {self.inflation}")
        if self.pilot_samples < 2:
            raise ValueError(f"pilot_samples must be at least 2, got {self.pilot_samples}")

    def sample_weighted(
        self, problem: AbstractExactMarginals, t: Array, n: int, *, key: PRNGKeyArray
    ) -> tuple[Array, Array]:
        """n iid draws of :math:`q_t` and their weights :math:`p_t/q_t` (≤ 1/λ)."""
        pilot_key, exact_key, wide_key, pick_key = jax.random.split(key, 4)
        pilot = problem.sample(t, self.pilot_samples, key=pilot_key)
        mean = jnp.mean(pilot, axis=0)
        centred = pilot - mean
        covariance = centred.T @ centred / (self.pilot_samples - 1)
        dim = mean.shape[0]
        # A jitter of 1e-12 of the trace keeps the Cholesky factor defined for a degenerate
        # pilot; it widens the wide component by a negligible amount.
        jitter = 1e-12 * jnp.trace(covariance) / dim
        chol = self.inflation * jnp.linalg.cholesky(covariance + jitter * jnp.eye(dim))
        exact = problem.sample(t, n, key=exact_key)
        wide = mean + jax.random.normal(wide_key, (n, dim), dtype=mean.dtype) @ chol.T
        from_exact = jax.random.bernoulli(pick_key, self.exact_fraction, (n,))
        x = jnp.where(from_exact[:, None], exact, wide)
        log_p = jax.vmap(lambda xi: problem.log_density(t, xi))(x)
        z = jax.scipy.linalg.solve_triangular(chol, (x - mean).T, lower=True).T
        log_wide = (
            -0.5 * jnp.sum(z * z, axis=-1)
            - 0.5 * dim * jnp.log(2.0 * jnp.pi)
            - jnp.sum(jnp.log(jnp.diag(chol)))
        )
        log_q = jnp.logaddexp(
            jnp.log(self.exact_fraction) + log_p, jnp.log1p(-self.exact_fraction) + log_wide
        )
        return x, jnp.exp(log_p - log_q)


DEFAULT_PROPOSAL = DefensiveProposal()
"""The proposal of :func:`score_gap` and ``verify certify`` (λ = 0.25, κ = 1.5)."""


@eqx.filter_jit
def _direct_values_weighted(
    score_fn: ScoreFn,
    problem: AbstractExactMarginals,
    proposal: DefensiveProposal,
    t: Array,
    key: Array,
    n: int,
    block: int,
) -> tuple[Array, Array]:
    """Per-sample w·|s − ∇log p|² over draws of the defensive mixture, and w × the term scale."""
    x, weights = proposal.sample_weighted(problem, t, n, key=key)

    values, scale = blocked_map(
        lambda xi: _squared_error_and_scale(score_fn, problem, t, xi), x, block
    )
    return weights * values, weights * scale


@eqx.filter_jit
def _hyvarinen_values(
    score_fn: ScoreFn,
    problem: AbstractExactMarginals,
    t: Array,
    key: Array,
    n: int,
    block: int,
    num_probes: int | None,
) -> Array:
    sample_key, probe_key = jax.random.split(key)
    x = problem.sample(t, n, key=sample_key)

    def one(args):
        xi, k = args
        field = lambda y: score_fn(t, y)  # noqa: E731
        s = field(xi)
        if num_probes is None:
            div = divergence_exact(field, xi)
        else:
            probes = rademacher_probes(num_probes, xi.shape[0], xi.dtype, key=k)
            div = jnp.mean(divergence_probes(field, xi, probes))
        return jnp.sum(s * s) + 2.0 * div

    return blocked_map(one, (x, jax.random.split(probe_key, n)), block)


def score_gap(
    score_fn: ScoreFn,
    problem: AbstractExactMarginals,
    times: Sequence[float],
    *,
    n_samples: int,
    key: PRNGKeyArray,
    block_size: int = DEFAULT_BLOCK_SIZE,
    allow_float32: bool = False,
    proposal: DefensiveProposal | None = DEFAULT_PROPOSAL,
) -> list[Estimate]:
    r"""Direct gap :math:`E_{p_t}|s - \nabla\log p_t|^2` at each time (module docstring).

    Parameters
    ----------
    score_fn : callable
        Learned score :math:`s(t, x)`, ``((), (d,)) -> (d,)`` (a function or equinox module).
    problem : AbstractExactMarginals
        Supplies exact samples and the exact score.
    times : sequence of float
        Certification times.
    n_samples : int
        n exact samples per time.
    key : PRNG key
        Keyword-only, no default; split into one key per time.
    block_size : int, default 1024
        Samples evaluated per vmapped block.
    allow_float32 : bool, default False
        Estimate without x64 (refused otherwise).
    proposal : DefensiveProposal or None, default DEFAULT_PROPOSAL
        Draw from the defensive mixture and weight (formula
        ``score-gap-direct-defensive-is``); ``None``: exact samples of :math:`p_t`, unweighted
        (``score-gap-direct``).

    Returns
    -------
    list of Estimate
        One per time; normaliser ``none``.
    """
    require_float64(allow_float32)
    times, keys = time_keys(times, key)
    out = []
    formula = FORMULA_DIRECT if proposal is None else FORMULA_DIRECT_IS
    for t, k in zip(times, keys, strict=True):
        if proposal is None:
            values, scale = _direct_values(
                score_fn, problem, jnp.asarray(t), k, int(n_samples), block_size
            )
        else:
            values, scale = _direct_values_weighted(
                score_fn, problem, proposal, jnp.asarray(t), k, int(n_samples), block_size
            )
        out.append(summarise(values, formula_id=formula, resolution=roundoff_resolution(scale)))
    return out


def relative_to_fisher(
    estimates: Sequence[Estimate],
    problem: AbstractExactMarginals,
    times: Sequence[float],
    *,
    eps: float = 0.0,
) -> list[Estimate]:
    r"""Divide each estimate (and stderr) by :math:`I(t) + \epsilon` (normaliser
    ``fisher_information``); I(t) is the problem's deterministic value, taken as exact."""
    times = np.atleast_1d(np.asarray(times, dtype=np.float64))
    return [
        e.scaled(
            float(problem.fisher_information(jnp.asarray(t))) + eps,
            normaliser=NORMALISER_FISHER,
            eps=eps,
        )
        for e, t in zip(estimates, times, strict=True)
    ]


def _hyvarinen_samples(
    score_fn, problem, times, *, n_samples, key, num_probes, block_size, allow_float32
) -> tuple[np.ndarray, list[Array]]:
    require_float64(allow_float32)
    if num_probes is not None and num_probes < 1:
        raise ValueError(f"num_probes must be None (exact) or ≥ 1, got {num_probes}")
    times, keys = time_keys(times, key)
    values = [
        _hyvarinen_values(
            score_fn, problem, jnp.asarray(t), k, int(n_samples), block_size, num_probes
        )
        for t, k in zip(times, keys, strict=True)
    ]
    return times, values


def hyvarinen_loss(
    score_fn: ScoreFn,
    problem: AbstractExactMarginals,
    times: Sequence[float],
    *,
    n_samples: int,
    key: PRNGKeyArray,
    num_probes: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    allow_float32: bool = False,
) -> list[Estimate]:
    r"""Hyvärinen loss :math:`J_t(s) = E_{p_t}[|s|^2 + 2\nabla\cdot s]` at each time.

    Use when :math:`I(t)` is unknown: the loss equals the gap minus :math:`I(t)`, so it
    certifies the score error only up to that constant (said in each estimate's reason;
    normaliser ``none``). ``num_probes=None`` takes the divergence exactly; an int K uses K
    Rademacher probes per sample (the probe noise enters stderr). Other parameters as
    :func:`score_gap`.
    """
    _, values = _hyvarinen_samples(
        score_fn,
        problem,
        times,
        n_samples=n_samples,
        key=key,
        num_probes=num_probes,
        block_size=block_size,
        allow_float32=allow_float32,
    )
    return [
        summarise(v, formula_id=FORMULA_HYVARINEN_LOSS, reason=REASON_CONSTANT_UNKNOWN)
        for v in values
    ]


def hyvarinen_gap(
    score_fn: ScoreFn,
    problem: AbstractExactMarginals,
    times: Sequence[float],
    *,
    n_samples: int,
    key: PRNGKeyArray,
    num_probes: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    allow_float32: bool = False,
) -> list[Estimate]:
    r"""Score gap by the Hyvärinen identity, :math:`J_t(s) + I(t)`, at each time.

    :math:`I(t)` is the problem's deterministic Fisher information (quadrature, relative
    error ≤ 5e-7 on the built-in problems), added as an exact offset; the same key gives
    the same samples and probes as :func:`hyvarinen_loss`. Parameters as
    :func:`hyvarinen_loss`.
    """
    times, values = _hyvarinen_samples(
        score_fn,
        problem,
        times,
        n_samples=n_samples,
        key=key,
        num_probes=num_probes,
        block_size=block_size,
        allow_float32=allow_float32,
    )
    return [
        summarise(v, formula_id=FORMULA_HYVARINEN_GAP).shifted(
            float(problem.fisher_information(jnp.asarray(t))), formula_id=FORMULA_HYVARINEN_GAP
        )
        for v, t in zip(values, times, strict=True)
    ]
