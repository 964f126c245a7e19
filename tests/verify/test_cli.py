"""The ``verify`` CLI: commands, exit codes, one-line errors, precedence of bounds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import netCDF4
import pytest
from typer.testing import CliRunner

import certificates as cert
from verify.cli import ExitCode, app

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "fixtures"
PASS_CERT = FIXTURES / "certs" / "example-pass.nc"
FAIL_CERT = FIXTURES / "certs" / "example-fail.nc"
STRICT_BOUNDS = FIXTURES / "bounds" / "strict.toml"

runner = CliRunner()

EXIT_CODE_PHRASES = (
    "0 PASS",
    "1 FAIL",
    "2 usage error",
    "3 INCONCLUSIVE",
    "4 invalid input",
    "70 internal error",
)


def invoke(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def assert_exit(args: tuple[str | Path, ...], expected: ExitCode) -> str:
    code, output = invoke(*args)
    assert code == expected, f"exit {code} != {int(expected)} for {args}:\n{output}"
    assert "Traceback" not in output, output
    return output


def assert_one_line_error(output: str, *fragments: str) -> None:
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output
    for fragment in fragments:
        assert fragment in errors[0], output


def tamper(tmp_path: Path, variable: str, value: float) -> Path:
    path = tmp_path / "tampered.nc"
    shutil.copy(PASS_CERT, path)
    with netCDF4.Dataset(path, "a") as data:
        data["score_gap"][variable][0] = value
    return path


def test_help_lists_commands_and_exit_codes():
    output = assert_exit(("--help",), ExitCode.PASS)
    for command in ("show", "gate", "report", "env"):
        assert command in output
    words = " ".join(output.split())  # help text is wrapped to the terminal width
    for phrase in EXIT_CODE_PHRASES:
        assert phrase in words, f"{phrase!r} missing from --help"


def test_version():
    output = assert_exit(("--version",), ExitCode.PASS)
    assert output.startswith("solvercert ")


@pytest.mark.parametrize(
    ("path", "expected"),
    [(PASS_CERT, ExitCode.PASS), (FAIL_CERT, ExitCode.FAIL)],
)
def test_gate_exit_code_follows_stored_verdict(path, expected):
    output = assert_exit(("gate", path), expected)
    verdict = cert.read_certificate(path).verdict
    assert f"verdict: {verdict}" in output


def test_show_prints_checks_and_succeeds_for_failing_certificate():
    output = assert_exit(("show", FAIL_CERT), ExitCode.PASS)
    for check in ("score_gap", "hyvarinen_gap", "fp_residual", "sample_gap", "mass_drift"):
        assert check in output
    assert "FAIL" in output


def test_gate_with_stricter_bounds_file_fails():
    assert_exit(("gate", PASS_CERT, "--bounds", STRICT_BOUNDS), ExitCode.FAIL)


def test_gate_inconclusive_exit_code():
    # score_gap(t=0.1) = 2.1e-2 with a stderr of 1.9e-3: the interval straddles 2.2e-2.
    output = assert_exit(
        ("gate", PASS_CERT, "--bound", "score_gap@0.1<=2.2e-2"), ExitCode.INCONCLUSIVE
    )
    assert "INCONCLUSIVE" in output


def test_cli_bound_overrides_file_which_overrides_stored(tmp_path):
    bounds = tmp_path / "bounds.toml"
    bounds.write_text("[bounds]\nscore_gap = { max = 1e-2 }\n")
    assert_exit(("gate", PASS_CERT, "--bounds", bounds), ExitCode.FAIL)
    assert_exit(
        ("gate", PASS_CERT, "--bounds", bounds, "--bound", "score_gap<=5e-2"), ExitCode.PASS
    )


def test_bounds_in_pyproject(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\n[tool.solvercert.bounds]\nscore_gap.max = 1e-2\n')
    assert_exit(("gate", PASS_CERT, "--bounds", pyproject), ExitCode.FAIL)


def test_gate_out_writes_regated_certificate(tmp_path):
    out = tmp_path / "regated.nc"
    assert_exit(("gate", PASS_CERT, "--bounds", STRICT_BOUNDS, "--out", out), ExitCode.FAIL)
    regated = cert.read_certificate(out)
    assert regated.verdict is cert.Verdict.FAIL
    assert regated.attrs["confidence"] == pytest.approx(0.99, rel=0, abs=0)
    assert assert_exit(("gate", out), ExitCode.FAIL)


def test_gate_out_to_missing_folder_is_usage_error_and_writes_nothing(tmp_path):
    out = tmp_path / "missing" / "regated.nc"
    output = assert_exit(("gate", PASS_CERT, "--out", out), ExitCode.USAGE)
    assert_one_line_error(output, str(out))
    assert not out.parent.exists()


@pytest.mark.parametrize(
    "args",
    [
        ("gate", PASS_CERT, "--bound", "score_gap<1e-3"),
        ("gate", PASS_CERT, "--bound", "score_gap<=abc"),
        ("gate", PASS_CERT, "--confidence", "1.5"),
        ("gate", PASS_CERT, "--correction", "holm"),
        ("gate", PASS_CERT, "--no-such-option"),
        ("report", PASS_CERT, "--format", "pdf"),
        ("gate",),
    ],
)
def test_usage_errors_exit_2(args):
    assert_exit(args, ExitCode.USAGE)


@pytest.mark.parametrize("command", ["show", "gate", "report"])
@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "no such file"),
        (b"", "not a NetCDF-4 file"),
        (b"garbage" * 100, "not a NetCDF-4 file"),
        ("truncated", "corrupt or truncated"),
        ("foreign", "not a solvercert certificate"),
    ],
)
def test_invalid_certificate_exits_4_with_one_line(tmp_path, command, content, fragment):
    path = tmp_path / "bad.nc"
    if content == "truncated":
        data = PASS_CERT.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif content == "foreign":
        with netCDF4.Dataset(path, "w") as foreign:
            foreign.createDimension("x", 3)
            foreign.createVariable("v", "f8", ("x",))[:] = [1.0, 2.0, 3.0]
    elif content is not None:
        path.write_bytes(content)
    output = assert_exit((command, path), ExitCode.INVALID_INPUT)
    assert_one_line_error(output, str(path), fragment)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[bounds\n", "not valid TOML"),
        ("[bounds]\nscore_gap = { max = 1, min = 0 }\n", "either max or min"),
        ("[bounds]\nscore_gap = { mx = 1 }\n", "unknown key"),
        ("confidence = 2\n", "confidence"),
        ('[bounds.score_gap.times]\n"0.7" = { max = 1 }\n', "not a certification time"),
    ],
)
def test_invalid_bounds_file_exits_4(tmp_path, text, fragment):
    bounds = tmp_path / "bounds.toml"
    bounds.write_text(text)
    output = assert_exit(("gate", PASS_CERT, "--bounds", bounds), ExitCode.INVALID_INPUT)
    assert_one_line_error(output, fragment)


def test_missing_bounds_file_exits_4(tmp_path):
    output = assert_exit(
        ("gate", PASS_CERT, "--bounds", tmp_path / "nope.toml"), ExitCode.INVALID_INPUT
    )
    assert_one_line_error(output, "does not exist")


@pytest.mark.parametrize("variable", ["score_gap", "score_gap_stderr"])
def test_tampered_certificate_is_rejected_as_tampered(tmp_path, variable):
    tampered = tamper(tmp_path, variable, 1e-9)
    for command in ("gate", "show", "report"):
        output = assert_exit((command, tampered), ExitCode.INVALID_INPUT)
        assert_one_line_error(output, "content_sha256", "modified or corrupted")


def test_tampered_certificate_can_be_shown_without_verification(tmp_path):
    # Changing a standard error keeps the file consistent with the schema; only the
    # digest reveals the change.
    tampered = tamper(tmp_path, "score_gap_stderr", 1e-9)
    output = assert_exit(("show", tampered, "--no-verify"), ExitCode.PASS)
    assert "digest not verified" in output
    assert "score_gap" in output


@pytest.mark.parametrize("fmt", ["md", "html", "json", "junit"])
def test_report_formats_to_stdout_and_file(tmp_path, fmt):
    stdout = assert_exit(("report", FAIL_CERT, "--format", fmt), ExitCode.PASS)
    assert "FAIL" in stdout
    out = tmp_path / f"report.{fmt}"
    assert_exit(("report", FAIL_CERT, "--format", fmt, "--out", out), ExitCode.PASS)
    assert out.read_text(encoding="utf-8") == cert.render_report(
        cert.read_certificate(FAIL_CERT), cert.ReportFormat(fmt)
    )


def test_report_json_is_strict_and_stable():
    code, output = invoke("report", PASS_CERT, "--format", "json")
    assert code == 0, output
    document = json.loads(output)
    assert document["verdict"] == "PASS"
    assert document["problem_id"] == "vp-gmm-2d"
    assert {"name", "time", "estimate", "lower", "upper", "threshold"} <= set(document["checks"][0])


def test_internal_error_exits_70_without_traceback(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("verify.cli.format_table", broken)
    monkeypatch.delenv("SOLVERCERT_DEBUG", raising=False)
    output = assert_exit(("show", PASS_CERT), ExitCode.INTERNAL)
    assert_one_line_error(output, "internal error", "boom")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, check=False, cwd=ROOT
    )


def test_python_dash_m_verify_runs():
    done = _run("-m", "verify", "gate", str(FAIL_CERT))
    assert done.returncode == ExitCode.FAIL, done.stdout + done.stderr


def test_gate_does_not_import_jax():
    script = (
        "import sys\n"
        "from verify.cli import main\n"
        f"sys.argv = ['verify', 'gate', {str(PASS_CERT)!r}]\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    assert done.code == 0, done.code\n"
        "assert 'jax' not in sys.modules, 'gate imported jax'\n"
    )
    done = _run("-c", script)
    assert done.returncode == 0, done.stdout + done.stderr


def test_env_switches_on_float64_in_the_cli_entry():
    done = _run("-m", "verify", "env")
    assert done.returncode == 0, done.stderr
    assert "x64        true" in done.stdout, done.stdout


def test_readme_documents_every_exit_code():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for code in ExitCode:
        assert f"| {int(code)} |" in readme, f"exit code {int(code)} missing from README"
