"""The certificate object: an ``xarray.DataTree`` with provenance, families and verdicts."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import xarray as xr

from . import _names as n
from ._bounds import Bounds, bounds_from_json
from ._checks import check_names
from ._digest import content_digest
from ._gate import GateResult, VerdictRow, gate
from ._names import Comparison, Evidence, IntervalMethod, Verdict


def utc_now_iso() -> str:
    """Current UTC time as ISO 8601 with a ``Z`` suffix, to the second."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return now.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Provenance:
    """Who made a certificate, from what, how (root attributes; ``SCHEMA.md`` § "Root").

    ``problem`` and ``config`` must be JSON-serialisable mappings; ``config`` holds
    every resolved default that shaped a number.
    """

    tool_version: str
    jax_version: str
    backend: str
    x64: bool
    seed: int
    problem_id: str
    problem: Mapping[str, Any]
    model_spec: str
    model_sha256: str
    config: Mapping[str, Any]
    created_at: str = field(default_factory=utc_now_iso)

    def attrs(self) -> dict[str, str | int]:
        return {
            n.ATTR_SCHEMA_VERSION: n.SCHEMA_VERSION,
            n.ATTR_CREATED_AT: self.created_at,
            n.ATTR_TOOL_VERSION: self.tool_version,
            n.ATTR_JAX_VERSION: self.jax_version,
            n.ATTR_BACKEND: self.backend,
            n.ATTR_X64: int(bool(self.x64)),
            n.ATTR_SEED: int(self.seed),
            n.ATTR_PROBLEM_ID: self.problem_id,
            n.ATTR_PROBLEM_JSON: json.dumps(dict(self.problem), sort_keys=True),
            n.ATTR_MODEL_SPEC: self.model_spec,
            n.ATTR_MODEL_SHA256: self.model_sha256,
            n.ATTR_CONFIG_JSON: json.dumps(dict(self.config), sort_keys=True),
        }


