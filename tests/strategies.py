"""Hypothesis strategies for random, valid certificates (no JAX).

Every float is bounded (``allow_nan=False, allow_infinity=False`` and an explicit range);
NaN estimates appear only when a strategy is asked for them (``allow_nan=True``), and
then always with a reason, as ``SCHEMA.md`` § 4 requires. Time grids come from a few
fixed tuples so that examples shrink well and stay comparable.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

import certificates as cert
from tests.helpers import provenance

TIME_GRIDS = ((0.5,), (0.1, 0.5, 1.0), (0.0, 0.25, 0.5, 0.75, 1.0))
CHECK_NAMES = ("score_gap", "fp_residual", "energy_drift", "coverage", "mass_drift", "w2_error")
FAMILY_NAMES = ("score_gap", "fokker_planck", "invariants")
# Normalised errors and coverages are O(1); the ranges are wide enough to put estimates
# on both sides of every threshold and narrow enough to keep arithmetic exact-ish.
ESTIMATE_RANGE = (-10.0, 10.0)
STDERR_RANGE = (0.0, 1.0)
FIXED_HALF_WIDTH_RANGE = (0.0, 5.0)
THRESHOLD_RANGE = (-10.0, 10.0)
CONFIDENCE_RANGE = (0.5, 0.999)
# Non-ASCII text must survive NetCDF attributes and the digest unchanged.
LONG_NAMES = ("score-matching gap", "‖s − ∇log p‖² relative to E‖∇log p‖²", "coverage τ")
NAN_REASON = "solver diverged before this time"


def finite_floats(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


confidences = finite_floats(*CONFIDENCE_RANGE)
corrections = st.sampled_from(list(cert.Correction))
comparisons = st.sampled_from(list(cert.Comparison))


@st.composite
def check_results(
    draw: st.DrawFn, name: str, n_times: int | None, *, allow_nan: bool = False
) -> cert.CheckResult:
    """One check: per-time (``n_times`` values) or aggregate (``n_times=None``)."""
    size = 1 if n_times is None else n_times
    method = draw(st.sampled_from(list(cert.IntervalMethod)))
    estimate = np.array(
        draw(st.lists(finite_floats(*ESTIMATE_RANGE), min_size=size, max_size=size))
    )
    stderr = np.array(draw(st.lists(finite_floats(*STDERR_RANGE), min_size=size, max_size=size)))
    reason = [""] * size
    if allow_nan:
        nan_mask = np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size)))
        estimate[nan_mask] = np.nan
        reason = [NAN_REASON if missing else "" for missing in nan_mask]
    fields: dict[str, Any] = {}
    if method is cert.IntervalMethod.FIXED:
        # A stored interval around the estimate with lower <= upper (NaN where the
        # estimate is NaN: there is no interval then).
        below, above = (
            np.array(
                draw(st.lists(finite_floats(*FIXED_HALF_WIDTH_RANGE), min_size=size, max_size=size))
            )
            for _ in range(2)
        )
        fields = {"lower": estimate - below, "upper": estimate + above}
    shape = (size,) if n_times is not None else ()
    fields = {key: value.reshape(shape) for key, value in fields.items()}
    return cert.CheckResult(
        name=name,
        estimate=estimate.reshape(shape),
        stderr=stderr.reshape(shape),
        n_samples=draw(st.integers(0, 10**6)),
        units="1",
        long_name=draw(st.sampled_from(LONG_NAMES)),
        formula_id=f"{name}-formula",
        evidence=draw(st.sampled_from(list(cert.Evidence))),
        interval_method=method,
        confidence=draw(confidences),
        normaliser=draw(st.sampled_from(["none", "E|grad log p|^2"])),
        eps=draw(finite_floats(0.0, 1e-6)),
        reason=reason if n_times is not None else reason[0:1],
        **fields,
    )


@st.composite
def bounds_tables(draw: st.DrawFn, per_time: bool, times: tuple[float, ...]) -> dict[str, Any]:
    """The file form of one check's bound: ``{max|min: τ}`` and optional per-time overrides."""

    def one() -> dict[str, float]:
        key = draw(st.sampled_from(["max", "min"]))
        return {key: draw(finite_floats(*THRESHOLD_RANGE))}

    table: dict[str, Any] = {}
    with_default = not per_time or draw(st.booleans())
    if with_default:
        table.update(one())
    override_times = (
        draw(st.lists(st.sampled_from(times), unique=True, min_size=0 if with_default else 1))
        if per_time
        else []
    )
    if override_times:
        table["times"] = {repr(t): one() for t in override_times}
    return table


