"""Reading and writing certificates as NetCDF-4 files (atomically, validated both ways)."""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import xarray as xr

from ._atomic import atomic_write
from ._certificate import Certificate
from ._digest import content_digest
from ._errors import CertificateDigestError, CertificateReadError, CertificateSchemaError
from ._names import ATTR_CONTENT_SHA256, ATTR_SCHEMA_VERSION, SCHEMA_VERSION
from ._schema import schema_problems, validate

_ENGINE = "netcdf4"
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def write_certificate(certificate: Certificate, path: str | Path) -> Path:
    """Validate ``certificate`` and write it to ``path`` atomically.

    The file is written to a temporary file in the same folder, flushed to disk, and
    renamed over ``path``; an interrupted write leaves any previous file intact.

    Raises
    ------
    CertificateSchemaError
        The certificate is not valid (nothing is written).
    CertificateDigestError
        Its ``content_sha256`` does not match its content (nothing is written).
    """
    validate(certificate.tree)
    _check_digest(certificate.tree, str(path))

    def write(tmp: Path) -> None:
        certificate.tree.to_netcdf(tmp, engine=_ENGINE, mode="w")

    return atomic_write(path, write)


def _check_digest(tree: xr.DataTree, where: str) -> None:
    stored = tree.attrs.get(ATTR_CONTENT_SHA256)
    actual = content_digest(tree)
    # A foreign or damaged file may hold an array here; comparing it would be elementwise.
    if not isinstance(stored, str) or stored != actual:
        raise CertificateDigestError(
            f"{where}: content does not match its content_sha256 "
            f"(stored {str(stored)[:12]}…, computed {actual[:12]}…): "
            "the file was modified or corrupted"
        )


def _open_tree(path: Path) -> xr.DataTree:
    if not path.exists():
        raise CertificateReadError(f"{path}: no such file")
    if path.is_dir():
        raise CertificateReadError(f"{path}: is a folder, not a certificate file")
    try:
        with path.open("rb") as handle:
            signature = handle.read(len(_HDF5_SIGNATURE))
    except OSError as exc:
        raise CertificateReadError(f"{path}: cannot be read ({exc.strerror})") from None
    if signature != _HDF5_SIGNATURE:
        raise CertificateReadError(f"{path}: not a NetCDF-4 file")
    try:
        # Certificates store plain numbers; CF time decoding would only misread them.
        # Each group is loaded as a Dataset before the file closes: xarray's
        # DataTree.load() leaves a variable lazy when it has its group's name (xarray
        # 2025.9-2026.9), and touching it after the close breaks HDF5 for the process.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with xr.open_datatree(
                path, engine=_ENGINE, decode_times=False, decode_timedelta=False
            ) as lazy:
                nodes = {node.path: node.to_dataset(inherit=False).load() for node in lazy.subtree}
        return xr.DataTree.from_dict(nodes)
    except Exception as exc:  # netCDF4/HDF5 raise many types for damaged files
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CertificateReadError(
            f"{path}: corrupt or truncated NetCDF-4 file ({detail})"
        ) from None


def read_certificate(path: str | Path, *, verify: bool = True) -> Certificate:
    """Read and validate a certificate.

    Parameters
    ----------
    path : path-like
        A NetCDF-4 file written by :func:`write_certificate`.
    verify : bool, default True
        Check that the content matches ``content_sha256``; ``verify show --no-verify``
        turns this off to display a modified certificate (the schema is still checked).

    Raises
    ------
    CertificateReadError
        Missing, unreadable, not NetCDF-4, corrupt or truncated.
    CertificateSchemaError
        Foreign NetCDF or a certificate that violates the schema.
    CertificateDigestError
        The content no longer matches its digest (only with ``verify=True``).
    """
    path = Path(path)
    tree = _open_tree(path)
    problems = schema_problems(tree)
    # Tampering is reported as such even when it also broke the schema's consistency
    # rules (an edited estimate no longer matches its verdict row); a foreign file, with
    # no digest to compare, is reported by the schema check instead, and so is another
    # major version, whose digest need not be computed as this one's.
    version = tree.attrs.get(ATTR_SCHEMA_VERSION)
    if (
        verify
        and isinstance(version, str)
        and version.split(".")[0] == SCHEMA_VERSION.split(".")[0]
    ):
        with contextlib.suppress(TypeError):  # disallowed dtypes: the schema check says so
            _check_digest(tree, str(path))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CertificateSchemaError(f"{path}: invalid certificate: {problems[0]}{more}")
    return Certificate(tree)
