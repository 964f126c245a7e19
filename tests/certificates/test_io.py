"""NetCDF-4 I/O: round trips, atomic writes under crashes, and unreadable files."""

from __future__ import annotations

import math
import os
import re

import netCDF4
import numpy as np
import pytest
import xarray as xr

import certificates as cert
from tests.helpers import make_certificate, score_gap_check
from tests.strategies import comparable_rows

PARTIAL = b"\x89HDF\r\n\x1a\n" + b"\0" * 100  # what a crashed writer leaves behind


@pytest.fixture(scope="module")
def certificate() -> cert.Certificate:
    return make_certificate()


@pytest.fixture(scope="module")
def certificate_bytes(certificate, tmp_path_factory) -> bytes:
    path = cert.write_certificate(certificate, tmp_path_factory.mktemp("io") / "c.nc")
    return path.read_bytes()


def nan_certificate() -> cert.Certificate:
    check = score_gap_check(estimate=(1e-3, math.nan, 2e-3), reason=["", "diverged", ""])
    return make_certificate(checks={"score_gap": [check]})


@pytest.mark.parametrize(
    "build",
    [
        make_certificate,
        nan_certificate,  # NaN estimate and a FAIL row for the absent energy_drift
        lambda: make_certificate(bounds={"bounds": {}}),  # no rows at all
        lambda: make_certificate(seed=2**40, x64=False, model_sha256="ab" * 32),
    ],
    ids=["default", "nan", "no-rows", "provenance"],
)
def test_write_read_round_trip(build, tmp_path):
    certificate = build()
    path = cert.write_certificate(certificate, tmp_path / "certificate.nc")
    assert path == tmp_path / "certificate.nc"
    read = cert.read_certificate(path)
    assert read.content_sha256 == certificate.content_sha256
    assert comparable_rows(read.rows) == comparable_rows(certificate.rows)
    assert read.attrs == certificate.attrs
    assert read.family_names == certificate.family_names
    for family in certificate.family_names:
        xr.testing.assert_identical(read.family(family), certificate.family(family))
    assert read.verdict is certificate.verdict
    assert sorted(p.name for p in tmp_path.iterdir()) == ["certificate.nc"]


def test_overwrite_replaces_the_file(tmp_path):
    path = tmp_path / "certificate.nc"
    cert.write_certificate(make_certificate(), path)
    replacement = nan_certificate()
    cert.write_certificate(replacement, path)
    assert cert.read_certificate(path).content_sha256 == replacement.content_sha256


def test_invalid_certificate_is_not_written(certificate, tmp_path):
    tree = certificate.tree.copy()
    tree.attrs["x64"] = 2
    tree.attrs["content_sha256"] = cert.content_digest(tree)
    with pytest.raises(cert.CertificateSchemaError, match="x64 must be 0 or 1"):
        cert.write_certificate(cert.Certificate(tree), tmp_path / "certificate.nc")
    assert list(tmp_path.iterdir()) == []


# --- atomic writes --------------------------------------------------------------------------


def crashing_to_netcdf(exception: BaseException):
    def to_netcdf(self, path, *args, **kwargs):
        with open(path, "wb") as handle:  # half a file, then the crash
            handle.write(PARTIAL)
        raise exception

    return to_netcdf


CRASHES = [OSError(28, "No space left on device"), KeyboardInterrupt(), RuntimeError("bug")]


@pytest.mark.parametrize("exception", CRASHES, ids=lambda e: type(e).__name__)
def test_crash_mid_write_leaves_the_old_file_intact(
    certificate, certificate_bytes, tmp_path, monkeypatch, exception
):
    path = tmp_path / "certificate.nc"
    path.write_bytes(certificate_bytes)
    monkeypatch.setattr(xr.DataTree, "to_netcdf", crashing_to_netcdf(exception))
    with pytest.raises(type(exception)):
        cert.write_certificate(nan_certificate(), path)
    assert path.read_bytes() == certificate_bytes
    assert [p.name for p in tmp_path.iterdir()] == ["certificate.nc"]  # no temp file left
    monkeypatch.undo()
    assert cert.read_certificate(path).content_sha256 == certificate.content_sha256


