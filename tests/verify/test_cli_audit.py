"""``verify audit`` and ``verify certify --trajectories`` end to end (typer's CliRunner)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import certificates as cert
from tests.verify.trajectory_artefacts import write_numpy_artefacts
from verify.cli import ExitCode, app

runner = CliRunner()
N = 2000  # as test_trajectory_certify.py: compiled kernels are shared within a session


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return write_numpy_artefacts(tmp_path_factory.mktemp("numpy"), N)


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def assert_one_line_error(result, *fragments):
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], result.output


# --- audit -----------------------------------------------------------------------------


def test_audit_pass_writes_a_certificate(files, tmp_path):
    out = tmp_path / "audit.nc"
    result = invoke("audit", files / "rotating.nc", "--out", out)
    assert result.exit_code == ExitCode.PASS, result.output
    assert "verdict: PASS (exit 0)" in result.output
    assert "energy_drift" in result.output  # the table
    loaded = cert.read_certificate(out)
    assert loaded.verdict is cert.Verdict.PASS
    assert loaded.problem_id == "none"
    assert loaded.model_spec == str(files / "rotating.nc")


def test_audit_fail_and_tolerances(files):
    leaky = files / "leaky.nc"
    result = invoke("audit", leaky, "--quiet")
    assert result.exit_code == ExitCode.FAIL, result.output
    assert result.output.strip() == "verdict: FAIL (exit 1)"
    # 7.84% energy lost by the last frame: a 10% tolerance passes it.
    loose = invoke("audit", leaky, "--tolerance", "energy=0.1", "-q")
    assert loose.exit_code == ExitCode.PASS, loose.output
    only_mass = invoke("audit", leaky, "--invariants", "mass,momentum", "-q")
    assert only_mass.exit_code == ExitCode.PASS, only_mass.output


def test_audit_verdict_is_what_gate_reads(files, tmp_path):
    out = tmp_path / "a.nc"
    invoke("audit", files / "leaky.nc", "-q", "--out", out)
    regated = invoke("gate", out, "--bound", "energy_drift<=0.1")
    assert regated.exit_code == ExitCode.PASS, regated.output


@pytest.mark.parametrize(
    ("args", "code", "fragments"),
    [
        (("--invariants", "heat"), ExitCode.USAGE, ("--invariants",)),
        (("--tolerance", "energy=big"), ExitCode.USAGE, ("not a number",)),
        (("--confidence", "2"), ExitCode.USAGE, ("--confidence",)),
    ],
)
def test_audit_usage_errors(files, args, code, fragments):
    result = invoke("audit", files / "rotating.nc", *args)
    assert result.exit_code == code, result.output
    assert_one_line_error(result, *fragments)


def test_audit_invalid_inputs(files, tmp_path):
    corrupt = tmp_path / "corrupt.nc"
    corrupt.write_bytes((files / "rotating.nc").read_bytes()[:300])
    for path, fragment in (
        (tmp_path / "missing.nc", "no such file"),
        (corrupt, "corrupt or truncated"),
        (files / "gmm_weighted.nc", "one frame"),
    ):
        result = invoke("audit", path)
        assert result.exit_code == ExitCode.INVALID_INPUT, result.output
        assert_one_line_error(result, fragment)
    no_entropy = invoke("audit", files / "gmm_exact.nc", "--invariants", "entropy")
    assert no_entropy.exit_code == ExitCode.INVALID_INPUT, no_entropy.output
    assert_one_line_error(no_entropy, "log_density")


def test_audit_unwritable_output(files, tmp_path):
    result = invoke("audit", files / "rotating.nc", "--out", tmp_path / "no" / "a.nc")
    assert result.exit_code == ExitCode.USAGE, result.output
    assert_one_line_error(result, "cannot write")


# --- certify --trajectories ------------------------------------------------------------


def test_certify_trajectories_pass_and_fail(files, tmp_path):
    out = tmp_path / "c.nc"
    common = ("certify", "-p", "vp-gmm-2d", "--out", out, "-q")
    result = invoke(*common, "--trajectories", files / "gmm_exact.nc")
    assert result.exit_code == ExitCode.PASS, result.output
    assert cert.read_certificate(out).verdict is cert.Verdict.PASS
    failing = invoke(*common, "-t", files / "gmm_score13.nc", "--times", "0.5")
    assert failing.exit_code == ExitCode.FAIL, failing.output
    assert "score_gap_relative" in failing.output
    # --bound overrides the default, as for models.
    loose = invoke(
        *common,
        "-t",
        files / "gmm_score13.nc",
        "--times",
        "0.5",
        "--bound",
        "score_gap_relative<=0.2",
    )
    assert loose.exit_code == ExitCode.PASS, loose.output


@pytest.mark.parametrize(
    ("args", "code", "fragments"),
    [
        (("-m", "x.py:f", "-t", "{f}"), ExitCode.USAGE, ("exactly one of",)),
        ((), ExitCode.USAGE, ("exactly one of",)),
        (("-t", "{f}", "--times", "0.3"), ExitCode.USAGE, ("not a stored time",)),
        (("-t", "{f}", "--samples", "3"), ExitCode.USAGE, ("--samples",)),
        (("-t", "{f}", "--role", "score"), ExitCode.USAGE, ("--role: only with --model",)),
        (("-t", "{missing}"), ExitCode.INVALID_INPUT, ("no such file",)),
        (("-t", "{f}", "-p", "ve-gmm-2d"), ExitCode.INVALID_INPUT, ("declares problem_id",)),
        (("-t", "{f}", "-p", "no-such-problem"), ExitCode.INVALID_INPUT, ("no-such-problem",)),
    ],
)
def test_certify_trajectories_errors(files, tmp_path, args, code, fragments):
    names = {"f": files / "gmm_exact.nc", "missing": tmp_path / "missing.nc"}
    args = tuple(a.format(**names) for a in args)
    problem = () if "-p" in args else ("-p", "vp-gmm-2d")
    result = invoke("certify", *problem, "--out", tmp_path / "c.nc", "-q", *args)
    assert result.exit_code == code, result.output
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "c.nc").exists()
