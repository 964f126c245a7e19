"""The JSON report: one strict JSON object with a stable shape.

Shape (keys in this order, ``indent=2``)::

    {"schema_version", "problem_id", "model_spec", "verdict", "created_at",
     "content_sha256", "confidence", "correction",
     "checks": [{"name", "group", "time", "estimate", "stderr", "lower", "upper",
                 "threshold", "comparison", "verdict", "evidence", "confidence",
                 "interval_method", "n_samples", "reason"}]}

One ``checks`` entry per verdict row, in table order; ``time`` is ``null`` for an
aggregate row. The output is strict JSON (RFC 8259 has no NaN or Infinity): a
non-finite number is written as ``null`` and the entry's ``reason`` then says which
value is missing and why (the row's own reason when it has one).
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from . import _names as n

if TYPE_CHECKING:
    from ._certificate import Certificate
    from ._gate import VerdictRow


def _finite_or_none(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _check_entry(row: VerdictRow) -> dict[str, Any]:
    numbers = {
        "estimate": row.estimate,
        "stderr": row.stderr,
        "lower": row.lower,
        "upper": row.upper,
        "threshold": row.threshold,
        "confidence": row.confidence,
    }
    missing = [f"{key} is {value}" for key, value in numbers.items() if not math.isfinite(value)]
    # A row without a reason can still carry a non-finite companion (an infinite
    # Chebyshev half-width, say); the reader of the JSON must learn why it is null.
    reason = row.reason or "; ".join(missing)
    entry = {
        "name": row.check,
        "group": row.group,
        "time": None if row.time is None else _finite_or_none(row.time),
        "estimate": _finite_or_none(row.estimate),
        "stderr": _finite_or_none(row.stderr),
        "lower": _finite_or_none(row.lower),
        "upper": _finite_or_none(row.upper),
        "threshold": _finite_or_none(row.threshold),
        "comparison": str(row.comparison),
        "verdict": str(row.verdict),
        "evidence": str(row.evidence),
        "confidence": _finite_or_none(row.confidence),
        "interval_method": str(row.interval_method),
        "n_samples": int(row.n_samples),
        "reason": reason,
    }
    return entry


def render_json(certificate: Certificate) -> str:
    """The certificate's verdicts as one strict JSON object (see the module docstring).

    Parameters
    ----------
    certificate : Certificate
        The artefact; its stored verdict table is reported as is.

    Returns
    -------
    str
        ``json.dumps(..., indent=2, allow_nan=False)`` followed by a newline.
    """
    attrs = certificate.attrs
    report = {
        "schema_version": certificate.schema_version,
        "problem_id": certificate.problem_id,
        "model_spec": certificate.model_spec,
        "verdict": str(certificate.verdict),
        "created_at": str(attrs[n.ATTR_CREATED_AT]),
        "content_sha256": certificate.content_sha256,
        "confidence": _finite_or_none(attrs[n.ATTR_CONFIDENCE]),
        "correction": str(attrs[n.ATTR_CORRECTION]),
        "checks": [_check_entry(row) for row in certificate.rows],
    }
    return json.dumps(report, indent=2, allow_nan=False, ensure_ascii=False) + "\n"
