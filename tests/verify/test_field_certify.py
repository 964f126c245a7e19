"""Field certificates for PDE surrogates on the heat problems: exact models pass, known
defects land where they should with the size they should have, and the CLI maps verdicts.

Tolerances (float64, ε_mach = 2.2e-16):

* ROUNDOFF = 1e-13 for relative quantities that vanish in exact arithmetic (the exact
  solution's autodiff residual, errors of the exact states): a few ulps of O(1) terms times
  sums over ≤ 64² grid points, with a 100× margin;
* FD_ROUNDOFF = 1e-10 where a difference is divided by a step (δ = 1e-3 or Δt = 0.05):
  ulp-level differences of the states amplified by |q|/(δ |N(q)|) ≲ 1e4, with a 100× margin;
* SPECTRAL = 1e-9 (relative) for values that hold exactly on the grid (Parseval, the FFT of
  one Fourier mode): round-off of an FFT of n^d ≤ 1024 points relative to ε = 1e-3.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import certificates as cert
from certificates import parse_bound_expressions
from solvers import HeatProblem, get_problem, heat_1d, heat_2d
from tests.verify import models_for_fields as mf
from verify._certify import CertifyConfig, CertifyError, certify
from verify._field_run import field_shapes
from verify._model import ModelError, model_from_object
from verify.cli import app

ROUNDOFF = 1e-13
FD_ROUNDOFF = 1e-10
SPECTRAL = 1e-9
EPS = 1e-3
HERE = Path(__file__).parent
HEAT = {"heat-1d": heat_1d(), "heat-2d": heat_2d()}


def run(model, problem: HeatProblem, role=None, *, bounds=(), seed=0, times=None, n=256):
    loaded = model_from_object(
        model, role=role, dim=problem.dim, probe_time=0.25, shapes=field_shapes(problem)
    )
    config = CertifyConfig(times=times, n_samples=n, seed=seed)
    user = parse_bound_expressions(list(bounds)) if bounds else None
    return certify(problem, loaded, config, user_bounds=user)


def values(certificate, name: str) -> np.ndarray:
    group = certificate.check_locations()[name]
    return np.asarray(certificate.family(group)[name].values, dtype=np.float64)


def aux(certificate, group: str, name: str) -> np.ndarray:
    return np.asarray(certificate.family(group)[name].values, dtype=np.float64)


def verdicts(certificate, name: str) -> set[str]:
    return {str(row.verdict) for row in certificate.rows if row.check == name}


def grid_norm(problem: HeatProblem, t: float) -> float:
    return float(np.linalg.norm(np.asarray(problem.reference([t], problem.grid_size))))


def mode_norm(problem: HeatProblem, mode: tuple[int, ...]) -> float:
    """‖cos(k·x_j)‖ on the grid (the perturbation's own L2 norm, no weights)."""
    x = np.asarray(problem.grid(problem.grid_size))
    return float(np.linalg.norm(np.cos(x @ np.asarray(mode, dtype=np.float64))))


# --------------------------------------------------------------------------- exact models


@pytest.fixture(scope="module", params=list(HEAT))
def exact(request):
    problem = HEAT[request.param]
    return problem, run(mf.ExactHeat(problem), problem)


def test_exact_solution_passes_every_check(exact):
    _, certificate = exact
    assert certificate.verdict is cert.Verdict.PASS, cert.format_table(certificate)
    assert set(certificate.family_names) == {
        "pde_residual",
        "initial_boundary",
        "reference_error",
        "rollout",
        "invariants",
    }
    for role in ("field", "operator", "step"):
        for suffix in ("error", "error_max", "error_low", "error_mid", "error_high"):
            assert np.all(values(certificate, f"{role}_{suffix}") <= ROUNDOFF)
        for name in ("mass", "energy"):
            assert np.all(values(certificate, f"{role}_{name}_drift") <= ROUNDOFF)
    # the autodiff residual of the closed form vanishes to round-off
    assert np.all(values(certificate, "field_residual") <= ROUNDOFF)
    assert np.all(values(certificate, "field_residual_max") <= ROUNDOFF)
    assert np.all(values(certificate, "field_periodicity_error") <= ROUNDOFF)
    assert np.all(values(certificate, "field_periodicity_grad_error") <= ROUNDOFF)
    assert values(certificate, "field_initial_error") <= ROUNDOFF
    assert np.all(aux(certificate, "reference_error", "reference_self_error") == 0.0)


def test_exact_grid_residuals_equal_their_floors(exact):
    # The exact states leave only the derivative method's own error, which the floor (the
    # same formula on the reference) measures: central FD δ²/6 ∂ₜ³q, trapezoid Δt²/12 ∂ₜ³q.
    _, certificate = exact
    for role in ("operator", "step"):
        residual = values(certificate, f"{role}_residual")
        floor = aux(certificate, "pde_residual", f"{role}_residual_floor")
        np.testing.assert_allclose(residual, floor, rtol=0, atol=FD_ROUNDOFF)
        assert np.all(floor > 0)
    # heat-1d: fastest decay λ = 1.6, so ≤ λ²δ²/6 = 4.3e-7 and ≤ (λΔt)²/12 = 5.3e-4
    assert np.all(aux(certificate, "pde_residual", "operator_residual_floor") <= 4.3e-7)
    assert np.all(aux(certificate, "pde_residual", "step_residual_floor") <= 5.4e-4)


def test_same_seed_same_digest_other_seed_other_collocation():
    problem = HEAT["heat-1d"]
    model = mf.ExactHeat(problem)
    first = run(model, problem, "field", seed=5)
    again = run(model, problem, "field", seed=5)
    other = run(model, problem, "field", seed=6)
    assert first.content_sha256 == again.content_sha256
    assert first.content_sha256 != other.content_sha256
    assert not np.array_equal(values(first, "field_residual"), values(other, "field_residual"))


def test_exact_burgers_passes_and_its_energy_change_is_the_reference_s():
    # Cole-Hopf: viscous Burgers dissipates energy and has no energy law, so the energy's
    # change from t_min is informational and equals the reference's own change
    problem = get_problem("burgers-1d")
    certificate = run(mf.ExactState(problem), problem)
    assert certificate.verdict is cert.Verdict.PASS, cert.format_table(certificate)
    # u = −2ν ∂ₓ log θ (Cole-Hopf): autodiff through the series for θ loses ~3 digits to
    # cancellation (measured 3e-13 relative at t = 0.5), so 1e-10 leaves a 300× margin
    assert np.all(values(certificate, "field_residual") <= 1e-10)
    for role in ("field", "operator"):
        assert np.all(values(certificate, f"{role}_error") <= ROUNDOFF)
        assert np.all(values(certificate, f"{role}_mass_drift") <= ROUNDOFF)
        change = values(certificate, f"{role}_energy_change")
        np.testing.assert_allclose(
            change, aux(certificate, "invariants", "energy_reference_change"), rtol=0, atol=ROUNDOFF
        )
        assert np.all(change > 0.1)  # it did dissipate
    assert not any(row.check.endswith("_energy_change") for row in certificate.rows)


# --------------------------------------------------------------------------- known defects


@pytest.mark.parametrize(
    ("problem_id", "mode", "band"),
    [
        ("heat-1d", (3,), "low"),  # |k| ≤ 32/6
        ("heat-1d", (8,), "mid"),  # 32/6 < |k| ≤ 32/3
        ("heat-1d", (20,), "high"),
        ("heat-2d", (4, 0), "mid"),  # k_max = 16: 16/6 < 4 ≤ 16/3
    ],
)
def test_fourier_mode_lands_in_its_band_with_its_size(problem_id, mode, band):
    problem = HEAT[problem_id]
    model = mf.ExactHeat(problem, eps=EPS, mode=mode)
    certificate = run(model, problem, "operator", bounds=["operator_error<=1e-5"])
    times = problem.default_times
    expected = np.asarray([EPS * mode_norm(problem, mode) / grid_norm(problem, t) for t in times])
    np.testing.assert_allclose(
        values(certificate, f"operator_error_{band}"), expected, rtol=SPECTRAL, atol=0
    )
    for other in {"low", "mid", "high"} - {band}:
        assert np.all(values(certificate, f"operator_error_{other}") <= ROUNDOFF)
    np.testing.assert_allclose(
        values(certificate, "operator_error"), expected, rtol=SPECTRAL, atol=0
    )
    # cos(k·x) = 1 at x = 0: the max error is ε exactly
    ref_max = [np.max(np.abs(np.asarray(problem.reference([t], problem.grid_size)))) for t in times]
    np.testing.assert_allclose(
        values(certificate, "operator_error_max"), EPS / np.asarray(ref_max), rtol=SPECTRAL, atol=0
    )
    np.testing.assert_allclose(
        values(certificate, "operator_initial_error"),
        EPS * mode_norm(problem, mode) / grid_norm(problem, 0.0),
        rtol=SPECTRAL,
        atol=0,
    )
    # a zero-mean mode keeps the mass; the energy gains ½ε²∫cos² = ε² L^d / 4 (no cross
    # term: k is not a mode of u), relative to the exact energy
    assert np.all(values(certificate, "operator_mass_drift") <= ROUNDOFF)
    energy = np.asarray([float(problem.invariant_laws(t)["energy"]) for t in times])
    np.testing.assert_allclose(
        values(certificate, "operator_energy_drift"),
        EPS**2 * problem.length**problem.dim / 4 / energy,
        rtol=1e-6,
        atol=0,
    )  # cancellation: 1e-15 · E / (ε² L^d/4)
    assert verdicts(certificate, "operator_error") == {"FAIL"}
    assert certificate.verdict is cert.Verdict.FAIL


def test_time_shifted_operator_fails_the_reference_error_not_the_residual():
    problem = HEAT["heat-1d"]
    certificate = run(mf.heat1d_shifted, problem, "operator")
    assert verdicts(certificate, "operator_error") == {"FAIL"}
    assert verdicts(certificate, "operator_initial_error") == {"FAIL"}
    # u(t + s, x) still solves the heat equation: only the FD floor remains
    assert verdicts(certificate, "operator_residual") == {"PASS"}
    assert np.all(values(certificate, "operator_residual") <= 1e-6)
    assert certificate.verdict is cert.Verdict.FAIL


def test_field_residual_of_a_static_mode_has_its_exact_size():
    # R = −κΔ(ε cos kx) = κk²ε cos kx: RMS over uniform x is κk²ε/√2; its max on the dense
    # cell-centred grid x_j = (j + ½)2π/128 is κk²ε cos(π/16) for k = 8.
    problem, k = HEAT["heat-1d"], 8
    certificate = run(mf.ExactHeat(problem, eps=EPS, mode=(k,)), problem, "field", n=1024)
    scale = aux(certificate, "pde_residual", "field_residual_scale")
    amplitude = problem.kappa * k**2 * EPS
    estimate = values(certificate, "field_residual")
    stderr = aux(certificate, "pde_residual", "field_residual_stderr")
    # a 4-sigma band (two-sided normal tail 6e-5); the seed is fixed, so this cannot flake
    assert np.all(np.abs(estimate - amplitude / math.sqrt(2) / scale) <= 4 * stderr)
    assert np.all(stderr > 0)
    np.testing.assert_allclose(
        values(certificate, "field_residual_max"),
        amplitude * math.cos(math.pi / 16) / scale,
        rtol=SPECTRAL,
        atol=0,
    )
    witness = aux(certificate, "pde_residual", "field_residual_max_x0")
    np.testing.assert_allclose(
        np.abs(np.cos(k * witness)), math.cos(math.pi / 16), rtol=SPECTRAL, atol=0
    )
    assert np.all(values(certificate, "field_periodicity_error") <= ROUNDOFF)


def test_non_periodic_field_fails_periodicity():
    problem, slope = HEAT["heat-1d"], 1e-2
    certificate = run(mf.ExactHeat(problem, slope=slope), problem, "field")
    scale = aux(certificate, "initial_boundary", "periodicity_scale")
    np.testing.assert_allclose(
        values(certificate, "field_periodicity_error"),
        slope * problem.length / scale,
        rtol=SPECTRAL,
        atol=0,
    )
    # the ramp's slope is the same at both ends: the gradient is periodic
    assert np.all(values(certificate, "field_periodicity_grad_error") <= ROUNDOFF)
    assert verdicts(certificate, "field_periodicity_error") == {"FAIL"}


def test_nan_after_the_probe_is_kept_with_a_reason_and_fails():
    problem = HEAT["heat-1d"]
    model = mf.ExactHeat(problem, nan_after=0.6)
    certificate = run(model, problem, "operator")
    error = values(certificate, "operator_error")
    assert np.all(np.isfinite(error[:2]))
    assert np.isnan(error[2])
    reason = certificate.family("reference_error")["operator_error_reason"].values[2]
    assert "non-finite" in str(reason)
    assert verdicts(certificate, "operator_error") == {"PASS", "FAIL"}
    assert certificate.verdict is cert.Verdict.FAIL


def test_step_model_off_its_time_grid_is_a_certify_error():
    problem = HEAT["heat-1d"]
    with pytest.raises(CertifyError, match=r"step_size 0\.05") as info:
        run(mf.ExactHeat(problem), problem, "step", times=(0.25, 0.33))
    assert "\n" not in str(info.value)


def test_model_without_field_roles_has_nothing_to_certify():
    problem = HEAT["heat-1d"]

    def score(t, x):
        return -x

    loaded = model_from_object(score, role="score", dim=1, probe_time=0.25)
    with pytest.raises(ModelError, match="nothing to certify"):
        certify(problem, loaded, CertifyConfig(n_samples=64))


# --------------------------------------------------------------------------- CLI

runner = CliRunner()


@pytest.mark.parametrize(("attr", "code"), [("heat1d_exact", 0), ("heat1d_shifted", 1)])
def test_cli_certify_exit_code(tmp_path, attr, code):
    out = tmp_path / "cert.nc"
    spec = f"{HERE / 'models_for_fields.py'}:{attr}"
    args = [
        "certify",
        "--problem",
        "heat-1d",
        "--model",
        spec,
        "--role",
        "operator",
        "--out",
        str(out),
        "--samples",
        "64",
        "--quiet",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    loaded = cert.read_certificate(out)
    assert loaded.problem_id == "heat-1d"
    assert "operator_error" in result.output


def test_cli_shape_error_is_exit_4(tmp_path):
    spec = f"{HERE / 'models_for_fields.py'}:heat1d_channels_first"
    args = ["certify", "-p", "heat-1d", "-m", spec, "--out", str(tmp_path / "c.nc"), "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 4, result.output
    assert "channels last" in result.output
