r"""Regression against a baseline certificate: did a check get worse, beyond the noise?

A baseline certificate is committed next to a model checkpoint; a later certificate of
the same problem is compared with it check by check (``docs/baselines.md``). For a check
bounded ``<=`` in the current certificate (lower is better) the *worsening* is
:math:`\Delta = \hat q_\text{cur} - \hat q_\text{base}`; for ``>=`` it is
:math:`\hat q_\text{base} - \hat q_\text{cur}`. With the allowed margin
:math:`m = \max(m_\text{abs}, m_\text{rel}\,|\hat q_\text{base}|)` and a confidence
interval :math:`[\Delta_-, \Delta_+]` of :math:`\Delta` built from both standard errors,
a row is FAIL (regressed) when :math:`\Delta_- > m`, PASS when :math:`\Delta_+ \le m` and
INCONCLUSIVE otherwise (the change is within the noise). Pure: no I/O, never imports JAX.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from . import _names as n
from ._bounds import _TIME_MATCH_ATOL, _TIME_MATCH_RTOL
from ._errors import BoundsError, CertificateError
from ._intervals import build_interval, per_interval_confidence
from ._names import Comparison, Correction, Evidence, IntervalMethod, Verdict
from ._report_common import format_interval, format_number, format_time, one_line
from ._reports import _fixed_width
from ._verdict import combine

if TYPE_CHECKING:
    from ._certificate import Certificate

# Same slack as the gate: a stored FIXED level c serves a request for c' <= c + round-off.
_LEVEL_SLACK = 1e-12
_EVIDENCE_ORDER = (Evidence.EXACT, Evidence.STATISTICAL, Evidence.EMPIRICAL)
_MARGIN_PATTERN = re.compile(r"^(?:(?P<check>[^=]+)=)?(?P<value>[^=]+)$")


class BaselineError(CertificateError):
    """A baseline that cannot be compared with the certificate (e.g. another problem)."""


@dataclass(frozen=True)
class RegressionMargins:
    r"""How much worse a check may get before it counts as a regression.

    The allowed worsening of a check with baseline estimate :math:`\hat q_\text{base}` is
    :math:`m = \max(m_\text{abs}, m_\text{rel}\,|\hat q_\text{base}|)`.

    Parameters
    ----------
    relative : float
        :math:`m_\text{rel} \ge 0`, a fraction (``0.1`` for 10 %); default 0.
    absolute : float
        :math:`m_\text{abs} \ge 0`, in the check's units; default 0.
    per_check : mapping of str to (relative, absolute)
        Margins for named checks; they replace the global pair for that check entirely
        (as a check named in a higher bounds layer replaces its lower-layer bound).
    """

    relative: float = 0.0
    absolute: float = 0.0
    per_check: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pairs = {"": (self.relative, self.absolute), **self.per_check}
        for name, (relative, absolute) in pairs.items():
            for kind, value in (("relative", relative), ("absolute", absolute)):
                if not (math.isfinite(value) and value >= 0.0):
                    where = f" for {name}" if name else ""
                    raise BoundsError(
                        f"{kind} regression margin{where} must be finite and >= 0, got {value!r}"
                    )
        object.__setattr__(
            self,
            "per_check",
            {name: (float(r), float(a)) for name, (r, a) in self.per_check.items()},
        )

    def pair(self, check: str) -> tuple[float, float]:
        """``(relative, absolute)`` that applies to ``check``."""
        return self.per_check.get(check, (self.relative, self.absolute))

    def margin(self, check: str, baseline: float) -> float:
        """Allowed worsening :math:`m` of ``check`` whose baseline estimate is ``baseline``."""
        relative, absolute = self.pair(check)
        return max(absolute, relative * abs(baseline)) if relative else absolute


def parse_regression_margins(texts: Sequence[str]) -> RegressionMargins:
    """Parse ``--max-regression`` values into :class:`RegressionMargins`.

    Forms (repeatable): ``10%`` (relative), ``1e-3`` (absolute, in the check's units),
    ``CHECK=10%`` and ``CHECK=1e-3`` (that check only). A relative and an absolute margin
    for the same scope combine as :math:`\\max(m_\\text{abs}, m_\\text{rel}|q_\\text{base}|)`.

    Raises
    ------
    BoundsError
        One line naming the offending text: not a number, negative or non-finite, not
        a check name, or the same kind of margin given twice for the same scope.
    """
    given: dict[tuple[str, str], float] = {}
    for text in texts:
        match = _MARGIN_PATTERN.match(text.strip())
        if match is None:
            raise BoundsError(
                f"regression margin {text!r}: expected 10%, 1e-3, CHECK=10% or CHECK=1e-3"
            )
        check = (match["check"] or "").strip()
        value = match["value"].strip()
        if match["check"] is not None and not check.isidentifier():
            raise BoundsError(f"regression margin {text!r}: {check!r} is not a check name")
        kind = "relative" if value.endswith("%") else "absolute"
        try:
            number = float(value[:-1] if kind == "relative" else value)
        except ValueError:
            raise BoundsError(
                f"regression margin {text!r}: {value!r} is not a number "
                "(expected 10%, 1e-3, CHECK=10% or CHECK=1e-3)"
            ) from None
        if not (math.isfinite(number) and number >= 0.0):
            raise BoundsError(f"regression margin {text!r}: must be finite and >= 0")
        if (check, kind) in given:
            scope = f"for {check}" if check else "globally"
            raise BoundsError(f"regression margin {text!r}: a {kind} margin is given twice {scope}")
        given[(check, kind)] = number / 100.0 if kind == "relative" else number
    names = sorted({check for check, _ in given if check})
    return RegressionMargins(
        relative=given.get(("", "relative"), 0.0),
        absolute=given.get(("", "absolute"), 0.0),
        per_check={
            name: (given.get((name, "relative"), 0.0), given.get((name, "absolute"), 0.0))
            for name in names
        },
    )


@dataclass(frozen=True)
class RegressionRow:
    """One compared (check, time): baseline and current estimates and the worsening Δ.

    ``comparison`` is the direction taken from the current certificate's bound (``<=``:
    lower is better). ``delta`` is the worsening (positive = worse), ``lower``/``upper``
    its confidence interval at level ``confidence``, built by ``interval_method``.
    """

    check: str
    group: str
    time: float | None
    comparison: Comparison
    baseline: float
    baseline_stderr: float
    current: float
    current_stderr: float
    delta: float
    lower: float
    upper: float
    margin: float
    verdict: Verdict
    evidence: Evidence
    interval_method: IntervalMethod
    confidence: float
    reason: str


@dataclass(frozen=True)
class NotCompared:
    """A check (at a time) that was not compared, and why."""

    check: str
    time: float | None
    reason: str


@dataclass(frozen=True)
class BaselineResult:
    """Rows, overall regression verdict and the level the Δ intervals were built at."""

    rows: tuple[RegressionRow, ...]
    not_compared: tuple[NotCompared, ...]
    verdict: Verdict
    margins: RegressionMargins
    confidence: float
    correction: Correction
    n_intervals: int
    interval_confidence: float


@dataclass(frozen=True)
class _Stat:
    estimate: float
    stderr: float
    lower: float
    upper: float
    confidence: float
    method: IntervalMethod
    evidence: Evidence
    note: str


def _series(data: xr.Dataset, check: str) -> list[tuple[float | None, _Stat]]:
    variable = data[check]

    def values(suffix: str) -> np.ndarray:
        return np.atleast_1d(np.asarray(data[check + suffix].values))

    estimate = np.atleast_1d(np.asarray(variable.values, dtype=np.float64))
    stderr = values(n.SUFFIX_STDERR).astype(np.float64)
    lower = values(n.SUFFIX_LOWER).astype(np.float64)
    upper = values(n.SUFFIX_UPPER).astype(np.float64)
    notes = values(n.SUFFIX_REASON).astype(str)
    times: list[float | None] = (
        [float(t) for t in data[n.TIME_DIM].values] if n.TIME_DIM in variable.dims else [None]
    )
    method = IntervalMethod(variable.attrs[n.ATTR_INTERVAL_METHOD])
    evidence = Evidence(variable.attrs[n.ATTR_EVIDENCE])
    confidence = float(variable.attrs[n.ATTR_CONFIDENCE])
    return [
        (
            time,
            _Stat(
                estimate=float(estimate[i]),
                # An exact value has no sampling error, whatever was stored.
                stderr=0.0 if method is IntervalMethod.EXACT else float(stderr[i]),
                lower=float(lower[i]),
                upper=float(upper[i]),
                confidence=confidence,
                method=method,
                evidence=evidence,
                note=str(notes[i]),
            ),
        )
        for i, time in enumerate(times)
    ]


def _match(time: float | None, series: list[tuple[float | None, _Stat]]) -> _Stat | None:
    for other, stat in series:
        if time is None or other is None:
            if time is None and other is None:
                return stat
        elif math.isclose(time, other, rel_tol=_TIME_MATCH_RTOL, abs_tol=_TIME_MATCH_ATOL):
            return stat
    return None


@dataclass(frozen=True)
class _Pair:
    check: str
    group: str
    time: float | None
    comparison: Comparison
    current: _Stat
    baseline: _Stat

    @property
    def method(self) -> IntervalMethod:
        methods = {self.current.method, self.baseline.method}
        if IntervalMethod.FIXED in methods:
            return IntervalMethod.FIXED
        if IntervalMethod.CHEBYSHEV in methods:
            return IntervalMethod.CHEBYSHEV
        if IntervalMethod.NORMAL in methods:
            return IntervalMethod.NORMAL
        return IntervalMethod.EXACT


def _side(stat: _Stat, level: float) -> tuple[float, float, float]:
    """Interval of one estimate at ``level`` (FIXED: stored, at its own level)."""
    interval = build_interval(
        stat.estimate,
        stat.stderr,
        stat.method,
        level,
        stored_lower=stat.lower,
        stored_upper=stat.upper,
        stored_confidence=stat.confidence,
    )
    return interval.lower, interval.upper, interval.confidence


def _delta_interval(pair: _Pair, level: float) -> tuple[float, float, float]:
    r"""Interval ``(lower, upper, confidence)`` of :math:`\Delta = \hat q_c - \hat q_b`.

    Independent runs: :math:`\mathrm{se}_\Delta^2 = \mathrm{se}_c^2 + \mathrm{se}_b^2`,
    with :math:`z` when both sides are normal (or exact) and :math:`1/\sqrt\alpha`
    (Chebyshev, variance only) when either is Chebyshev. A FIXED side has no standard
    error: the stored intervals are differenced (:math:`[l_c - u_b, u_c - l_b]`), which
    holds when both do, i.e. at :math:`1 - \alpha_c - \alpha_b` by the union bound; the
    other side's share of the row's :math:`\alpha` is what the FIXED side leaves.
    """
    current, baseline = pair.current, pair.baseline
    difference = current.estimate - baseline.estimate
    method = pair.method
    if method is not IntervalMethod.FIXED:
        stderr = math.hypot(current.stderr, baseline.stderr)
        interval = build_interval(
            difference,
            stderr,
            method,
            level,
            stored_lower=math.nan,
            stored_upper=math.nan,
            stored_confidence=math.nan,
        )
        return interval.lower, interval.upper, interval.confidence
    fixed_alpha = sum(
        1.0 - stat.confidence for stat in (current, baseline) if stat.method is IntervalMethod.FIXED
    )
    random_side = any(
        stat.method in (IntervalMethod.NORMAL, IntervalMethod.CHEBYSHEV)
        for stat in (current, baseline)
    )
    rest = (1.0 - level) - fixed_alpha
    if not random_side:
        side_level, reached = level, 1.0 - fixed_alpha
    elif rest > 0.0:
        side_level, reached = 1.0 - rest, level
    else:
        # The stored levels alone use up the row's alpha: report the weaker joint level.
        side_level, reached = level, max(0.0, level - fixed_alpha)
    lower_c, upper_c, _ = _side(current, side_level)
    lower_b, upper_b, _ = _side(baseline, side_level)
    return lower_c - upper_b, upper_c - lower_b, reached


def _decide(pair: _Pair, margins: RegressionMargins, level: float) -> RegressionRow:
    current, baseline = pair.current, pair.baseline
    sign = 1.0 if pair.comparison is Comparison.AT_MOST else -1.0
    margin = margins.margin(pair.check, baseline.estimate)
    lower, upper, confidence = _delta_interval(pair, level)
    if sign < 0:
        lower, upper = -upper, -lower
    delta = sign * (current.estimate - baseline.estimate)
    if math.isnan(current.estimate):
        verdict, reason = Verdict.FAIL, "current estimate is NaN; the baseline's was finite"
    elif math.isnan(delta) or math.isnan(lower) or math.isnan(upper):
        verdict, reason = (
            Verdict.INCONCLUSIVE,
            "the change or its interval is undefined (NaN, or inf - inf)",
        )
    elif confidence + _LEVEL_SLACK < level:
        verdict = Verdict.INCONCLUSIVE
        reason = (
            f"stored intervals hold jointly at level {confidence:g} only; {level:g} is required"
        )
    elif lower > margin:
        verdict, reason = Verdict.FAIL, "regressed: the change's lower bound exceeds the margin"
    elif upper <= margin:
        verdict, reason = Verdict.PASS, ""
    elif not (math.isfinite(current.stderr) and math.isfinite(baseline.stderr)):
        verdict, reason = Verdict.INCONCLUSIVE, "standard error is not finite"
    else:
        verdict = Verdict.INCONCLUSIVE
        reason = "within the noise: the change's interval contains the margin"
    # The estimates' own notes (NaN cause, heavy-tail diagnostic) explain a non-PASS row.
    notes = [
        f"{label}: {s.note}"
        for label, s in (("current", current), ("baseline", baseline))
        if s.note
    ]
    if notes and verdict is not Verdict.PASS:
        reason = "; ".join([reason, *notes])
    return RegressionRow(
        check=pair.check,
        group=pair.group,
        time=pair.time,
        comparison=pair.comparison,
        baseline=baseline.estimate,
        baseline_stderr=baseline.stderr,
        current=current.estimate,
        current_stderr=current.stderr,
        delta=delta,
        lower=lower,
        upper=upper,
        margin=margin,
        verdict=verdict,
        evidence=max(current.evidence, baseline.evidence, key=_EVIDENCE_ORDER.index),
        interval_method=pair.method,
        confidence=confidence,
        reason=reason,
    )


def compare_to_baseline(
    current: Certificate,
    baseline: Certificate,
    *,
    margins: RegressionMargins,
    confidence: float | None = None,
    correction: Correction | None = None,
) -> BaselineResult:
    r"""Compare every bounded check of ``current`` with the same check in ``baseline``.

    For each check and time present in both (times matched as by the gate) whose bound in
    ``current`` gives a direction, the worsening :math:`\Delta` (``current - baseline``
    for ``<=`` bounds, ``baseline - current`` for ``>=``) gets the interval

    .. math:: \Delta \pm c_\alpha \sqrt{\mathrm{se}_\text{cur}^2 + \mathrm{se}_\text{base}^2}

    (independent runs; :math:`c_\alpha = z_{1-\alpha/2}` for normal intervals,
    :math:`1/\sqrt\alpha` if either is Chebyshev; exact values have se 0). With
    :math:`k` non-exact rows and overall level :math:`1-\delta`, each is built at
    :math:`1-\delta/k` (Bonferroni) unless the correction is ``none``. A row is FAIL when
    the interval lies above the margin :math:`m`, PASS when it lies at or below it,
    INCONCLUSIVE otherwise; a NaN current estimate with a finite baseline is FAIL.

    Parameters
    ----------
    current, baseline : Certificate
        ``current`` as gated (its stored bounds give the directions); ``baseline`` the
        committed reference of the same ``problem_id``.
    margins : RegressionMargins
        Allowed worsening :math:`m = \max(m_\text{abs}, m_\text{rel}|\hat q_\text{base}|)`.
    confidence : float, optional
        Overall level :math:`1-\delta`; default the current certificate's.
    correction : Correction, optional
        Default the current certificate's.

    Returns
    -------
    BaselineResult
        Overall verdict: FAIL if any row regressed, else INCONCLUSIVE if any is
        inconclusive or nothing was compared, else PASS.

    Raises
    ------
    BaselineError
        The certificates are of different problems.
    BoundsError
        A per-check margin names a check ``current`` does not have.

    References
    ----------
    C. E. Bonferroni, "Teoria statistica delle classi e calcolo delle probabilità", 1936.
    """
    if current.problem_id != baseline.problem_id:
        raise BaselineError(
            f"baseline is for problem {baseline.problem_id!r}, "
            f"the certificate for {current.problem_id!r}"
        )
    located = current.check_locations()
    unknown = sorted(set(margins.per_check) - set(located))
    if unknown:
        raise BoundsError(
            f"regression margin for {', '.join(unknown)}: no such check in the certificate"
        )
    bounds = current.stored_bounds.resolved()
    overall = bounds.resolved_confidence if confidence is None else float(confidence)
    chosen = bounds.resolved_correction if correction is None else Correction(correction)
    base_located = baseline.check_locations()
    pairs: list[_Pair] = []
    skipped: list[NotCompared] = []
    for check, group in located.items():
        series = _series(current.family(group), check)
        base_series = (
            _series(baseline.family(base_located[check]), check) if check in base_located else None
        )
        check_bound = bounds.checks.get(check)
        for time, stat in series:
            bound = check_bound.at(time) if check_bound is not None else None
            if bound is None:
                reason = "no bound in the certificate, so no direction"
                skipped.append(NotCompared(check, time, reason))
                continue
            if base_series is None:
                skipped.append(NotCompared(check, time, "not in the baseline"))
                continue
            base_stat = _match(time, base_series)
            if base_stat is None:
                skipped.append(NotCompared(check, time, "time not in the baseline"))
                continue
            if math.isnan(base_stat.estimate):
                reason = (
                    "both estimates are NaN"
                    if math.isnan(stat.estimate)
                    else "baseline estimate is NaN"
                )
                skipped.append(NotCompared(check, time, reason))
                continue
            pairs.append(_Pair(check, group, time, bound.comparison, stat, base_stat))
    skipped.extend(
        NotCompared(check, None, "not in the certificate (only in the baseline)")
        for check in base_located
        if check not in located
    )
    n_intervals = sum(1 for p in pairs if p.method is not IntervalMethod.EXACT)
    level = per_interval_confidence(overall, n_intervals, chosen)
    rows = tuple(_decide(pair, margins, level) for pair in pairs)
    return BaselineResult(
        rows=rows,
        not_compared=tuple(skipped),
        verdict=combine(row.verdict for row in rows),
        margins=margins,
        confidence=overall,
        correction=chosen,
        n_intervals=n_intervals,
        interval_confidence=level,
    )


_REGRESSION_HEADER = (
    "check",
    "time",
    "baseline",
    "current",
    "change",
    "margin",
    "verdict",
    "reason",
)


def format_regression_table(result: BaselineResult, baseline: str) -> str:
    """Fixed-width text table of ``result`` under the title ``regressions against BASELINE``.

    The change column is the interval of the worsening Δ (positive = worse: ``current -
    baseline`` for ``<=`` bounds, ``baseline - current`` for ``>=``); checks that were not
    compared follow with their reason. ASCII apart from the certificates' own strings.
    """
    lines = [
        f"regressions against {one_line(baseline)}",
        f"(change = worsening, > 0 is worse; intervals at {result.interval_confidence:.6g} "
        f"each, {result.confidence:g} overall ({result.correction}))",
        "",
    ]
    if result.rows:
        lines.extend(
            _fixed_width(
                _REGRESSION_HEADER,
                [
                    (
                        one_line(row.check),
                        format_time(row.time),
                        format_number(row.baseline),
                        format_number(row.current),
                        format_interval(row.lower, row.upper),
                        f"<= {format_number(row.margin)}",
                        str(row.verdict),
                        one_line(row.reason),
                    )
                    for row in result.rows
                ],
            )
        )
    else:
        lines.append("no check was compared: nothing to regress from")
    if result.not_compared:
        lines.extend(["", "not compared:"])
        lines.extend(
            f"  {one_line(entry.check)} at {format_time(entry.time)}: {entry.reason}"
            for entry in result.not_compared
        )
    return "\n".join(lines) + "\n"
