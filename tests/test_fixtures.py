"""Shipped fixtures: listed in the manifest, unchanged, valid, and reproducible by their script."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import certificates as cert

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text(encoding="utf-8"))["fixtures"]
CERTIFICATES = [entry for entry in MANIFEST if entry["kind"] == "certificate"]
# Keep shipped fixtures small (the repository is cloned by every CI run).
MAX_FIXTURE_BYTES = 256 * 1024


CHECKPOINTS = [entry for entry in MANIFEST if entry["kind"] == "checkpoint"]
# Scripts that build fixtures are code, not fixtures: fixtures/*.py and fixtures/training/.
NOT_FIXTURES = {"training", "__pycache__"}


def _files(entry) -> list[Path]:
    path = FIXTURES / entry["path"]
    if path.is_dir():
        return [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return [path]


@pytest.mark.parametrize("entry", MANIFEST, ids=lambda entry: entry["path"])
def test_manifest_hash_matches_file(entry):
    path = FIXTURES / entry["path"]
    if entry["kind"] == "checkpoint":
        from verify._checkpoint import checkpoint_sha256

        digest = checkpoint_sha256(path)
    else:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == entry["sha256"], f"{entry['path']} changed; rebuild with `{entry['command']}`"
    for file in _files(entry):
        assert file.stat().st_size <= MAX_FIXTURE_BYTES, file


def test_every_fixture_file_is_listed():
    listed = {str(file.relative_to(FIXTURES)) for entry in MANIFEST for file in _files(entry)}
    on_disk = {
        str(path.relative_to(FIXTURES))
        for path in FIXTURES.rglob("*")
        if path.is_file()
        and path.parent != FIXTURES
        and not NOT_FIXTURES.intersection(path.relative_to(FIXTURES).parts)
    }
    assert on_disk == listed


@pytest.mark.parametrize("entry", CHECKPOINTS, ids=lambda entry: entry["path"])
def test_fixture_checkpoints_load(entry):
    from verify._checkpoint import load_checkpoint, read_manifest

    model = load_checkpoint(FIXTURES / entry["path"])
    declared = read_manifest(FIXTURES / entry["path"]).roles
    assert declared is not None
    assert sorted(declared) == sorted(entry["roles"])
    for role in declared:
        assert callable(getattr(model, role, model))


@pytest.mark.parametrize("entry", CERTIFICATES, ids=lambda entry: entry["path"])
def test_fixture_certificates_read_and_match_manifest(entry):
    certificate = cert.read_certificate(FIXTURES / entry["path"])
    assert certificate.content_sha256 == entry["content_sha256"]
    assert str(certificate.verdict) == entry["verdict"]


def test_fixture_script_reproduces_the_content(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            str(FIXTURES / "make_certificates.py"),
            "--out-dir",
            str(tmp_path),
            "--no-manifest",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for entry in CERTIFICATES:
        rebuilt = cert.read_certificate(tmp_path / Path(entry["path"]).name)
        assert rebuilt.content_sha256 == entry["content_sha256"]


def test_fixture_verdicts_cover_pass_and_fail():
    assert {entry["verdict"] for entry in CERTIFICATES} == {"PASS", "FAIL"}


QUICK_START_MODEL = FIXTURES / "models" / "vp_gmm_analytic.py"


@pytest.mark.parametrize(
    ("attr", "samples", "exit_code"),
    [("score", "4096", 0), ("gaussian_score", "1024", 1)],
)
def test_quick_start_model_certifies_as_the_readme_says(tmp_path, attr, samples, exit_code):
    # The README quick start runs exactly the first case (same options, seed 0).
    from typer.testing import CliRunner

    from verify.cli import app

    out = tmp_path / "cert.nc"
    args = ["certify", "--problem", "vp-gmm-2d", "--model", f"{QUICK_START_MODEL}:{attr}"]
    args += ["--role", "score", "--samples", samples, "--out", str(out), "--quiet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == exit_code, result.output
    assert cert.read_certificate(out).verdict == ("PASS" if exit_code == 0 else "FAIL")
