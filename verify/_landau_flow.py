r"""Checks of a learned characteristic flow map of a Landau problem (PINN-PM style models).

A model with the roles ``flow(t, x0) -> (d,)`` (the flow map :math:`X_\theta(t, x_0)` from
``t_min``, :math:`X_\theta(t_{\min}, x_0) = x_0`) and optionally ``score(t, x) -> (d,)``
(:math:`s_\theta(t, x) \approx \nabla\log f_t(x)`) is checked on N particles

.. math::

    V^0_i \overset{iid}{\sim} f_0,\qquad X_i(t) = X_\theta(t, V^0_i),\qquad
    \dot X_i(t) = \partial_t X_\theta(t, V^0_i)\ (\text{``jax.jvp`` in } t),
    \qquad w_i = 1/N,

one set of initial particles for all times (so estimates at different times are
correlated; the certificate's Bonferroni split does not need independence).

**Flow-map physics residual** (``landau-flow-residual-ms``, MATH.md §1.3 d):

.. math::

    R_i = \dot X_i - U_N[s_\theta](X_i),\qquad
    U_N[s](x) = -\frac1N\sum_j A(x - X_j)\,\big(s(t, x) - s(t, X_j)\big),\qquad
    \hat F = \frac1N\sum_i |R_i|^2,

with the problem's kernel A (:func:`solvers.landau_velocity`; the j = i term is 0, so
:math:`U_N` at a particle is :math:`(1 - 1/N)` times an average over the others, an
O(1/N) bias). The terms :math:`|R_i|^2` are *not* independent: every particle is a source of
every other particle's :math:`U_N`. Their covariances are O(1/N), but there are N² of them,
so they change :math:`\operatorname{Var}\hat F` at the same order as the diagonal terms or
more: on BKW-2D at t = 1, N = 2000, the iid stderr :math:`\hat\sigma_h/\sqrt N` was 13–22
times smaller than the spread of :math:`\hat F` over 100 seeds and its 95% interval covered
in 11–12 of 100 (exact model, score × 1.02, score × 1.1). The stderr therefore uses the von
Mises influence of each particle:
as an evaluation point it contributes :math:`h_i = |R_i|^2`, as a source it changes
:math:`\hat F` by :math:`g_k = \partial\hat F/\partial w_k
= \frac2N\sum_i R_i\cdot A(X_i - X_k)(s_i - s_k)` per unit weight (reverse-mode derivative
with respect to the source weights, computed in row blocks, so memory stays O(block · N)
for γ ≠ 0 and O(N) for γ = 0), and

.. math::

    \hat F \approx F + \frac1N\sum_k \psi_k,\quad \psi_k = h_k + g_k - \bar g,\qquad
    \widehat{\mathrm{se}} = \hat\sigma_\psi/\sqrt N,

the CLT interval of :func:`verify._estimate.summarise` applied to :math:`\psi` (whose mean is
:math:`\hat F`). This is first-order (delta-method) accurate when the model defect dominates
(coverage 94/100 for score × 1.1, N = 2000). When :math:`R` is dominated by the finite-N
part :math:`U - U_N` (a good model) the statistic is in the degenerate, second-order regime
of a V-statistic (for γ = 0, :math:`U_N - U` is linear in a few global moment fluctuations,
so :math:`\hat F` is close to a weighted χ² with few degrees of freedom and its spread is
of the size of its mean); the influence stderr then has the right order, N^{-3/2}, but only
approximately the right size (coverage 191/200 for the exact model, N = 4096;
tests/validation/test_landau_flow_validation.py). The target of the interval is
:math:`E\hat F` at this N, which includes the floor below.

Relative form: :math:`\hat F / (\overline{|\dot X|^2} + \epsilon)` (normaliser
``mean_squared_velocity``), the sample mean of the model's squared velocities treated as a
fixed scale (its own fluctuation, O(N^{-1/2}) relative, is not propagated).

**Residual floor** (problems with an exact solution, :class:`solvers.
AbstractExactLandauProblem`): the same residual for the exact solution on the same initial
particles, :math:`\frac1N\sum_i |U(X^*_i) - U_N[\nabla\log f_t](X^*_i)|^2` with
:math:`X^*_i = X(t; t_{\min}, V^0_i)` the exact characteristics (exact samples of f_t), the
exact score and the exact velocity U. It is the finite-N part U − U_N, O(1/N) (mean over
seeds ∝ 1/N within 5%, validation study), which no model can remove at this N; it is itself
random, with a spread over seeds about its own size. Not reported without a score role.

**Momentum drift** (``momentum-drift-norm``): the displacements :math:`D_i = X_i - V^0_i`
are iid with mean :math:`\mu` (the momentum change, which Landau dynamics conserves: μ = 0)
and covariance Σ. The estimate is :math:`|\hat m|`, :math:`\hat m = \frac1N\sum_i D_i`, with
:math:`\widehat{\mathrm{se}} = (\operatorname{tr}\hat\Sigma/N)^{1/2}`, Σ̂ the sample
covariance (ddof = 1), and interval method ``chebyshev``: since
:math:`E|\hat m - \mu|^2 = \operatorname{tr}\Sigma/N`, Markov's inequality gives
:math:`P(|\hat m - \mu| \ge \mathrm{se}/\sqrt\alpha) \le \alpha`, and
:math:`\big||\hat m| - |\mu|\big| \le |\hat m - \mu|` (triangle inequality), so
:math:`|\hat m| \pm \mathrm{se}/\sqrt\alpha` contains :math:`|\mu|` with probability
≥ 1 − α, whatever the law of D and the dimension (with the true Σ; Σ̂ is plugged in). The
estimate is biased upward (:math:`E|\hat m|^2 = |\mu|^2 + \operatorname{tr}\Sigma/N`), which
the interval covers. The heavy-tail diagnostic of :mod:`verify._estimate` is applied to
:math:`|D_i - \hat m|^2`.

**Energy drift** (``energy-drift-relative``): :math:`h_i = (|X_i|^2 - |V^0_i|^2)/E_0`, mean
:math:`(E|X_t|^2 - E|V^0|^2)/E_0`, with :math:`E_0 = 2\,\mathrm{energy}() = \int|v|^2 f_0`,
the problem's exact initial second moment (a fixed normaliser, ``initial_second_moment``).

**Entropy rate** (``entropy-rate-flow``): for the push-forward :math:`f^\theta_t =
X_\theta(t,\cdot)_\# f_0`, :math:`H(t) = \int f^\theta_t\log f^\theta_t = E\log
f^\theta_t(X_\theta(t, V^0))`, so

.. math::

    \frac{dH}{dt} = E\big[\partial_t\log f^\theta_t(X_t)\big]
                    + E\big[\nabla\log f^\theta_t(X_t)\cdot\partial_t X_t\big]
                  = E\big[\nabla\log f^\theta_t(X_t)\cdot\partial_t X_t\big],

the first term being :math:`\int\partial_t f^\theta_t = 0`. With :math:`s_\theta` in place of
:math:`\nabla\log f^\theta_t` the per-particle values are :math:`h_i = s_\theta(t, X_i)\cdot
\dot X_i` (iid); the substitution errs by at most :math:`\|s_\theta - \nabla\log
f^\theta_t\|_{L^2(f^\theta_t)}\,\|\partial_t X\|_{L^2}` (Cauchy–Schwarz). Compare with
``problem.entropy_rate(t)`` when known (BKW: :math:`-\lambda(I(t) - d)`).

**Flow error** (``flow-error-ms``, exact problems only):
:math:`\frac1N\sum_i |X_i - X^*_i|^2 / E_0` (normaliser ``initial_second_moment``: the exact
flow conserves energy, so :math:`E|X^*_t|^2 = E_0` exactly).

Except for the residual, every per-particle value is a function of :math:`V^0_i` alone, so
iid; all go through :func:`verify._estimate.summarise` (NaN policy, heavy-tail guard; near
t = 0 the BKW score has heavy-tailed integrands and the guard marks them INCONCLUSIVE).
Without a score role the residual, its floor and the entropy rate are ``None`` (they are
undefined, not failed); the orchestrator drops None entries.

References
----------
.. [1] Y. Huang, L. Wang, "A score-based particle method for homogeneous Landau equation",
   J. Comput. Phys. 536 (2025) 114053.
.. [2] R. von Mises, "On the asymptotic distribution of differentiable statistical
   functions", Ann. Math. Statist. 18 (1947) 309–348 (influence-function variance).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from certificates import Evidence, IntervalMethod
from solvers import (
    AbstractExactLandauProblem,
    AbstractLandauProblem,
    LandauKernel,
    landau_velocity,
)

from ._estimate import MIN_SAMPLES_FOR_TAIL, TAIL_SHARE_THRESHOLD, TAIL_TOP_K, Estimate, summarise
from ._score_gap import DEFAULT_BLOCK_SIZE, blocked_map, require_float64, roundoff_resolution

FlowFn = Callable[[Float[Array, ""], Float[Array, " d"]], Float[Array, " d"]]
ScoreFn = Callable[[Float[Array, ""], Float[Array, " d"]], Float[Array, " d"]]

FORMULA_FLOW_RESIDUAL = "landau-flow-residual-ms"
FORMULA_MOMENTUM = "momentum-drift-norm"
FORMULA_ENERGY = "energy-drift-relative"
FORMULA_ENTROPY_RATE = "entropy-rate-flow"
FORMULA_FLOW_ERROR = "flow-error-ms"
NORMALISER_VELOCITY = "mean_squared_velocity"
NORMALISER_SECOND_MOMENT = "initial_second_moment"


@dataclass(frozen=True)
class FlowChecks:
    """Per-time checks of a flow-map model (module docstring for every formula).

    Attributes
    ----------
    flow_residual : list of Estimate or None
        :math:`\\frac1N\\sum_i|\\dot X_i - U_N[s_\\theta](X_i)|^2` (influence-function stderr);
        None without a score role.
    flow_residual_relative : list of Estimate or None
        The same divided by :math:`\\overline{|\\dot X|^2} + \\epsilon`.
    residual_floor : list of float or None
        The residual of the exact solution on the same initial particles (finite-N floor);
        None without an exact solution or without a score role.
    momentum_drift : list of Estimate
        :math:`|\\hat m|`, Chebyshev interval.
    energy_drift : list of Estimate
        Relative drift of the second moment.
    entropy_rate : list of Estimate or None
        :math:`E[s_\\theta\\cdot\\partial_t X]`; None without a score role.
    entropy_rate_exact : list of float or None
        The problem's dH/dt when it has an exact solution.
    flow_error : list of Estimate or None
        Relative mean-square distance to the exact characteristics; None without them.
    parameters : dict
        N, kernel, eps, block size, normalisers, E₀, times (JSON-serialisable provenance).
    """

    flow_residual: list[Estimate] | None
    flow_residual_relative: list[Estimate] | None
    residual_floor: list[float] | None
    momentum_drift: list[Estimate]
    energy_drift: list[Estimate]
    entropy_rate: list[Estimate] | None
    entropy_rate_exact: list[float] | None
    flow_error: list[Estimate] | None
    parameters: dict[str, Any]


def _check_single(value: Array, d: int, role: str) -> None:
    if value.shape != (d,):
        raise ValueError(
            f"{role} must map one sample (t of shape (), x of shape ({d},)) to shape ({d},), "
            f"got {value.shape}; it is batched with jax.vmap"
        )


def _residual_and_influence(
    kernel: LandauKernel, x: Array, xdot: Array, s: Array, block: int
) -> tuple[Array, Array, Array]:
    """(h_i = |Ẋ_i − U_N(X_i)|², g_k = ∂F̂/∂w_k, U_N(X_i)) with F̂ = mean h, w_k = 1/N.

    Rows (evaluation points) go in blocks through ``lax.scan``; each block's share of F̂ is
    differentiated with respect to all N source weights and accumulated, so reverse mode
    stores O(block · N) per block, never N × N.
    """
    n, d = x.shape
    w = jnp.full((n,), 1.0 / n, dtype=x.dtype)
    bs = max(1, min(int(block), n))
    n_blocks = -(-n // bs)
    pad = n_blocks * bs - n

    def to_blocks(a):
        a = jnp.concatenate([a, jnp.repeat(a[:1], pad, axis=0)], axis=0) if pad else a
        return a.reshape(n_blocks, bs, *a.shape[1:])

    mask = (jnp.arange(n_blocks * bs) < n).reshape(n_blocks, bs).astype(x.dtype)

    def body(grad_w, rows):
        xb, xdb, sb, mb = rows

        def share(weights):
            u = landau_velocity(kernel, x, weights, s, x=xb, sx=sb)
            r = xdb - u
            h = jnp.sum(r * r, axis=-1)
            return jnp.sum(h * mb) / n, (h, u)

        _, vjp, (h, u) = jax.vjp(share, w, has_aux=True)
        (g,) = vjp(jnp.ones((), x.dtype))
        return grad_w + g, (h, u)

    grad_w, (h, u) = jax.lax.scan(
        body, jnp.zeros_like(w), (to_blocks(x), to_blocks(xdot), to_blocks(s), mask)
    )
    return h.reshape(-1)[:n], grad_w, u.reshape(-1, d)[:n]


@eqx.filter_jit
def _model_values(
    flow_fn: FlowFn,
    score_fn: ScoreFn | None,
    kernel: LandauKernel,
    t: Array,
    v0: Array,
    block: int,
) -> dict[str, Array]:
    """Per-particle values of the model at time t (traced: one compilation for all times)."""
    d = v0.shape[1]

    def one(x0):
        x, xdot = jax.jvp(lambda tt: flow_fn(tt, x0), (t,), (jnp.ones_like(t),))
        _check_single(x, d, "flow")
        if score_fn is None:
            return x, xdot, None
        s = score_fn(t, x)
        _check_single(s, d, "score")
        return x, xdot, s

    x, xdot, s = blocked_map(one, v0, block)
    out = {"x": x, "xdot": xdot}
    if score_fn is not None:
        h, g, u = _residual_and_influence(kernel, x, xdot, s, block)
        out.update(
            residual_sq=h,
            residual_influence=g,
            residual_scale=jnp.sum(xdot * xdot, -1) + jnp.sum(u * u, -1),
            entropy=jnp.sum(s * xdot, -1),
            entropy_scale=jnp.sum(s * s, -1) + jnp.sum(xdot * xdot, -1),
        )
    return out


@eqx.filter_jit
def _exact_values(
    problem: AbstractExactLandauProblem, kernel: LandauKernel, t: Array, v0: Array, block: int
) -> tuple[Array, Array]:
    """Exact characteristics X*_i of the initial particles and the floor |U − U_N|² there."""
    t0 = jnp.asarray(problem.t_min, dtype=v0.dtype)

    def one(x0):
        x = problem.characteristic(t0, x0, t)
        return x, problem.score(t, x), problem.velocity(t, x)

    x, s, u = blocked_map(one, v0, block)
    n = v0.shape[0]
    u_n = landau_velocity(kernel, x, jnp.full((n,), 1.0 / n, dtype=x.dtype), s)
    return x, jnp.sum((u - u_n) ** 2, axis=-1)


def _vector_drift(displacement: np.ndarray, *, formula_id: str) -> Estimate:
    """|mean D| with stderr √(tr Σ̂/N), Chebyshev interval (module docstring)."""
    n = displacement.shape[0]
    common = {
        "n_samples": n,
        "formula_id": formula_id,
        "evidence": Evidence.STATISTICAL,
        "interval_method": IntervalMethod.CHEBYSHEV,
    }
    finite = np.isfinite(displacement).all(axis=1)
    if not finite.all():
        bad, first = int((~finite).sum()), int(np.argmax(~finite))
        note = f"{bad} of {n} displacements are not finite (NaN or inf); first at index {first}"
        return Estimate(math.nan, math.nan, reason=note, **common)
    mean = displacement.mean(axis=0)
    squared = np.sum((displacement - mean) ** 2, axis=1)
    trace = float(squared.sum() / (n - 1))
    stderr = math.sqrt(trace / n)
    # the tail guard of summarise on the squared deviations |D_i − m̂|² (Hill index of |D_i − m̂|)
    share = hill = math.nan
    if n >= MIN_SAMPLES_FOR_TAIL and squared.max() > 0:
        ordered = np.sort(squared)[::-1]
        share = float(ordered[:TAIL_TOP_K].sum() / ordered.sum())
        k = math.ceil(math.sqrt(n))
        top = np.sqrt(ordered[: k + 1])
        log_excess = float(np.mean(np.log(top[:k] / top[k]))) if top[k] > 0 else 0.0
        hill = 1.0 / log_excess if log_excess > 0 else math.inf
    fired = bool(share > TAIL_SHARE_THRESHOLD)
    reason = ""
    if fired:
        stderr = math.inf
        reason = (
            f"heavy tail: top-{TAIL_TOP_K} share of squared deviations {share:.3f} > "
            f"{TAIL_SHARE_THRESHOLD}; the covariance may be infinite, so no interval is given"
        )
    return Estimate(
        float(np.linalg.norm(mean)),
        stderr,
        reason=reason,
        sample_variance=trace,
        tail_share=share,
        tail_index=hill,
        tail_fired=fired,
        **common,
    )


def _check_times(problem: AbstractLandauProblem, times: Sequence[float]) -> np.ndarray:
    times = np.atleast_1d(np.asarray(times, dtype=np.float64))
    if times.ndim != 1 or times.size == 0:
        raise ValueError(f"times must be a non-empty 1-d sequence, got shape {times.shape}")
    outside = times[(times < problem.t_min) | (times > problem.t_max) | ~np.isfinite(times)]
    if outside.size:
        raise ValueError(
            f"times must lie in [{problem.t_min}, {problem.t_max}] (the flow starts at t_min), "
            f"got {outside.tolist()}"
        )
    return times


def flow_checks(
    problem: AbstractLandauProblem,
    *,
    flow_fn: FlowFn,
    score_fn: ScoreFn | None = None,
    times: Sequence[float],
    n_particles: int,
    key: PRNGKeyArray,
    block_size: int = DEFAULT_BLOCK_SIZE,
    eps: float = 1e-12,
    allow_float32: bool = False,
) -> FlowChecks:
    r"""Residual, conservation, entropy-rate and flow-error checks of a flow-map model.

    Parameters
    ----------
    problem : AbstractLandauProblem
        Kernel A, initial datum f₀ (samples) and energy; an
        :class:`~solvers.AbstractExactLandauProblem` adds the floor, the exact entropy rate
        and the flow error.
    flow_fn : callable
        :math:`X_\theta(t, x_0)`, ``((), (d,)) -> (d,)`` (function, equinox module or bound
        method; jitted with :func:`equinox.filter_jit`, so module arrays are traced).
    score_fn : callable, optional
        :math:`s_\theta(t, x)`, ``((), (d,)) -> (d,)``; without it the residual, its floor
        and the entropy rate are None.
    times : sequence of float
        Certification times in [t_min, t_max] (traced: one compilation for all).
    n_particles : int
        N ≥ 2 initial particles (weights 1/N), shared by all times.
    key : PRNG key
        Keyword-only, no default; only the initial particles are random.
    block_size : int, default 1024
        Particles per vmapped block of model evaluations, and rows per block of the
        residual's influence computation (memory O(block_size · N) for γ ≠ 0).
    eps : float, default 1e-12
        ε of the relative residual's normaliser :math:`\overline{|\dot X|^2} + \epsilon`.
    allow_float32 : bool, default False
        Estimate without x64 (refused otherwise; the kernel then accepts float32 too).

    Returns
    -------
    FlowChecks
        One entry per time in each list (module docstring for formulas and intervals).
    """
    require_float64(allow_float32)
    times = _check_times(problem, times)
    n = int(n_particles)
    if n < 2:
        raise ValueError(f"n_particles must be at least 2, got {n_particles}")
    base = problem.kernel
    kernel = LandauKernel(
        gamma=base.gamma,
        C_gamma=base.C_gamma,
        block_size=base.block_size,
        allow_float32=allow_float32,
    )
    exact = isinstance(problem, AbstractExactLandauProblem)
    has_score = score_fn is not None
    (sample_key,) = jax.random.split(key, 1)
    v0 = problem.sample_initial(n, key=sample_key)
    v0_host = np.asarray(v0, dtype=np.float64)
    second_moment = 2.0 * float(problem.energy())
    initial_sq = np.sum(v0_host**2, axis=1)

    residual, relative, floor, momentum, energy = [], [], [], [], []
    entropy, entropy_exact, flow_error = [], [], []
    for t in times:
        t_arr = jnp.asarray(t, dtype=v0.dtype)
        vals = {
            k: np.asarray(a)
            for k, a in _model_values(flow_fn, score_fn, kernel, t_arr, v0, int(block_size)).items()
        }
        x, xdot = vals["x"], vals["xdot"]
        momentum.append(_vector_drift(x - v0_host, formula_id=FORMULA_MOMENTUM))
        final_sq = np.sum(x * x, axis=1)
        energy.append(
            summarise(
                (final_sq - initial_sq) / second_moment,
                formula_id=FORMULA_ENERGY,
                normaliser=NORMALISER_SECOND_MOMENT,
                resolution=roundoff_resolution((final_sq + initial_sq) / second_moment),
            )
        )
        if has_score:
            h, g = vals["residual_sq"], vals["residual_influence"]
            est = summarise(
                h + g - np.mean(g),
                formula_id=FORMULA_FLOW_RESIDUAL,
                resolution=roundoff_resolution(vals["residual_scale"]),
            )
            residual.append(est)
            scale = float(np.mean(np.sum(xdot * xdot, axis=1))) + eps
            relative.append(est.scaled(scale, normaliser=NORMALISER_VELOCITY, eps=eps))
            entropy.append(
                summarise(
                    vals["entropy"],
                    formula_id=FORMULA_ENTROPY_RATE,
                    resolution=roundoff_resolution(vals["entropy_scale"]),
                )
            )
        if exact:
            x_exact, floor_sq = (
                np.asarray(a) for a in _exact_values(problem, kernel, t_arr, v0, int(block_size))
            )
            floor.append(float(np.mean(floor_sq)))
            entropy_exact.append(float(problem.entropy_rate(t_arr)))
            flow_error.append(
                summarise(
                    np.sum((x - x_exact) ** 2, axis=1),
                    formula_id=FORMULA_FLOW_ERROR,
                    resolution=roundoff_resolution(
                        np.sum(x * x, axis=1) + np.sum(x_exact**2, axis=1)
                    ),
                ).scaled(second_moment, normaliser=NORMALISER_SECOND_MOMENT)
            )

    parameters = {
        "n_particles": n,
        "weights": "1/N",
        "initial_particles": "N iid samples of f0 at t_min, shared by all times",
        "time_derivative": "jax.jvp in t",
        "kernel": {
            "gamma": float(kernel.gamma),
            "C_gamma": float(kernel.C_gamma),
            "block_size": int(kernel.block_size),
        },
        "block_size": int(block_size),
        "eps": float(eps),
        "t_min": float(problem.t_min),
        "times": [float(t) for t in times],
        "initial_second_moment": second_moment,
        "initial_second_moment_source": "exact: 2 * problem.energy()",
        "normalisers": {
            "flow_residual_relative": f"{NORMALISER_VELOCITY} + eps",
            "energy_drift": NORMALISER_SECOND_MOMENT,
            "flow_error": NORMALISER_SECOND_MOMENT,
        },
        "residual_stderr": "influence function (evaluation + source terms)",
        "score_role": has_score,
        "exact_solution": exact,
        "allow_float32": bool(allow_float32),
    }
    return FlowChecks(
        flow_residual=residual if has_score else None,
        flow_residual_relative=relative if has_score else None,
        residual_floor=floor if (exact and has_score) else None,
        momentum_drift=momentum,
        energy_drift=energy,
        entropy_rate=entropy if has_score else None,
        entropy_rate_exact=entropy_exact if exact else None,
        flow_error=flow_error if exact else None,
        parameters=parameters,
    )
