"""The content digest: canonical, sensitive to every value and attribute, checked on read."""

from __future__ import annotations

import re
from collections.abc import Callable

import netCDF4
import numpy as np
import pytest
import xarray as xr

import certificates as cert
from tests.helpers import make_certificate

Nodes = dict[str, xr.Dataset]


@pytest.fixture(scope="module")
def certificate() -> cert.Certificate:
    return make_certificate()


def nodes_of(certificate: cert.Certificate) -> Nodes:
    return {
        node.path: node.to_dataset(inherit=False).copy(deep=True)
        for node in certificate.tree.subtree
    }


def digest_after(certificate: cert.Certificate, mutate: Callable[[Nodes], None]) -> str:
    nodes = nodes_of(certificate)
    mutate(nodes)
    return cert.content_digest(xr.DataTree.from_dict(nodes))


def test_digest_is_sha256_hex_and_stored(certificate):
    digest = cert.content_digest(certificate.tree)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert certificate.content_sha256 == digest
    assert cert.content_digest(certificate.tree) == digest  # deterministic


def test_digest_survives_write_and_read(certificate, tmp_path):
    read = cert.read_certificate(cert.write_certificate(certificate, tmp_path / "c.nc"))
    assert cert.content_digest(read.tree) == certificate.content_sha256


@pytest.mark.parametrize("value", ["0" * 64, "not even hex", 7])
def test_digest_ignores_the_stored_digest(certificate, value):
    def mutate(nodes: Nodes) -> None:
        nodes["/"].attrs["content_sha256"] = value

    assert digest_after(certificate, mutate) == certificate.content_sha256


def test_digest_ignores_insertion_order(certificate):
    def reverse(nodes: Nodes) -> None:
        for path, dataset in nodes.items():
            data_vars = {name: dataset[name].variable for name in reversed(list(dataset.data_vars))}
            reordered = xr.Dataset(data_vars, coords=dataset.coords)
            reordered.attrs = dict(reversed(list(dataset.attrs.items())))
            nodes[path] = reordered

    assert digest_after(certificate, reverse) == certificate.content_sha256


def test_digest_canonicalises_nan_payloads(certificate):
    other_nan = np.frombuffer(np.uint64(0x7FF8_0000_0000_0001).tobytes(), dtype=np.float64)[0]
    assert np.isnan(other_nan)

    def with_nan(value):
        def mutate(nodes: Nodes) -> None:
            nodes["/score_gap"]["score_gap_stderr"].values[1] = value

        return mutate

    canonical = digest_after(certificate, with_nan(np.nan))
    assert canonical != certificate.content_sha256  # the mutation took effect
    assert digest_after(certificate, with_nan(other_nan)) == canonical


def set_value(path, variable, index, value):
    def mutate(nodes: Nodes) -> None:
        values = nodes[path][variable].values.astype(object if isinstance(value, str) else None)
        values[index] = value
        nodes[path][variable] = nodes[path][variable].copy(data=values)

    return mutate


def set_attr(path, key, value, variable=None):
    def mutate(nodes: Nodes) -> None:
        (nodes[path] if variable is None else nodes[path][variable]).attrs[key] = value

    return mutate


def rename(path, old, new):
    def mutate(nodes: Nodes) -> None:
        nodes[path] = nodes[path].rename({old: new})

    return mutate


CHANGES = {
    "estimate value": set_value("/score_gap", "score_gap", 0, 1.5e-3),
    "estimate by one ulp": set_value("/score_gap", "score_gap", 0, np.nextafter(1e-3, 1.0)),
    "estimate sign of zero": set_value("/invariants", "energy_drift_stderr", (), -0.0),
    "stderr value": set_value("/score_gap", "score_gap_stderr", 2, 2e-4),
    "n_samples value": set_value("/score_gap", "score_gap_n_samples", 0, 4097),
    "reason text": set_value("/score_gap", "score_gap_reason", 0, "note"),
    "time coordinate": set_value("/score_gap", "time", 2, 1.5),
    "verdict row verdict": set_value("/verdicts", "verdict", 0, "FAIL"),
    "verdict row lower": set_value("/verdicts", "lower", 3, 0.0),
    "verdict row check": set_value("/verdicts", "check", 3, "energy_drif"),
    "units attribute": set_attr("/score_gap", "units", "m2 s-2", variable="score_gap"),
    "coordinate units": set_attr("/score_gap", "units", "s", variable="time"),
    "eps attribute": set_attr("/score_gap", "eps", 1e-12, variable="score_gap"),
    "int attribute to float": set_attr("/", "seed", 0.0),
    "root attribute": set_attr("/", "tool_version", "0.1.1"),
    "family description": set_attr("/invariants", "description", "other"),
    "verdicts attribute": set_attr("/verdicts", "confidence", 0.9),
    "new attribute": set_attr("/", "comment", ""),
    "variable renamed": rename("/score_gap", "score_gap_reason", "score_gap_note"),
    "group renamed": lambda nodes: nodes.__setitem__("/drift", nodes.pop("/invariants")),
    "variable dropped": lambda nodes: nodes.__setitem__(
        "/score_gap", nodes["/score_gap"].drop_vars("score_gap_n_samples")
    ),
}


