"""Domain errors of the certificate layer.

Each carries a one-line, user-facing message naming the cause; the CLI maps the
classes to exit codes (see ``verify/cli.py``) and never shows a traceback for them.
"""

from __future__ import annotations


class CertificateError(Exception):
    """Base class: something is wrong with a certificate or with what describes one."""


class CertificateReadError(CertificateError):
    """The file cannot be read as a NetCDF-4 certificate (missing, corrupt, truncated, foreign)."""


class CertificateSchemaError(CertificateError):
    """The data do not satisfy ``certificates/SCHEMA.md``."""


class CertificateDigestError(CertificateError):
    """The stored ``content_sha256`` does not match the content (tampering or corruption)."""


class BoundsError(CertificateError):
    """A bounds file or bound specification is unreadable or invalid."""
