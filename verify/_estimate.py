r"""A Monte Carlo estimate with its uncertainty, diagnostics and provenance.

Every a posteriori estimator in :mod:`verify` reduces per-sample integrand values
:math:`h_1, …, h_n` (iid) to an :class:`Estimate` with :func:`summarise`:

.. math::

    \hat q = \frac1n \sum_i h_i,\qquad
    \widehat{\mathrm{se}} = \frac{\hat\sigma_h}{\sqrt n},\quad
    \hat\sigma_h^2 = \frac1{n-1}\sum_i (h_i - \hat q)^2,

the central-limit ("normal") interval :math:`\hat q \pm z\,\widehat{\mathrm{se}}` being rebuilt
by :mod:`certificates` from ``stderr``.

Heavy tails
-----------
The CLT interval needs a finite variance of :math:`h`, and an honest :math:`\hat\sigma_h`
needs more (the variance of :math:`\hat\sigma_h^2` is finite only if :math:`E h^4 < \infty`).
The tail diagnostic is the **top-k share** of the sum of squared deviations,

.. math::

    \rho = \frac{\sum_{i \le k} D_{(i)}}{\sum_{i=1}^n D_i},\qquad
    D_i = (h_i - \hat q)^2,\ k = 10,

with :math:`D_{(1)} \ge D_{(2)} \ge …` the order statistics. If :math:`E D < \infty`, ρ → 0
(for an exponential-type tail ρ ≈ k (log n)²/(2n)); if :math:`E D = \infty` the few largest
terms keep a share of order one (order 1/log n per term at the logarithmic divergence of the
BKW Hyvärinen integrand at t = 0, MATH.md §1.3 b). The diagnostic fires when
:math:`\rho >` ``TAIL_SHARE_THRESHOLD`` = 0.25; then ``stderr`` is set to +inf with a reason,
so the interval is unbounded and the gate returns INCONCLUSIVE, never PASS.

Calibration (n = 4096, Hyvärinen integrand of the exact score, exact divergence): BKW-2D
t = 0: fires in 188 of 200 seeds (ρ ∈ [0.19, 0.996]); t = 0.05: 200 of 200 (pre-asymptotically
heavy); t = 0.5: 0 of 200 (ρ ∈ [0.14, 0.21]); vp-/ou-gmm-2d at t = 0.05 and 0.5 with
s = 1.2 ∇log p: ρ ≤ 0.21 in 50 seeds each (never fires). The threshold is a heuristic: at
n = 1024 light but skewed integrands can fire (conservative: INCONCLUSIVE), and a logarithmic
divergence, the mildest kind, can slip under it (6% of seeds at t = 0; there the sample
variance grows only like log n, the integrand is still in the normal domain of attraction,
and the studentised interval is asymptotically valid, if slowly). The Hill estimate of the
tail index of :math:`|h - \hat q|` from the top ⌈√n⌉ order statistics is reported as an
informational diagnostic only (median 2.0 at BKW t = 0, the true index; but 2.5 at
t = 0.5, n = 4096, where the tail is light: Hill is unreliable for light tails at such n).

Round-off: integrands that vanish exactly in exact arithmetic (the gap or residual of an
exact score) leave round-off noise whose "tail" means nothing; estimators pass a
``resolution`` (an absolute size below which deviations are round-off, from the magnitude of
the terms that cancel) and the diagnostic is skipped when every deviation is below it.

Non-finite values are never dropped: any NaN or ±inf per-sample value makes the estimate NaN
with a reason giving how many and the first index.

References
----------
.. [1] B. M. Hill, "A simple general approach to inference about the tail of a
   distribution", Ann. Statist. 3 (1975) 1163–1174.
.. [2] P. Hall, "The Bootstrap and Edgeworth Expansion", Springer (1992).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from certificates import CheckResult, Evidence, IntervalMethod

TAIL_SHARE_THRESHOLD = 0.25
"""Top-``TAIL_TOP_K`` share of the squared deviations above which stderr becomes +inf."""

TAIL_TOP_K = 10
"""Number of largest squared deviations in the tail share ρ."""

MIN_SAMPLES_FOR_TAIL = 64
"""Below this many samples the tail diagnostic is not computed (reported as NaN)."""


@dataclass(frozen=True)
class Estimate:
    """One scalar estimate, its standard error, and everything that defines it.

    Attributes
    ----------
    estimate : float
        :math:`\\hat q` (NaN if it could not be computed; ``reason`` says why).
    stderr : float
        Standard error (0 for exact values; +inf when the tail diagnostic fired).
    n_samples : int
        Number of iid samples n behind the estimate.
    formula_id : str
        Identifier of the formula (e.g. ``score-gap-direct``, ``hyvarinen-2005-thm1``).
    evidence : Evidence
        EXACT, STATISTICAL or EMPIRICAL.
    interval_method : IntervalMethod
        ``normal`` (CLT) by default.
    normaliser : str
        What the estimate is divided by (``"none"`` for absolute quantities).
    eps : float
        Regularisation added to the normaliser.
    reason : str
        Note on the estimate; non-empty when it is NaN or its stderr is infinite.
    sample_variance : float
        :math:`\\hat\\sigma_h^2` of the per-sample integrand (ddof = 1), before normalising.
    tail_share : float
        Top-10 share ρ of the squared deviations (module docstring); NaN if n is small.
    tail_index : float
        Hill estimate of the tail index of :math:`|h - \\hat q|` (informational).
    tail_fired : bool
        Whether ρ exceeded ``TAIL_SHARE_THRESHOLD``.
    """

    estimate: float
    stderr: float
    n_samples: int
    formula_id: str
    evidence: Evidence = Evidence.STATISTICAL
    interval_method: IntervalMethod = IntervalMethod.NORMAL
    normaliser: str = "none"
    eps: float = 0.0
    reason: str = ""
    sample_variance: float = math.nan
    tail_share: float = math.nan
    tail_index: float = math.nan
    tail_fired: bool = False

    def scaled(self, factor: float, *, normaliser: str, eps: float = 0.0) -> Estimate:
        """The estimate and stderr divided by ``factor`` (a normaliser, e.g. I(t) + eps)."""
        return _replace(
            self,
            estimate=self.estimate / factor,
            stderr=self.stderr / abs(factor),
            normaliser=normaliser,
            eps=eps,
        )

    def shifted(self, offset: float, *, formula_id: str, reason: str | None = None) -> Estimate:
        """The estimate plus an exactly known ``offset`` (stderr unchanged)."""
        return _replace(
            self,
            estimate=self.estimate + offset,
            formula_id=formula_id,
            reason=self.reason if reason is None else reason,
        )

    def to_check(self, name: str, units: str, long_name: str) -> CheckResult:
        """This estimate as a 0-d (aggregate) :class:`certificates.CheckResult`."""
        return _check(name, [self], units, long_name, series=False)


def _replace(original: Estimate, **changes) -> Estimate:
    return replace(original, **changes)


def estimates_to_check(
    name: str, estimates: Sequence[Estimate], *, units: str, long_name: str
) -> CheckResult:
    """Stack per-time estimates into one 1-d (``time``) :class:`certificates.CheckResult`.

    All estimates must share formula_id, evidence, interval_method, normaliser and eps
    (they are per-check attributes in the certificate); a ``ValueError`` says which differs.
    """
    return _check(name, list(estimates), units, long_name, series=True)


def _check(
    name: str, estimates: list[Estimate], units: str, long_name: str, *, series: bool
) -> CheckResult:
    if not estimates:
        raise ValueError(f"check {name!r}: no estimates")
    first = estimates[0]
    for attr in ("formula_id", "evidence", "interval_method", "normaliser", "eps"):
        values = {getattr(e, attr) for e in estimates}
        if len(values) > 1:
            raise ValueError(
                f"check {name!r}: estimates differ in {attr}: {sorted(map(str, values))}"
            )

    def column(attr: str):
        values = [getattr(e, attr) for e in estimates]
        return np.asarray(values) if series else np.asarray(values[0])

    return CheckResult(
        name=name,
        estimate=column("estimate"),
        stderr=column("stderr"),
        n_samples=column("n_samples"),
        units=units,
        long_name=long_name,
        formula_id=first.formula_id,
        evidence=first.evidence,
        interval_method=first.interval_method,
        normaliser=first.normaliser,
        eps=first.eps,
        reason=[e.reason for e in estimates] if series else [first.reason],
    )


def tail_diagnostics(values: np.ndarray) -> tuple[float, float]:
    """(top-``TAIL_TOP_K`` share ρ of squared deviations, Hill index of |h − mean|, top ⌈√n⌉).

    Both NaN below ``MIN_SAMPLES_FOR_TAIL`` samples; ρ = 0 when all values are equal.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.size
    if n < MIN_SAMPLES_FOR_TAIL:
        return math.nan, math.nan
    k = math.ceil(math.sqrt(n))
    deviation = np.abs(values - values.mean())
    squared = np.sort(deviation**2)[::-1]
    total = squared.sum()
    share = float(squared[:TAIL_TOP_K].sum() / total) if total > 0 else 0.0
    top = np.sort(deviation)[::-1][: k + 1]
    log_excess = float(np.mean(np.log(top[:k] / top[k]))) if top[k] > 0 else 0.0
    hill = 1.0 / log_excess if log_excess > 0 else math.inf
    return share, hill