@dataclass(frozen=True)
class Certificate:
    """A certificate: read-only view over its ``DataTree``.

    Build one with :func:`assemble_certificate`, read one with
    :func:`certificates.read_certificate`; derive a re-gated one with :meth:`with_gate`.
    """

    tree: xr.DataTree

    # --- root ------------------------------------------------------------------------
    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self.tree.attrs)

    @property
    def verdict(self) -> Verdict:
        return Verdict(self.tree.attrs[n.ATTR_VERDICT])

    @property
    def problem_id(self) -> str:
        return str(self.tree.attrs[n.ATTR_PROBLEM_ID])

    @property
    def model_spec(self) -> str:
        return str(self.tree.attrs[n.ATTR_MODEL_SPEC])

    @property
    def schema_version(self) -> str:
        return str(self.tree.attrs[n.ATTR_SCHEMA_VERSION])

    @property
    def content_sha256(self) -> str:
        return str(self.tree.attrs[n.ATTR_CONTENT_SHA256])

    @property
    def stored_bounds(self) -> Bounds:
        return bounds_from_json(str(self.tree.attrs[n.ATTR_BOUNDS_JSON]), n.ATTR_BOUNDS_JSON)

    # --- families ----------------------------------------------------------------------
    @property
    def family_names(self) -> list[str]:
        return [name for name in self.tree.children if name != n.VERDICTS_GROUP]

    def family(self, name: str) -> xr.Dataset:
        return self.tree[name].to_dataset(inherit=False)

    def check_locations(self) -> dict[str, str]:
        """Map each check name to the family group holding it, in stored order."""
        return {
            check: group for group in self.family_names for check in check_names(self.family(group))
        }

    # --- verdicts ----------------------------------------------------------------------
    @property
    def rows(self) -> tuple[VerdictRow, ...]:
        table = self.tree[n.VERDICTS_GROUP].to_dataset(inherit=False)
        columns = {name: table[name].values for name in n.VERDICT_COLUMNS}
        rows = []
        for i in range(table.sizes.get(n.ROW_DIM, 0)):
            time = float(columns[n.COL_TIME][i])
            rows.append(
                VerdictRow(
                    check=str(columns[n.COL_CHECK][i]),
                    group=str(columns[n.COL_GROUP][i]),
                    time=None if math.isnan(time) else time,
                    estimate=float(columns[n.COL_ESTIMATE][i]),
                    stderr=float(columns[n.COL_STDERR][i]),
                    lower=float(columns[n.COL_LOWER][i]),
                    upper=float(columns[n.COL_UPPER][i]),
                    threshold=float(columns[n.COL_THRESHOLD][i]),
                    comparison=Comparison(str(columns[n.COL_COMPARISON][i])),
                    verdict=Verdict(str(columns[n.COL_VERDICT][i])),
                    evidence=Evidence(str(columns[n.COL_EVIDENCE][i])),
                    confidence=float(columns[n.COL_CONFIDENCE][i]),
                    interval_method=IntervalMethod(str(columns[n.COL_INTERVAL_METHOD][i])),
                    n_samples=int(columns[n.COL_N_SAMPLES][i]),
                    reason=str(columns[n.COL_REASON][i]),
                )
            )
        return tuple(rows)

    def with_gate(self, result: GateResult) -> Certificate:
        """A new certificate whose verdicts, bounds and digest are those of ``result``."""
        root = self.tree.to_dataset(inherit=False).copy()
        root.attrs.update(
            {
                n.ATTR_BOUNDS_JSON: result.bounds.to_json(),
                n.ATTR_CONFIDENCE: float(result.bounds.resolved_confidence),
                n.ATTR_CORRECTION: str(result.bounds.resolved_correction),
                n.ATTR_VERDICT: str(result.verdict),
            }
        )
        nodes: dict[str, xr.Dataset] = {"/": root}
        for name in self.family_names:
            nodes[f"/{name}"] = self.family(name)
        nodes[f"/{n.VERDICTS_GROUP}"] = result.to_dataset()
        tree = xr.DataTree.from_dict(nodes)
        tree.attrs[n.ATTR_CONTENT_SHA256] = content_digest(tree)
        return Certificate(tree)


def assemble_certificate(
    provenance: Provenance, families: Mapping[str, xr.Dataset], bounds: Bounds
) -> Certificate:
    """Build a certificate: provenance + family groups, gated against ``bounds``.

    Parameters
    ----------
    provenance : Provenance
        Root attributes.
    families : mapping of str to xarray.Dataset
        Family groups (see :func:`certificates.family_dataset`), in display order.
    bounds : Bounds
        The bounds that apply (problem defaults layered under any file and CLI bounds).
    """
    if n.VERDICTS_GROUP in families:
        raise ValueError(f"{n.VERDICTS_GROUP!r} is reserved for the verdict table")
    seen: dict[str, str] = {}
    for group, data in families.items():
        for check in check_names(data):
            if check in seen:
                raise ValueError(f"check {check!r} appears in both {seen[check]} and {group}")
            seen[check] = group
    resolved = bounds.resolved()
    root = xr.Dataset(
        attrs={
            **provenance.attrs(),
            n.ATTR_BOUNDS_JSON: resolved.to_json(),
            n.ATTR_CONFIDENCE: float(resolved.resolved_confidence),
            n.ATTR_CORRECTION: str(resolved.resolved_correction),
            n.ATTR_VERDICT: str(Verdict.INCONCLUSIVE),
        }
    )
    nodes = {"/": root, **{f"/{name}": data for name, data in families.items()}}
    empty_verdicts = GateResult(
        rows=(),
        verdict=Verdict.INCONCLUSIVE,
        bounds=resolved,
        n_intervals=0,
        interval_confidence=resolved.resolved_confidence,
    )
    nodes[f"/{n.VERDICTS_GROUP}"] = empty_verdicts.to_dataset()
    draft = Certificate(xr.DataTree.from_dict(nodes))
    return draft.with_gate(gate(draft, Bounds()))
