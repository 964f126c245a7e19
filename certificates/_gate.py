"""Gating: the pure function ``gate(certificate, bounds) -> GateResult``.

The gate reads only the certificate's family groups (estimates, standard errors,
stored intervals and their methods) and the bounds; it rebuilds every interval at the
level the bounds ask for (Bonferroni-split unless ``correction = "none"``) and decides
each row (``SCHEMA.md`` § "Verdicts"). It performs no I/O and never imports JAX.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from . import _names as n
from ._bounds import _TIME_MATCH_ATOL, _TIME_MATCH_RTOL, Bound, Bounds, CheckBound
from ._errors import BoundsError
from ._intervals import build_interval, per_interval_confidence
from ._names import Comparison, Evidence, IntervalMethod, Verdict
from ._verdict import combine, decide

if TYPE_CHECKING:
    from ._certificate import Certificate

# A FIXED interval stored at level c still serves a request for level c' when c >= c';
# the slack absorbs the round-off of 1 - δ/k.
_LEVEL_SLACK = 1e-12


@dataclass(frozen=True)
class VerdictRow:
    """One row of the ``/verdicts`` table: a check at one time (or aggregate)."""

    check: str
    group: str
    time: float | None
    estimate: float
    stderr: float
    lower: float
    upper: float
    threshold: float
    comparison: Comparison
    verdict: Verdict
    evidence: Evidence
    confidence: float
    interval_method: IntervalMethod
    n_samples: int
    reason: str


@dataclass(frozen=True)
class GateResult:
    """Rows, overall verdict and the effective (fully resolved) bounds they came from."""

    rows: tuple[VerdictRow, ...]
    verdict: Verdict
    bounds: Bounds
    n_intervals: int
    interval_confidence: float

    def to_dataset(self) -> xr.Dataset:
        """The ``/verdicts`` group."""
        columns: dict[str, list] = {name: [] for name in n.VERDICT_COLUMNS}
        for row in self.rows:
            columns[n.COL_CHECK].append(row.check)
            columns[n.COL_GROUP].append(row.group)
            columns[n.COL_TIME].append(np.nan if row.time is None else row.time)
            columns[n.COL_ESTIMATE].append(row.estimate)
            columns[n.COL_STDERR].append(row.stderr)
            columns[n.COL_LOWER].append(row.lower)
            columns[n.COL_UPPER].append(row.upper)
            columns[n.COL_THRESHOLD].append(row.threshold)
            columns[n.COL_COMPARISON].append(str(row.comparison))
            columns[n.COL_VERDICT].append(str(row.verdict))
            columns[n.COL_EVIDENCE].append(str(row.evidence))
            columns[n.COL_CONFIDENCE].append(row.confidence)
            columns[n.COL_INTERVAL_METHOD].append(str(row.interval_method))
            columns[n.COL_N_SAMPLES].append(row.n_samples)
            columns[n.COL_REASON].append(row.reason)
        dtypes = {n.COL_N_SAMPLES: np.int64}
        string_columns = {
            n.COL_CHECK,
            n.COL_GROUP,
            n.COL_COMPARISON,
            n.COL_VERDICT,
            n.COL_EVIDENCE,
            n.COL_INTERVAL_METHOD,
            n.COL_REASON,
        }
        variables = {}
        for name, values in columns.items():
            if name in string_columns:
                array = np.array(values, dtype=str) if values else np.array([], dtype="<U1")
            else:
                array = np.array(values, dtype=dtypes.get(name, np.float64))
            variables[name] = xr.Variable(
                (n.ROW_DIM,), array, {n.ATTR_LONG_NAME: _COLUMN_LONG_NAMES[name]}
            )
        return xr.Dataset(
            variables,
            attrs={
                n.ATTR_DESCRIPTION: "one row per bounded check and time (or aggregate)",
                n.ATTR_CONFIDENCE: float(self.bounds.resolved_confidence),
                n.ATTR_CORRECTION: str(self.bounds.resolved_correction),
            },
        )


_COLUMN_LONG_NAMES = {
    n.COL_CHECK: "check name (estimate variable in group)",
    n.COL_GROUP: "family group holding the check",
    n.COL_TIME: "certification time (NaN for aggregate rows)",
    n.COL_ESTIMATE: "point estimate",
    n.COL_STDERR: "standard error of the estimate",
    n.COL_LOWER: "lower confidence bound",
    n.COL_UPPER: "upper confidence bound",
    n.COL_THRESHOLD: "declared bound tau",
    n.COL_COMPARISON: "estimate must be <= or >= tau",
    n.COL_VERDICT: "PASS, FAIL or INCONCLUSIVE",
    n.COL_EVIDENCE: "EXACT, STATISTICAL or EMPIRICAL",
    n.COL_CONFIDENCE: "level of this row's interval",
    n.COL_INTERVAL_METHOD: "how the interval was built",
    n.COL_N_SAMPLES: "samples behind the estimate",
    n.COL_REASON: "why the verdict is not PASS, or why the estimate is missing",
}


@dataclass(frozen=True)
class _Pending:
    check: str
    group: str
    time: float | None
    bound: Bound
    estimate: float
    stderr: float
    stored_lower: float
    stored_upper: float
    stored_confidence: float
    evidence: Evidence
    method: IntervalMethod
    n_samples: int
    note: str


def _pending_rows(name: str, group: str, data: xr.Dataset, bound: CheckBound) -> list[_Pending]:
    estimate = data[name]
    attrs = estimate.attrs
    common = {
        "check": name,
        "group": group,
        "evidence": Evidence(attrs[n.ATTR_EVIDENCE]),
        "method": IntervalMethod(attrs[n.ATTR_INTERVAL_METHOD]),
        "stored_confidence": float(attrs[n.ATTR_CONFIDENCE]),
    }

    def values(suffix: str) -> np.ndarray:
        return np.atleast_1d(np.asarray(data[name + suffix].values))

    columns = {
        "estimate": np.atleast_1d(np.asarray(estimate.values, dtype=np.float64)),
        "stderr": values(n.SUFFIX_STDERR).astype(np.float64),
        "stored_lower": values(n.SUFFIX_LOWER).astype(np.float64),
        "stored_upper": values(n.SUFFIX_UPPER).astype(np.float64),
        "n_samples": values(n.SUFFIX_N_SAMPLES).astype(np.int64),
        "note": values(n.SUFFIX_REASON).astype(str),
    }
    if estimate.ndim == 0:
        if bound.times:
            raise BoundsError(
                f"bounds for {name}: per-time bounds given, but {name} is an aggregate check"
            )
        times: list[float | None] = [None]
    else:
        times = [float(t) for t in data[n.TIME_DIM].values]
        for t, _ in bound.times:
            if not any(
                math.isclose(t, s, rel_tol=_TIME_MATCH_RTOL, abs_tol=_TIME_MATCH_ATOL)
                for s in times
            ):
                have = ", ".join(f"{s:g}" for s in times)
                raise BoundsError(
                    f"bounds for {name}: time {t:g} is not a certification time (have {have})"
                )
    rows = []
    for index, time in enumerate(times):
        row_bound = bound.at(time)
        if row_bound is None:
            continue
        rows.append(
            _Pending(
                time=time,
                bound=row_bound,
                estimate=float(columns["estimate"][index]),
                stderr=float(columns["stderr"][index]),
                stored_lower=float(columns["stored_lower"][index]),
                stored_upper=float(columns["stored_upper"][index]),
                n_samples=int(columns["n_samples"][index]),
                note=str(columns["note"][index]),
                **common,
            )
        )
    return rows


def _decide_row(pending: _Pending, level: float) -> VerdictRow:
    interval = build_interval(
        pending.estimate,
        pending.stderr,
        pending.method,
        level,
        stored_lower=pending.stored_lower,
        stored_upper=pending.stored_upper,
        stored_confidence=pending.stored_confidence,
    )
    verdict, reason = decide(
        pending.estimate,
        interval.lower,
        interval.upper,
        pending.bound.threshold,
        pending.bound.comparison,
    )
    under_level = interval.confidence + _LEVEL_SLACK < level
    # A NaN estimate or interval is a FAIL whatever the level (SCHEMA.md § 5).
    defective = any(math.isnan(v) for v in (pending.estimate, interval.lower, interval.upper))
    if under_level and not defective and verdict is not Verdict.INCONCLUSIVE:
        verdict = Verdict.INCONCLUSIVE
        reason = (
            f"stored interval holds at level {interval.confidence:g} only; {level:g} is required"
        )
    # The estimate's own note (NaN cause, heavy-tail diagnostic) explains a non-PASS verdict.
    if pending.note and verdict is not Verdict.PASS:
        reason = f"{reason}: {pending.note}"
    return VerdictRow(
        check=pending.check,
        group=pending.group,
        time=pending.time,
        estimate=pending.estimate,
        stderr=pending.stderr,
        lower=interval.lower,
        upper=interval.upper,
        threshold=pending.bound.threshold,
        comparison=pending.bound.comparison,
        verdict=verdict,
        evidence=pending.evidence,
        confidence=interval.confidence,
        interval_method=pending.method,
        n_samples=pending.n_samples,
        reason=reason,
    )


def _missing_row(name: str, bound: CheckBound) -> VerdictRow:
    # A bound on a check the certificate does not hold is never dropped: it fails.
    applied = bound.default or bound.times[0][1]
    return VerdictRow(
        check=name,
        group="",
        time=None,
        estimate=math.nan,
        stderr=math.nan,
        lower=math.nan,
        upper=math.nan,
        threshold=applied.threshold,
        comparison=applied.comparison,
        verdict=Verdict.FAIL,
        evidence=Evidence.EMPIRICAL,
        confidence=math.nan,
        interval_method=IntervalMethod.FIXED,
        n_samples=0,
        reason=f"check {name!r} is not in the certificate",
    )


def gate(certificate: Certificate, bounds: Bounds) -> GateResult:
    """Decide every bounded check of ``certificate`` under ``bounds``.

    Parameters
    ----------
    certificate : Certificate
        The artefact; only its family groups and stored bounds are read.
    bounds : Bounds
        Bounds to apply on top of the certificate's stored bounds (problem defaults
        and whatever the certificate was made with): set fields and named checks win.

    Returns
    -------
    GateResult
        With :math:`k` random (non-exact) intervals and overall confidence
        :math:`1-\\delta`, each interval is built at :math:`1-\\delta/k` (Bonferroni)
        unless the correction is ``none``.

    Raises
    ------
    BoundsError
        A per-time bound names a time the certificate does not have, or per-time bounds
        are given for an aggregate check.
    """
    effective = bounds.over(certificate.stored_bounds).resolved()
    located = certificate.check_locations()
    pending: list[_Pending] = []
    missing: list[str] = []
    # Rows follow the certificate's order of checks; bounds on absent checks come last.
    order = {name: index for index, name in enumerate(located)}
    for name in sorted(effective.checks, key=lambda c: (order.get(c, len(order)), c)):
        if name not in located:
            missing.append(name)
            continue
        group = located[name]
        pending.extend(
            _pending_rows(name, group, certificate.family(group), effective.checks[name])
        )
    n_intervals = sum(1 for p in pending if p.method is not IntervalMethod.EXACT)
    level = per_interval_confidence(
        effective.resolved_confidence, n_intervals, effective.resolved_correction
    )
    rows = [_decide_row(p, level) for p in pending]
    rows.extend(_missing_row(name, effective.checks[name]) for name in missing)
    return GateResult(
        rows=tuple(rows),
        verdict=combine(row.verdict for row in rows),
        bounds=effective,
        n_intervals=n_intervals,
        interval_confidence=level,
    )