def summarise(
    values,
    *,
    formula_id: str,
    evidence: Evidence = Evidence.STATISTICAL,
    normaliser: str = "none",
    eps: float = 0.0,
    reason: str = "",
    check_tail: bool = True,
    resolution: float = 0.0,
) -> Estimate:
    """Reduce iid per-sample integrand values :math:`h_i` to an :class:`Estimate`.

    Parameters
    ----------
    values : array_like, shape (n,)
        Per-sample values (host or device array).
    formula_id, evidence, normaliser, eps, reason
        Stored on the estimate (see :class:`Estimate`).
    check_tail : bool, default True
        Run the tail diagnostic (module docstring); when it fires, stderr = +inf.
    resolution : float, default 0
        Absolute round-off level of the values; the tail diagnostic is skipped when every
        |h_i − mean| ≤ resolution (module docstring, "Round-off").
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    n = values.size
    if n < 2:
        raise ValueError(f"need at least 2 samples for a standard error, got {n}")
    finite = np.isfinite(values)
    common = {
        "n_samples": n,
        "formula_id": formula_id,
        "evidence": Evidence(evidence),
        "normaliser": normaliser,
        "eps": eps,
    }
    if not finite.all():
        bad = int((~finite).sum())
        first = int(np.argmax(~finite))
        note = f"{bad} of {n} per-sample values are not finite (NaN or inf); first at index {first}"
        return Estimate(math.nan, math.nan, reason=_join(reason, note), **common)
    mean = float(values.mean())
    variance = float(values.var(ddof=1))
    stderr = math.sqrt(variance / n)
    if check_tail and np.max(np.abs(values - mean)) > resolution:
        share, hill = tail_diagnostics(values)
    else:
        share, hill = math.nan, math.nan
    fired = bool(share > TAIL_SHARE_THRESHOLD)
    if fired:
        stderr = math.inf
        reason = _join(
            reason,
            f"heavy tail: top-{TAIL_TOP_K} share of squared deviations "
            f"{share:.3f} > {TAIL_SHARE_THRESHOLD} (Hill tail index {hill:.2f}); the variance "
            "may be infinite, so no CLT interval is given",
        )
    return Estimate(
        mean,
        stderr,
        reason=reason,
        sample_variance=variance,
        tail_share=share,
        tail_index=hill,
        tail_fired=fired,
        **common,
    )


def _join(first: str, second: str) -> str:
    return f"{first}; {second}" if first else second


def ratio_estimate(
    numerator: np.ndarray,
    denominator: np.ndarray,
    *,
    formula_id: str,
    normaliser: str,
    eps: float = 0.0,
    resolution: float = 0.0,
) -> Estimate:
    r"""Ratio of two sample means :math:`\hat r = \bar a / (\bar b + \epsilon)` as an Estimate.

    The per-sample values :math:`z_i = \hat r + (a_i - \hat r\, b_i)/(\bar b + \epsilon)`
    (centred, so that their mean is :math:`\hat r` also for ε > 0) have standard deviation
    :math:`\operatorname{sd}(a - \hat r b)/(\bar b + \epsilon)`, the first-order (delta-method)
    standard error of a ratio of means; :func:`verify._estimate.summarise` then applies its
    NaN policy and tail diagnostic. ``resolution`` is the round-off level of ``a``.
    """
    a = np.asarray(numerator, dtype=np.float64)
    b = np.asarray(denominator, dtype=np.float64)
    finite = np.isfinite(a) & np.isfinite(b)
    scale = float(b[finite].mean()) + eps if finite.any() else np.nan
    if not scale > 0:
        scale = np.nan
    r_hat = float(a[finite].mean()) / scale if finite.any() else np.nan
    deviation = (a - r_hat * b) / scale
    # With eps > 0 the deviations do not average to 0: centre them so the mean is r̂.
    centre = float(deviation[finite].mean()) if finite.any() else 0.0
    z = np.where(finite, r_hat + deviation - centre, np.nan)
    return summarise(
        z,
        formula_id=formula_id,
        normaliser=normaliser,
        eps=eps,
        resolution=resolution / scale if np.isfinite(scale) else 0.0,
    )
