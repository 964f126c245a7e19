"""``verify._audit``: invariants of trajectory artefacts, the forward-Euler energy model."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import certificates as cert
from certificates import TrajectoryArtefact, Verdict, read_trajectories
from tests.verify.trajectory_artefacts import (
    REPO,
    bkw_forward_euler,
    write_numpy_artefacts,
)
from verify._audit import (
    DEFAULT_TOLERANCES,
    EPS64,
    AuditConfig,
    AuditError,
    AuditInputError,
    audit,
    energy_model,
    invariants_family,
    parse_invariants,
    parse_tolerances,
    roundoff_tolerance,
)

N = 2000  # the size test_trajectory_certify.py uses too: one solver run per session


def bkw_every_step() -> TrajectoryArtefact:
    """Frames every step, with the solver's increments Δt² Σ w|U|² and the velocities."""
    return bkw_forward_euler(N, every_step=True)


def with_increments() -> TrajectoryArtefact:
    return dataclasses.replace(bkw_every_step(), velocity=None)


def with_velocities() -> TrajectoryArtefact:
    return dataclasses.replace(bkw_every_step(), step_time=None, second_moment_increment=None)


def rows(certificate, check):
    return [r for r in certificate.rows if r.check == check]


def run(artefact, **config):
    return audit(artefact, AuditConfig(**config), spec="artefact.nc", sha256="")


@pytest.fixture(scope="module")
def numpy_files(tmp_path_factory):
    return write_numpy_artefacts(tmp_path_factory.mktemp("numpy"), 256)


# --- the reference particle solver -----------------------------------------------------


@pytest.mark.parametrize("source", ["second_moment_increment", "velocity"])
def test_forward_euler_passes_the_stepper_aware_energy_check(source):
    artefact = with_increments() if source == "second_moment_increment" else with_velocities()
    model = energy_model(artefact)
    assert model.applies, model.note
    assert model.source == source
    assert model.n_steps == 10
    result = run(artefact)
    assert result.verdict is Verdict.PASS, cert.format_table(result)
    excess = rows(result, "energy_excess")
    # The default is the documented round-off rule κ ε (S + 1), S = 10 steps.
    assert {r.threshold for r in excess} == {roundoff_tolerance(10)}
    assert max(r.estimate for r in excess) < roundoff_tolerance(10)
    # The raw drift is reported, unbounded, and is what forward Euler predicts.
    family = result.family("invariants")
    drift = family["energy_drift_signed"].values
    np.testing.assert_allclose(
        drift,
        family["energy_drift_predicted"].values,
        rtol=0,
        atol=roundoff_tolerance(10),  # the same round-off budget the check allows
    )
    assert drift[-1] > 1e-5  # an O(Δt) drift, far above round-off: the check is not vacuous
    assert not rows(result, "energy_drift")
    config = json.loads(result.attrs["config_json"])
    assert config["tolerances"]["energy"]["check"] == "energy_excess"
    assert config["energy_model"]["source"] == source


def test_dropping_the_increments_fails_a_tight_tolerance_and_passes_a_loose_one():
    artefact = dataclasses.replace(with_increments(), step_time=None, second_moment_increment=None)
    assert not energy_model(artefact).applies
    tight = run(artefact)  # default 1e-6 on the raw drift
    assert tight.verdict is Verdict.FAIL
    assert {r.verdict for r in rows(tight, "energy_drift")} >= {Verdict.FAIL}
    assert rows(tight, "energy_drift")[0].threshold == DEFAULT_TOLERANCES["energy"]
    # The forward-Euler drift over [0.5, 1] at Δt = 0.05 is ~1e-4 (measured 7.5e-5).
    loose = run(artefact, tolerances={"energy": 1e-3})
    assert loose.verdict is Verdict.PASS, cert.format_table(loose)


def test_missing_steps_disable_the_stepper_model():
    artefact = with_increments()
    fewer = dataclasses.replace(
        artefact,
        step_time=artefact.step_time[:-1],
        second_moment_increment=artefact.second_moment_increment[:-1],
    )
    model = energy_model(fewer)
    assert not model.applies
    assert "step" in model.note
    assert run(fewer).verdict is Verdict.FAIL  # raw drift against 1e-6


