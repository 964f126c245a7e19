"""``certify --trajectories`` in the library: solver and plain-NumPy artefacts, errors."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import certificates as cert
from certificates import TrajectoryArtefact, Verdict, read_trajectories, write_trajectories
from solvers import get_problem
from tests.verify.trajectory_artefacts import bkw_forward_euler, write_numpy_artefacts
from verify._audit import file_sha256, roundoff_tolerance
from verify._certify import CertifyConfig, CertifyError
from verify._trajectory_certify import (
    TrajectoryInputError,
    _weighted_summary,
    certify_trajectories,
)

N = 2000
"""Particles per time. At N = 2000 the KDE excess has a bootstrap sd of ~0.02 and the block
MMD² a sd of ~0.004 (measured), so the exact particles' upper bounds (Bonferroni over 6
intervals, z ≈ 2.6) stay below the defaults 0.1 and 0.02 with room; at N = 512 the KDE
interval straddled 0.1."""

BKW = get_problem("landau-bkw-2d")
GMM = get_problem("vp-gmm-2d")


def certify(problem, path, **config):
    artefact = read_trajectories(path)
    return certify_trajectories(
        problem,
        artefact,
        CertifyConfig(**config),
        spec=str(path),
        sha256=file_sha256(path),
    )


def rows(certificate, check):
    return [r for r in certificate.rows if r.check == check]


@pytest.fixture(scope="module")
def numpy_files(tmp_path_factory):
    return write_numpy_artefacts(tmp_path_factory.mktemp("numpy"), N)


@pytest.fixture(scope="module")
def bkw_file(tmp_path_factory):
    # Frames every step (11), with the solver's per-step increments: certified at 2 of them.
    artefact = dataclasses.replace(bkw_forward_euler(N, every_step=True), velocity=None)
    return write_trajectories(tmp_path_factory.mktemp("bkw") / "bkw.nc", artefact)


@pytest.fixture(scope="module")
def bkw_certificate(bkw_file):
    return certify(BKW, bkw_file, times=(0.5, 1.0))


# --- the reference particle solver -----------------------------------------------------


def test_solver_artefact_passes(bkw_certificate, bkw_file):
    result = bkw_certificate
    assert result.verdict is Verdict.PASS, cert.format_table(result)
    assert set(result.family_names) == {"invariants", "score_gap", "density", "samples"}
    for check in ("density_error_excess", "sample_mmd2", "score_gap_relative"):
        found = rows(result, check)
        assert [r.time for r in found] == [0.5, 1.0], check
        assert all(r.verdict is Verdict.PASS for r in found), check
    # Invariants over every stored frame; the forward-Euler energy model applies.
    assert len(rows(result, "energy_excess")) == 11
    assert rows(result, "energy_excess")[0].threshold == roundoff_tolerance(10)
    assert rows(result, "energy_drift")[0].threshold == 0.02  # the problem's default
    assert result.model_spec == str(bkw_file)
    assert result.attrs["model_sha256"] == file_sha256(bkw_file)
    config = json.loads(result.attrs["config_json"])
    assert config["hyvarinen"] == "unavailable (no score_divergence in the artefact)"
    assert config["artefact"]["stepper"] == "forward-euler"
    assert config["times"] == [0.5, 1.0]


def test_written_certificate_validates(bkw_certificate, tmp_path):
    read = cert.read_certificate(cert.write_certificate(bkw_certificate, tmp_path / "c.nc"))
    assert read.verdict is Verdict.PASS


# --- plain NumPy artefacts (no JAX) ----------------------------------------------------


def test_numpy_exact_samples_pass(numpy_files):
    result = certify(GMM, numpy_files / "gmm_exact.nc")
    assert result.verdict is Verdict.PASS, cert.format_table(result)
    assert "invariants" not in result.family_names  # the VP SDE conserves nothing
    hyvarinen = rows(result, "hyvarinen_gap_relative")
    assert [r.time for r in hyvarinen] == [0.1, 0.5]
    assert all(r.evidence is cert.Evidence.EMPIRICAL for r in hyvarinen)
    # The stored scores are exact at the (float32-rounded) stored positions.
    assert max(r.estimate for r in rows(result, "score_gap_relative")) < 1e-20
    assert (
        json.loads(result.attrs["config_json"])["hyvarinen"] == "from the stored score_divergence"
    )


def test_scaled_score_fails_score_gap_relative(numpy_files):
    result = certify(GMM, numpy_files / "gmm_score13.nc")
    assert result.verdict is Verdict.FAIL
    gaps = rows(result, "score_gap_relative")
    assert all(r.verdict is Verdict.FAIL for r in gaps)
    # E|0.3 s|² / I = 0.09 exactly; the interval (CLT over 2000 samples) covers it.
    for row in gaps:
        assert row.lower <= 0.09 <= row.upper, row


def test_without_divergences_the_hyvarinen_gap_is_absent_and_said_so(numpy_files):
    result = certify(GMM, numpy_files / "gmm_no_divergence.nc")
    assert result.verdict is Verdict.PASS, cert.format_table(result)
    assert not rows(result, "hyvarinen_gap_relative")
    assert "hyvarinen_gap" not in result.family("score_gap")
    config = json.loads(result.attrs["config_json"])
    assert config["hyvarinen"] == "unavailable (no score_divergence in the artefact)"


def test_weights_are_honoured(numpy_files):
    path = numpy_files / "gmm_weighted.nc"
    weighted = certify(GMM, path)
    assert weighted.verdict is Verdict.PASS, cert.format_table(weighted)
    assert json.loads(weighted.attrs["config_json"])["samples"]["resampling"] == (
        "multinomial by weight"
    )
    # The same particles with equal weights: half of the mass sits on the decoys at (8, 8).
    unweighted = dataclasses.replace(read_trajectories(path), weights=None)
    result = certify_trajectories(GMM, unweighted, CertifyConfig(), spec="x", sha256="")
    assert {r.verdict for r in rows(result, "sample_mmd2")} == {Verdict.FAIL}
    assert {r.verdict for r in rows(result, "density_error_excess")} == {Verdict.FAIL}


def test_same_seed_same_digest_and_another_seed_another(numpy_files):
    path = numpy_files / "gmm_no_divergence.nc"
    first = certify(GMM, path, seed=3, times=(0.5,))
    assert certify(GMM, path, seed=3, times=(0.5,)).content_sha256 == first.content_sha256
    assert certify(GMM, path, seed=4, times=(0.5,)).content_sha256 != first.content_sha256


def test_times_subset(numpy_files):
    result = certify(GMM, numpy_files / "gmm_no_divergence.nc", times=(0.5,))
    assert {r.time for r in result.rows} == {0.5}


# --- errors ----------------------------------------------------------------------------


def test_times_must_be_stored(numpy_files):
    with pytest.raises(CertifyError, match="not a stored time"):
        certify(GMM, numpy_files / "gmm_exact.nc", times=(0.3,))


@pytest.mark.parametrize(
    ("problem", "artefact", "match"),
    [
        (
            GMM,
            TrajectoryArtefact(time=[0.5, 2.0], positions=np.ones((2, 20, 2))),
            "outside the problem's window",
        ),
        (GMM, TrajectoryArtefact(time=[0.5], positions=np.ones((1, 20, 3))), "d = 3"),
        (
            GMM,
            TrajectoryArtefact(time=[0.5], positions=np.ones((1, 20, 2)), problem_id="ve-gmm-2d"),
            "declares problem_id 've-gmm-2d'",
        ),
        (
            get_problem("landau-coulomb-2d"),
            TrajectoryArtefact(time=[1.0], positions=np.ones((1, 20, 2))),
            "nothing to certify",
        ),
    ],
)
def test_artefacts_that_do_not_fit(problem, artefact, match):
    with pytest.raises(TrajectoryInputError, match=match):
        certify_trajectories(problem, artefact, CertifyConfig(), spec="x", sha256="")


# --- the weighted mean's interval ------------------------------------------------------


def test_weighted_mean_interval_covers():
    """Coverage of Σ w̃ h ± 1.96 se, se from the values N w̃_i h_i, for fixed unequal weights.

    Its variance estimate is Σ w̃²(σ² + μ²) − μ²/N ≥ Σ w̃² σ², the true variance (module
    docstring of verify._trajectory_certify), so the interval is conservative: over 400
    seeds coverage must be at least 95% minus 3 binomial sds (√(0.95·0.05/400) = 0.011).
    """
    rng = np.random.default_rng(5)
    n = 500
    weights = rng.uniform(0.2, 1.8, size=n)
    weights /= weights.sum()
    covered = 0
    for _ in range(400):
        h = rng.exponential(size=n)  # mean 1, skewed like |s − ∇log p|²
        estimate = _weighted_summary(h, weights, formula_id="test")
        covered += abs(estimate.estimate - 1.0) <= 1.96 * estimate.stderr
    assert covered >= 400 * (0.95 - 3 * 0.011), covered