@pytest.mark.parametrize("exception", CRASHES, ids=lambda e: type(e).__name__)
def test_crash_mid_write_without_old_file_leaves_nothing(tmp_path, monkeypatch, exception):
    monkeypatch.setattr(xr.DataTree, "to_netcdf", crashing_to_netcdf(exception))
    with pytest.raises(type(exception)):
        cert.write_certificate(make_certificate(), tmp_path / "certificate.nc")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_writes_through_a_temporary_file_in_the_same_folder(tmp_path):
    seen = []

    def write(tmp):
        seen.append(tmp)
        tmp.write_text("content", encoding="utf-8")

    path = cert.atomic_write(tmp_path / "out.txt", write)
    assert path.read_text(encoding="utf-8") == "content"
    assert seen[0].parent == tmp_path
    assert seen[0] != path
    assert not seen[0].exists()


@pytest.mark.parametrize("exception", CRASHES, ids=lambda e: type(e).__name__)
def test_atomic_write_text_keeps_the_old_text_on_failure(tmp_path, exception):
    path = cert.atomic_write_text(tmp_path / "out.txt", "old")

    def write(tmp):
        tmp.write_text("new, but only half", encoding="utf-8")
        raise exception

    with pytest.raises(type(exception)):
        cert.atomic_write(path, write)
    assert path.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_write_gives_ordinary_file_modes(tmp_path):
    umask = os.umask(0o022)
    try:
        fresh = cert.atomic_write_text(tmp_path / "fresh.txt", "x")
        assert fresh.stat().st_mode & 0o777 == 0o644  # not mkstemp's 0600
        kept = tmp_path / "kept.txt"
        kept.write_text("old", encoding="utf-8")
        kept.chmod(0o640)
        cert.atomic_write_text(kept, "new")
        assert kept.stat().st_mode & 0o777 == 0o640  # the replaced file's mode
    finally:
        os.umask(umask)


def test_atomic_write_into_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cert.atomic_write_text(tmp_path / "nowhere" / "out.txt", "x")


# --- files that are not (valid) certificates ----------------------------------------------


def write_foreign_netcdf(path):
    xr.Dataset({"a": ("x", np.arange(3.0))}, attrs={"title": "not a certificate"}).to_netcdf(
        path, engine="netcdf4"
    )


def write_netcdf3(path):
    xr.Dataset({"a": ("x", np.arange(3.0))}).to_netcdf(
        path, engine="netcdf4", format="NETCDF3_CLASSIC"
    )


def write_tree(certificate, mutate, *, redigest=False):
    def write(path):
        tree = certificate.tree.copy()
        mutate(tree)
        if redigest:  # as a writer of that (hypothetical) content would
            tree.attrs["content_sha256"] = cert.content_digest(tree)
        tree.to_netcdf(path, engine="netcdf4")

    return write


def add_bool_column(tree):
    verdicts = tree["verdicts"].to_dataset(inherit=False)
    verdicts["extra"] = ("row", np.ones(verdicts.sizes["row"], dtype=bool))
    tree["verdicts"] = xr.DataTree(verdicts)