@pytest.mark.parametrize("mutate", CHANGES.values(), ids=CHANGES.keys())
def test_digest_changes_with_any_content(certificate, mutate):
    assert digest_after(certificate, mutate) != certificate.content_sha256


# --- tampering with a written file --------------------------------------------------------


def tamper_stderr(dataset: netCDF4.Dataset) -> None:
    dataset["score_gap"]["score_gap_stderr"][1] = 0.5


def tamper_units(dataset: netCDF4.Dataset) -> None:
    dataset["score_gap"]["score_gap"].setncattr("units", "m")


def tamper_root(dataset: netCDF4.Dataset) -> None:
    dataset.setncattr("tool_version", "9.9.9")


def tamper_row(dataset: netCDF4.Dataset) -> None:
    dataset["verdicts"]["upper"][0] = 1e-3 + 1e-9


TAMPERINGS = {
    "stderr value": (
        tamper_stderr,
        lambda c: float(c.family("score_gap")["score_gap_stderr"][1]),
        0.5,
    ),
    "units attribute": (
        tamper_units,
        lambda c: c.family("score_gap")["score_gap"].attrs["units"],
        "m",
    ),
    "root attribute": (tamper_root, lambda c: c.attrs["tool_version"], "9.9.9"),
    "verdict row": (tamper_row, lambda c: c.rows[0].upper, 1e-3 + 1e-9),
}


@pytest.mark.parametrize(
    ("tamper", "read_back", "value"), TAMPERINGS.values(), ids=TAMPERINGS.keys()
)
def test_tampered_file_fails_the_digest_check(certificate, tmp_path, tamper, read_back, value):
    path = cert.write_certificate(certificate, tmp_path / "certificate.nc")
    with netCDF4.Dataset(path, "a") as dataset:
        tamper(dataset)
    with pytest.raises(
        cert.CertificateDigestError, match="does not match its content_sha256"
    ) as excinfo:
        cert.read_certificate(path)
    message = str(excinfo.value)
    assert str(path) in message
    assert "\n" not in message
    # verify=False still reads it (the schema holds), and shows the tampered content.
    unverified = cert.read_certificate(path, verify=False)
    assert read_back(unverified) == value
    assert unverified.content_sha256 == certificate.content_sha256  # the stale stored digest


@pytest.mark.parametrize(
    "tamper",
    [
        lambda dataset: dataset.setncattr("verdict", "FAIL"),  # disagrees with the rows
        lambda dataset: dataset["score_gap"]["score_gap"].__setitem__(0, 0.5),  # ≠ its row
    ],
)
def test_tampering_that_also_breaks_the_schema(certificate, tmp_path, tamper):
    path = cert.write_certificate(certificate, tmp_path / "certificate.nc")
    with netCDF4.Dataset(path, "a") as dataset:
        tamper(dataset)
    # Tampering is reported as such; without the digest check the schema still objects.
    with pytest.raises(cert.CertificateDigestError, match=re.escape(str(path))):
        cert.read_certificate(path)
    with pytest.raises(cert.CertificateSchemaError, match=re.escape(str(path))):
        cert.read_certificate(path, verify=False)


@pytest.mark.parametrize("value", [np.array([1, 2], dtype=np.int32), np.array([0.5, 1.5]), 3])
def test_non_text_stored_digest_is_a_domain_error(certificate, tmp_path, value):
    path = cert.write_certificate(certificate, tmp_path / "certificate.nc")
    with netCDF4.Dataset(path, "a") as dataset:
        dataset.setncattr("content_sha256", value)
    for verify in (True, False):
        with pytest.raises(cert.CertificateError, match=re.escape(str(path))):
            cert.read_certificate(path, verify=verify)


def test_write_refuses_a_certificate_whose_digest_does_not_match(certificate, tmp_path):
    tree = certificate.tree.copy()
    tree.attrs["tool_version"] = "changed after digesting"
    path = tmp_path / "certificate.nc"
    with pytest.raises(cert.CertificateDigestError, match=str(path)):
        cert.write_certificate(cert.Certificate(tree), path)
    assert list(tmp_path.iterdir()) == []
    assert certificate.attrs["tool_version"] == "0.1.0"  # the copy did not alias


def _set_root(name: str, value) -> Callable[[Nodes], None]:
    def mutate(nodes: Nodes) -> None:
        nodes["/"].attrs[name] = value

    return mutate


def test_created_at_is_not_content_from_schema_1_1(certificate):
    # Same inputs and seed at another time must give the same digest (SCHEMA.md § 8).
    later = digest_after(certificate, _set_root("created_at", "2030-01-01T00:00:00Z"))
    assert later == certificate.content_sha256


def test_created_at_is_content_in_schema_1_0_files(certificate):
    def old(created_at: str) -> Callable[[Nodes], None]:
        def mutate(nodes: Nodes) -> None:
            nodes["/"].attrs["schema_version"] = "1.0.0"
            nodes["/"].attrs["created_at"] = created_at

        return mutate

    assert digest_after(certificate, old("2026-01-01T00:00:00Z")) != digest_after(
        certificate, old("2030-01-01T00:00:00Z")
    )
