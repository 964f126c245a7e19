"""Properties of certificates: round trips, validity, and monotonicity of the gate."""

from __future__ import annotations

import dataclasses
import math

import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import certificates as cert
from tests.strategies import (
    CertificateSpec,
    bounds_layers,
    certificate_specs,
    comparable_rows,
    confidences,
    finite_floats,
)

VERDICT_ORDER = {cert.Verdict.FAIL: 0, cert.Verdict.INCONCLUSIVE: 1, cert.Verdict.PASS: 2}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    # Module-scoped: a function-scoped tmp_path is shared by all Hypothesis examples and
    # trips its health check; one file overwritten per example is what we want anyway.
    return tmp_path_factory.mktemp("properties")


@settings(max_examples=25)  # each example writes and reads a NetCDF file (~50 ms)
@given(spec=certificate_specs(allow_nan=True))
def test_write_read_round_trip_is_identical_and_validates(spec: CertificateSpec, folder):
    certificate = spec.build()
    path = cert.write_certificate(certificate, folder / "certificate.nc")
    read = cert.read_certificate(path)
    assert cert.schema_problems(read.tree) == []
    assert read.content_sha256 == certificate.content_sha256 == cert.content_digest(read.tree)
    assert comparable_rows(read.rows) == comparable_rows(certificate.rows)
    assert read.attrs == certificate.attrs
    assert read.family_names == certificate.family_names
    for family in certificate.family_names:
        xr.testing.assert_identical(read.family(family), certificate.family(family))


@given(spec=certificate_specs(allow_nan=True))
def test_assembled_certificates_validate_and_match_their_digest(spec: CertificateSpec):
    certificate = spec.build()
    assert cert.schema_problems(certificate.tree) == []
    assert certificate.content_sha256 == cert.content_digest(certificate.tree)


@given(spec=certificate_specs(allow_nan=True))
def test_overall_verdict_combines_the_rows_and_regating_reproduces_them(spec: CertificateSpec):
    certificate = spec.build()
    assert certificate.verdict is cert.combine(row.verdict for row in certificate.rows)
    again = cert.gate(certificate, cert.Bounds())
    assert again.verdict is certificate.verdict
    assert comparable_rows(again.rows) == comparable_rows(certificate.rows)


@given(bounds=bounds_layers())
def test_bounds_json_round_trip(bounds: cert.Bounds):
    assert cert.bounds_from_json(bounds.to_json(), "test") == bounds


def _shift(bound: cert.Bound, step: float) -> cert.Bound:
    """Move τ by ``step`` in the direction that makes the bound stricter."""
    sign = -1.0 if bound.comparison is cert.Comparison.AT_MOST else 1.0
    return dataclasses.replace(bound, threshold=bound.threshold + sign * step)


def _tightened(bounds: cert.Bounds, steps: dict[str, float]) -> cert.Bounds:
    checks = {
        name: cert.CheckBound(
            default=None if check.default is None else _shift(check.default, steps[name]),
            times=tuple((t, _shift(b, steps[name])) for t, b in check.times),
        )
        for name, check in bounds.checks.items()
    }
    return dataclasses.replace(bounds, checks=checks)


@given(spec=certificate_specs(allow_nan=True), data=st.data())
def test_tightening_thresholds_never_improves_a_verdict(spec: CertificateSpec, data):
    certificate = spec.build()
    before = cert.gate(certificate, cert.Bounds())
    # Some checks keep their bound (step 0), others move by up to the threshold range.
    steps = {
        name: data.draw(st.one_of(st.just(0.0), finite_floats(0.0, 20.0)), label=name)
        for name in before.bounds.checks
    }
    after = cert.gate(certificate, _tightened(before.bounds, steps))
    assert len(after.rows) == len(before.rows)
    for old, new in zip(before.rows, after.rows, strict=True):
        assert (old.check, old.time) == (new.check, new.time)
        # FAIL stays FAIL, and nothing becomes PASS that was not PASS.
        assert VERDICT_ORDER[new.verdict] <= VERDICT_ORDER[old.verdict], (old, new)
    assert VERDICT_ORDER[after.verdict] <= VERDICT_ORDER[before.verdict]


