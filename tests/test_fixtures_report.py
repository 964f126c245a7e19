"""The README fixtures table: rendering and expectation logic of fixtures/report.py.

The full run (certify every fixture model, compare with README.md) is the slow test
``tests/validation/test_fixture_models.py``; here the pieces run on the hand-made
certificates, without JAX.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

import certificates as cert

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture(scope="module")
def report():
    spec = importlib.util.spec_from_file_location("_fixtures_report", FIXTURES / "report.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture(scope="module")
def certs():
    return {
        "good": cert.read_certificate(FIXTURES / "certs" / "example-pass.nc"),
        "bad": cert.read_certificate(FIXTURES / "certs" / "example-fail.nc"),
    }


def _entry(label, expected, problem="vp-gmm-2d"):
    return {
        "path": f"models/{label}",
        "kind": "checkpoint",
        "label": label,
        "problem": problem,
        "expected": expected,
    }


def test_check_verdicts_are_the_worst_over_times(report, certs):
    cells = report.check_verdicts(certs["bad"])
    rows = [r for r in certs["bad"].rows if r.check == "score_gap"]
    assert {str(r.verdict) for r in rows} >= {"FAIL"}
    assert cells["score_gap"] == "FAIL"
    assert set(cells) == set(certs["bad"].check_locations())


def test_expectations(report, certs):
    assert report.expectation_errors(_entry("good", "PASS"), certs["good"]) == []
    assert report.expectation_errors(_entry("bad", "PASS"), certs["bad"])
    assert report.expectation_errors(_entry("bad", "FAIL:score_gap"), certs["bad"]) == []
    # the named check must be the one that fails, not merely the overall verdict
    passing = next(c for c, v in report.check_verdicts(certs["bad"]).items() if v == "PASS")
    assert report.expectation_errors(_entry("bad", f"FAIL:{passing}"), certs["bad"])
    assert report.expectation_errors(_entry("good", "REPORT"), certs["good"]) == []


def test_render_and_replace_block(report, certs):
    entries = [_entry("good", "PASS"), _entry("bad", "FAIL:score_gap")]
    table = report.render(entries, certs)
    lines = table.splitlines()
    assert lines[0] == "**vp-gmm-2d**"
    assert lines[2] == "| check | `good` | `bad` |"
    assert "| score_gap | PASS | **FAIL** |" in lines
    assert lines[-2] == "| **verdict** | PASS | **FAIL** |"
    text = f"intro\n{report.BEGIN}\nold table\n{report.END}\nrest\n"
    updated = report.replace_block(text, table)
    assert "old table" not in updated
    assert updated.startswith("intro\n")
    assert updated.endswith(f"{report.END}\nrest\n")
    assert report.replace_block(updated, table) == updated


def test_report_entries_expand_model_files(report):
    manifest = [
        {
            "path": "models/m.py",
            "kind": "model",
            "report": [
                {
                    "label": "m:a",
                    "problem": "p",
                    "expected": "PASS",
                    "certify_args": ["--model", "{fixtures}/models/m.py:a"],
                },
                {"label": "m:b", "problem": "p", "expected": "FAIL:x", "certify_args": []},
            ],
        },
        {"path": "certs/c.nc", "kind": "certificate"},
        {"path": "models/ckpt", "kind": "checkpoint", "problem": "p", "expected": "PASS"},
    ]
    entries = report.report_entries(manifest)
    assert [report.label(e) for e in entries] == ["m:a", "m:b", "ckpt"]
    assert "fixtures/models/m.py:a" in report.certify_args(entries[0])
    assert report.certify_args(entries[2])[-2:] == ["--seed", "0"]
    assert "--model" in report.certify_args(entries[2])