BAD_FILES = {
    # name: (how to make it from (path, certificate bytes), error type, message fragment)
    "truncated half": (
        lambda path, data: path.write_bytes(data[: len(data) // 2]),
        cert.CertificateReadError,
        "corrupt or truncated",
    ),
    "truncated header": (
        lambda path, data: path.write_bytes(data[:100]),
        cert.CertificateReadError,
        "corrupt or truncated",
    ),
    "last byte missing": (
        lambda path, data: path.write_bytes(data[:-1]),
        cert.CertificateReadError,
        "corrupt or truncated",
    ),
    "random bytes": (
        lambda path, data: path.write_bytes(np.random.default_rng(0).bytes(4096)),
        cert.CertificateReadError,
        "not a NetCDF-4 file",
    ),
    "HDF5 signature then garbage": (
        lambda path, data: path.write_bytes(PARTIAL + np.random.default_rng(1).bytes(4096)),
        cert.CertificateReadError,
        "corrupt or truncated",
    ),
    "empty": (lambda path, data: path.write_bytes(b""), cert.CertificateReadError, "not a"),
    "text": (
        lambda path, data: path.write_text("confidence = 0.95\n", encoding="utf-8"),
        cert.CertificateReadError,
        "not a NetCDF-4 file",
    ),
    "NetCDF-3": (lambda path, data: write_netcdf3(path), cert.CertificateReadError, "not a"),
    "foreign NetCDF-4": (
        lambda path, data: write_foreign_netcdf(path),
        cert.CertificateSchemaError,
        "not a solvercert certificate",
    ),
    "missing": (lambda path, data: None, cert.CertificateReadError, "no such file"),
    "folder": (lambda path, data: path.mkdir(), cert.CertificateReadError, "is a folder"),
}


@pytest.mark.parametrize(("make", "error", "fragment"), BAD_FILES.values(), ids=BAD_FILES.keys())
@pytest.mark.parametrize("verify", [True, False])
def test_unreadable_file_gives_a_one_line_domain_error(
    certificate_bytes, tmp_path, make, error, fragment, verify
):
    path = tmp_path / "certificate.nc"
    make(path, certificate_bytes)
    with pytest.raises(error) as excinfo:
        cert.read_certificate(path, verify=verify)
    message = str(excinfo.value)
    assert message.startswith(str(path))
    assert fragment in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("mutate", "redigest", "fragment"),
    [
        (lambda tree: tree.attrs.update(schema_version="2.0.0"), True, "not supported"),
        # Another major version may digest differently: say so, do not cry tampering.
        (lambda tree: tree.attrs.update(schema_version="2.0.0"), False, "not supported"),
        (lambda tree: tree.attrs.pop("schema_version"), False, "not a solvercert certificate"),
        (lambda tree: tree.attrs.pop("seed"), True, "missing attribute(s) seed"),
        (add_bool_column, False, "/verdicts/extra: dtype bool not allowed"),  # no digest
    ],
    ids=["v2", "v2-other-digest", "no-version", "missing-attr", "bool-column"],
)
@pytest.mark.parametrize("verify", [True, False])
def test_schema_violations_in_a_file(certificate, tmp_path, mutate, redigest, fragment, verify):
    path = tmp_path / "certificate.nc"
    write_tree(certificate, mutate, redigest=redigest)(path)
    with pytest.raises(cert.CertificateSchemaError, match=re.escape(fragment)) as excinfo:
        cert.read_certificate(path, verify=verify)
    assert str(excinfo.value).startswith(str(path))
    assert "\n" not in str(excinfo.value)


def test_truncation_anywhere_is_a_read_error(certificate_bytes, tmp_path):
    # Every 1/16 of the file: metadata sits at both ends of an HDF5 file.
    path = tmp_path / "certificate.nc"
    size = len(certificate_bytes)
    for cut in range(8, size, size // 16):
        path.write_bytes(certificate_bytes[:cut])
        with pytest.raises(cert.CertificateReadError, match="corrupt or truncated"):
            cert.read_certificate(path)


def test_read_file_is_closed(certificate, tmp_path):
    path = cert.write_certificate(certificate, tmp_path / "certificate.nc")
    cert.read_certificate(path)
    with netCDF4.Dataset(path, "a") as dataset:  # HDF5 refuses files still open for reading
        dataset.setncattr("comment", "appended after reading")
    with pytest.raises(cert.CertificateDigestError):
        cert.read_certificate(path)
