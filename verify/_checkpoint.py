"""The solvercert checkpoint format: JSON hyper-parameters + equinox-serialised leaves.

A checkpoint is a directory::

    model.json     manifest (UTF-8 JSON object, below)
    leaves.eqx     the model's array leaves, written by equinox.tree_serialise_leaves
    *.py           optional builder source files, referred to by a relative builder spec

``model.json``:

================  ========  =============================================================
key               required  meaning
================  ========  =============================================================
format            yes       the string ``"solvercert-checkpoint"``
version           yes       the integer ``1``
builder           yes       ``"package.module:function"`` or ``"relative/file.py:function"``
                            (a file path is relative to the checkpoint directory)
hyperparameters   yes       JSON object of keyword arguments of the builder
leaves            yes       file name of the leaves, ``"leaves.eqx"``
roles             no        list of role names (``score``, ``log_density``, ``flow``,
                            ``velocity``, ``field``, ``operator``, ``step``) the model
                            provides, see :mod:`verify._model`
================  ========  =============================================================

Loading calls ``builder(**hyperparameters, key=jax.random.key(0))`` to build a skeleton of
the right structure, shapes and dtypes — the key only shapes the skeleton, whose array values
are all overwritten — then ``equinox.tree_deserialise_leaves`` reads the leaves into it. Every
leaf must have the skeleton's shape and dtype, and the leaves file must hold no extra data.
Leaves are read with ``numpy.load(allow_pickle=False)`` (equinox's default): a checkpoint is
never unpickled, so loading one runs only the builder's code.

``checkpoint_sha256`` hashes every regular file in the directory (recursively, ``__pycache__``
excluded) in sorted order of relative POSIX path: SHA-256 over, per file, the UTF-8 path, a
NUL byte and the SHA-256 digest of the file's bytes.

Writing is atomic: files go into a temporary sibling directory (each fsync-ed), the checkpoint
is loaded back from it, and the directory is renamed into place.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import numpy as np

from ._model import ROLES, ModelError, _one_line, parse_attr_spec, resolve_attr_spec

FORMAT = "solvercert-checkpoint"
VERSION = 1
MANIFEST = "model.json"
LEAVES = "leaves.eqx"


@dataclasses.dataclass(frozen=True)
class Manifest:
    """The parsed ``model.json`` of a checkpoint."""

    builder: str
    hyperparameters: Mapping[str, Any]
    leaves: str
    roles: tuple[str, ...] | None


def _validate_builder(builder: Any) -> str:
    if not isinstance(builder, str):
        raise ModelError(f"checkpoint builder must be a string, got {builder!r}")
    target, _ = parse_attr_spec(builder)
    if target.endswith(".py"):
        path = Path(target)
        if path.is_absolute() or ".." in path.parts:
            raise ModelError(f"checkpoint builder file {target!r} must be inside the directory")
    return builder


def _validate_roles(roles: Any) -> tuple[str, ...] | None:
    if roles is None:
        return None
    if not isinstance(roles, list | tuple) or not all(isinstance(r, str) for r in roles):
        raise ModelError(f"checkpoint 'roles' must be a list of role names, got {roles!r}")
    unknown = [r for r in roles if r not in ROLES]
    if unknown or not roles:
        raise ModelError(f"checkpoint 'roles' {roles!r}: expected names among {ROLES}")
    return tuple(roles)


def read_manifest(directory: Path) -> Manifest:
    """Read and validate ``model.json``; :class:`ModelError` on any problem."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise ModelError(f"checkpoint {str(directory)!r} has no {MANIFEST}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"checkpoint {MANIFEST} is not valid JSON: {_one_line(exc)}") from exc
    if not isinstance(data, dict):
        raise ModelError(f"checkpoint {MANIFEST} must hold a JSON object")
    if data.get("format") != FORMAT:
        raise ModelError(f"checkpoint format {data.get('format')!r} is not {FORMAT!r}")
    if data.get("version") != VERSION or isinstance(data.get("version"), bool):
        raise ModelError(f"checkpoint version {data.get('version')!r} is not supported ({VERSION})")
    for key in ("builder", "hyperparameters", "leaves"):
        if key not in data:
            raise ModelError(f"checkpoint {MANIFEST} lacks {key!r}")
    if not isinstance(data["hyperparameters"], dict):
        raise ModelError("checkpoint 'hyperparameters' must be a JSON object")
    leaves = data["leaves"]
    if not isinstance(leaves, str) or Path(leaves).name != leaves or leaves in ("", ".", ".."):
        raise ModelError(f"checkpoint 'leaves' must be a file name, got {leaves!r}")
    return Manifest(
        builder=_validate_builder(data["builder"]),
        hyperparameters=data["hyperparameters"],
        leaves=leaves,
        roles=_validate_roles(data.get("roles")),
    )


