"""The pytest plugin (verify.pytest_plugin): fixture, options, marker, assertion message.

End-to-end tests run a generated test file in a fresh pytest process (so the plugin is
loaded through its ``pytest11`` entry point and switches float64 on itself), under
``--strict-markers`` and warnings as errors. Each certifies the exact BKW score (or a scaled
one) at t = 2 with n = 4096: at n = 1024 the Hyvärinen gap's heavy-tail diagnostic fires and
the exact score is INCONCLUSIVE; at 4096 it passes (measured; seeds 0–2).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import certificates as cert
from verify.pytest_plugin import assert_certificate_passes, certificate_file_stem

pytest_plugins = ["pytester"]

MODELS = "tests.verify.models_for_certify"

# The inner session: the same strictness as the repository's own configuration.
INNER_CONFIG = """
[tool.pytest.ini_options]
addopts = ["--strict-markers", "--strict-config"]
filterwarnings = ["error"]
"""

# Models are plain functions of the generated module (the pytester rootdir is not the repo's,
# so a SPEC into tests/ would not import). Scaling the exact score by (1 + ε) gives
# score_gap_relative = ε² exactly: 0.09 for 1.3 (FAIL against the default 0.05) and 0.0025
# for 1.05 (PASS by default; FAIL against the tightened 1e-3 below).
HEADER = """
import pytest

from solvers import landau_bkw_2d
from verify.testing import assert_certificate_passes

PROBLEM = landau_bkw_2d()
OPTIONS = {"times": (2.0,), "n_samples": 4096}


def exact(t, x):
    return PROBLEM.score(t, x)


def scaled(t, x):
    return 1.3 * PROBLEM.score(t, x)


def slightly_off(t, x):
    return 1.05 * PROBLEM.score(t, x)
"""


def make_tests(pytester: pytest.Pytester, body: str) -> None:
    pytester.makepyprojecttoml(INNER_CONFIG)
    pytester.makepyfile(test_models=HEADER + textwrap.dedent(body))


def outcome_message(result: pytest.RunResult) -> str:
    return "\n".join(result.outlines + result.errlines)


# --------------------------------------------------------------------------- end to end

# One inner session for the pass, fail and --solvercert-out tests: each inner session pays
# for importing JAX and compiling (~7 s on 2 cores). It runs in a subprocess, as
# ``runpytest_subprocess`` does: in-process runs would unload the modules JAX imports lazily
# (pytester restores sys.modules) and break the next import of their C extensions.
SESSION_TESTS = """
@pytest.mark.certificate
def test_exact(certify):
    certificate = certify(exact, "landau-bkw-2d", role="score", **OPTIONS)
    assert_certificate_passes(certificate)
    assert certificate.attrs["x64"] == 1
    assert certificate.model_spec == "<function test_models.exact>"


def test_scaled(certify):
    assert_certificate_passes(certify(scaled, "landau-bkw-2d", role="score", **OPTIONS))


def test_slightly_off(certify):
    assert_certificate_passes(certify(slightly_off, "landau-bkw-2d", role="score", **OPTIONS))


@pytest.mark.parametrize("model", [exact])
def test_twice(certify, model):
    certify(model, "landau-bkw-2d", role="score", **OPTIONS)
    certify(model, "landau-bkw-2d", role="score", seed=1, **OPTIONS)