@dataclass(frozen=True)
class CertificateSpec:
    """What a random certificate is made of (kept for the properties that re-gate it)."""

    times: tuple[float, ...]
    families: Mapping[str, tuple[cert.CheckResult, ...]]
    bounds: Mapping[str, Any]

    def per_time_checks(self) -> set[str]:
        return {
            check.name
            for checks in self.families.values()
            for check in checks
            if check.estimate.ndim == 1
        }

    def build(self) -> cert.Certificate:
        datasets = {}
        for family, checks in self.families.items():
            per_time = any(check.estimate.ndim == 1 for check in checks)
            datasets[family] = cert.family_dataset(
                family,
                f"{family} checks",
                checks,
                times=np.asarray(self.times) if per_time else None,
            )
        return cert.assemble_certificate(
            provenance(), datasets, cert.parse_bounds(self.bounds, "strategy bounds")
        )


@st.composite
def certificate_specs(draw: st.DrawFn, *, allow_nan: bool = False) -> CertificateSpec:
    """Random families and checks (per-time and aggregate, every method) with bounds."""
    times = draw(st.sampled_from(TIME_GRIDS))
    names = draw(st.lists(st.sampled_from(CHECK_NAMES), min_size=1, max_size=4, unique=True))
    families: dict[str, list[cert.CheckResult]] = {}
    per_time: dict[str, bool] = {}
    for name in names:
        family = draw(st.sampled_from(FAMILY_NAMES))
        per_time[name] = draw(st.booleans())
        families.setdefault(family, []).append(
            draw(check_results(name, len(times) if per_time[name] else None, allow_nan=allow_nan))
        )
    bounded = draw(st.lists(st.sampled_from(names), unique=True))
    table = {name: draw(bounds_tables(per_time[name], times)) for name in bounded}
    bounds: dict[str, Any] = {"bounds": table}
    if draw(st.booleans()):
        bounds["confidence"] = draw(confidences)
    if draw(st.booleans()):
        bounds["correction"] = str(draw(corrections))
    return CertificateSpec(
        times=times,
        families={family: tuple(checks) for family, checks in families.items()},
        bounds=bounds,
    )


def certificates(*, allow_nan: bool = False) -> st.SearchStrategy[cert.Certificate]:
    """Random valid certificates (see :func:`certificate_specs`)."""
    return certificate_specs(allow_nan=allow_nan).map(CertificateSpec.build)


@st.composite
def bounds_layers(draw: st.DrawFn) -> cert.Bounds:
    """A random, valid layer of bounds over the fixed check names and time grids."""
    times = draw(st.sampled_from(TIME_GRIDS))
    names = draw(st.lists(st.sampled_from(CHECK_NAMES), unique=True))
    mapping: dict[str, Any] = {
        "bounds": {name: draw(bounds_tables(draw(st.booleans()), times)) for name in names}
    }
    if draw(st.booleans()):
        mapping["confidence"] = draw(confidences)
    if draw(st.booleans()):
        mapping["correction"] = str(draw(corrections))
    return cert.parse_bounds(mapping, "strategy bounds")


def comparable_rows(rows: tuple[cert.VerdictRow, ...]) -> list[tuple[Any, ...]]:
    """Rows as tuples in which NaN equals NaN (dataclass equality says NaN != NaN)."""
    return [
        tuple(
            "NaN" if isinstance(value, float) and math.isnan(value) else value
            for value in dataclasses.astuple(row)
        )
        for row in rows
    ]
