"""Regression: reading certificates many times in one process keeps working.

xarray's ``DataTree.load()`` (2025.9–2026.9) leaves a variable lazy when it has the same
name as its group (``/score_gap/score_gap``); touching it after the file closed broke
HDF5 for the rest of the process, so the fourth read of a certificate failed with
"NetCDF: HDF error". The reader now loads every group as a Dataset before closing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import certificates as cert

CERTS = Path(__file__).resolve().parents[2] / "fixtures" / "certs"


def test_alternating_reads_with_full_value_access():
    paths = [CERTS / "example-pass.nc", CERTS / "example-fail.nc"] * 5
    for path in paths:
        certificate = cert.read_certificate(path)
        for node in certificate.tree.subtree:
            for variable in node.to_dataset(inherit=False).variables.values():
                assert isinstance(np.asarray(variable.values), np.ndarray)
        assert certificate.content_sha256 == cert.content_digest(certificate.tree)
