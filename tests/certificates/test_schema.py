"""Validation: the helper certificate is valid, and each kind of violation is detected."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import xarray as xr

import certificates as cert
from certificates._schema import REQUIRED_ROOT_ATTRS
from tests.helpers import make_certificate

Nodes = dict[str, xr.Dataset]


@pytest.fixture(scope="module")
def valid() -> cert.Certificate:
    return make_certificate()


def nodes_of(certificate: cert.Certificate) -> Nodes:
    """A deep copy of every group, to mutate without touching the valid tree."""
    return {
        node.path: node.to_dataset(inherit=False).copy(deep=True)
        for node in certificate.tree.subtree
    }


def mutated(certificate: cert.Certificate, mutate: Callable[[Nodes], None]) -> xr.DataTree:
    nodes = nodes_of(certificate)
    mutate(nodes)
    return xr.DataTree.from_dict(nodes)


def test_helper_certificate_is_valid(valid):
    assert cert.schema_problems(valid.tree) == []
    cert.validate(valid.tree)  # does not raise


def test_mutation_copies_leave_the_original_valid(valid):
    mutated(valid, lambda nodes: nodes["/"].attrs.update(x64=7))
    assert cert.schema_problems(valid.tree) == []


# Without schema_version a tree is foreign, not incomplete (see VIOLATIONS below).
@pytest.mark.parametrize("attr", [a for a in REQUIRED_ROOT_ATTRS if a != "schema_version"])
def test_missing_root_attribute(valid, attr):
    tree = mutated(valid, lambda nodes: nodes["/"].attrs.pop(attr))
    assert cert.schema_problems(tree) == [f"root: missing attribute(s) {attr}"]


def set_attr(path: str, key: str, value, variable: str | None = None):
    def mutate(nodes: Nodes) -> None:
        target = nodes[path] if variable is None else nodes[path][variable]
        target.attrs[key] = value

    return mutate


def set_value(path: str, variable: str, index, value):
    def mutate(nodes: Nodes) -> None:
        values = nodes[path][variable].values.copy()
        if values.dtype.kind in "UO" and isinstance(value, str):
            values = values.astype(object)
        values[index] = value
        nodes[path][variable] = nodes[path][variable].copy(data=values)

    return mutate


def drop(path: str, variable: str):
    def mutate(nodes: Nodes) -> None:
        nodes[path] = nodes[path].drop_vars(variable)

    return mutate


def retype(path: str, variable: str, values):
    def mutate(nodes: Nodes) -> None:
        old = nodes[path][variable].variable
        nodes[path][variable] = xr.Variable(old.dims, np.broadcast_to(values, old.shape), old.attrs)

    return mutate


def add_variable(path: str, name: str, variable: xr.Variable):
    def mutate(nodes: Nodes) -> None:
        nodes[path][name] = variable

    return mutate


def both(*mutations):
    def mutate(nodes: Nodes) -> None:
        for mutation in mutations:
            mutation(nodes)

    return mutate


VIOLATIONS = {
    # root attributes
    "x64 not 0/1": (set_attr("/", "x64", 2), "x64 must be 0 or 1"),
    "x64 float": (set_attr("/", "x64", 1.0), "x64 must be an integer"),
    "seed text": (set_attr("/", "seed", "0"), "seed must be an integer"),
    "created_at +02:00": (
        set_attr("/", "created_at", "2026-01-01T02:00:00+02:00"),
        "created_at must be in UTC",
    ),
    "created_at naive": (set_attr("/", "created_at", "2026-01-01T00:00:00"), "must be in UTC"),
    "created_at not a date": (set_attr("/", "created_at", "yesterday"), "is not ISO 8601"),
    "problem_json broken": (set_attr("/", "problem_json", "{"), "problem_json is not valid JSON"),
    "config_json a list": (set_attr("/", "config_json", "[1]"), "config_json must encode a JSON"),
    "bounds_json broken": (set_attr("/", "bounds_json", "{"), "bounds_json: not valid JSON"),
    "bounds_json invalid": (
        set_attr("/", "bounds_json", '{"bounds": {"a": {"max": 1, "min": 0}}}'),
        "bounds_json: bounds.a: give either max or min",
    ),
    "confidence out of range": (set_attr("/", "confidence", 1.5), "confidence must lie in"),
    "verdict disagrees with rows": (set_attr("/", "verdict", "FAIL"), "disagrees with the rows"),
    "verdict unknown": (set_attr("/", "verdict", "MAYBE"), "verdict 'MAYBE' is not one of"),
    "verdict an array": (set_attr("/", "verdict", np.array([1, 2])), "has type ndarray"),
    "correction unknown": (set_attr("/", "correction", "holm"), "correction 'holm' is not one"),
    "content_sha256 not hex": (set_attr("/", "content_sha256", "xyz"), "content_sha256 must be"),
    "model_sha256 upper case": (set_attr("/", "model_sha256", "AB" * 32), "model_sha256 must be"),
    "bool root attribute": (set_attr("/", "flag", True), "'flag' has type bool"),
    "root variable": (
        add_variable("/", "x", xr.Variable((), 1.0)),
        "root: must hold no variables",
    ),
    # family groups
    "family attribute wrong": (set_attr("/score_gap", "family", "other"), "family must equal"),
    "family attribute an array": (
        set_attr("/score_gap", "family", np.array([1, 2])),
        "family must equal the group name",
    ),
    "description missing": (
        lambda nodes: nodes["/score_gap"].attrs.pop("description"),
        "missing attribute description",
    ),
    "bool variable attribute": (
        set_attr("/score_gap", "flag", True, variable="score_gap"),
        "'flag' has type bool",
    ),
    "units missing": (
        lambda nodes: nodes["/score_gap"]["score_gap_stderr"].attrs.pop("units"),
        "score_gap_stderr: missing attribute units",
    ),
    "missing companion": (
        drop("/score_gap", "score_gap_stderr"),
        "missing companion variable score_gap_stderr",
    ),
    "NaN estimate without reason": (
        both(
            set_value("/score_gap", "score_gap", 1, np.nan),
            set_value("/verdicts", "estimate", 1, np.nan),
        ),
        "NaN estimate without a reason",
    ),
    "evidence unknown": (
        set_attr("/score_gap", "evidence", "GUESS", variable="score_gap"),
        "attribute evidence must be one of",
    ),
    "interval method unknown": (
        set_attr("/score_gap", "interval_method", "bootstrap", variable="score_gap"),
        "attribute interval_method must be one of",
    ),
    "check confidence 0": (
        set_attr("/score_gap", "confidence", 0.0, variable="score_gap"),
        "attribute confidence must lie in (0, 1]",
    ),
    "formula id missing": (
        lambda nodes: nodes["/score_gap"]["score_gap"].attrs.pop("formula_id"),
        "missing attribute formula_id",
    ),
    "estimate as text": (retype("/score_gap", "score_gap", "abc"), "dtype <U3 not allowed"),
    "n_samples as float": (
        retype("/score_gap", "score_gap_n_samples", 1.0),
        "score_gap_n_samples: dtype float64 not allowed",
    ),
    "complex auxiliary": (
        add_variable(
            "/score_gap",
            "aux",
            xr.Variable(("time",), np.ones(3, complex), {"units": "1", "long_name": "aux"}),
        ),
        "aux: dtype complex128 not allowed",
    ),
    "time not increasing": (
        lambda nodes: nodes["/score_gap"].__setitem__(
            "time", nodes["/score_gap"]["time"].copy(data=[0.1, 1.0, 0.5])
        ),
        "time: must be finite, float and strictly increasing",
    ),
    "2-d variable": (
        add_variable(
            "/score_gap",
            "aux",
            xr.Variable(("time", "x"), np.ones((3, 2)), {"units": "1", "long_name": "aux"}),
        ),
        "only () or (time,) are defined",
    ),
    "check in two families": (
        lambda nodes: nodes.__setitem__(
            "/invariants",
            nodes["/invariants"].rename(
                {name: name.replace("energy_drift", "score_gap") for name in nodes["/invariants"]}
            ),
        ),
        "check 'score_gap' appears in both /score_gap and /invariants",
    ),
    "nested group": (
        lambda nodes: nodes.__setitem__("/score_gap/deeper", xr.Dataset()),
        "nested groups are not defined",
    ),
    # the verdict table
    "verdicts missing": (lambda nodes: nodes.pop("/verdicts"), "missing group /verdicts"),
    "column missing": (drop("/verdicts", "reason"), "missing column(s) reason"),
    "row estimate differs": (set_value("/verdicts", "estimate", 0, 0.5), "differs from /score_gap"),
    "row verdict unknown": (set_value("/verdicts", "verdict", 0, "MAYBE"), "values ['MAYBE']"),
    "row comparison unknown": (set_value("/verdicts", "comparison", 0, "<"), "values ['<']"),
    "row of an unknown check": (
        set_value("/verdicts", "check", 0, "nothing"),
        "no check 'nothing'",
    ),
    "row at an unknown time": (set_value("/verdicts", "time", 0, 0.3), "time 0.3 is not a time"),
    "aggregate row of a per-time check": (
        set_value("/verdicts", "time", 0, np.nan),
        "aggregate row but score_gap is per-time",
    ),
    "non-PASS row without reason": (
        both(set_value("/verdicts", "verdict", 0, "FAIL"), set_attr("/", "verdict", "FAIL")),
        "a FAIL row needs a reason",
    ),
    "row without group that passes": (
        set_value("/verdicts", "group", 3, ""),
        "a row without a group must be a FAIL",
    ),
    "column with bool attribute": (
        set_attr("/verdicts", "flag", True, variable="check"),
        "/verdicts/check: attribute 'flag' has type bool",
    ),
    "bool variable in verdicts": (
        add_variable("/verdicts", "extra", xr.Variable(("row",), np.ones(4, bool))),
        "/verdicts/extra: dtype bool not allowed",
    ),
    # versions and foreign trees
    "major version 2": (set_attr("/", "schema_version", "2.0.0"), "schema version 2.0.0 is not"),
    "no schema_version": (
        lambda nodes: nodes["/"].attrs.pop("schema_version"),
        "not a solvercert certificate (no schema_version attribute)",
    ),
    "numeric schema_version": (set_attr("/", "schema_version", 1), "not a solvercert certificate"),
}


@pytest.mark.parametrize(("mutate", "fragment"), VIOLATIONS.values(), ids=VIOLATIONS.keys())
def test_violation_is_detected(valid, mutate, fragment):
    problems = cert.schema_problems(mutated(valid, mutate))
    assert any(fragment in problem for problem in problems), problems
    with pytest.raises(cert.CertificateSchemaError, match="invalid certificate") as excinfo:
        cert.validate(mutated(valid, mutate))
    assert "\n" not in str(excinfo.value)


def test_validate_summarises_several_problems_on_one_line(valid):
    tree = mutated(valid, both(set_attr("/", "x64", 2), set_attr("/", "confidence", 2.0)))
    with pytest.raises(
        cert.CertificateSchemaError, match=r"x64 must be 0 or 1, got 2 \(and 1 more\)$"
    ):
        cert.validate(tree)


@pytest.mark.parametrize("version", ["1.0.0", "1.1.0", "1.42.7"])
def test_same_major_version_is_accepted(valid, version):
    assert cert.schema_problems(mutated(valid, set_attr("/", "schema_version", version))) == []


def test_foreign_tree_is_not_a_certificate():
    tree = xr.DataTree(xr.Dataset({"a": ("x", np.arange(3.0))}, attrs={"title": "other"}))
    assert cert.schema_problems(tree) == [
        "not a solvercert certificate (no schema_version attribute)"
    ]


# Whatever a damaged or foreign file holds, validation must report problems, not crash:
# read_certificate promises CertificateSchemaError, never another exception type.
REPLACEMENTS = {
    "drop": None,
    "text": "abc",
    "bytes": b"abc",
    "int": np.int64(3),
    "float": 0.25,
    "nan": np.nan,
    "bool": True,
}


@pytest.mark.parametrize("kind", REPLACEMENTS)
def test_no_variable_replacement_crashes_the_validator(valid, kind):
    crashes = []
    for path, dataset in nodes_of(valid).items():
        for name in dataset.variables:
            if kind == "drop":
                mutation = drop(path, str(name))
            else:
                mutation = retype(path, str(name), REPLACEMENTS[kind])
            try:
                tree = mutated(valid, mutation)
            except ValueError:  # xarray refuses the tree itself (e.g. a 0-d index)
                continue
            try:
                problems = cert.schema_problems(tree)
            except Exception as exc:  # any exception type is the failure
                crashes.append(f"{path}/{name}: {exc!r}")
            else:
                assert all(isinstance(problem, str) for problem in problems)
    assert crashes == []


@pytest.mark.parametrize("value", ["", "x", -1, 2.5, np.nan, np.array([1, 2]), True])
def test_no_attribute_value_crashes_the_validator(valid, value):
    crashes = []
    for path, dataset in nodes_of(valid).items():
        for key in dataset.attrs:
            try:
                cert.schema_problems(mutated(valid, set_attr(path, key, value)))
            except Exception as exc:
                crashes.append(f"{path}@{key}: {exc!r}")
    assert crashes == []
