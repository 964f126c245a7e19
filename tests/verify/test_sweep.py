"""``verify certify`` over several models: :func:`verify._sweep.sweep` and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
from typer.testing import CliRunner

import certificates as cert
from solvers import get_problem
from verify._certify import CertifyConfig, certify
from verify._model import load_model
from verify._sweep import (
    SWEEP_FILE,
    SweepError,
    certificate_names,
    combine_certificates,
    expand_model_specs,
    sweep,
)
from verify.cli import app

MODELS = "tests.verify.models_for_certify"
EXACT = f"{MODELS}:bkw2_exact"
SCALED = f"{MODELS}:bkw2_scaled"  # 1.3 × the exact score: fails its bounds
BAD = "no/such/model.py:score"
PROBLEM = "landau-bkw-2d"
# One time and 2048 samples: the score and Hyvärinen gaps and the FP residual, ~1 s warm.
CONFIG = CertifyConfig(times=(2.0,), n_samples=2048, seed=3)
runner = CliRunner()


@pytest.fixture(scope="module")
def individual():
    """Digest and certificate of each model certified on its own (the reference)."""
    problem = get_problem(PROBLEM)
    results = {}
    for spec in (EXACT, SCALED):
        model = load_model(spec, role=None, dim=problem.dim, probe_time=2.0)
        results[spec] = certify(problem, model, CONFIG)
    return results


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep1")
    return sweep(PROBLEM, [EXACT, BAD, SCALED], CONFIG, out_dir=out, workers=1), out


def test_sequential_sweep_gives_the_individual_certificates(sequential, individual):
    result, _out = sequential
    good = [row for row in result.rows if not row.error]
    assert [row.spec for row in good] == [EXACT, SCALED]
    for row in good:
        reference = individual[row.spec]
        assert row.digest == reference.content_sha256
        assert row.verdict is reference.verdict
        assert cert.read_certificate(row.out).content_sha256 == row.digest  # verified on read
    assert individual[EXACT].verdict is cert.Verdict.PASS
    assert individual[SCALED].verdict is cert.Verdict.FAIL
    assert result.verdict is cert.Verdict.FAIL


def test_bad_model_is_an_error_row_and_the_others_are_written(sequential):
    result, out = sequential
    (bad,) = result.errors
    assert bad.spec == BAD
    assert bad.verdict is None
    assert "model file not found" in bad.error
    assert "\n" not in bad.error
    assert not bad.out.exists()
    assert sorted(p.name for p in out.glob("*.nc")) == sorted(
        [f"{row.out.name}" for row in result.rows if not row.error] + [SWEEP_FILE]
    )
    table = result.format_sweep_table().splitlines()
    assert len(table) == 1 + 3
    assert "ERROR" in table[2]
    assert "model file not found" in table[2]
    assert "FAIL" in table[3]
    assert "score_gap" in table[3]


def test_combined_file_stacks_the_estimates_along_model(sequential, individual):
    result, out = sequential
    assert result.combined == out / SWEEP_FILE
    with xr.open_dataset(result.combined) as data:
        data = data.load()
    labels = [row.out.stem for row in result.rows if not row.error]
    assert data.sizes["model"] == 2
    assert list(data["model"].values) == labels
    assert list(data["verdict"].values) == ["PASS", "FAIL"]
    assert data.attrs["problem_id"] == PROBLEM
    digests = json.loads(data.attrs["model_digests"])
    assert digests == {
        label: individual[spec].content_sha256
        for label, spec in zip(labels, [EXACT, SCALED], strict=True)
    }
    checks = individual[EXACT].check_locations()
    assert "score_gap" in checks
    for check, group in checks.items():
        for suffix in ("", "_stderr", "_lower", "_upper"):
            stacked = data[check + suffix]
            assert stacked.dims[0] == "model"
            for i, spec in enumerate((EXACT, SCALED)):
                expected = individual[spec].family(group)[check + suffix].values
                # Same float64 values written and read back: equal bit for bit (NaN = NaN).
                np.testing.assert_allclose(
                    stacked.isel(model=i).values, expected, rtol=0, atol=0, equal_nan=True
                )


def test_combine_rejects_mismatched_labels(individual):
    certificates = list(individual.values())
    with pytest.raises(ValueError, match="labels"):
        combine_certificates(certificates, ["only-one"])
    with pytest.raises(ValueError, match="unique"):
        combine_certificates(certificates, ["a", "a"])


def test_parallel_sweep_gives_the_individual_certificates(tmp_path, individual):
    result = sweep(PROBLEM, [EXACT, SCALED, BAD], CONFIG, out_dir=tmp_path, workers=2)
    assert [row.digest for row in result.rows[:2]] == [
        individual[EXACT].content_sha256,
        individual[SCALED].content_sha256,
    ]
    assert "model file not found" in result.rows[2].error
    for row in result.rows[:2]:
        assert cert.read_certificate(row.out).content_sha256 == row.digest
    assert (tmp_path / SWEEP_FILE).is_file()


def test_certificate_names_are_sanitised_and_unique():
    specs = [
        "runs/step_1000",
        "runs/step_1000/",
        "other/step_1000",
        "a/model.py:score",
        "b/model.py:score",
        "pkg.mod:attr",
        "x/sweep.py:f",
    ]
    assert certificate_names(specs) == [
        "step_1000",
        "step_1000-2",
        "step_1000-3",
        "model",
        "model-2",
        "pkg.mod-attr",
        "sweep-2",  # never the combined file
    ]


def test_globs_expand_the_path_part_sorted(tmp_path):
    for name in ("b.py", "a.py", "c.txt"):
        (tmp_path / name).write_text("")
    (tmp_path / "step_2").mkdir()
    (tmp_path / "step_1").mkdir()
    assert expand_model_specs([f"{tmp_path}/*.py:score", EXACT, f"{tmp_path}/step_*"]) == [
        f"{tmp_path}/a.py:score",
        f"{tmp_path}/b.py:score",
        EXACT,
        f"{tmp_path}/step_1",
        f"{tmp_path}/step_2",
    ]
    with pytest.raises(SweepError, match="matches no file"):
        expand_model_specs([f"{tmp_path}/*.npz:score"])


# --------------------------------------------------------------------------- CLI

SMALL = ("certify", "-p", PROBLEM, "--times", "2", "-n", "2048", "--seed", "3", "--quiet")


def invoke(*args: str):
    return runner.invoke(app, [*SMALL, *args])


def test_cli_repeated_models_write_a_folder(tmp_path, individual):
    out = tmp_path / "certs"
    result = invoke("-m", EXACT, "-m", SCALED, "--out", str(out), "--workers", "1")
    assert result.exit_code == 1, result.output  # the worst verdict: FAIL
    names = sorted(p.name for p in out.iterdir())
    stems = certificate_names([EXACT, SCALED])
    assert names == sorted([f"{stem}.nc" for stem in stems] + [SWEEP_FILE])
    for stem, spec in zip(stems, (EXACT, SCALED), strict=True):
        loaded = cert.read_certificate(out / f"{stem}.nc")
        assert loaded.content_sha256 == individual[spec].content_sha256
    assert "verdict: FAIL (exit 1)" in result.output
    assert f"{stems[0]}" in result.output
    assert "PASS" in result.output


def test_cli_bad_model_in_a_sweep_exits_4_and_writes_the_rest(tmp_path):
    out = tmp_path / "certs"
    result = invoke("-m", EXACT, "-m", BAD, "--out", str(out), "--workers", "1")
    assert result.exit_code == 4, result.output
    assert "Traceback" not in result.output
    (error_line,) = [line for line in result.output.splitlines() if "ERROR" in line]
    assert "model file not found" in error_line
    assert "1 of 2 models could not be certified (exit 4)" in result.output
    assert (out / f"{certificate_names([EXACT])[0]}.nc").is_file()
    assert (out / SWEEP_FILE).is_file()


MODEL_FILE = f"from {MODELS} import ExactScore, bkw2\n\nscore = ExactScore(bkw2, eps={{eps}})\n"


def test_cli_glob_over_model_files(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "step_1.py").write_text(MODEL_FILE.format(eps=0.3))
    (models / "step_2.py").write_text(MODEL_FILE.format(eps=0.0))
    out = tmp_path / "certs"
    result = invoke("-m", f"{models}/step_*.py:score", "--out", str(out), "--workers", "1")
    assert result.exit_code == 1, result.output
    with xr.open_dataset(out / SWEEP_FILE) as data:
        assert list(data["model"].values) == ["step_1", "step_2"]
        assert list(data["verdict"].values) == ["FAIL", "PASS"]


@pytest.mark.parametrize(
    ("models", "message"),
    [
        (["{tmp}/*.py:score"], "matches no file"),
        (["{tmp}/*.py:score", EXACT], "matches no file"),
    ],
)
def test_cli_glob_matching_nothing_is_a_usage_error(tmp_path, models, message):
    args = [arg for spec in models for arg in ("-m", spec.format(tmp=tmp_path))]
    result = invoke(*args, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: ")
    assert message in lines[0]
    assert not (tmp_path / "out").exists()


def test_cli_out_must_be_a_folder_for_several_models(tmp_path):
    out = tmp_path / "cert.nc"
    out.write_text("")
    result = invoke("-m", EXACT, "-m", SCALED, "--out", str(out), "--workers", "1")
    assert result.exit_code == 2, result.output
    assert "must be a folder" in result.output


def test_dask_sweep_gives_the_individual_certificates(tmp_path, individual):
    # A local cluster with one in-process worker thread (the test session already runs in
    # float64): the same task the process pool runs, submitted through a Dask scheduler.
    distributed = pytest.importorskip("distributed")  # the test extra installs it
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
    )
    with cluster:
        result = sweep(
            PROBLEM,
            [EXACT, BAD, SCALED],
            CONFIG,
            out_dir=tmp_path,
            scheduler=cluster.scheduler_address,
        )
    assert [row.digest for row in result.rows if not row.error] == [
        individual[EXACT].content_sha256,
        individual[SCALED].content_sha256,
    ]
    assert "model file not found" in result.rows[1].error
    assert (tmp_path / SWEEP_FILE).is_file()


def test_unreachable_scheduler_is_a_clear_error(tmp_path):
    with pytest.raises(SweepError, match="cannot reach the Dask scheduler"):
        sweep(PROBLEM, [EXACT, SCALED], CONFIG, out_dir=tmp_path, scheduler="tcp://127.0.0.1:1")
