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


@pytest.mark.parametrize("entry", MANIFEST, ids=lambda entry: entry["path"])
def test_manifest_hash_matches_file(entry):
    data = (FIXTURES / entry["path"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"], (
        f"{entry['path']} changed; rebuild with `{entry['command']}`"
    )
    assert len(data) <= MAX_FIXTURE_BYTES


def test_every_fixture_file_is_listed():
    listed = {entry["path"] for entry in MANIFEST}
    on_disk = {
        str(path.relative_to(FIXTURES))
        for path in FIXTURES.rglob("*")
        if path.is_file()
        and path.suffix in {".nc", ".toml", ".json", ".py"}
        and path.parent != FIXTURES
        and path.name != "manifest.json"
    }
    assert on_disk == listed


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
