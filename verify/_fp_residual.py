r"""Mean-square Fokker–Planck residual of a learned score or log-density (MATH.md §3.2).

For dynamics :math:`dx = f(t,x)\,dt + g(t)\,dW`, the marginals solve
:math:`\partial_t p = -\nabla\cdot(fp) + \tfrac12 g^2\Delta p`. With exact samples
:math:`x_i \sim p_t` (:class:`solvers.AbstractExactMarginals`) and the dynamics
(:class:`solvers.AbstractFokkerPlanckDynamics`):

* **score form** (formula ``fp-score-residual-ms``), learned :math:`s(t,x)`:

  .. math::

      R = \partial_t s - \nabla_x\big[\tfrac12 g^2(\nabla\cdot s + |s|^2) - f\cdot s
          - \nabla\cdot f\big],\qquad \text{estimate } E_{p_t}|R|^2;

* **log-density form** (``fp-log-residual-var``), learned, possibly unnormalised
  :math:`u(t,x) \approx \log p_t + c(t)`:

  .. math::

      R = \partial_t u + \nabla\cdot f + f\cdot\nabla u - \tfrac12 g^2(\Delta u + |\nabla u|^2).

  An unknown normaliser adds :math:`c'(t)` to R, constant in x, so only the x-dependent
  part is identifiable: the estimate is :math:`\operatorname{Var}_{x\sim p_t}(R)
  = E(R - ER)^2` (the mean square after subtracting the mean, which vanishes iff R is
  constant p_t-a.e.), estimated by the unbiased sample variance (ddof = 1).

Derivatives by autodiff: :math:`\partial_t` by ``jax.jvp`` in t; :math:`\nabla\cdot s` by
``jax.jacfwd`` and the outer :math:`\nabla_x` by ``jax.grad`` (reverse over forward);
:math:`\Delta u` as the trace of ``jax.jacfwd(jax.grad(u))`` (forward over reverse);
:math:`\nabla\cdot f` exactly (``jax.jacfwd`` of the known drift).

**Hutchinson** (``num_probes = K``): :math:`\nabla\cdot s` (or :math:`\Delta u`) is replaced by
the K-Rademacher-probe mean, which makes the residual estimate :math:`\hat R` unbiased
(R is affine in it) but :math:`|\hat R|^2` biased upward by the probe variance. Two
independent probe sets per sample give :math:`\hat R_1, \hat R_2` with
:math:`E[\hat R_1\cdot\hat R_2 \mid x] = |R(x)|^2` (MATH.md §6,
:math:`E(a-\hat R_1)(a-\hat R_2)` with a probe-free part a), so the per-sample integrand
:math:`\hat R_1\cdot\hat R_2` is unbiased for the mean square (it may be negative); in the log
form the sample covariance of :math:`\hat R_1` and :math:`\hat R_2` over x is unbiased for
:math:`\operatorname{Var}_x R`. Probe noise is part of the per-sample values and so of stderr.

Units: the squared units of R (score form: (x-units · time)^-2; log form: time^-2).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from solvers import AbstractExactMarginals, AbstractFokkerPlanckDynamics

from ._divergence import divergence_exact, divergence_probes, rademacher_probes
from ._estimate import Estimate, ratio_estimate, summarise
from ._score_gap import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_PROPOSAL,
    DefensiveProposal,
    ScoreFn,
    blocked_map,
    require_float64,
    roundoff_resolution,
    time_keys,
)

LogDensityFn = Callable[[Float[Array, ""], Float[Array, " d"]], Float[Array, ""]]

FORMULA_SCORE = "fp-score-residual-ms"
FORMULA_LOG = "fp-log-residual-var"


def _dt(fn: Callable[[Array], Array], t: Array) -> tuple[Array, Array]:
    return jax.jvp(fn, (t,), (jnp.ones_like(t),))


def score_residual(
    score_fn: ScoreFn,
    dynamics: AbstractFokkerPlanckDynamics,
    t: Float[Array, ""],
    x: Float[Array, " d"],
    probes: Float[Array, "k d"] | None = None,
) -> Float[Array, " d"]:
    r"""Score-form residual :math:`R(t, x)` at one sample; ``probes`` (K, d) for Hutchinson."""
    _, ds_dt = _dt(lambda tt: score_fn(tt, x), t)
    g2 = dynamics.diffusion(t) ** 2

    def potential(y):
        field = lambda z: score_fn(t, z)  # noqa: E731
        s = field(y)
        if probes is None:
            div_s = divergence_exact(field, y)
        else:
            div_s = jnp.mean(divergence_probes(field, y, probes))
        drift = lambda z: dynamics.drift(t, z)  # noqa: E731
        return (
            0.5 * g2 * (div_s + jnp.sum(s * s)) - jnp.sum(drift(y) * s) - divergence_exact(drift, y)
        )

    return ds_dt - jax.grad(potential)(x)


def _score_residual_and_scale(score_fn, dynamics, t, x, probes=None):
    _, ds_dt = _dt(lambda tt: score_fn(tt, x), t)
    r = score_residual(score_fn, dynamics, t, x, probes)
    # |R| = |∂_t s − ∇Φ|; the cancelling terms have size ~|∂_t s| ≈ |∇Φ|.
    return r, 2.0 * jnp.sum(ds_dt * ds_dt)


def log_density_residual(
    log_density_fn: LogDensityFn,
    dynamics: AbstractFokkerPlanckDynamics,
    t: Float[Array, ""],
    x: Float[Array, " d"],
    probes: Float[Array, "k d"] | None = None,
) -> Float[Array, ""]:
    r"""Log-density-form residual :math:`R(t, x)` at one sample; ``probes`` for Hutchinson."""
    return _log_residual_and_scale(log_density_fn, dynamics, t, x, probes)[0]


def _log_residual_and_scale(log_density_fn, dynamics, t, x, probes=None):
    _, du_dt = _dt(lambda tt: log_density_fn(tt, x), t)
    grad_u = lambda y: jax.grad(log_density_fn, argnums=1)(t, y)  # noqa: E731
    gu = grad_u(x)
    if probes is None:
        lap = divergence_exact(grad_u, x)
    else:
        lap = jnp.mean(divergence_probes(grad_u, x, probes))
    drift = lambda z: dynamics.drift(t, z)  # noqa: E731
    g2 = dynamics.diffusion(t) ** 2
    return _log_terms(du_dt, divergence_exact(drift, x), jnp.sum(drift(x) * gu), g2, lap, gu)


def _log_terms(du_dt, div_f, f_grad_u, g2, lap, gu):
    """(R, [Σ_{k≥1} T_k², ∂_t u]): ∂_t u is returned apart so that its x-constant part
    (c'(t) of an unnormalised u) can be removed from the normaliser (:func:`fp_residuals`)."""
    terms = jnp.stack([du_dt, div_f, f_grad_u, -0.5 * g2 * lap, -0.5 * g2 * jnp.sum(gu * gu)])
    return jnp.sum(terms), jnp.stack([jnp.sum(terms[1:] ** 2), du_dt])


@eqx.filter_jit
def _residual_values(
    fn: Callable,
    problem: AbstractFokkerPlanckDynamics,
    t: Array,
    key: Array,
    n: int,
    block: int,
    num_probes: int | None,
    log_form: bool,
    proposal: DefensiveProposal | None,
) -> tuple[Array, Array, Array, Array]:
    """Per-sample (R̂₁, R̂₂, squared term size, weight p_t/q_t): R̂₁ = R̂₂ when exact, else
    independent probes; weights are 1 without a proposal."""
    sample_key, probe_key = jax.random.split(key)
    if proposal is None:
        x = problem.sample(t, n, key=sample_key)
        weights = jnp.ones(n, dtype=x.dtype)
    else:
        x, weights = proposal.sample_weighted(problem, t, n, key=sample_key)
    residual = _log_residual_and_scale if log_form else _score_residual_and_scale

    def one(args):
        xi, k = args
        if num_probes is None:
            r, scale = residual(fn, problem, t, xi)
            return r, r, scale
        first, second = jax.random.split(k)
        probes = [
            rademacher_probes(num_probes, xi.shape[0], xi.dtype, key=kk) for kk in (first, second)
        ]
        r1, scale = residual(fn, problem, t, xi, probes[0])
        r2, _ = residual(fn, problem, t, xi, probes[1])
        return r1, r2, scale

    return (*blocked_map(one, (x, jax.random.split(probe_key, n)), block), weights)


FORMULA_SCORE_RELATIVE = "fp-score-residual-ms-relative"
FORMULA_SCORE_IS = "fp-score-residual-ms-defensive-is"
FORMULA_SCORE_IS_RELATIVE = "fp-score-residual-ms-defensive-is-relative"
FORMULA_LOG_RELATIVE = "fp-log-residual-var-relative"
NORMALISER_TERMS = "fp_term_scale"


def _ratio(values: np.ndarray, scale: np.ndarray, resolution: float, formula_id: str) -> Estimate:
    return ratio_estimate(
        values, scale, formula_id=formula_id, normaliser=NORMALISER_TERMS, resolution=resolution
    )


def _estimate(
    fn,
    problem,
    times,
    *,
    n_samples,
    key,
    num_probes,
    block_size,
    allow_float32,
    log_form,
    proposal=None,
) -> tuple[list[Estimate], list[Estimate]]:
    require_float64(allow_float32)
    if not (
        isinstance(problem, AbstractExactMarginals)
        and isinstance(problem, AbstractFokkerPlanckDynamics)
    ):
        raise TypeError(
            f"{type(problem).__name__} needs exact marginals and Fokker–Planck dynamics "
            "(AbstractExactMarginals and AbstractFokkerPlanckDynamics)"
        )
    if num_probes is not None and num_probes < 1:
        raise ValueError(f"num_probes must be None (exact) or ≥ 1, got {num_probes}")
    times, keys = time_keys(times, key)
    absolute, relative = [], []
    for t, k in zip(times, keys, strict=True):
        r1, r2, scale, weights = (
            np.asarray(a)
            for a in _residual_values(
                fn,
                problem,
                jnp.asarray(t),
                k,
                int(n_samples),
                block_size,
                num_probes,
                log_form,
                None if log_form else proposal,
            )
        )
        if log_form:
            others, du_dt = scale[:, 0], scale[:, 1]
            # Round-off follows the terms as computed (c'(t) included); the normaliser of
            # the relative form centres ∂_t u over the samples, as Var_x R ignores c'(t).
            resolution = roundoff_resolution(others + du_dt**2)
            finite = np.isfinite(du_dt)
            centre = du_dt[finite].mean() if finite.any() else np.nan
            scale = others + (du_dt - centre) ** 2
        else:
            resolution = roundoff_resolution(scale)
        if log_form:
            n = r1.shape[0]
            ok = np.isfinite(r1) & np.isfinite(r2)
            m1, m2 = (r[ok].mean() if ok.any() else np.nan for r in (r1, r2))
            # Per-sample terms of the unbiased sample covariance (the variance when exact);
            # non-finite residuals stay NaN so that summarise counts and reports them.
            values = np.where(ok, (r1 - m1) * (r2 - m2) * n / (n - 1), np.nan)
            formulas = (FORMULA_LOG, FORMULA_LOG_RELATIVE)
        else:
            # Weighted terms w·R̂₁·R̂₂ and w·c: unbiased for E_p|R|² and E_p c (w = 1 exactly
            # without a proposal), so their ratio of means is the same relative residual.
            values = weights * np.sum(r1 * r2, axis=-1)
            scale = weights * scale
            resolution = roundoff_resolution(scale)
            formulas = (FORMULA_SCORE, FORMULA_SCORE_RELATIVE)
            if proposal is not None:
                formulas = (FORMULA_SCORE_IS, FORMULA_SCORE_IS_RELATIVE)
        absolute.append(summarise(values, formula_id=formulas[0], resolution=resolution))
        relative.append(_ratio(values, scale, resolution, formulas[1]))
    return absolute, relative


def fp_residuals(
    fn: ScoreFn | LogDensityFn,
    problem: AbstractFokkerPlanckDynamics,
    times: Sequence[float],
    *,
    form: str,
    n_samples: int,
    key: PRNGKeyArray,
    num_probes: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    allow_float32: bool = False,
    proposal: DefensiveProposal | None = DEFAULT_PROPOSAL,
) -> tuple[list[Estimate], list[Estimate]]:
    r"""Absolute and relative FP residual at each time, from one set of samples.

    The absolute estimates are those of :func:`fp_score_residual` (``form="score"``) or
    :func:`fp_log_density_residual` (``form="log_density"``), with the same key. The
    relative ones divide by the mean squared size of the terms that cancel in R,
    :math:`\bar c = \frac1n\sum_i c_i` (score form :math:`c = 2|\partial_t s|^2`; log form
    :math:`c = \sum_k T_k^2` over the five terms :math:`T_k` of R, with
    :math:`T_0 = \partial_t u` centred over the samples, since an unnormalised u adds the
    x-constant c'(t) to it, which Var_x R ignores and the normaliser must too), a dimensionless
    ratio of means (normaliser ``fp_term_scale``) whose stderr is the delta-method one
    (:func:`verify._estimate.ratio_estimate`): :math:`E|R|^2 / E c` is 0 for the exact
    solution and of order :math:`\varepsilon^2` for an :math:`O(\varepsilon)` relative
    error of the model, whatever the units of x and t.

    In the score form the samples are draws of ``proposal`` (the defensive mixture of
    :mod:`verify._score_gap`) and both the squared residual and c are weighted by
    :math:`w = p_t/q_t` (formulas ``fp-score-residual-ms-defensive-is[-relative]``);
    ``None`` samples :math:`p_t`. The log form always samples :math:`p_t` (its centring by
    the sample mean assumes unweighted draws).
    """
    if form not in ("score", "log_density"):
        raise ValueError(f"form must be 'score' or 'log_density', got {form!r}")
    return _estimate(
        fn,
        problem,
        times,
        n_samples=n_samples,
        key=key,
        num_probes=num_probes,
        block_size=block_size,
        allow_float32=allow_float32,
        log_form=form == "log_density",
        proposal=proposal,
    )


def fp_score_residual(
    score_fn: ScoreFn,
    problem: AbstractFokkerPlanckDynamics,
    times: Sequence[float],
    *,
    n_samples: int,
    key: PRNGKeyArray,
    num_probes: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    allow_float32: bool = False,
    proposal: DefensiveProposal | None = DEFAULT_PROPOSAL,
) -> list[Estimate]:
    r"""Mean-square score-form FP residual :math:`E_{p_t}|R|^2` at each time.

    Parameters
    ----------
    score_fn : callable
        Learned score :math:`s(t, x)`, ``((), (d,)) -> (d,)``, differentiable in t and x.
    problem : AbstractExactMarginals and AbstractFokkerPlanckDynamics
        Exact samples of p_t, drift f and diffusion g.
    times : sequence of float
        Certification times (t is traced: one compilation for all).
    n_samples : int
        n exact samples per time.
    key : PRNG key
        Keyword-only, no default; split per time into sample and probe keys.
    num_probes : int or None, default None
        None: exact divergence; K: two independent sets of K Rademacher probes per sample
        and the unbiased product estimator (module docstring).
    block_size : int, default 1024
        Samples per vmapped block (memory O(block_size)).
    allow_float32 : bool, default False
        Estimate without x64.
    proposal : DefensiveProposal or None, default DEFAULT_PROPOSAL
        Sample the defensive mixture and weight (:func:`fp_residuals`); ``None``: p_t.
    """
    return _estimate(
        score_fn,
        problem,
        times,
        n_samples=n_samples,
        key=key,
        num_probes=num_probes,
        block_size=block_size,
        allow_float32=allow_float32,
        log_form=False,
        proposal=proposal,
    )[0]


def fp_log_density_residual(
    log_density_fn: LogDensityFn,
    problem: AbstractFokkerPlanckDynamics,
    times: Sequence[float],
    *,
    n_samples: int,
    key: PRNGKeyArray,
    num_probes: int | None = None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    allow_float32: bool = False,
) -> list[Estimate]:
    r"""Variance over p_t of the log-density-form FP residual, :math:`\operatorname{Var}_x R`.

    ``log_density_fn`` is :math:`u(t, x)`, ``((), (d,)) -> ()``, possibly unnormalised (the
    x-independent part of R is unidentifiable and removed; module docstring). Other
    parameters as :func:`fp_score_residual`.
    """
    return _estimate(
        log_density_fn,
        problem,
        times,
        n_samples=n_samples,
        key=key,
        num_probes=num_probes,
        block_size=block_size,
        allow_float32=allow_float32,
        log_form=True,
    )[0]
