"""Every shipped fixture model gets the verdict its manifest entry says, and README's table
is what ``nox -s fixtures-report`` produces (certifies each model at the defaults)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_fixture_models_get_their_expected_verdicts_and_readme_is_current():
    done = subprocess.run(
        [sys.executable, str(ROOT / "fixtures" / "report.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
