"""Three-way verdicts: a confidence interval against a one-sided bound.

Semantics (``SCHEMA.md`` § "Verdicts"): for a bound ``q <= τ`` the verdict is PASS
when the upper confidence bound is ``<= τ``, FAIL when the lower bound is ``> τ``, and
INCONCLUSIVE otherwise; ``q >= τ`` mirrors it. A NaN or missing estimate is FAIL, with
the reason recorded. The overall verdict is FAIL if any row fails, else INCONCLUSIVE if
any is inconclusive, else PASS; a certificate without a single bounded check is
INCONCLUSIVE (nothing was certified).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from ._names import Comparison, Verdict


def decide(
    estimate: float, lower: float, upper: float, threshold: float, comparison: Comparison
) -> tuple[Verdict, str]:
    """Verdict and a short reason for one interval against one bound."""
    # "<=" == Comparison.AT_MOST, but the branches below test identity: normalise first.
    comparison = Comparison(comparison)
    if math.isnan(estimate):
        return Verdict.FAIL, "estimate is NaN"
    if math.isnan(lower) or math.isnan(upper):
        return Verdict.FAIL, "confidence interval is NaN"
    if math.isnan(threshold):
        return Verdict.FAIL, "threshold is NaN"
    if comparison is Comparison.AT_MOST:
        if upper <= threshold:
            return Verdict.PASS, ""
        if lower > threshold:
            return Verdict.FAIL, "lower confidence bound exceeds the threshold"
        return Verdict.INCONCLUSIVE, "confidence interval contains the threshold"
    if lower >= threshold:
        return Verdict.PASS, ""
    if upper < threshold:
        return Verdict.FAIL, "upper confidence bound is below the threshold"
    return Verdict.INCONCLUSIVE, "confidence interval contains the threshold"


def combine(verdicts: Iterable[Verdict]) -> Verdict:
    """Overall verdict: FAIL dominates INCONCLUSIVE dominates PASS; empty → INCONCLUSIVE."""
    seen = set(verdicts)
    if Verdict.FAIL in seen:
        return Verdict.FAIL
    if Verdict.INCONCLUSIVE in seen or not seen:
        return Verdict.INCONCLUSIVE
    return Verdict.PASS