@given(spec=certificate_specs(allow_nan=True), low=confidences, high=confidences)
def test_raising_the_confidence_never_turns_inconclusive_into_pass(
    spec: CertificateSpec, low: float, high: float
):
    low, high = sorted((low, high))
    certificate = spec.build()
    at_low = cert.gate(certificate, cert.Bounds(confidence=low))
    at_high = cert.gate(certificate, cert.Bounds(confidence=high))
    for old, new in zip(at_low.rows, at_high.rows, strict=True):
        if old.verdict is not cert.Verdict.PASS:
            assert new.verdict is not cert.Verdict.PASS, (old, new)
        # Wider intervals at the higher level contain the narrower ones (NaN stays NaN).
        assert math.isnan(old.lower) == math.isnan(new.lower)
        assert math.isnan(old.lower) or new.lower <= old.lower
        assert math.isnan(old.upper) or new.upper >= old.upper


GHOSTS = ("ghost_a", "ghost_b", "ghost_c")  # bounded, but in no certificate


def _given_bounds(spec: CertificateSpec, ghosts: list[str]) -> cert.Bounds:
    table = {**spec.bounds["bounds"], **{name: {"max": 1.0} for name in ghosts}}
    return cert.parse_bounds({**spec.bounds, "bounds": table}, "spec")


def _unbounded(spec: CertificateSpec) -> cert.Certificate:
    # No stored bounds: the order of the bounds given to the gate is the only order.
    return dataclasses.replace(spec, bounds={"bounds": {}}).build()


@given(
    spec=certificate_specs(), ghosts=st.lists(st.sampled_from(GHOSTS), unique=True), data=st.data()
)
def test_gate_is_invariant_to_the_order_of_the_bounds(spec: CertificateSpec, ghosts, data):
    bounds = _given_bounds(spec, ghosts)
    names = data.draw(st.permutations(list(bounds.checks)))
    shuffled = dataclasses.replace(
        bounds,
        checks={
            name: cert.CheckBound(
                default=bounds.checks[name].default,
                times=tuple(data.draw(st.permutations(bounds.checks[name].times))),
            )
            for name in names
        },
    )
    certificate = _unbounded(spec)
    expected = cert.gate(certificate, bounds)
    result = cert.gate(certificate, shuffled)
    assert comparable_rows(result.rows) == comparable_rows(expected.rows)
    assert result.verdict is expected.verdict


def _expressions(bounds: cert.Bounds) -> list[str]:
    expressions = []
    for name, check in bounds.checks.items():
        if check.default is not None:
            expressions.append(f"{name}{check.default.comparison}{check.default.threshold!r}")
        expressions += [f"{name}@{t!r}{b.comparison}{b.threshold!r}" for t, b in check.times]
    return expressions


@given(
    spec=certificate_specs(), ghosts=st.lists(st.sampled_from(GHOSTS), unique=True), data=st.data()
)
def test_cli_expressions_in_any_order_gate_alike(spec: CertificateSpec, ghosts, data):
    bounds = _given_bounds(spec, ghosts)
    shuffled = data.draw(st.permutations(_expressions(bounds)))
    from_cli = dataclasses.replace(
        cert.parse_bound_expressions(shuffled),
        confidence=bounds.confidence,
        correction=bounds.correction,
    )
    certificate = _unbounded(spec)
    expected = cert.gate(certificate, bounds)
    result = cert.gate(certificate, from_cli)
    assert comparable_rows(result.rows) == comparable_rows(expected.rows)
    # ... and, without ghosts, exactly what the certificate was assembled with.
    if not ghosts:
        assert comparable_rows(result.rows) == comparable_rows(spec.build().rows)
