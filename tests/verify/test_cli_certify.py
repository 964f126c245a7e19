"""``verify certify`` and ``verify bounds`` end to end (typer's CliRunner, in process)."""

from __future__ import annotations

import time

import pytest
from typer.testing import CliRunner

import certificates as cert
from verify.cli import app

MODELS = "tests.verify.models_for_certify"
runner = CliRunner()
# A small problem: the exact BKW score at one time, 4096 samples (score gap, Hyvärinen gap
# and FP residual; no ODE/SDE generation).
SMALL = ("-p", "landau-bkw-2d", "-m", f"{MODELS}:bkw2_exact", "--times", "2", "-n", "4096")


def certify(tmp_path, *args: str):
    out = tmp_path / "cert.nc"
    result = runner.invoke(
        app, ["certify", "--out", str(out), "--samples", "256", "--quiet", *args]
    )
    return result, out


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """One run first, so the timed run measures a warm process (compilation cached)."""
    start = time.perf_counter()
    result, _ = certify(tmp_path_factory.mktemp("warm"), *SMALL)
    return result, time.perf_counter() - start


def test_certify_small_problem_end_to_end(tmp_path, warm):
    start = time.perf_counter()
    result, out = certify(tmp_path, *SMALL, "--seed", "7")
    elapsed = time.perf_counter() - start
    assert result.exit_code == 0, result.output
    assert "verdict: PASS (exit 0)" in result.output
    assert "score_gap_relative" in result.output  # the summary table
    loaded = cert.read_certificate(out)
    assert loaded.verdict is cert.Verdict.PASS
    assert int(loaded.attrs["seed"]) == 7
    # "Under a few seconds" once compiled (2-core machine: measured ~1 s warm, ~6 s cold
    # including JIT compilation); a loose ceiling so that a loaded runner does not flake.
    assert warm[0].exit_code == 0, warm[0].output
    assert elapsed < 10.0, (elapsed, warm[1])


def test_failing_model_exits_1_and_still_writes(tmp_path):
    result, out = certify(
        tmp_path,
        "-p",
        "vp-gmm-2d",
        "-m",
        f"{MODELS}:vp_scaled",
        "--times",
        "0.5",
        "--samples",
        "1024",
    )
    assert result.exit_code == 1, result.output
    assert "verdict: FAIL (exit 1)" in result.output
    assert cert.read_certificate(out).verdict is cert.Verdict.FAIL


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["-p", "no-such-problem", "-m", f"{MODELS}:vp_exact"], 4, "unknown problem"),
        (["-p", "vp-gmm-2d", "-m", "no/such/model.py:f"], 4, "model file not found"),
        (
            ["-p", "vp-gmm-2d", "-m", "tests.verify.models_for_tests:nan_score", "--role", "score"],
            4,
            "NaN",
        ),
        (
            [
                "-p",
                "vp-gmm-2d",
                "-m",
                "tests.verify.models_for_tests:wrong_shape",
                "--role",
                "score",
            ],
            4,
            "shape",
        ),
        (["-p", "vp-gmm-2d", "-m", f"{MODELS}:vp_exact", "--times", "0.5,x"], 2, "--times"),
        (["-p", "vp-gmm-2d", "-m", f"{MODELS}:vp_exact", "--times", "3"], 2, "outside"),
        (["-p", "vp-gmm-2d", "-m", f"{MODELS}:vp_exact", "--times", "nan"], 2, "finite"),
        (["-p", "vp-gmm-2d", "-m", f"{MODELS}:vp_exact", "--seed", str(2**64)], 2, "--seed"),
        (["-p", "vp-gmm-2d", "-m", f"{MODELS}:vp_exact", "--divergence", "maybe"], 2, "divergence"),
        (["-p", "vp-gmm-2d", "-m", f"{MODELS}:vp_exact", "--bound", "nonsense"], 2, "bound"),
    ],
)
def test_bad_input_is_one_line_with_documented_exit_code(tmp_path, args, code, message):
    result, out = certify(tmp_path, *args)
    assert result.exit_code == code, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: "), result.output
    assert message in lines[0]
    assert "Traceback" not in result.output
    assert not out.exists()  # nothing half-written


def test_bounds_command_prints_the_defaults():
    result = runner.invoke(app, ["bounds", "landau-bkw-2d"])
    assert result.exit_code == 0, result.output
    assert "flow_residual_relative" in result.output
    parsed = cert.parse_bounds(__import__("tomllib").loads(result.output), "stdout")
    assert "energy_drift" in parsed.checks


def test_certify_help_lists_the_options():
    result = runner.invoke(app, ["certify", "--help"])
    assert result.exit_code == 0
    for option in (
        "--problem",
        "--model",
        "--role",
        "--out",
        "--bounds",
        "--seed",
        "--samples",
        "--times",
        "--confidence",
        "--divergence",
        "--probes",
        "--float32",
        "--quiet",
    ):
        assert option in result.output


def test_float32_only_when_asked_and_recorded(tmp_path):
    # A fresh process: the test session itself runs with x64 on (tests/conftest.py), and
    # --float32 must leave JAX's default float32 in place.
    import subprocess
    import sys

    out = tmp_path / "f32.nc"
    # A log-density model: score gap by autodiff, log-form FP residual and the grid density
    # error all run in float32 (the grid path once refused float32: exit 70).
    model = f"{MODELS}:bkw2_log_density"
    args = [sys.executable, "-m", "verify", "certify", "-p", "landau-bkw-2d", "-m", model]
    args += ["--times", "2", "-n", "2048", "--float32"]
    done = subprocess.run(
        [*args, "--out", str(out), "--quiet"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    loaded = cert.read_certificate(out)
    assert int(loaded.attrs["x64"]) == 0
    assert __import__("json").loads(loaded.attrs["config_json"])["dtype"] == "float32"
