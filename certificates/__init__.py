"""The certificate artefact: schema, I/O, gating and reports — without JAX.

A certificate is an ``xarray.DataTree`` stored as one NetCDF-4 file whose contract is
written in ``certificates/SCHEMA.md``. This package can read, validate, re-gate and
report on certificates on a machine without a JAX stack; it never imports JAX.
"""

from ._atomic import atomic_write, atomic_write_text
from ._baseline import (
    BaselineError,
    BaselineResult,
    NotCompared,
    RegressionMargins,
    RegressionRow,
    compare_to_baseline,
    format_regression_table,
    parse_regression_margins,
)
from ._bounds import (
    Bound,
    Bounds,
    CheckBound,
    bounds_from_json,
    load_bounds,
    parse_bound_expressions,
    parse_bounds,
)
from ._certificate import Certificate, Provenance, assemble_certificate, utc_now_iso
from ._checks import CheckResult, check_names, family_dataset
from ._digest import content_digest
from ._errors import (
    BoundsError,
    CertificateDigestError,
    CertificateError,
    CertificateReadError,
    CertificateSchemaError,
)
from ._gate import GateResult, VerdictRow, gate
from ._intervals import Interval, build_interval, per_interval_confidence
from ._io import read_certificate, write_certificate
from ._names import (
    SCHEMA_VERSION,
    Comparison,
    Correction,
    Evidence,
    IntervalMethod,
    Verdict,
)
from ._reports import ReportFormat, format_table, render_report
from ._schema import schema_problems, validate
from ._trajectories import (
    TrajectoryArtefact,
    TrajectoryError,
    read_trajectories,
    write_trajectories,
)
from ._verdict import combine, decide

__all__ = [
    "SCHEMA_VERSION",
    "BaselineError",
    "BaselineResult",
    "Bound",
    "Bounds",
    "BoundsError",
    "Certificate",
    "CertificateDigestError",
    "CertificateError",
    "CertificateReadError",
    "CertificateSchemaError",
    "CheckBound",
    "CheckResult",
    "Comparison",
    "Correction",
    "Evidence",
    "GateResult",
    "Interval",
    "IntervalMethod",
    "NotCompared",
    "Provenance",
    "RegressionMargins",
    "RegressionRow",
    "ReportFormat",
    "TrajectoryArtefact",
    "TrajectoryError",
    "Verdict",
    "VerdictRow",
    "assemble_certificate",
    "atomic_write",
    "atomic_write_text",
    "bounds_from_json",
    "build_interval",
    "check_names",
    "combine",
    "compare_to_baseline",
    "content_digest",
    "decide",
    "family_dataset",
    "format_regression_table",
    "format_table",
    "gate",
    "load_bounds",
    "parse_bound_expressions",
    "parse_bounds",
    "parse_regression_margins",
    "per_interval_confidence",
    "read_certificate",
    "read_trajectories",
    "render_report",
    "schema_problems",
    "utc_now_iso",
    "validate",
    "write_certificate",
    "write_trajectories",
]
