"""Full certify runs at the default sample size and times (slow).

Every built-in problem with an exact solution, with the exact solution as the model, must
PASS its default bounds at the defaults a user gets (10⁴ samples, the problem's default
times, seed 0); the crude and defective models must FAIL. These are the runs the fast tests
(tests/verify/test_certify.py) shrink to n = 4096 and two times.
"""

from __future__ import annotations

import pytest

import certificates as cert
from solvers import get_problem
from verify._certify import CertifyConfig, certify
from verify._model import load_model

pytestmark = pytest.mark.slow

MODELS = "tests.verify.models_for_certify"


def _certify(problem_id: str, model: str) -> cert.Certificate:
    problem = get_problem(problem_id)
    loaded = load_model(
        f"{MODELS}:{model}", role=None, dim=problem.dim, probe_time=problem.default_times[0]
    )
    return certify(problem, loaded, CertifyConfig())


@pytest.mark.parametrize(
    ("problem_id", "model"),
    [
        ("vp-gmm-2d", "vp_exact"),
        ("ve-gmm-2d", "ve_exact"),
        ("ou-gmm-2d", "ou_exact"),
        ("landau-bkw-2d", "bkw2_exact"),
        ("landau-bkw-3d", "bkw3_exact"),
        ("vp-gmm-2d", "vp_log_density"),
        ("vp-gmm-2d", "vp_velocity"),
        ("landau-bkw-2d", "bkw2_flow"),
    ],
)
def test_exact_models_pass_at_the_defaults(problem_id, model):
    certificate = _certify(problem_id, model)
    assert certificate.verdict is cert.Verdict.PASS, cert.format_table(certificate)


@pytest.mark.parametrize(
    ("problem_id", "model", "failing"),
    [
        ("vp-gmm-2d", "vp_scaled", "score_gap_relative"),
        ("vp-gmm-2d", "vp_time_shifted", "score_gap_relative"),
        ("vp-gmm-2d", "vp_nan", "score_gap_relative"),
        ("landau-bkw-2d", "bkw2_flow_leaky", "energy_drift"),
    ],
)
def test_defective_models_fail_the_check_that_targets_them(problem_id, model, failing):
    certificate = _certify(problem_id, model)
    assert certificate.verdict is cert.Verdict.FAIL
    assert any(
        row.check == failing and row.verdict is cert.Verdict.FAIL for row in certificate.rows
    ), cert.format_table(certificate)