"""


@dataclasses.dataclass(frozen=True)
class InnerSession:
    returncode: int
    stdout: str
    out: Path

    def outcome(self, test: str) -> str:
        """``PASSED`` or ``FAILED`` as reported by ``-rA`` for one test of the file."""
        for line in self.stdout.splitlines():
            if line.endswith(f"test_models.py::{test}") or f"test_models.py::{test} " in line:
                return line.split()[0]
        raise AssertionError(f"no outcome for {test}:\n{self.stdout}")


@pytest.fixture(scope="module")
def inner_session(tmp_path_factory: pytest.TempPathFactory) -> InnerSession:
    root = tmp_path_factory.mktemp("inner")
    (root / "pyproject.toml").write_text(INNER_CONFIG)
    (root / "test_models.py").write_text(HEADER + SESSION_TESTS)
    out = root / "certs" / "nested"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-rA",
            "-p",
            "no:cacheprovider",
            f"--solvercert-out={out}",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return InnerSession(done.returncode, done.stdout + done.stderr, out)


def test_passing_model_passes_in_float64(inner_session: InnerSession) -> None:
    assert inner_session.outcome("test_exact") == "PASSED", inner_session.stdout
    assert inner_session.outcome("test_slightly_off") == "PASSED", inner_session.stdout


def test_failing_model_fails_with_the_verdict_table(inner_session: InnerSession) -> None:
    assert inner_session.outcome("test_scaled") == "FAILED", inner_session.stdout
    assert inner_session.returncode == pytest.ExitCode.TESTS_FAILED, inner_session.stdout
    lines = inner_session.stdout.splitlines()
    expected = [
        "*AssertionError: certificate verdict is FAIL, expected PASS; "
        "not passing: score_gap_relative at t = 2*",
        "*check*time*estimate*interval*bound*verdict*",
        "*score_gap_relative*2*<= 5.000e-02*FAIL*",
    ]
    pytest.LineMatcher(lines).fnmatch_lines(expected)
    assert "assert False" not in inner_session.stdout


def test_out_dir_gets_one_valid_certificate_per_call(inner_session: InnerSession) -> None:
    out = inner_session.out
    assert f"solvercert: wrote 5 certificate(s) to {out}" in inner_session.stdout
    names = sorted(path.name for path in out.iterdir())
    assert names == [
        "test_models.py_test_exact.nc",
        "test_models.py_test_scaled.nc",
        "test_models.py_test_slightly_off.nc",
        "test_models.py_test_twice_exact-2.nc",
        "test_models.py_test_twice_exact.nc",
    ], names
    verdicts, seeds = {}, {}
    for path in out.iterdir():
        certificate = cert.read_certificate(path)  # validates schema and digest
        assert certificate.problem_id == "landau-bkw-2d"
        verdicts[path.stem], seeds[path.stem] = certificate.verdict, certificate.attrs["seed"]
    assert verdicts["test_models.py_test_scaled"] is cert.Verdict.FAIL
    assert seeds["test_models.py_test_twice_exact-2"] == 1


def test_bounds_file_tightens_a_bound(pytester: pytest.Pytester) -> None:
    make_tests(
        pytester,
        """
        def test_slightly_off(certify):
            certificate = certify(slightly_off, "landau-bkw-2d", role="score", **OPTIONS)
            assert_certificate_passes(certificate)
        """,
    )
    bounds = pytester.makefile(".toml", strict="[bounds]\nscore_gap_relative = { max = 1e-3 }\n")
    # Without the file the model passes (test_passing_model_passes_in_float64).
    result = pytester.runpytest_subprocess(f"--solvercert-bounds={bounds}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*score_gap_relative*2*<= 1.000e-03*FAIL*"])


def test_bad_bounds_file_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing():\n    pass\n")
    bounds = pytester.makefile(".toml", bad="[bounds]\nscore_gap_relative = 3\n")
    result = pytester.runpytest_inprocess(f"--solvercert-bounds={bounds}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR, outcome_message(result)
    result.stderr.fnmatch_lines(["*--solvercert-bounds:*bad.toml*"])


def test_marker_is_registered_and_selects(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(INNER_CONFIG)
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.certificate
        def test_marked():
            pass

        def test_unmarked():
            pass
        """
    )
    result = pytester.runpytest_inprocess("-m", "certificate")
    result.assert_outcomes(passed=1, deselected=1)
    markers = pytester.runpytest_inprocess("--markers")
    markers.stdout.fnmatch_lines(["@pytest.mark.certificate:*"])


# --------------------------------------------------------------------------- in this session


def test_fixture_in_this_session_accepts_a_spec_and_checks_options(certify) -> None:
    # n as in the next test, so that the two share compiled kernels.
    certificate = certify(f"{MODELS}:bkw2_exact", "landau-bkw-2d", times=[2.0], n_samples=1024)
    assert certificate.problem_id == "landau-bkw-2d"
    assert certificate.model_spec == f"{MODELS}:bkw2_exact"
    with pytest.raises(TypeError, match="unknown option"):
        certify(f"{MODELS}:bkw2_exact", "landau-bkw-2d", sample=16)
    with pytest.raises(TypeError, match="problem must be"):
        certify(f"{MODELS}:bkw2_exact", 3)


def test_inconclusive_is_accepted_only_when_allowed(certify) -> None:
    # n = 1024 at t = 2: the Hyvärinen gap's heavy-tail diagnostic fires (module docstring).
    certificate = certify(f"{MODELS}:bkw2_exact", "landau-bkw-2d", times=[2.0], n_samples=1024)
    assert certificate.verdict is cert.Verdict.INCONCLUSIVE
    assert_certificate_passes(certificate, allow_inconclusive=True)
    with pytest.raises(AssertionError, match="verdict is INCONCLUSIVE") as info:
        assert_certificate_passes(certificate)
    assert "hyvarinen_gap_relative at t = 2" in str(info.value)
    assert cert.format_table(certificate) in str(info.value)


@pytest.mark.parametrize(
    ("nodeid", "stem"),
    [
        ("tests/test_a.py::test_b", "tests_test_a.py_test_b"),
        ("t.py::test[x-1.5/2 ü]", "t.py_test_x-1.5_2_"),
        ("t.py::Class::test", "t.py_Class_test"),
    ],
)
def test_certificate_file_stem_is_sanitised(nodeid: str, stem: str) -> None:
    assert certificate_file_stem(nodeid) == stem.strip("._")


def test_long_node_ids_keep_distinct_stems() -> None:
    a, b = "t.py::test[" + "x" * 300 + "a]", "t.py::test[" + "x" * 300 + "b]"
    assert len(certificate_file_stem(a)) <= 150
    assert certificate_file_stem(a) != certificate_file_stem(b)


def test_importing_the_plugin_imports_neither_jax_nor_hypothesis() -> None:
    code = (
        "import sys, verify.pytest_plugin, verify.testing; "
        "loaded = [m for m in ('jax', 'hypothesis', 'xarray') if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
