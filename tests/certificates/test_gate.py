"""The pure gate: bounds layered over the stored ones, rows, overrides, re-gating."""

from __future__ import annotations

import math

import pytest

import certificates as cert
from tests.helpers import TIMES, energy_drift_check, make_certificate, score_gap_check
from tests.strategies import comparable_rows

PASS, FAIL, INCONCLUSIVE = cert.Verdict.PASS, cert.Verdict.FAIL, cert.Verdict.INCONCLUSIVE


def bounds(**table) -> cert.Bounds:
    return cert.parse_bounds({"bounds": table}, "test")


@pytest.fixture(scope="module")
def certificate():
    # score_gap = 1e-3, 2e-3, 3e-3 ± 1e-4 at t = 0.1, 0.5, 1; energy_drift = 1e-10 exact.
    return make_certificate()


def test_default_certificate_rows(certificate):
    assert [(r.check, r.group, r.time) for r in certificate.rows] == [
        ("score_gap", "score_gap", 0.1),
        ("score_gap", "score_gap", 0.5),
        ("score_gap", "score_gap", 1.0),
        ("energy_drift", "invariants", None),
    ]
    assert certificate.verdict is PASS


def test_per_time_override_applies_only_at_its_time(certificate):
    # At t = 0.5 the estimate is 2e-3 ± z·1e-4 (z < 2.7), entirely above 1.5e-3.
    result = cert.gate(
        certificate, bounds(score_gap={"max": 5e-3, "times": {"0.5": {"max": 1.5e-3}}})
    )
    score_gap = [row for row in result.rows if row.check == "score_gap"]
    assert [row.threshold for row in score_gap] == [5e-3, 1.5e-3, 5e-3]
    assert [row.verdict for row in score_gap] == [PASS, FAIL, PASS]
    assert result.verdict is FAIL


def test_per_time_override_without_default_bounds_only_that_time(certificate):
    result = cert.gate(certificate, bounds(score_gap={"times": {"1.0": {"min": 1e-3}}}))
    assert [(row.check, row.time, row.verdict) for row in result.rows] == [
        ("score_gap", 1.0, PASS),
        ("energy_drift", None, PASS),
    ]


@pytest.mark.parametrize("time", ["0.3", "2", "0.5000001"])
def test_override_at_a_time_not_in_the_certificate_is_an_error(certificate, time):
    with pytest.raises(cert.BoundsError, match=f"score_gap: time {float(time):g} is not a"):
        cert.gate(certificate, bounds(score_gap={"max": 1.0, "times": {time: {"max": 1.0}}}))


def test_per_time_bound_on_an_aggregate_check_is_an_error(certificate):
    with pytest.raises(cert.BoundsError, match="energy_drift is an aggregate check"):
        cert.gate(certificate, bounds(energy_drift={"times": {"0.5": {"max": 1.0}}}))


def test_bound_on_a_missing_check_is_a_fail_row(certificate):
    result = cert.gate(certificate, bounds(coverage={"min": 0.9}))
    missing = result.rows[-1]
    assert (missing.check, missing.group, missing.time) == ("coverage", "", None)
    assert missing.verdict is FAIL
    assert math.isnan(missing.estimate)
    assert (missing.threshold, missing.comparison) == (0.9, cert.Comparison.AT_LEAST)
    assert "'coverage' is not in the certificate" in missing.reason
    assert result.verdict is FAIL
    regated = certificate.with_gate(result)
    assert cert.schema_problems(regated.tree) == []
    assert regated.verdict is FAIL


def test_rows_keep_the_certificate_order_whatever_the_bounds_order():
    checks = {"invariants": [energy_drift_check()], "score_gap": [score_gap_check()]}
    table = {"zeta": {"max": 1.0}, "score_gap": {"max": 1.0}, "energy_drift": {"max": 1.0}}
    certificate = make_certificate(checks=checks, bounds={"bounds": table})
    expected = ["energy_drift", "score_gap", "score_gap", "score_gap", "zeta"]
    assert [row.check for row in certificate.rows] == expected  # absent checks last
    reversed_bounds = cert.Bounds(checks=dict(reversed(certificate.stored_bounds.checks.items())))
    assert [row.check for row in cert.gate(certificate, reversed_bounds).rows] == expected


