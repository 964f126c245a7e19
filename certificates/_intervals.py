"""Confidence intervals rebuilt from stored statistics, and the Bonferroni split.

A certificate stores, for every estimate, its standard error and the *method* of its
interval, so that a verdict can be re-derived at another confidence level without the
samples (and without JAX). See ``SCHEMA.md`` § "Intervals".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from ._names import Correction, IntervalMethod

_STANDARD_NORMAL = NormalDist()


@dataclass(frozen=True)
class Interval:
    """A confidence interval ``[lower, upper]`` valid at level ``confidence``."""

    lower: float
    upper: float
    confidence: float


def per_interval_confidence(confidence: float, n_intervals: int, correction: Correction) -> float:
    r"""Level at which each of ``n_intervals`` intervals is built.

    With Bonferroni control the family of :math:`k` random intervals holds jointly with
    probability at least :math:`1-\delta` when each holds at :math:`1-\delta/k`
    (union bound), where :math:`1-\delta` is the overall ``confidence``.

    Parameters
    ----------
    confidence : float
        Overall level :math:`1-\delta \in (0, 1)`.
    n_intervals : int
        Number :math:`k \ge 0` of random (non-exact) intervals in the certificate.
    correction : Correction
        ``BONFERRONI`` splits :math:`\delta` evenly; ``NONE`` uses :math:`1-\delta` for each.

    References
    ----------
    C. E. Bonferroni, "Teoria statistica delle classi e calcolo delle probabilità", 1936.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence!r}")
    if Correction(correction) is Correction.NONE or n_intervals <= 1:
        return confidence
    return 1.0 - (1.0 - confidence) / n_intervals


def build_interval(
    estimate: float,
    stderr: float,
    method: IntervalMethod,
    confidence: float,
    *,
    stored_lower: float,
    stored_upper: float,
    stored_confidence: float,
) -> Interval:
    r"""Confidence interval of one estimate at level ``confidence``.

    * ``EXACT``: :math:`[\hat q, \hat q]`, valid at every level (reported as 1).
    * ``NORMAL``: :math:`\hat q \pm z_{1-\alpha/2}\,\widehat{\mathrm{se}}` with
      :math:`\alpha = 1-\text{confidence}` (central limit theorem).
    * ``CHEBYSHEV``: :math:`\hat q \pm \widehat{\mathrm{se}}/\sqrt{\alpha}`, from
      :math:`P(|\hat q - q| \ge k\,\mathrm{se}) \le 1/k^2`; needs only a finite variance.
    * ``FIXED``: the stored bounds, valid at ``stored_confidence`` only; when a higher
      level is asked for, the returned interval keeps the stored (lower) level and the
      gate reports the verdict as INCONCLUSIVE.

    The standard error is used as given; a NaN or infinite standard error gives an
    interval of infinite width (INCONCLUSIVE unless the estimate is NaN).
    """
    # A plain string ("normal") must not fall through to the CHEBYSHEV branch below.
    method = IntervalMethod(method)
    if method is IntervalMethod.EXACT:
        return Interval(estimate, estimate, 1.0)
    if method is IntervalMethod.FIXED:
        return Interval(stored_lower, stored_upper, stored_confidence)
    alpha = 1.0 - confidence
    if method is IntervalMethod.NORMAL:
        multiplier = _STANDARD_NORMAL.inv_cdf(1.0 - alpha / 2.0)
    else:  # CHEBYSHEV
        multiplier = 1.0 / math.sqrt(alpha)
    half_width = multiplier * stderr if math.isfinite(stderr) else math.inf
    return Interval(estimate - half_width, estimate + half_width, confidence)
