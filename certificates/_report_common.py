"""Values shared by the report renderers: number formats, provenance, unbounded checks.

Every renderer (text table, Markdown, HTML, JSON, JUnit) formats numbers, times and
bounds through the helpers here, so one certificate reads the same in every format.
Reports render from the certificate alone (no gating, no I/O, no JAX).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from . import _names as n
from ._bounds import _TIME_MATCH_ATOL, _TIME_MATCH_RTOL
from ._checks import check_names
from ._names import Comparison, Evidence

if TYPE_CHECKING:
    import xarray as xr

    from ._certificate import Certificate
    from ._gate import VerdictRow

AGGREGATE_LABEL = "aggregate"
"""Time label of a row (or check) that is not per time."""

COMPARISON_SYMBOLS = {Comparison.AT_MOST: "≤", Comparison.AT_LEAST: "≥"}
"""Typeset comparison signs for the Markdown and HTML reports (ASCII elsewhere)."""

_SHORT_SHA = 12


def format_number(value: float) -> str:
    """A number in the fixed report format: ``1.234e-03``; ``nan``, ``inf``, ``-inf``."""
    value = float(value)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.3e}"


def format_time(time: float | None) -> str:
    """A certification time (shortest ``g`` form), or ``aggregate`` for ``None``."""
    return AGGREGATE_LABEL if time is None else f"{float(time):g}"


def format_interval(lower: float, upper: float) -> str:
    """``[lower, upper]`` with both ends in :func:`format_number`."""
    return f"[{format_number(lower)}, {format_number(upper)}]"


def format_bound(threshold: float, comparison: Comparison, *, typeset: bool = False) -> str:
    """``<= 5.000e-03`` (or ``≤ 5.000e-03`` when ``typeset``)."""
    sign = COMPARISON_SYMBOLS[comparison] if typeset else str(comparison)
    return f"{sign} {format_number(threshold)}"


def one_line(text: str) -> str:
    """``text`` with line breaks and tabs folded to single spaces (table cells)."""
    return " ".join(str(text).split())


def short_sha(digest: str) -> str:
    """The first 12 hex digits of a SHA-256 (``-`` if none was recorded)."""
    return digest[:_SHORT_SHA] if digest else "-"


def same_time(a: float | None, b: float | None) -> bool:
    """Whether two row times name the same certification time (the gate's tolerance)."""
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=_TIME_MATCH_RTOL, abs_tol=_TIME_MATCH_ATOL)


def provenance_items(certificate: Certificate) -> list[tuple[str, str]]:
    """Labelled provenance of the root attributes, in display order."""
    attrs = certificate.attrs
    return [
        ("problem", certificate.problem_id),
        ("model", certificate.model_spec),
        ("model sha256", short_sha(str(attrs[n.ATTR_MODEL_SHA256]))),
        ("seed", str(attrs[n.ATTR_SEED])),
        ("created at", str(attrs[n.ATTR_CREATED_AT])),
        ("tool version", str(attrs[n.ATTR_TOOL_VERSION])),
        ("jax version", str(attrs[n.ATTR_JAX_VERSION])),
        ("backend", str(attrs[n.ATTR_BACKEND])),
        ("x64", "yes" if int(attrs[n.ATTR_X64]) else "no"),
        ("confidence", confidence_label(certificate)),
        ("schema version", certificate.schema_version),
        ("content sha256", short_sha(certificate.content_sha256)),
    ]


def confidence_label(certificate: Certificate) -> str:
    """Overall confidence and its multiple-comparison correction, e.g. ``0.95 (bonferroni)``."""
    attrs = certificate.attrs
    return f"{float(attrs[n.ATTR_CONFIDENCE]):g} ({attrs[n.ATTR_CORRECTION]})"


@dataclass(frozen=True)
class UnboundedEntry:
    """A stored estimate that no bound applies to (informational, no verdict)."""

    check: str
    group: str
    time: float | None
    estimate: float
    lower: float
    upper: float
    confidence: float
    evidence: Evidence
    reason: str


def rows_of(rows: tuple[VerdictRow, ...], check: str) -> list[VerdictRow]:
    """The verdict rows of one check, in table order."""
    return [row for row in rows if row.check == check]


def unbounded_entries(certificate: Certificate) -> list[UnboundedEntry]:
    """Stored estimates without a verdict row, in the certificate's order of checks.

    A check with no bound at all contributes every time (or its aggregate value); a
    check bounded only at some times contributes the other times. The interval is the
    stored one, at the check's stored confidence.
    """
    rows = certificate.rows
    entries = []
    for check, group in certificate.check_locations().items():
        data = certificate.family(group)
        bounded = [row.time for row in rows_of(rows, check)]
        series = check_series(data, check)
        for index, time in enumerate(series.times):
            if any(same_time(time, t) for t in bounded):
                continue
            entries.append(
                UnboundedEntry(
                    check=check,
                    group=group,
                    time=time,
                    estimate=float(series.estimate[index]),
                    lower=float(series.lower[index]),
                    upper=float(series.upper[index]),
                    confidence=series.confidence,
                    evidence=series.evidence,
                    reason=str(series.reason[index]),
                )
            )
    return entries


@dataclass(frozen=True)
class CheckSeries:
    """One stored check as flat arrays: ``times`` is ``[None]`` for an aggregate check."""

    times: list[float | None]
    estimate: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    reason: np.ndarray
    confidence: float
    evidence: Evidence
    long_name: str
    units: str


def check_series(data: xr.Dataset, check: str) -> CheckSeries:
    """Read the estimate of ``check`` and its stored companions from a family dataset."""
    variable = data[check]

    def values(name: str) -> np.ndarray:
        return np.atleast_1d(np.asarray(data[name].values))

    if n.TIME_DIM in variable.dims:
        times: list[float | None] = [float(t) for t in data[n.TIME_DIM].values]
    else:
        times = [None]
    return CheckSeries(
        times=times,
        estimate=values(check).astype(np.float64),
        lower=values(check + n.SUFFIX_LOWER).astype(np.float64),
        upper=values(check + n.SUFFIX_UPPER).astype(np.float64),
        reason=values(check + n.SUFFIX_REASON).astype(str),
        confidence=float(variable.attrs[n.ATTR_CONFIDENCE]),
        evidence=Evidence(variable.attrs[n.ATTR_EVIDENCE]),
        long_name=str(variable.attrs.get(n.ATTR_LONG_NAME, check)),
        units=str(variable.attrs.get(n.ATTR_UNITS, "")),
    )


def per_time_checks(certificate: Certificate) -> list[tuple[str, str]]:
    """``(check, group)`` of every check stored per time, in the certificate's order."""
    located = []
    for group in certificate.family_names:
        data = certificate.family(group)
        located.extend(
            (check, group) for check in check_names(data) if n.TIME_DIM in data[check].dims
        )
    return located
