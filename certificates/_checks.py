"""Check results and the family groups that hold them.

A *check* is one estimated quantity (for example the score-matching gap), evaluated
per certification time (a 1-D series over ``time``) or once (an aggregate, 0-d). A
*family* groups related checks in one NetCDF group (``/score_gap``, ``/invariants``…).
Everything that shapes the number — formula id, normaliser, eps, evidence level and the
interval method with its confidence — is stored next to it (``SCHEMA.md`` § "Family
groups").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from . import _names as n
from ._intervals import build_interval
from ._names import Evidence, IntervalMethod


@dataclass(frozen=True)
class CheckResult:
    """Estimates of one check, with their uncertainty and everything that defines them.

    Parameters
    ----------
    name : str
        Check name, unique within a certificate (a Python identifier, e.g. ``score_gap``).
    estimate : array_like, shape (n_time,) or ()
        Point estimates :math:`\\hat q`; NaN where the estimate could not be computed
        (give the cause in ``reason``).
    stderr : array_like, same shape
        Estimated standard error of :math:`\\hat q` (0 for exact values).
    n_samples : array_like of int, same shape
        Number of samples behind each estimate (0 for exact values).
    units, long_name : str
        CF-style attributes (``"1"`` for dimensionless).
    formula_id : str
        Identifier of the formula in ``docs``/``SCHEMA.md`` (e.g. ``hyvarinen-2005-thm1``).
    evidence : Evidence
        EXACT, STATISTICAL or EMPIRICAL.
    interval_method : IntervalMethod
        How the interval is rebuilt from ``stderr`` at another confidence level.
    confidence : float
        Level of the stored ``lower``/``upper`` (default 0.95).
    lower, upper : array_like, optional
        Interval at ``confidence``; computed from ``stderr`` unless the method is FIXED,
        for which they are required.
    normaliser : str
        What the estimate is divided by (``"none"`` for absolute quantities).
    eps : float
        Regularisation added to the normaliser (0 if none).
    reason : sequence of str, optional
        Per-estimate note, required to be non-empty where the estimate is NaN.
    """

    name: str
    estimate: np.ndarray
    stderr: np.ndarray
    n_samples: np.ndarray
    units: str
    long_name: str
    formula_id: str
    evidence: Evidence
    interval_method: IntervalMethod
    confidence: float = 0.95
    lower: np.ndarray | None = None
    upper: np.ndarray | None = None
    normaliser: str = "none"
    eps: float = 0.0
    reason: Sequence[str] | None = None

    def __post_init__(self) -> None:
        estimate = np.asarray(self.estimate, dtype=np.float64)
        shape = estimate.shape
        if len(shape) > 1:
            raise ValueError(f"check {self.name!r}: estimate must be 0-d or 1-d, got {shape}")
        if not self.name.isidentifier():
            raise ValueError(f"check name {self.name!r} is not an identifier")
        stderr = np.broadcast_to(np.asarray(self.stderr, dtype=np.float64), shape).copy()
        n_samples = np.broadcast_to(np.asarray(self.n_samples, dtype=np.int64), shape).copy()
        method = IntervalMethod(self.interval_method)
        if method is IntervalMethod.FIXED and (self.lower is None or self.upper is None):
            raise ValueError(f"check {self.name!r}: a FIXED interval needs lower and upper")
        if self.lower is None or self.upper is None:
            bounds = [
                build_interval(
                    float(e),
                    float(s),
                    method,
                    self.confidence,
                    stored_lower=np.nan,
                    stored_upper=np.nan,
                    stored_confidence=self.confidence,
                )
                for e, s in zip(estimate.ravel(), stderr.ravel(), strict=True)
            ]
            lower = np.array([b.lower for b in bounds], dtype=np.float64).reshape(shape)
            upper = np.array([b.upper for b in bounds], dtype=np.float64).reshape(shape)
        else:
            lower = np.broadcast_to(np.asarray(self.lower, dtype=np.float64), shape).copy()
            upper = np.broadcast_to(np.asarray(self.upper, dtype=np.float64), shape).copy()
        if self.reason is None:
            reason = np.full(shape, "", dtype=object)
        else:
            reason = np.asarray(self.reason, dtype=object).reshape(shape)
        missing_reason = np.isnan(estimate) & (reason == "")
        reason = np.where(missing_reason, "estimate could not be computed", reason)
        object.__setattr__(self, "estimate", estimate)
        object.__setattr__(self, "stderr", stderr)
        object.__setattr__(self, "n_samples", n_samples)
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)
        object.__setattr__(self, "reason", reason.astype(str))
        object.__setattr__(self, "evidence", Evidence(self.evidence))
        object.__setattr__(self, "interval_method", method)

    def variables(self, dims: tuple[str, ...]) -> dict[str, xr.Variable]:
        """The estimate and its companions as NetCDF-ready variables."""
        attrs = {
            n.ATTR_UNITS: self.units,
            n.ATTR_LONG_NAME: self.long_name,
            n.ATTR_FORMULA_ID: self.formula_id,
            n.ATTR_NORMALISER: self.normaliser,
            n.ATTR_EPS: float(self.eps),
            n.ATTR_EVIDENCE: str(self.evidence),
            n.ATTR_INTERVAL_METHOD: str(self.interval_method),
            n.ATTR_CONFIDENCE: float(self.confidence),
        }

        def companion(what: str, units: str) -> dict[str, str]:
            return {n.ATTR_UNITS: units, n.ATTR_LONG_NAME: f"{what} of {self.long_name}"}

        return {
            self.name: xr.Variable(dims, self.estimate, attrs),
            self.name + n.SUFFIX_STDERR: xr.Variable(
                dims, self.stderr, companion("standard error", self.units)
            ),
            self.name + n.SUFFIX_LOWER: xr.Variable(
                dims, self.lower, companion("lower confidence bound", self.units)
            ),
            self.name + n.SUFFIX_UPPER: xr.Variable(
                dims, self.upper, companion("upper confidence bound", self.units)
            ),
            self.name + n.SUFFIX_N_SAMPLES: xr.Variable(
                dims, self.n_samples, companion("sample count", "1")
            ),
            self.name + n.SUFFIX_REASON: xr.Variable(
                dims, self.reason, companion("note on the estimate", "1")
            ),
        }


def family_dataset(
    family: str,
    description: str,
    checks: Sequence[CheckResult],
    *,
    times: np.ndarray | Sequence[float] | None = None,
    time_units: str = "1",
    time_long_name: str = "time",
    auxiliary: Mapping[str, xr.Variable] | None = None,
) -> xr.Dataset:
    """Assemble one family group.

    Parameters
    ----------
    family : str
        Group name (``score_gap``, ``fokker_planck``, ``invariants`` …).
    description : str
        One sentence on what the family certifies.
    checks : sequence of CheckResult
        Per-time checks must have ``len(times)`` entries; aggregate checks are 0-d.
    times : array_like, optional
        Certification times (strictly increasing); required if any check is per-time.
    auxiliary : mapping, optional
        Extra variables (e.g. per-probe variances); each needs ``units`` and ``long_name``.
    """
    coords = {}
    if times is not None:
        times = np.asarray(times, dtype=np.float64)
        if times.ndim != 1 or np.any(np.diff(times) <= 0):
            raise ValueError(f"family {family!r}: times must be strictly increasing and 1-d")
        coords[n.TIME_DIM] = xr.Variable(
            (n.TIME_DIM,), times, {n.ATTR_UNITS: time_units, n.ATTR_LONG_NAME: time_long_name}
        )
    variables: dict[str, xr.Variable] = {}
    for check in checks:
        if check.estimate.ndim == 1:
            if times is None or check.estimate.shape != times.shape:
                raise ValueError(
                    f"check {check.name!r}: {check.estimate.shape[0]} estimates but "
                    f"{0 if times is None else times.size} times"
                )
            dims: tuple[str, ...] = (n.TIME_DIM,)
        else:
            dims = ()
        variables.update(check.variables(dims))
    variables.update(auxiliary or {})
    return xr.Dataset(
        variables,
        coords=coords,
        attrs={n.ATTR_FAMILY: family, n.ATTR_DESCRIPTION: description},
    )


def check_names(dataset: xr.Dataset) -> list[str]:
    """Names of the check (estimate) variables of a family group, in stored order."""
    return [name for name, var in dataset.data_vars.items() if n.ATTR_EVIDENCE in var.attrs]
