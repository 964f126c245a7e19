"""``verify gate --baseline``: exit codes, the regression table and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import certificates as cert
from tests.helpers import energy_drift_check, make_certificate, score_gap_check
from verify.cli import ExitCode, app

runner = CliRunner()
BOUNDS = {"bounds": {"score_gap": {"max": 5e-3}, "energy_drift": {"max": 1e-8}}}


def write(tmp_path: Path, name: str, estimate=(1e-3, 2e-3, 3e-3), **provenance) -> Path:
    # score_gap ± 1e-4 bounded <= 5e-3 (every estimate below passes it) and an exact drift.
    checks = {"score_gap": [score_gap_check(estimate)], "invariants": [energy_drift_check()]}
    certificate = make_certificate(checks=checks, bounds=BOUNDS, **provenance)
    return cert.write_certificate(certificate, tmp_path / name)


@pytest.fixture
def baseline(tmp_path: Path) -> Path:
    return write(tmp_path, "baseline.nc")


def assert_exit(args: list[str | Path], expected: ExitCode) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == expected, (
        f"exit {result.exit_code} != {int(expected)} for {args}:\n{result.output}"
    )
    assert "Traceback" not in result.output, result.output
    return result.output


def assert_one_line_error(output: str, *fragments: str) -> None:
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    for fragment in fragments:
        assert fragment in errors[0], output


@pytest.mark.parametrize(
    ("estimate", "margins", "expected", "regression"),
    [
        # Improved by 5e-4 .. 1e-3, far beyond z·sqrt(2)·1e-4 ≈ 3.4e-4.
        ((0.5e-3, 1.5e-3, 2.0e-3), [], ExitCode.PASS, "PASS"),
        # Worse by 1e-3 while every bound still passes: the baseline alone fails it.
        ((2e-3, 3e-3, 4e-3), [], ExitCode.FAIL, "FAIL"),
        # Unchanged: Δ = 0 straddles a zero margin (within the noise).
        ((1e-3, 2e-3, 3e-3), [], ExitCode.INCONCLUSIVE, "INCONCLUSIVE"),
        # Worse by 1e-3 but a 2e-3 absolute margin covers the whole Δ interval.
        ((2e-3, 3e-3, 4e-3), ["2e-3"], ExitCode.PASS, "PASS"),
        ((2e-3, 3e-3, 4e-3), ["1%", "score_gap=2e-3"], ExitCode.PASS, "PASS"),
        ((2e-3, 3e-3, 4e-3), ["10%"], ExitCode.FAIL, "FAIL"),
    ],
)
def test_exit_code_is_the_worse_of_bounds_and_regression(
    tmp_path, baseline, estimate, margins, expected, regression
):
    current = write(tmp_path, "current.nc", estimate)
    flags = [part for text in margins for part in ("--max-regression", text)]
    output = assert_exit(["gate", current, "--baseline", baseline, *flags], expected)
    assert f"regressions against {baseline}" in output
    assert f"bounds: PASS; regression: {regression}" in output
    assert f"verdict: {expected.name}" in output


def test_bound_failure_dominates_a_clean_regression(tmp_path, baseline):
    current = write(tmp_path, "current.nc", (0.5e-3, 1.5e-3, 2.0e-3))
    output = assert_exit(
        ["gate", current, "--baseline", baseline, "--bound", "score_gap<=1e-3"], ExitCode.FAIL
    )
    assert "bounds: FAIL; regression: PASS" in output


def test_without_baseline_the_gate_is_unchanged(tmp_path):
    current = write(tmp_path, "current.nc", (2e-3, 3e-3, 4e-3))
    output = assert_exit(["gate", current], ExitCode.PASS)
    assert "regressions against" not in output


@pytest.mark.parametrize(
    ("margins", "fragment"),
    [
        (["ten%"], "is not a number"),
        (["-1%"], "finite and >= 0"),
        (["5%", "10%"], "given twice"),
        (["score_gapp=10%"], "score_gapp: no such check"),
    ],
)
def test_bad_margins_are_usage_errors(tmp_path, baseline, margins, fragment):
    current = write(tmp_path, "current.nc")
    flags = [part for text in margins for part in ("--max-regression", text)]
    output = assert_exit(["gate", current, "--baseline", baseline, *flags], ExitCode.USAGE)
    assert_one_line_error(output, "--max-regression", fragment)


def test_margin_without_baseline_is_a_usage_error(tmp_path):
    current = write(tmp_path, "current.nc")
    output = assert_exit(["gate", current, "--max-regression", "10%"], ExitCode.USAGE)
    assert_one_line_error(output, "--max-regression needs --baseline")


def test_baseline_of_another_problem_is_invalid_input(tmp_path):
    current = write(tmp_path, "current.nc")
    other = write(tmp_path, "other.nc", problem_id="landau-bkw-2d")
    out = tmp_path / "regated.nc"
    output = assert_exit(
        ["gate", current, "--baseline", other, "--out", out], ExitCode.INVALID_INPUT
    )
    assert_one_line_error(output, "baseline is for problem 'landau-bkw-2d'")
    assert not out.exists()


def test_unreadable_baseline_is_invalid_input(tmp_path):
    current = write(tmp_path, "current.nc")
    missing = tmp_path / "missing.nc"
    output = assert_exit(["gate", current, "--baseline", missing], ExitCode.INVALID_INPUT)
    assert_one_line_error(output, "missing.nc")
