"""Regression against a baseline certificate: margins, the Δ interval, NaN and noise."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path
from statistics import NormalDist

import numpy as np
import pytest

import certificates as cert
from tests.helpers import energy_drift_check, make_certificate, score_gap_check

PASS, FAIL, INCONCLUSIVE = cert.Verdict.PASS, cert.Verdict.FAIL, cert.Verdict.INCONCLUSIVE
REPO = Path(__file__).resolve().parents[2]
BOUNDS = {"bounds": {"score_gap": {"max": 1.0}, "energy_drift": {"max": 1e-8}}}
SE = 1e-4  # score_gap_check's default standard error at every time
NO_MARGIN = cert.RegressionMargins()


def score_gap(estimate=(1e-3, 2e-3, 3e-3), stderr=SE, **overrides) -> cert.Certificate:
    """score_gap (3 times, normal) bounded <= 1 and an exact energy_drift bounded <= 1e-8."""
    checks = {
        "score_gap": [score_gap_check(estimate, np.broadcast_to(stderr, (3,)), **overrides)],
        "invariants": [energy_drift_check()],
    }
    return make_certificate(checks=checks, bounds=BOUNDS)


def aggregate(
    name: str, estimate: float, stderr: float, bounds: dict, **fields
) -> cert.Certificate:
    check = score_gap_check(estimate, stderr, name=name, **fields)
    return make_certificate(checks={"samples": [check]}, bounds={"bounds": bounds})


def rows(result: cert.BaselineResult, check: str = "score_gap") -> list[cert.RegressionRow]:
    return [row for row in result.rows if row.check == check]


def z(level: float) -> float:
    return NormalDist().inv_cdf(0.5 + level / 2.0)


# --- parsing margins --------------------------------------------------------------------


def test_parse_margins_all_forms():
    margins = cert.parse_regression_margins(
        ["10%", "1e-3", "score_gap=5%", "score_gap=2e-4", "energy_drift=0"]
    )
    assert margins.relative == pytest.approx(0.1, rel=1e-15, abs=0.0)
    assert margins.absolute == 1e-3
    assert margins.per_check == {
        "score_gap": (pytest.approx(0.05, rel=1e-15, abs=0.0), 2e-4),
        "energy_drift": (0.0, 0.0),
    }
    # A per-check margin replaces the global pair entirely (absolute 0 unless given).
    assert cert.parse_regression_margins(["1e-3", "score_gap=10%"]).pair("score_gap") == (
        pytest.approx(0.1, rel=1e-15, abs=0.0),
        0.0,
    )
    assert cert.parse_regression_margins([]) == NO_MARGIN


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("ten%", "is not a number"),
        ("1e-3x", "is not a number"),
        ("-5%", "finite and >= 0"),
        ("nan", "finite and >= 0"),
        ("inf%", "finite and >= 0"),
        ("score gap=1%", "is not a check name"),
        ("=1%", "expected 10%"),
        ("a=b=1%", "expected 10%"),
        ("", "expected 10%"),
    ],
)
def test_parse_margin_errors_are_one_line(text, fragment):
    with pytest.raises(cert.BoundsError, match=fragment) as info:
        cert.parse_regression_margins([text])
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("texts", [["10%", "5%"], ["1e-3", "2e-3"], ["x=1%", "x=2%"]])
def test_same_margin_twice_is_an_error(texts):
    with pytest.raises(cert.BoundsError, match="given twice"):
        cert.parse_regression_margins(texts)


def test_margins_validate_when_built_directly():
    with pytest.raises(cert.BoundsError, match="relative regression margin for x"):
        cert.RegressionMargins(per_check={"x": (-0.1, 0.0)})


def test_margin_formula():
    margins = cert.RegressionMargins(relative=0.1, absolute=1e-3)
    # m = max(abs, rel * |q_base|): the absolute floor wins for small baselines.
    assert margins.margin("c", 1e-3) == 1e-3
    assert margins.margin("c", -0.5) == pytest.approx(0.05, rel=1e-15, abs=0.0)


# --- the comparison -------------------------------------------------------------------


def test_identical_certificates_are_within_the_noise():
    base = score_gap()
    result = cert.compare_to_baseline(score_gap(), base, margins=NO_MARGIN)
    # Δ = 0 with se_Δ = sqrt(2)·1e-4 > 0 straddles m = 0; the exact check's Δ is exactly 0.
    assert [row.verdict for row in rows(result)] == [INCONCLUSIVE] * 3
    assert all("within the noise" in row.reason for row in rows(result))
    assert rows(result, "energy_drift")[0].verdict is PASS
    assert result.verdict is INCONCLUSIVE


def test_delta_interval_is_bonferroni_normal_with_both_stderrs():
    result = cert.compare_to_baseline(score_gap(), score_gap(), margins=NO_MARGIN)
    # k = 3 random rows (energy_drift is exact): each at 1 - 0.05/3.
    assert result.n_intervals == 3
    level = 1.0 - 0.05 / 3.0
    assert result.interval_confidence == pytest.approx(level, rel=1e-15, abs=0.0)
    half_width = z(level) * math.sqrt(2.0) * SE
    row = rows(result)[0]
    assert row.interval_method is cert.IntervalMethod.NORMAL
    assert (row.lower, row.upper) == (
        pytest.approx(-half_width, rel=1e-12, abs=0.0),
        pytest.approx(half_width, rel=1e-12, abs=0.0),
    )


def test_change_within_the_noise_is_never_a_regression():
    # Worse by 2e-4 < z·sqrt(2)·se ≈ 3.4e-4: not distinguishable from noise.
    current = score_gap((1.2e-3, 2.2e-3, 3.2e-3))
    result = cert.compare_to_baseline(current, score_gap(), margins=NO_MARGIN)
    assert [row.verdict for row in rows(result)] == [INCONCLUSIVE] * 3


def test_change_beyond_both_intervals_is_a_regression():
    current = score_gap((2e-3, 3e-3, 4e-3))
    result = cert.compare_to_baseline(current, score_gap(), margins=NO_MARGIN)
    assert [row.verdict for row in rows(result)] == [FAIL] * 3
    assert rows(result)[0].delta == pytest.approx(1e-3, rel=1e-12, abs=0.0)
    assert "lower bound exceeds the margin" in rows(result)[0].reason
    assert result.verdict is FAIL


def test_improvement_passes():
    current = score_gap((0.2e-3, 1e-3, 2e-3))
    result = cert.compare_to_baseline(current, score_gap(), margins=NO_MARGIN)
    assert [row.verdict for row in rows(result)] == [PASS] * 3
    assert result.verdict is PASS


def test_relative_and_absolute_margins():
    # Worse by 1e-3 everywhere; the Δ interval is 1e-3 ± 3.4e-4.
    current, base = score_gap((2e-3, 3e-3, 4e-3)), score_gap()

    def verdicts(margins: cert.RegressionMargins) -> list[cert.Verdict]:
        return [
            row.verdict for row in rows(cert.compare_to_baseline(current, base, margins=margins))
        ]

    # 100 % of the baseline (1e-3, 2e-3, 3e-3): on the margin at t = 0.1, clear after.
    assert verdicts(cert.RegressionMargins(relative=1.0)) == [INCONCLUSIVE, PASS, PASS]
    assert verdicts(cert.RegressionMargins(absolute=2e-3)) == [PASS] * 3
    assert verdicts(cert.RegressionMargins(absolute=5e-4)) == [FAIL] * 3
    # max(abs, rel·|q|): the relative part lifts later times over the absolute floor.
    assert verdicts(cert.RegressionMargins(relative=0.5, absolute=5e-4)) == [
        FAIL,
        INCONCLUSIVE,
        PASS,
    ]


def test_per_check_margin_replaces_the_global_one():
    current, base = score_gap((2e-3, 3e-3, 4e-3)), score_gap()
    margins = cert.parse_regression_margins(["1%", "score_gap=2e-3"])
    result = cert.compare_to_baseline(current, base, margins=margins)
    assert [row.margin for row in rows(result)] == [2e-3] * 3
    assert [row.verdict for row in rows(result)] == [PASS] * 3


def test_per_check_margin_for_an_absent_check_is_an_error():
    margins = cert.parse_regression_margins(["score_gapp=10%"])
    with pytest.raises(cert.BoundsError, match="score_gapp: no such check"):
        cert.compare_to_baseline(score_gap(), score_gap(), margins=margins)


def test_higher_is_better_checks_are_mirrored():
    bounds = {"coverage": {"min": 0.5}}
    base = aggregate("coverage", 0.9, 0.01, bounds)
    worse = cert.compare_to_baseline(
        aggregate("coverage", 0.8, 0.01, bounds), base, margins=NO_MARGIN
    )
    better = cert.compare_to_baseline(
        aggregate("coverage", 0.95, 0.01, bounds), base, margins=NO_MARGIN
    )
    (row,) = worse.rows
    assert row.comparison is cert.Comparison.AT_LEAST
    assert row.delta == pytest.approx(0.1, rel=1e-12, abs=0.0)
    assert row.lower > 0.0
    assert row.verdict is FAIL
    assert better.rows[0].verdict is PASS


def test_nan_current_estimate_fails_with_its_reason():
    current = score_gap((math.nan, 2e-3, 3e-3), reason=["model returned NaN", "", ""])
    result = cert.compare_to_baseline(current, score_gap(), margins=NO_MARGIN)
    first = rows(result)[0]
    assert first.verdict is FAIL
    assert "current estimate is NaN" in first.reason
    assert "model returned NaN" in first.reason


def test_nan_baseline_is_not_compared():
    base = score_gap((math.nan, 2e-3, 3e-3))
    result = cert.compare_to_baseline(score_gap(), base, margins=NO_MARGIN)
    assert [row.time for row in rows(result)] == [0.5, 1.0]
    assert cert.NotCompared("score_gap", 0.1, "baseline estimate is NaN") in result.not_compared


def test_infinite_stderr_is_inconclusive_even_for_a_large_change():
    current = score_gap((1.0, 2e-3, 3e-3), stderr=(math.inf, SE, SE), reason=["heavy tail", "", ""])
    result = cert.compare_to_baseline(current, score_gap(), margins=NO_MARGIN)
    first = rows(result)[0]
    assert first.verdict is INCONCLUSIVE
    assert "standard error is not finite" in first.reason
    assert "current: heavy tail" in first.reason


def test_unbounded_missing_and_mismatched_checks_are_listed_not_compared():
    extra = score_gap_check(name="hyvarinen_gap")
    current = make_certificate(
        checks={"score_gap": [score_gap_check(), extra]},
        bounds={"bounds": {"score_gap": {"times": {"0.5": {"max": 1.0}}}}},
    )
    base = make_certificate(
        checks={"score_gap": [score_gap_check(), extra], "invariants": [energy_drift_check()]},
        bounds=BOUNDS,
    )
    result = cert.compare_to_baseline(current, base, margins=NO_MARGIN)
    assert [(row.check, row.time) for row in result.rows] == [("score_gap", 0.5)]
    skipped = {(entry.check, entry.time): entry.reason for entry in result.not_compared}
    assert skipped[("score_gap", 0.1)].startswith("no bound")
    assert skipped[("hyvarinen_gap", 1.0)].startswith("no bound")
    assert skipped[("energy_drift", None)].startswith("not in the certificate")


def test_times_are_matched_with_the_gate_tolerance():
    base = make_certificate(
        checks={"score_gap": [score_gap_check()]},
        bounds={"bounds": {"score_gap": {"max": 1.0}}},
        times=(0.1 + 1e-13, 0.5, 2.0),
    )
    current = make_certificate(
        checks={"score_gap": [score_gap_check()]}, bounds={"bounds": {"score_gap": {"max": 1.0}}}
    )
    result = cert.compare_to_baseline(current, base, margins=NO_MARGIN)
    assert [row.time for row in result.rows] == [0.1, 0.5]
    assert cert.NotCompared("score_gap", 1.0, "time not in the baseline") in result.not_compared


def test_nothing_compared_is_inconclusive():
    base = aggregate("other", 1.0, 0.1, {"other": {"max": 2.0}})
    result = cert.compare_to_baseline(score_gap(), base, margins=NO_MARGIN)
    assert result.rows == ()
    assert result.verdict is INCONCLUSIVE


def test_another_problem_is_an_error():
    base = make_certificate(problem_id="landau-bkw-2d")
    with pytest.raises(cert.BaselineError, match=r"'landau-bkw-2d'.*'vp-gmm-2d'"):
        cert.compare_to_baseline(make_certificate(), base, margins=NO_MARGIN)


def test_confidence_and_correction_override_the_certificate():
    result = cert.compare_to_baseline(
        score_gap(), score_gap(), margins=NO_MARGIN, confidence=0.9, correction="none"
    )
    assert result.interval_confidence == 0.9
    half_width = z(0.9) * math.sqrt(2.0) * SE
    assert rows(result)[0].upper == pytest.approx(half_width, rel=1e-12, abs=0.0)


def test_chebyshev_on_either_side_uses_the_chebyshev_multiplier():
    bounds = {"drift": {"max": 1.0}}
    current = aggregate("drift", 0.5, 0.03, bounds, interval_method=cert.IntervalMethod.CHEBYSHEV)
    base = aggregate("drift", 0.5, 0.04, bounds)
    (row,) = cert.compare_to_baseline(current, base, margins=NO_MARGIN).rows
    # k = 1: level 0.95, half-width sqrt(0.03² + 0.04²)/sqrt(0.05).
    assert row.interval_method is cert.IntervalMethod.CHEBYSHEV
    assert row.upper == pytest.approx(0.05 / math.sqrt(0.05), rel=1e-12, abs=0.0)


def fixed(estimate: float, half_width: float, confidence: float) -> cert.Certificate:
    return aggregate(
        "drift",
        estimate,
        0.0,
        {"drift": {"max": 1.0}},
        interval_method=cert.IntervalMethod.FIXED,
        evidence=cert.Evidence.EMPIRICAL,
        confidence=confidence,
        lower=estimate - half_width,
        upper=estimate + half_width,
    )


def test_fixed_intervals_are_differenced_at_their_joint_level():
    # Each stored at 0.999: both hold with probability >= 0.998 >= 0.95 (union bound).
    (row,) = cert.compare_to_baseline(
        fixed(0.5, 0.01, 0.999), fixed(0.3, 0.02, 0.999), margins=NO_MARGIN
    ).rows
    assert (row.lower, row.upper) == (
        pytest.approx(0.17, rel=1e-12, abs=0.0),
        pytest.approx(0.23, rel=1e-12, abs=0.0),
    )
    assert row.verdict is FAIL


def test_fixed_intervals_below_the_required_joint_level_are_inconclusive():
    # 0.95 each holds jointly at 0.90 only, below the required 0.95.
    (row,) = cert.compare_to_baseline(
        fixed(0.5, 0.01, 0.95), fixed(0.3, 0.02, 0.95), margins=NO_MARGIN
    ).rows
    assert row.verdict is INCONCLUSIVE
    assert "jointly at level 0.9 only" in row.reason


def test_fixed_side_leaves_the_rest_of_alpha_to_the_normal_side():
    base = aggregate("drift", 0.3, 0.01, {"drift": {"max": 1.0}})
    (row,) = cert.compare_to_baseline(fixed(0.5, 0.01, 0.99), base, margins=NO_MARGIN).rows
    # α = 0.05 = 0.01 (fixed) + 0.04 (normal side at 0.96).
    normal = z(0.96) * 0.01
    assert row.lower == pytest.approx(0.2 - 0.01 - normal, rel=1e-12, abs=0.0)
    assert row.confidence == pytest.approx(0.95, rel=1e-12, abs=0.0)


def test_false_regression_rate_is_at_most_alpha():
    # Same true values, independent N(0, se²) noise in both runs, margin 0: any FAIL is a
    # false regression. Per row the two-sided Δ interval at 1 - α_row errs upward with
    # probability α_row/2 <= α_row. Tolerance: the binomial upper tail of 600 row trials
    # at rate α_row, exceeded with probability < 1e-3.
    rng = np.random.default_rng(20261122)
    truth = np.array([1e-3, 2e-3, 3e-3])
    replicates, k = 200, 3
    alpha_row = 0.05 / k
    false_rows = 0
    for _ in range(replicates):
        base = score_gap(tuple(truth + SE * rng.standard_normal(3)))
        current = score_gap(tuple(truth + SE * rng.standard_normal(3)))
        result = cert.compare_to_baseline(current, base, margins=NO_MARGIN)
        false_rows += sum(row.verdict is FAIL for row in rows(result))
    trials = replicates * k
    limit = _binomial_upper(trials, alpha_row, tail=1e-3)
    assert false_rows <= limit, f"{false_rows} false regressions in {trials} rows (limit {limit})"


def _binomial_upper(trials: int, p: float, *, tail: float) -> int:
    """Smallest c with P(Binomial(trials, p) > c) < tail."""
    cumulative = 0.0
    for c in range(trials + 1):
        cumulative += math.comb(trials, c) * p**c * (1.0 - p) ** (trials - c)
        if 1.0 - cumulative < tail:
            return c
    return trials


def test_regression_table_lists_rows_and_skips():
    current = score_gap((2e-3, 3e-3, 4e-3))
    base = make_certificate(
        checks={"score_gap": [score_gap_check()]}, bounds={"bounds": {"score_gap": {"max": 1.0}}}
    )
    text = cert.format_regression_table(
        cert.compare_to_baseline(current, base, margins=NO_MARGIN), "model/baseline.nc"
    )
    assert text.startswith("regressions against model/baseline.nc\n")
    assert "[6.614e-04, 1.339e-03]" in text
    assert "energy_drift at aggregate: not in the baseline" in text
    assert text.isascii()


def test_baseline_module_never_imports_jax():
    script = textwrap.dedent(
        """
        import sys
        import certificates._baseline as baseline
        from tests.helpers import make_certificate

        certificate = make_certificate()
        result = baseline.compare_to_baseline(
            certificate, certificate, margins=baseline.parse_regression_margins(["10%"])
        )
        baseline.format_regression_table(result, "b.nc")
        loaded = sorted(name for name in sys.modules if name.split(".")[0] in {"jax", "jaxlib"})
        assert not loaded, loaded
        print("ok")
        """
    )
    completed = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "ok"