def test_another_stepper_is_judged_by_the_raw_drift():
    artefact = dataclasses.replace(with_increments(), stepper="rk4")
    model = energy_model(artefact)
    assert not model.applies
    assert "rk4" in model.note
    assert run(artefact).verdict is Verdict.FAIL


def test_momentum_and_entropy_of_the_solver_run():
    result = run(with_increments())
    # Every explicit RK step conserves momentum to round-off (10 steps, ~1e-16 each).
    assert max(r.estimate for r in rows(result, "momentum_drift_relative")) < 1e-14
    # The transported entropy decreases (BKW relaxes): no increase at all.
    assert max(r.estimate for r in rows(result, "entropy_increase")) == 0.0
    entropy = result.family("invariants")["entropy"].values
    assert np.all(np.diff(entropy) < 0)


# --- closed-form checks ----------------------------------------------------------------


def test_invariants_are_exact_numbers_of_the_data():
    rng = np.random.default_rng(3)
    x0 = rng.normal(size=(50, 3))
    w = rng.uniform(0.5, 1.5, size=50)
    shift = np.array([0.1, -0.2, 0.05])
    artefact = TrajectoryArtefact(
        time=np.array([0.0, 1.0]), positions=np.stack([x0, 1.1 * x0 + shift]), weights=w
    )
    family = invariants_family(artefact).family
    m2 = np.einsum("i,id->", w, x0**2)
    p0 = w @ x0
    momentum = np.linalg.norm(0.1 * p0 + w.sum() * shift) / np.sqrt(w.sum() * m2)
    energy = np.einsum("i,id->", w, (1.1 * x0 + shift) ** 2) / m2 - 1.0
    # Closed forms vs the same sums in another order: float64 round-off of 50-term sums.
    np.testing.assert_allclose(
        family["momentum_drift_relative"].values, [0.0, momentum], rtol=1e-13, atol=0
    )
    np.testing.assert_allclose(family["energy_drift"].values, [0.0, abs(energy)], rtol=1e-13)
    assert family["momentum_drift_relative"].attrs["evidence"] == "EXACT"
    np.testing.assert_array_equal(family["momentum_drift_relative_stderr"].values, 0.0)


@pytest.mark.parametrize(("scale_x", "scale_w"), [(1.0, 3.0), (7.0, 1.0), (0.01, 0.2)])
def test_relative_drifts_do_not_depend_on_units(scale_x, scale_w):
    rng = np.random.default_rng(4)
    positions = rng.normal(size=(3, 40, 2)) + np.array([0.0, 0.3, 0.1])[:, None, None]
    w = rng.uniform(size=40)

    def drifts(sx, sw):
        family = invariants_family(
            TrajectoryArtefact(time=[0, 1, 2], positions=sx * positions, weights=sw * w)
        ).family
        return family["momentum_drift_relative"].values, family["energy_drift"].values

    for base, scaled in zip(drifts(1.0, 1.0), drifts(scale_x, scale_w), strict=True):
        # Scaling only rounds each product once more: a few ulps of O(1) ratios.
        np.testing.assert_allclose(scaled, base, rtol=1e-12, atol=1e-15)


def test_entropy_increase_is_the_largest_rise_so_far():
    log_density = np.array([0.0, -1.0, -0.5, -2.0, -0.2])[:, None] * np.ones((5, 4))
    artefact = TrajectoryArtefact(
        time=np.arange(5.0), positions=np.ones((5, 4, 1)), log_density=log_density
    )
    family = invariants_family(artefact, ["entropy"]).family
    np.testing.assert_array_equal(family["entropy_increase"].values, [0, 0, 0.5, 0.5, 1.8])
    assert run(artefact, invariants=("entropy",)).verdict is Verdict.FAIL