def test_unbounded_checks_give_no_rows_and_no_rows_is_inconclusive():
    certificate = make_certificate(bounds={"bounds": {}})
    assert certificate.rows == ()
    assert certificate.verdict is INCONCLUSIVE
    assert cert.schema_problems(certificate.tree) == []


def test_gate_layers_bounds_over_the_stored_ones(certificate):
    result = cert.gate(certificate, bounds(score_gap={"max": 2.5e-3}))
    by_check = {(row.check, row.time): row for row in result.rows}
    assert by_check[("score_gap", 1.0)].verdict is FAIL  # the new, tighter bound
    assert by_check[("energy_drift", None)].threshold == 1e-8  # the stored bound
    assert result.bounds.checks["energy_drift"] == certificate.stored_bounds.checks["energy_drift"]


def test_regating_with_no_new_bounds_reproduces_the_stored_rows(certificate):
    result = cert.gate(certificate, cert.Bounds())
    assert result.rows == certificate.rows
    assert result.verdict is certificate.verdict


def test_with_gate_gives_a_valid_certificate_with_a_matching_digest(certificate, tmp_path):
    result = cert.gate(certificate, cert.Bounds(confidence=0.99, correction="none"))
    regated = certificate.with_gate(result)
    assert cert.schema_problems(regated.tree) == []
    assert regated.content_sha256 == cert.content_digest(regated.tree)
    assert regated.content_sha256 != certificate.content_sha256
    assert regated.rows == result.rows
    assert regated.verdict is result.verdict
    assert regated.stored_bounds == result.bounds
    assert (regated.attrs["confidence"], regated.attrs["correction"]) == (0.99, "none")
    # The original is untouched and both survive a write → read.
    assert cert.content_digest(certificate.tree) == certificate.content_sha256
    read = cert.read_certificate(cert.write_certificate(regated, tmp_path / "regated.nc"))
    assert read.content_sha256 == regated.content_sha256


def test_nan_estimate_fails_with_its_stored_reason():
    check = score_gap_check(estimate=(1e-3, math.nan, 2e-3), reason=["", "solver diverged", ""])
    certificate = make_certificate(checks={"score_gap": [check]}, bounds={"bounds": {}})
    result = cert.gate(certificate, bounds(score_gap={"max": 5e-3}))
    assert [row.verdict for row in result.rows] == [PASS, FAIL, PASS]
    assert result.rows[1].reason == "estimate is NaN: solver diverged"
    regated = certificate.with_gate(result)
    assert cert.schema_problems(regated.tree) == []
    assert comparable_rows(regated.rows) == comparable_rows(result.rows)


def test_nan_estimate_without_a_reason_gets_a_default_one():
    check = score_gap_check(estimate=(1e-3, math.nan, 2e-3))
    certificate = make_certificate(checks={"score_gap": [check]})
    assert str(certificate.family("score_gap")["score_gap_reason"].values[1]) != ""
    assert certificate.rows[1].verdict is FAIL


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({"score_gap": {"max": 5e-3}}, PASS),
        ({"score_gap": {"max": 2.1e-3}}, FAIL),  # 3e-3 at t = 1 is far above
        ({"score_gap": {"max": 3e-3}}, INCONCLUSIVE),  # the interval at t = 1 contains τ
        ({"score_gap": {"min": 5e-3}}, FAIL),
        ({"energy_drift": {"max": 1e-10}}, PASS),  # exact: upper == τ passes
    ],
)
def test_overall_verdict(table, expected):
    certificate = make_certificate(bounds={"bounds": {}})
    result = cert.gate(certificate, bounds(**table))
    assert result.verdict is expected
    assert result.verdict is cert.combine(row.verdict for row in result.rows)


def test_rows_carry_the_stored_statistics(certificate):
    row = certificate.rows[0]
    assert (row.estimate, row.stderr, row.n_samples) == (1e-3, 1e-4, 4096)
    assert (row.evidence, row.interval_method) == (
        cert.Evidence.STATISTICAL,
        cert.IntervalMethod.NORMAL,
    )
    assert row.lower < row.estimate < row.upper
    assert TIMES[0] == row.time
