"""Content digest of a certificate: SHA-256 over canonical bytes.

The digest must not depend on how the file was written (HDF5 layout, chunking,
compression, library versions) but only on what it says, so it is computed over a
canonical serialisation of the tree rather than the file bytes (``SCHEMA.md`` §
"Content digest"):

* groups in sorted path order; in each group, attributes then variables (coordinates
  included), both in sorted name order; the root's ``content_sha256`` is left out, and so
  is the root's ``created_at`` from schema 1.1.0 on (the digest says *what* a certificate
  states, so two runs with the same inputs and seed share it; 1.0.x files keep
  ``created_at`` in their digest and are verified that way);
* attribute values as type-tagged text: strings as UTF-8, integers in decimal, floats
  as ``float.hex`` (exact, NaN as ``nan``);
* variables as their name, dimension names, shape, a type tag and the values:
  floats as little-endian float64 with one canonical NaN, integers as little-endian
  int64, strings as a JSON list; then the variable's attributes as above;
* every item length-prefixed (8-byte little-endian length), so no two different trees
  share an encoding.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import xarray as xr

from ._names import ATTR_CONTENT_SHA256, ATTR_CREATED_AT, ATTR_SCHEMA_VERSION


def _scalar_bytes(value: Any) -> bytes:
    if isinstance(value, str):
        return b"s" + value.encode("utf-8")
    if isinstance(value, bool | np.bool_):
        raise TypeError("boolean attributes cannot be stored in NetCDF; use 0/1")
    if isinstance(value, int | np.integer):
        return b"i" + str(int(value)).encode("ascii")
    if isinstance(value, float | np.floating):
        return b"f" + float(value).hex().encode("ascii")
    raise TypeError(f"attribute value {value!r} is not a string or a number")


def _array_bytes(values: np.ndarray) -> tuple[bytes, bytes]:
    kind = values.dtype.kind
    if kind == "f":
        canonical = np.where(np.isnan(values), np.nan, values).astype("<f8")
        return b"f8", canonical.tobytes()
    if kind in "iu":
        return b"i8", values.astype("<i8").tobytes()
    if kind in "UOS":
        as_text = [str(v.decode() if isinstance(v, bytes) else v) for v in values.ravel()]
        return b"str", json.dumps(as_text, ensure_ascii=False).encode("utf-8")
    raise TypeError(f"variables of dtype {values.dtype} are not allowed in a certificate")


class _Feed:
    def __init__(self) -> None:
        self._hash = hashlib.sha256()

    def __call__(self, *items: bytes) -> None:
        for item in items:
            self._hash.update(len(item).to_bytes(8, "little"))
            self._hash.update(item)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def _feed_attrs(feed: _Feed, attrs: dict[str, Any]) -> None:
    for key in sorted(attrs):
        feed(b"attr", key.encode("utf-8"), _scalar_bytes(attrs[key]))


def _digests_created_at(version: object) -> bool:
    """Whether a file of this schema version has ``created_at`` in its digest (1.0.x)."""
    parts = str(version).split(".")
    return len(parts) >= 2 and parts[0] == "1" and parts[1] == "0"


def content_digest(tree: xr.DataTree) -> str:
    """SHA-256 (hex) of the canonical content of ``tree``.

    ``content_sha256`` is excluded, and ``created_at`` too unless the tree's
    ``schema_version`` is 1.0.x (module docstring).
    """
    feed = _Feed()
    keep_created_at = _digests_created_at(tree.attrs.get(ATTR_SCHEMA_VERSION))
    for node in sorted(tree.subtree, key=lambda node: node.path):
        feed(b"group", node.path.encode("utf-8"))
        attrs = dict(node.attrs)
        if node.is_root:
            attrs.pop(ATTR_CONTENT_SHA256, None)
            if not keep_created_at:
                attrs.pop(ATTR_CREATED_AT, None)
        _feed_attrs(feed, attrs)
        dataset = node.to_dataset(inherit=False)
        for name in sorted(map(str, dataset.variables)):
            variable = dataset.variables[name]
            tag, payload = _array_bytes(np.asarray(variable.values))
            feed(
                b"var",
                name.encode("utf-8"),
                json.dumps(list(variable.dims)).encode("utf-8"),
                json.dumps(list(variable.shape)).encode("utf-8"),
                tag,
                payload,
            )
            _feed_attrs(feed, dict(variable.attrs))
    return feed.hexdigest()