def test_numpy_written_files(numpy_files):
    rotating = run(read_trajectories(numpy_files / "rotating.nc"))
    assert rotating.verdict is Verdict.PASS, cert.format_table(rotating)
    assert set(json.loads(rotating.attrs["config_json"])["invariants"]) == {
        "mass",
        "momentum",
        "energy",
        "entropy",
    }
    leaky = run(read_trajectories(numpy_files / "leaky.nc"))
    assert leaky.verdict is Verdict.FAIL
    energy = rows(leaky, "energy_drift")
    # (1 − 0.01 k)² − 1 at k = 4: 7.84% lost.
    np.testing.assert_allclose(energy[-1].estimate, 1 - 0.96**2, rtol=1e-12)
    assert energy[-1].verdict is Verdict.FAIL


def test_certificate_is_valid_and_names_its_source(tmp_path):
    result = run(with_increments())
    read = cert.read_certificate(cert.write_certificate(result, tmp_path / "a.nc"))
    assert read.problem_id == "landau-bkw-2d"
    assert read.attrs["jax_version"] == "none"
    assert read.model_spec == "artefact.nc"
    anonymous = run(TrajectoryArtefact(time=[0, 1], positions=np.ones((2, 3, 1))))
    assert anonymous.problem_id == "none"


# --- options and errors ----------------------------------------------------------------


def test_parse_invariants_and_tolerances():
    assert parse_invariants(None) is None
    assert parse_invariants(" energy ,Mass") == ("mass", "energy")
    assert parse_tolerances("1e-6") == dict.fromkeys(DEFAULT_TOLERANCES, 1e-6)
    assert parse_tolerances("energy=1e-4, momentum=0") == {"energy": 1e-4, "momentum": 0.0}
    for bad in ("", "heat", "mass,,volume"):
        with pytest.raises(AuditError, match="--invariants"):
            parse_invariants(bad)
    for bad, match in (("x", "not a number"), ("heat=1", "unknown invariant"), ("-1", "≥ 0")):
        with pytest.raises(AuditError, match=match):
            parse_tolerances(bad)


def test_unauditable_artefacts():
    sample = TrajectoryArtefact(time=[0.5], positions=np.ones((1, 3, 2)))
    with pytest.raises(AuditInputError, match="one frame"):
        run(sample)
    no_log = TrajectoryArtefact(time=[0, 1], positions=np.ones((2, 3, 2)))
    with pytest.raises(AuditInputError, match="log_density"):
        run(no_log, invariants=("entropy",))
    # Not asked for: left out and said so.
    notes = json.loads(run(no_log).attrs["config_json"])["unavailable"]
    assert notes == {"entropy": "unavailable (no log_density in the artefact)"}
    with pytest.raises(AuditInputError, match="second moment"):
        run(TrajectoryArtefact(time=[0, 1], positions=np.zeros((2, 3, 2))))


def test_roundoff_rule():
    assert roundoff_tolerance(0) == 16 * EPS64
    assert roundoff_tolerance(99) == 1600 * EPS64


AUDIT_SCRIPT = textwrap.dedent(
    """
    import sys
    import tempfile
    from pathlib import Path

    import numpy as np

    import certificates as cert
    from verify._audit import AuditConfig, audit

    artefact = cert.TrajectoryArtefact(
        time=np.array([0.0, 1.0]), positions=np.stack([np.eye(3), 2 * np.eye(3)])
    )
    result = audit(artefact, AuditConfig(), spec="x", sha256="")
    assert result.verdict is cert.Verdict.FAIL, result
    # The command line too: `verify audit` reads the file and gates without JAX.
    from typer.testing import CliRunner

    from verify.cli import app

    with tempfile.TemporaryDirectory() as folder:
        path = cert.write_trajectories(Path(folder) / "t.nc", artefact)
        # 10 exceeds every drift of the doubled ensemble (energy drift 3): exit 0.
        outcome = CliRunner().invoke(app, ["audit", str(path), "--tolerance", "10"])
    assert outcome.exit_code == 0, outcome.output
    loaded = sorted(name for name in sys.modules if name.split(".")[0] in {"jax", "jaxlib"})
    assert not loaded, loaded
    print("ok")
    """
)


def test_audit_never_imports_jax():
    completed = subprocess.run(
        [sys.executable, "-W", "error", "-c", AUDIT_SCRIPT],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "ok"
