"""Shared test helpers: small, valid certificates built without JAX."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

import certificates as cert

TIMES = (0.1, 0.5, 1.0)


def provenance(**overrides: Any) -> cert.Provenance:
    fields: dict[str, Any] = {
        "tool_version": "0.1.0",
        "jax_version": "0.0.0",
        "backend": "cpu",
        "x64": True,
        "seed": 0,
        "problem_id": "vp-gmm-2d",
        "problem": {"id": "vp-gmm-2d"},
        "model_spec": "tests/helpers.py:model",
        "model_sha256": "",
        "config": {"samples": 4096},
        "created_at": "2026-01-01T00:00:00Z",
    }
    fields.update(overrides)
    return cert.Provenance(**fields)


def score_gap_check(
    estimate: Any = (1e-3, 2e-3, 3e-3), stderr: Any = (1e-4, 1e-4, 1e-4), **overrides: Any
) -> cert.CheckResult:
    fields: dict[str, Any] = {
        "name": "score_gap",
        "estimate": estimate,
        "stderr": stderr,
        "n_samples": 4096,
        "units": "1",
        "long_name": "score-matching gap E|s - grad log p|^2",
        "formula_id": "mse-exact-score",
        "evidence": cert.Evidence.STATISTICAL,
        "interval_method": cert.IntervalMethod.NORMAL,
    }
    fields.update(overrides)
    return cert.CheckResult(**fields)


def energy_drift_check(estimate: float = 1e-10) -> cert.CheckResult:
    return cert.CheckResult(
        name="energy_drift",
        estimate=estimate,
        stderr=0.0,
        n_samples=0,
        units="1",
        long_name="maximum relative energy drift",
        formula_id="relative-drift-max",
        evidence=cert.Evidence.EXACT,
        interval_method=cert.IntervalMethod.EXACT,
    )


def make_certificate(
    checks: Mapping[str, list[cert.CheckResult]] | None = None,
    bounds: Mapping[str, Any] | None = None,
    times: tuple[float, ...] = TIMES,
    **provenance_overrides: Any,
) -> cert.Certificate:
    """A valid certificate: by default a per-time score gap and an aggregate energy drift."""
    if checks is None:
        checks = {"score_gap": [score_gap_check()], "invariants": [energy_drift_check()]}
    if bounds is None:
        bounds = {"bounds": {"score_gap": {"max": 5e-3}, "energy_drift": {"max": 1e-8}}}
    families = {}
    for family, results in checks.items():
        per_time = any(np.ndim(r.estimate) == 1 for r in results)
        families[family] = cert.family_dataset(
            family, f"{family} checks", results, times=np.asarray(times) if per_time else None
        )
    return cert.assemble_certificate(
        provenance(**provenance_overrides), families, cert.parse_bounds(bounds, "test bounds")
    )
