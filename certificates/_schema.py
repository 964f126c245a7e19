"""Validation of a certificate tree against ``certificates/SCHEMA.md``.

:func:`schema_problems` lists every violation it finds (empty when valid);
:func:`validate` raises :class:`CertificateSchemaError` with a one-line summary.
Validation runs when a certificate is written and when it is read.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any

import numpy as np
import xarray as xr

from . import _names as n
from ._bounds import bounds_from_json
from ._errors import BoundsError, CertificateSchemaError
from ._names import Comparison, Correction, Evidence, IntervalMethod, Verdict
from ._verdict import combine

_HEX64 = re.compile(r"^[0-9a-f]{64}$")

_STRING_ATTRS = (
    n.ATTR_SCHEMA_VERSION,
    n.ATTR_CREATED_AT,
    n.ATTR_TOOL_VERSION,
    n.ATTR_JAX_VERSION,
    n.ATTR_BACKEND,
    n.ATTR_PROBLEM_ID,
    n.ATTR_PROBLEM_JSON,
    n.ATTR_MODEL_SPEC,
    n.ATTR_MODEL_SHA256,
    n.ATTR_CONFIG_JSON,
    n.ATTR_BOUNDS_JSON,
    n.ATTR_CORRECTION,
    n.ATTR_VERDICT,
    n.ATTR_CONTENT_SHA256,
)
_INT_ATTRS = (n.ATTR_X64, n.ATTR_SEED)
_FLOAT_ATTRS = (n.ATTR_CONFIDENCE,)
REQUIRED_ROOT_ATTRS = _STRING_ATTRS + _INT_ATTRS + _FLOAT_ATTRS

_FLOAT_COLUMNS = (
    n.COL_TIME,
    n.COL_ESTIMATE,
    n.COL_STDERR,
    n.COL_LOWER,
    n.COL_UPPER,
    n.COL_THRESHOLD,
    n.COL_CONFIDENCE,
)
_ENUM_COLUMNS = {
    n.COL_COMPARISON: Comparison,
    n.COL_VERDICT: Verdict,
    n.COL_EVIDENCE: Evidence,
    n.COL_INTERVAL_METHOD: IntervalMethod,
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _is_float(value: Any) -> bool:
    return isinstance(value, float | np.floating) or _is_int(value)


def _attr_type_problems(where: str, attrs: dict[str, Any]) -> list[str]:
    return [
        f"{where}: attribute {key!r} has type {type(value).__name__} "
        "(only strings and numbers can be stored)"
        for key, value in attrs.items()
        if not (isinstance(value, str) or _is_float(value))
    ]


def _root_problems(attrs: dict[str, Any]) -> list[str]:
    missing = [key for key in REQUIRED_ROOT_ATTRS if key not in attrs]
    if missing:
        return [f"root: missing attribute(s) {', '.join(missing)}"]
    problems = _attr_type_problems("root", attrs)
    problems += [
        f"root: {k} must be a string" for k in _STRING_ATTRS if not isinstance(attrs[k], str)
    ]
    problems += [f"root: {k} must be an integer" for k in _INT_ATTRS if not _is_int(attrs[k])]
    problems += [f"root: {k} must be a number" for k in _FLOAT_ATTRS if not _is_float(attrs[k])]
    if problems:
        return problems
    if attrs[n.ATTR_X64] not in (0, 1):
        problems.append(f"root: x64 must be 0 or 1, got {attrs[n.ATTR_X64]}")
    confidence = float(attrs[n.ATTR_CONFIDENCE])
    if not 0.0 < confidence < 1.0:
        problems.append(f"root: confidence must lie in (0, 1), got {confidence}")
    try:
        stamp = dt.datetime.fromisoformat(attrs[n.ATTR_CREATED_AT].replace("Z", "+00:00"))
        if stamp.utcoffset() != dt.timedelta(0):
            problems.append("root: created_at must be in UTC")
    except ValueError:
        problems.append(f"root: created_at {attrs[n.ATTR_CREATED_AT]!r} is not ISO 8601")
    for key in (n.ATTR_PROBLEM_JSON, n.ATTR_CONFIG_JSON):
        try:
            if not isinstance(json.loads(attrs[key]), dict):
                problems.append(f"root: {key} must encode a JSON object")
        except json.JSONDecodeError:
            problems.append(f"root: {key} is not valid JSON")
    try:
        bounds_from_json(attrs[n.ATTR_BOUNDS_JSON], "root: bounds_json")
    except BoundsError as exc:
        problems.append(str(exc))
    if attrs[n.ATTR_MODEL_SHA256] and not _HEX64.match(attrs[n.ATTR_MODEL_SHA256]):
        problems.append("root: model_sha256 must be empty or 64 lowercase hex digits")
    if not _HEX64.match(attrs[n.ATTR_CONTENT_SHA256]):
        problems.append("root: content_sha256 must be 64 lowercase hex digits")
    for key, enum in ((n.ATTR_VERDICT, Verdict), (n.ATTR_CORRECTION, Correction)):
        if attrs[key] not in {str(member) for member in enum}:
            problems.append(f"root: {key} {attrs[key]!r} is not one of {[str(m) for m in enum]}")
    return problems


def _dtype_problem(where: str, variable: xr.Variable, kinds: str) -> list[str]:
    if variable.dtype.kind not in kinds:
        return [f"{where}: dtype {variable.dtype} not allowed here"]
    return []


def _family_problems(name: str, data: xr.Dataset) -> list[str]:
    where = f"/{name}"
    problems = _attr_type_problems(where, dict(data.attrs))
    family = data.attrs.get(n.ATTR_FAMILY)
    if not isinstance(family, str) or family != name:
        problems.append(f"{where}: attribute family must equal the group name")
    if not isinstance(data.attrs.get(n.ATTR_DESCRIPTION), str):
        problems.append(f"{where}: missing attribute description")
    for var_name, variable in data.variables.items():
        vwhere = f"{where}/{var_name}"
        problems += _attr_type_problems(vwhere, dict(variable.attrs))
        problems += _dtype_problem(vwhere, variable, "fiuUSO")
        for attr in (n.ATTR_UNITS, n.ATTR_LONG_NAME):
            if not isinstance(variable.attrs.get(attr), str):
                problems.append(f"{vwhere}: missing attribute {attr}")
        if set(variable.dims) - {n.TIME_DIM} or variable.ndim > 1:
            problems.append(f"{vwhere}: dims {variable.dims} (only () or (time,) are defined)")
    if n.TIME_DIM in data.dims:
        if n.TIME_DIM not in data.coords:
            problems.append(f"{where}: dimension time has no coordinate")
        else:
            times = np.asarray(data[n.TIME_DIM].values)
            if (
                times.dtype.kind != "f"
                or not np.all(np.isfinite(times))
                or np.any(np.diff(times) <= 0)
            ):
                problems.append(f"{where}/time: must be finite, float and strictly increasing")
    for check in (v for v, var in data.data_vars.items() if n.ATTR_EVIDENCE in var.attrs):
        problems += _check_problems(where, str(check), data)
    return problems


def _check_problems(where: str, check: str, data: xr.Dataset) -> list[str]:
    cwhere = f"{where}/{check}"
    estimate = data[check]
    attrs = estimate.attrs
    problems = []
    for attr in (n.ATTR_FORMULA_ID, n.ATTR_NORMALISER):
        if not isinstance(attrs.get(attr), str):
            problems.append(f"{cwhere}: missing attribute {attr}")
    if not _is_float(attrs.get(n.ATTR_EPS)):
        problems.append(f"{cwhere}: attribute eps must be a number")
    for attr, enum in ((n.ATTR_EVIDENCE, Evidence), (n.ATTR_INTERVAL_METHOD, IntervalMethod)):
        if attrs.get(attr) not in {str(member) for member in enum}:
            problems.append(f"{cwhere}: attribute {attr} must be one of {[str(m) for m in enum]}")
    confidence = attrs.get(n.ATTR_CONFIDENCE)
    if not _is_float(confidence) or not 0.0 < float(confidence) <= 1.0:
        problems.append(f"{cwhere}: attribute confidence must lie in (0, 1]")
    problems += _dtype_problem(cwhere, estimate.variable, "f")
    kinds = {
        n.SUFFIX_STDERR: "f",
        n.SUFFIX_LOWER: "f",
        n.SUFFIX_UPPER: "f",
        n.SUFFIX_N_SAMPLES: "iu",
        n.SUFFIX_REASON: "UOS",
    }
    for suffix, kind in kinds.items():
        companion = check + suffix
        if companion not in data.variables:
            problems.append(f"{cwhere}: missing companion variable {companion}")
            continue
        if data[companion].dims != estimate.dims:
            problems.append(f"{where}/{companion}: dims differ from {check}")
        problems += _dtype_problem(f"{where}/{companion}", data[companion].variable, kind)
    if not problems:
        nan = np.isnan(np.asarray(estimate.values, dtype=np.float64))
        reasons = np.asarray(data[check + n.SUFFIX_REASON].values).astype(str)
        if np.any(nan & (reasons == "")):
            problems.append(f"{cwhere}: NaN estimate without a reason")
    return problems


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def _verdict_problems(table: xr.Dataset, families: dict[str, xr.Dataset]) -> list[str]:
    where = f"/{n.VERDICTS_GROUP}"
    missing = [c for c in n.VERDICT_COLUMNS if c not in table.variables]
    if missing:
        return [f"{where}: missing column(s) {', '.join(missing)}"]
    problems = _attr_type_problems(where, dict(table.attrs))
    # Every variable, not only the columns, must be digestible (strings and numbers).
    for name, variable in table.variables.items():
        problems += _attr_type_problems(f"{where}/{name}", dict(variable.attrs))
        problems += _dtype_problem(f"{where}/{name}", variable, "fiuUSO")
    for column in n.VERDICT_COLUMNS:
        variable = table[column].variable
        if variable.dims != (n.ROW_DIM,):
            problems.append(f"{where}/{column}: dims must be (row,)")
        kind = "f" if column in _FLOAT_COLUMNS else "iu" if column == n.COL_N_SAMPLES else "UOS"
        problems += _dtype_problem(f"{where}/{column}", variable, kind)
    if problems:
        return problems
    values = {c: table[c].values for c in n.VERDICT_COLUMNS}
    for column, enum in _ENUM_COLUMNS.items():
        allowed = {str(member) for member in enum}
        bad = sorted({str(v) for v in values[column]} - allowed)
        if bad:
            problems.append(f"{where}/{column}: values {bad} not in {sorted(allowed)}")
    if problems:
        return problems
    for i in range(table.sizes.get(n.ROW_DIM, 0)):
        problems += _row_problems(i, {c: values[c][i] for c in values}, families)
    return problems


def _row_problems(i: int, row: dict[str, Any], families: dict[str, xr.Dataset]) -> list[str]:
    where = f"/{n.VERDICTS_GROUP} row {i} ({row[n.COL_CHECK]})"
    group, check = str(row[n.COL_GROUP]), str(row[n.COL_CHECK])
    estimate, time = float(row[n.COL_ESTIMATE]), float(row[n.COL_TIME])
    if group == "":
        if row[n.COL_VERDICT] != Verdict.FAIL or not math.isnan(estimate) or not row[n.COL_REASON]:
            return [f"{where}: a row without a group must be a FAIL with NaN estimate and reason"]
        return []
    if group not in families or check not in families[group].data_vars:
        return [f"{where}: no check {check!r} in group /{group}"]
    stored = families[group][check]
    if stored.dtype.kind != "f":
        return [f"{where}: /{group}/{check} is not a float variable"]
    if math.isnan(time):
        if stored.ndim != 0:
            return [f"{where}: aggregate row but {check} is per-time"]
        value = float(stored.values)
    else:
        if stored.ndim != 1:
            return [f"{where}: per-time row but {check} is an aggregate"]
        match = np.flatnonzero(np.asarray(stored[n.TIME_DIM].values) == time)
        if match.size != 1:
            return [f"{where}: time {time} is not a time of /{group}"]
        value = float(stored.values[match[0]])
    if not _same(value, estimate):
        return [f"{where}: estimate {estimate} differs from /{group}/{check} ({value})"]
    if row[n.COL_VERDICT] != Verdict.PASS and not row[n.COL_REASON]:
        return [f"{where}: a {row[n.COL_VERDICT]} row needs a reason"]
    return []


def schema_problems(tree: xr.DataTree) -> list[str]:
    """Every way ``tree`` violates the schema (empty list when it is a valid certificate)."""
    attrs = dict(tree.attrs)
    version = attrs.get(n.ATTR_SCHEMA_VERSION)
    if not isinstance(version, str):
        return ["not a solvercert certificate (no schema_version attribute)"]
    if version.split(".")[0] != n.SCHEMA_VERSION.split(".")[0]:
        return [f"schema version {version} is not supported (this tool reads {n.SCHEMA_VERSION})"]
    problems = _root_problems(attrs)
    if tree.to_dataset(inherit=False).variables:
        problems.append("root: must hold no variables")
    families: dict[str, xr.Dataset] = {}
    for name, child in tree.children.items():
        if child.children:
            problems.append(f"/{name}: nested groups are not defined")
        if name != n.VERDICTS_GROUP:
            families[name] = child.to_dataset(inherit=False)
            problems += _family_problems(name, families[name])
    seen: dict[str, str] = {}
    for group, data in families.items():
        for check in (v for v, var in data.data_vars.items() if n.ATTR_EVIDENCE in var.attrs):
            if check in seen:
                problems.append(f"check {check!r} appears in both /{seen[check]} and /{group}")
            seen[str(check)] = group
    if n.VERDICTS_GROUP not in tree.children:
        problems.append(f"missing group /{n.VERDICTS_GROUP}")
        return problems
    table = tree[n.VERDICTS_GROUP].to_dataset(inherit=False)
    verdict_problems = _verdict_problems(table, families)
    problems += verdict_problems
    if not verdict_problems and isinstance(attrs.get(n.ATTR_VERDICT), str):
        overall = combine(Verdict(str(v)) for v in table[n.COL_VERDICT].values)
        if attrs[n.ATTR_VERDICT] != overall:
            problems.append(
                f"root: verdict {attrs[n.ATTR_VERDICT]} disagrees with the rows ({overall})"
            )
    return problems


def validate(tree: xr.DataTree) -> None:
    """Raise :class:`CertificateSchemaError` (one line) if ``tree`` is not a valid certificate."""
    problems = schema_problems(tree)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise CertificateSchemaError(f"invalid certificate: {problems[0]}{more}")