def _files(directory: Path) -> list[Path]:
    return sorted(
        (p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts),
        key=lambda p: p.relative_to(directory).as_posix(),
    )


def checkpoint_sha256(directory: Path) -> str:
    """SHA-256 over every file of a checkpoint directory (see the module docstring)."""
    directory = Path(directory)
    digest = hashlib.sha256()
    for path in _files(directory):
        digest.update(path.relative_to(directory).as_posix().encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _skeleton(directory: Path, manifest: Manifest) -> Any:
    builder, _ = resolve_attr_spec(manifest.builder, base=directory)
    if not callable(builder):
        raise ModelError(f"checkpoint builder {manifest.builder!r} is not callable")
    try:
        return builder(**manifest.hyperparameters, key=jax.random.key(0))
    except Exception as exc:
        raise ModelError(
            f"checkpoint builder {manifest.builder!r} failed: {_one_line(exc)}"
        ) from exc


def load_checkpoint(directory: str | os.PathLike[str]) -> Any:
    """Build the skeleton and read the leaves into it; :class:`ModelError` on any problem."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    leaves_path = directory / manifest.leaves
    if not leaves_path.is_file():
        raise ModelError(f"checkpoint {str(directory)!r} has no leaves file {manifest.leaves!r}")
    skeleton = _skeleton(directory, manifest)
    try:
        with leaves_path.open("rb") as f:
            model = eqx.tree_deserialise_leaves(f, skeleton)
            extra = f.read(1)
    except Exception as exc:
        raise ModelError(
            f"checkpoint leaves {manifest.leaves!r} do not match the builder's skeleton: "
            f"{_one_line(exc)}"
        ) from exc
    if extra:
        raise ModelError(
            f"checkpoint leaves {manifest.leaves!r} hold more leaves than the builder's skeleton"
        )
    got_leaves = jax.tree.leaves(eqx.filter(model, eqx.is_array))
    want_leaves = jax.tree.leaves(eqx.filter(skeleton, eqx.is_array))
    for got, want in zip(got_leaves, want_leaves, strict=True):
        if np.shape(got) != np.shape(want) or got.dtype != want.dtype:
            raise ModelError(
                f"checkpoint leaves {manifest.leaves!r} do not match the builder's skeleton: "
                f"leaf {got.dtype}{list(np.shape(got))}, "
                f"expected {want.dtype}{list(np.shape(want))}"
            )
    return model


def _write(path: Path, data: bytes) -> None:
    with path.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def save_checkpoint(
    directory: str | os.PathLike[str],
    model: Any,
    *,
    builder: str,
    hyperparameters: Mapping[str, Any],
    roles: Iterable[str] | None = None,
    files: Iterable[str | os.PathLike[str]] = (),
) -> Path:
    """Write ``model`` as a checkpoint directory, atomically; return its path.

    Parameters
    ----------
    directory : path
        Target directory; must not exist, or be empty.
    model : PyTree
        An equinox model equal in structure to ``builder(**hyperparameters, key=...)``.
    builder : str
        ``package.module:function`` or ``file.py:function`` (relative to the checkpoint;
        pass that file in ``files``).
    hyperparameters : mapping
        JSON-serialisable keyword arguments of ``builder`` (finite numbers only).
    roles : iterable of str, optional
        Role names the model provides, written to ``model.json``.
    files : iterable of paths
        Extra files (builder sources) copied into the checkpoint's top level.

    Raises
    ------
    ModelError
        Invalid builder, hyper-parameters or roles, or the written checkpoint does not load.
    FileExistsError
        ``directory`` exists and is not empty.
    """
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise FileExistsError(f"checkpoint target {str(directory)!r} exists and is not empty")
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "builder": _validate_builder(builder),
        "hyperparameters": dict(hyperparameters),
        "leaves": LEAVES,
    }
    if roles is not None:
        manifest["roles"] = list(_validate_roles(list(roles)) or ())
    try:
        text = json.dumps(manifest, indent=2, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"checkpoint hyperparameters are not JSON: {_one_line(exc)}") from exc
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        for source in files:
            source = Path(source)
            _write(tmp / source.name, source.read_bytes())
        _write(tmp / MANIFEST, text.encode("utf-8"))
        with (tmp / LEAVES).open("wb") as f:
            eqx.tree_serialise_leaves(f, model)
            f.flush()
            os.fsync(f.fileno())
        load_checkpoint(tmp)
        if directory.exists():
            directory.rmdir()
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory
