"""Load the learned model under test from a ``--model`` SPEC and check its roles.

SPEC forms
----------
* ``path/to/file.py:attr`` — the file is imported under a unique module name
  (``_solvercert_model_<n>_<stem>``, via :func:`importlib.util.spec_from_file_location`), so it
  never collides with, nor shadows, a module of the same name; ``attr`` may be dotted.
* ``package.module:attr`` — imported with :func:`importlib.import_module` from ``sys.path``.
* ``path/to/directory`` — a checkpoint in the project format (:mod:`verify._checkpoint`).

Roles
-----
Single-sample, JAX-traceable functions (the tool batches them with ``jax.vmap``):

==============  ==========================  ============================================
role            signature                   meaning
==============  ==========================  ============================================
``score``       ``(t, x) -> (d,)``          ∇ₓ log p_t(x)
``log_density`` ``(t, x) -> ()``            log p_t(x), possibly up to a constant in x
``flow``        ``(t, x0) -> (d,)``         characteristic flow map from the initial time
``velocity``    ``(t, x) -> (d,)``          velocity field of the characteristics
``field``       ``(t, x) -> (F,)``          PDE field at one point (PINN); x spatial
``operator``    ``(u0, t) -> grid``         state at time t from the initial state u0
``step``        ``(u) -> grid``             state one step Δt = ``step_size`` later
==============  ==========================  ============================================

Field roles (PDE surrogates on a periodic box, :class:`solvers.AbstractFieldProblem`) use
the problem's shapes (:class:`FieldShapes`): a *grid* state has shape ``(n,)*d + (C,)``,
channels last (n = ``grid_size``, C = ``n_components``), on the grid x_j = jL/n; ``field``
returns F = ``field_components`` outputs (the primary unknown, e.g. the stream function
for Navier–Stokes), differentiable in t and x. ``operator(u0, t)`` takes the initial
state on the grid and the absolute time t (u0 is the state at ``t_min``), so a Fourier
neural operator conditioned on t fits as is. ``step`` is an autoregressive emulator with a
fixed time step: the model (the function or the object) declares it as the attribute
``step_size`` (a positive number; for an equinox module, a static field), and the tool
rolls it out from the initial state, so certification times must be ``t_min + k Δt``.

``attr`` is either a plain callable, whose role comes from ``--role`` (required then), or an
object exposing methods named after roles (all of them are loaded; with ``--role``, only that
one). A checkpoint's model is treated like ``attr``; its ``roles`` list, when given, names
the roles (and lets a plain callable model serve a single declared role without ``--role``).

``log_density`` is assumed *unnormalised* (known up to an additive constant in x) unless the
function or the object declares ``unnormalised = False``; ``unnormalised = True`` declares it
explicitly. Estimators that need a normalised density must check
:attr:`LoadedModel.unnormalised`.

Probe
-----
Every role is called once at ``t = probe_time`` and ``x = linspace(-0.5, 0.5, dim)`` (``field``
at x = L·linspace(0.2, 0.8, d), inside the box; the grid roles on the smooth state
q_j = cos(2π j₁/n) + 0.1 c in channel c): first
abstractly (:func:`jax.eval_shape`, which catches NumPy or Python control flow on array
values: "not traceable"), then compiled with :func:`equinox.filter_jit` (a role may be a bound
method of an equinox module, whose arrays must be traced, not hashed as static: callers should
jit roles the same way). The output must be one array of the
role's shape, of dtype float64 (float32 is accepted with ``allow_float32=True``) and finite.
Field roles need the problem's :class:`FieldShapes`: the loaders take them as ``shapes``;
without them the field roles are resolved but probed later, by
:func:`probe_field_roles` (``verify certify`` does it once it knows the problem), so the
loaders' callers need not know whether the problem is a field problem.

Provenance
----------
``model_sha256`` is the SHA-256 of the model files: the bytes of the ``.py`` file for a path
spec; for a checkpoint, see :func:`verify._checkpoint.checkpoint_sha256`; the empty string for
a ``package.module`` spec (an installed package has no single file to hash: record its
version instead).

Every failure raises :class:`ModelError` with a one-line message naming the cause (the CLI
maps it to exit code 4).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import itertools
import math
import os
import sys
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

ROLES: tuple[str, ...] = ("score", "log_density", "flow", "velocity", "field", "operator", "step")
"""Role names, in the order they are reported."""

FIELD_ROLES: tuple[str, ...] = ("field", "operator", "step")
"""Roles of PDE surrogates, probed with the problem's :class:`FieldShapes`."""

_SCALAR_ROLES = frozenset({"log_density"})
_unique = itertools.count()


class ModelError(ValueError):
    """The model SPEC, its file, checkpoint or roles are invalid (one-line message)."""


def _one_line(exc: BaseException) -> str:
    """``Type: message`` of an exception: its first non-empty line, at most 300 characters."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    message = lines[0][:300] if lines else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


@dataclasses.dataclass(frozen=True)
class FieldShapes:
    """Shapes of the field roles, from a :class:`solvers.AbstractFieldProblem`.

    Attributes
    ----------
    dim : int
        Spatial dimension d (x has shape ``(d,)``).
    grid_size : int
        n, grid points per direction of a grid state.
    n_components : int
        C, channels of a grid state ``(n,)*d + (C,)``.
    field_components : int
        F, outputs of the ``field`` role.
    length : float
        Period L of the box [0, L)^d.
    """

    dim: int
    grid_size: int
    n_components: int
    field_components: int
    length: float

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """``(n,)*d + (C,)``."""
        return (self.grid_size,) * self.dim + (self.n_components,)


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A model whose roles passed the probe.

    Attributes
    ----------
    spec : str
        The SPEC as given.
    roles : Mapping[str, Callable]
        Role name -> single-sample function ``(t, x) -> array`` (read-only mapping).
    unnormalised : bool
        Whether ``log_density`` is only known up to an additive constant (default True;
        meaningful only when ``"log_density" in roles``).
    model_sha256 : str
        SHA-256 of the model files (empty for a ``package.module`` spec).
    dim : int
        Dimension d the roles were probed with.
    step_size : float or None
        Δt of the ``step`` role (its ``step_size`` attribute); None without that role.
    field_shapes : FieldShapes or None
        Shapes the field roles were probed with; None when none was probed yet
        (:func:`probe_field_roles`).
    """

    spec: str
    roles: Mapping[str, Callable[..., Any]]
    unnormalised: bool
    model_sha256: str
    dim: int
    step_size: float | None = None
    field_shapes: FieldShapes | None = None

    def role(self, name: str) -> Callable[..., Any]:
        """The function of role ``name``; :class:`ModelError` when the model lacks it."""
        if name not in self.roles:
            have = ", ".join(self.roles) or "none"
            raise ModelError(f"model {self.spec!r} has no role {name!r} (it has: {have})")
        return self.roles[name]


# --------------------------------------------------------------------------- importing


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of one file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def import_file(path: Path) -> types.ModuleType:
    """Import a ``.py`` file under a unique module name; :class:`ModelError` on failure.

    The module stays in ``sys.modules`` under that unique name (dataclasses and equinox look
    their defining module up there), which no other import can collide with.
    """
    if path.suffix != ".py":
        raise ModelError(f"model file {str(path)!r} is not a .py file")
    if not path.is_file():
        raise ModelError(f"model file not found: {str(path)!r}")
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    name = f"_solvercert_model_{next(_unique)}_{stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelError(f"cannot import model file {str(path)!r}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as exc:
        del sys.modules[name]
        raise ModelError(f"error importing model file {path.name!r}: {_one_line(exc)}") from exc
    return module


def import_module(name: str) -> types.ModuleType:
    """Import ``package.module``; :class:`ModelError` on failure.

    The current directory is searched first, as ``python -m`` does (a console script such
    as ``verify`` does not put it on ``sys.path``), so a project's own package resolves
    without installing it.
    """
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise ModelError(f"model module {name!r} not found: {_one_line(exc)}") from exc
    except (Exception, SystemExit) as exc:
        raise ModelError(f"error importing model module {name!r}: {_one_line(exc)}") from exc


def _dotted(text: str) -> bool:
    return bool(text) and all(part.isidentifier() for part in text.split("."))


def parse_attr_spec(spec: str) -> tuple[str, str]:
    """Split ``target:attr`` into ``(target, attr)``; :class:`ModelError` if malformed."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target:
        raise ModelError(
            f"malformed model spec {spec!r}: expected 'path/to/file.py:attr', "
            "'package.module:attr' or a checkpoint directory"
        )
    if not _dotted(attr):
        raise ModelError(f"malformed model spec {spec!r}: {attr!r} is not an attribute name")
    if not target.endswith(".py") and not _dotted(target):
        raise ModelError(
            f"malformed model spec {spec!r}: {target!r} is neither a .py file nor a module name"
        )
    return target, attr


def resolve_attr_spec(spec: str, *, base: Path | None = None) -> tuple[Any, str]:
    """Import ``target:attr`` and return ``(object, sha256)``.

    A file target is taken relative to ``base`` when given (checkpoint builders).
    """
    target, attr = parse_attr_spec(spec)
    if target.endswith(".py"):
        path = Path(target) if base is None else base / target
        module = import_file(path)
        digest = file_sha256(path)
    else:
        module = import_module(target)
        digest = ""
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ModelError(f"model {spec!r}: {target!r} has no attribute {attr!r}") from None
    return obj, digest


# --------------------------------------------------------------------------- roles


def _role_methods(obj: Any) -> dict[str, Callable[..., Any]]:
    found = {}
    for name in ROLES:
        method = getattr(obj, name, None)
        if callable(method):
            found[name] = method
    return found


def resolve_roles(
    obj: Any, spec: str, *, role: str | None, declared: tuple[str, ...] | None = None
) -> dict[str, Callable[..., Any]]:
    """Role name -> function, from a callable or an object with role methods."""
    for name in (role, *(declared or ())):
        if name is not None and name not in ROLES:
            raise ModelError(f"unknown role {name!r}; expected one of {', '.join(ROLES)}")
    if isinstance(obj, type):
        raise ModelError(f"model {spec!r} is a class; point the spec at an instance or a function")
    methods = _role_methods(obj)
    if declared is not None and methods:
        missing = [name for name in declared if name not in methods]
        if missing:
            raise ModelError(f"model {spec!r} declares roles it has no method for: {missing}")
        methods = {name: methods[name] for name in declared}
    if methods:
        if role is None:
            return methods
        if role not in methods:
            have = ", ".join(methods)
            raise ModelError(f"model {spec!r} has no method {role!r} (it has: {have})")
        return {role: methods[role]}
    if not callable(obj):
        raise ModelError(
            f"model {spec!r} is neither callable nor exposes a role method ({', '.join(ROLES)})"
        )
    if role is None and declared is not None and len(declared) == 1:
        role = declared[0]
    if role is None:
        raise ModelError(
            f"model {spec!r} is a plain callable: pass --role (one of {', '.join(ROLES)})"
        )
    return {role: obj}


def _unnormalised(obj: Any, roles: Mapping[str, Callable[..., Any]]) -> bool:
    fn = roles.get("log_density")
    for source in (fn, obj):
        flag = getattr(source, "unnormalised", None)
        if flag is not None:
            if not isinstance(flag, bool):
                raise ModelError(f"'unnormalised' must be True or False, got {flag!r}")
            return flag
    return True


# --------------------------------------------------------------------------- probe


def _probe_inputs(
    name: str, dim: int, probe_time: float, shapes: FieldShapes | None, dtype: Any
) -> tuple[tuple[jax.Array, ...], tuple[int, ...], str, str]:
    """(arguments, expected output shape, where, shape hint) of one role's probe call."""
    t = jnp.asarray(probe_time, dtype=dtype)
    if name not in FIELD_ROLES:
        x = jnp.linspace(-0.5, 0.5, dim, dtype=dtype)
        expected = () if name in _SCALAR_ROLES else (dim,)
        where = f"role {name!r} at the probe point (t={probe_time}, x of shape ({dim},))"
        return (t, x), expected, where, "roles act on one sample (the tool batches with jax.vmap)"
    if shapes is None:
        raise ModelError(f"role {name!r} needs the problem's field shapes to be probed")
    if name == "field":
        x = shapes.length * jnp.linspace(0.2, 0.8, shapes.dim, dtype=dtype)
        where = f"role 'field' at the probe point (t={probe_time}, x of shape ({shapes.dim},))"
        hint = "field(t, x) acts on one point (the tool batches with jax.vmap)"
        return (t, x), (shapes.field_components,), where, hint
    grid = shapes.grid_shape
    j = jnp.arange(shapes.grid_size, dtype=dtype).reshape((-1,) + (1,) * shapes.dim)
    channel = jnp.arange(shapes.n_components, dtype=dtype)
    u = jnp.broadcast_to(jnp.cos(2 * jnp.pi * j / shapes.grid_size) + 0.1 * channel, grid)
    hint = "a grid state has shape (n,)*d + (C,), channels last, one state (no batch axis)"
    if name == "operator":
        where = f"role 'operator' at the probe input (u0 of shape {grid}, t={probe_time})"
        return (u, t), grid, where, hint
    return (u,), grid, f"role 'step' at the probe input (u of shape {grid})", hint


def probe_role(
    name: str,
    fn: Callable[..., Any],
    *,
    dim: int,
    probe_time: float,
    allow_float32: bool,
    shapes: FieldShapes | None = None,
) -> None:
    """Call one role at the probe point; :class:`ModelError` naming what is wrong.

    ``shapes`` is required for the field roles (``field``, ``operator``, ``step``).
    """
    # The default float type: float64 when the caller switched x64 on (the CLI does).
    dtype = jnp.asarray(0.0).dtype
    args, expected, where, hint = _probe_inputs(name, dim, probe_time, shapes, dtype)
    try:
        out = jax.eval_shape(fn, *args)
    except (jax.errors.JAXTypeError, jax.errors.JAXIndexError) as exc:
        raise ModelError(
            f"{where} is not traceable by JAX (NumPy or Python control flow on array "
            f"values?): {_one_line(exc)}"
        ) from exc
    except Exception as exc:
        raise ModelError(f"{where} raised {_one_line(exc)}") from exc
    if not isinstance(out, jax.ShapeDtypeStruct):
        raise ModelError(f"{where} must return one array, got {type(out).__name__}")
    if out.shape != expected:
        raise ModelError(f"{where} returned shape {out.shape}, expected {expected}; {hint}")
    allowed = (jnp.float64, jnp.float32) if allow_float32 else (jnp.float64,)
    if out.dtype not in allowed:
        hint = "" if allow_float32 else " (certify with --float32 to accept float32)"
        raise ModelError(f"{where} returned dtype {out.dtype}, expected float64{hint}")
    try:
        value = np.asarray(eqx.filter_jit(fn)(*args))
    except Exception as exc:
        raise ModelError(f"{where} raised {_one_line(exc)} under equinox.filter_jit") from exc
    if not np.all(np.isfinite(value)):
        raise ModelError(f"{where} returned NaN or Inf")


def _step_size(obj: Any, roles: Mapping[str, Callable[..., Any]]) -> float | None:
    """Δt of the ``step`` role: its ``step_size`` attribute, else the model object's."""
    if "step" not in roles:
        return None
    for source in (roles["step"], obj):
        value = getattr(source, "step_size", None)
        if value is None:
            continue
        array = np.asarray(value)
        if isinstance(value, bool) or array.ndim != 0 or array.dtype.kind not in "iuf":
            raise ModelError(f"'step_size' must be a positive number, got {value!r}")
        step = float(array)
        if not (math.isfinite(step) and step > 0):
            raise ModelError(f"'step_size' must be a positive number, got {value!r}")
        return step
    raise ModelError(
        "role 'step' needs the time step of one call: give the model (or the step function) "
        "an attribute step_size = Δt"
    )


def probe_field_roles(
    model: LoadedModel, shapes: FieldShapes, *, probe_time: float, allow_float32: bool = False
) -> LoadedModel:
    """Probe the field roles of ``model`` with the problem's shapes (once per shapes).

    Returns ``model`` itself when they were probed with these shapes already, else a copy
    that records ``shapes``. :class:`ModelError` as for the loaders; also when the model
    was probed with another spatial dimension.
    """
    if model.field_shapes == shapes:
        return model
    if model.dim != shapes.dim:
        raise ModelError(f"model was probed with d = {model.dim}, problem has d = {shapes.dim}")
    for name, fn in model.roles.items():
        if name in FIELD_ROLES:
            probe_role(
                name,
                fn,
                dim=shapes.dim,
                probe_time=probe_time,
                allow_float32=allow_float32,
                shapes=shapes,
            )
    return dataclasses.replace(model, field_shapes=shapes)


# --------------------------------------------------------------------------- load


def _check_dim(dim: object) -> None:
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise ModelError(f"dimension must be a positive integer, got {dim!r}")


def _probed(
    obj: Any,
    spec: str,
    role: str | None,
    declared: tuple[str, ...] | None,
    digest: str,
    dim: int,
    probe_time: float,
    allow_float32: bool,
    shapes: FieldShapes | None = None,
) -> LoadedModel:
    """Resolve the roles of ``obj``, probe each one and wrap them (both loaders end here).

    Field roles are probed only with ``shapes``; otherwise later (:func:`probe_field_roles`).
    """
    if shapes is not None and shapes.dim != dim:
        raise ModelError(f"field shapes have d = {shapes.dim} but dim = {dim}")
    roles = resolve_roles(obj, spec, role=role, declared=declared)
    for name, fn in roles.items():
        if name not in FIELD_ROLES:
            probe_role(name, fn, dim=dim, probe_time=probe_time, allow_float32=allow_float32)
    model = LoadedModel(
        spec=spec,
        roles=types.MappingProxyType(dict(roles)),
        unnormalised=_unnormalised(obj, roles),
        model_sha256=digest,
        dim=dim,
        step_size=_step_size(obj, roles),
    )
    if shapes is None:
        return model
    return probe_field_roles(model, shapes, probe_time=probe_time, allow_float32=allow_float32)


def load_model(
    spec: str,
    *,
    role: str | None,
    dim: int,
    probe_time: float,
    allow_float32: bool = False,
    shapes: FieldShapes | None = None,
) -> LoadedModel:
    """Load the model named by ``spec``, resolve its roles and probe each one.

    Parameters
    ----------
    spec : str
        ``path/to/file.py:attr``, ``package.module:attr`` or a checkpoint directory.
    role : str or None
        The role of a plain callable (required then); for an object, load only this role.
    dim : int
        Dimension d of x for the probe.
    probe_time : float
        Time t of the probe call.
    allow_float32 : bool
        Accept float32 outputs (the certificate must record it).
    shapes : FieldShapes, optional
        The field problem's shapes, to probe the field roles now (else they are probed by
        :func:`probe_field_roles` when the problem is known).

    Raises
    ------
    ModelError
        One-line message naming the cause.
    """
    from ._checkpoint import checkpoint_sha256, load_checkpoint, read_manifest

    _check_dim(dim)
    if not spec:
        raise ModelError("malformed model spec '': empty")
    declared = None
    if Path(spec).is_dir():
        digest = checkpoint_sha256(Path(spec))
        declared = read_manifest(Path(spec)).roles
        obj = load_checkpoint(Path(spec))
    elif ":" not in spec and Path(spec).is_file():
        raise ModelError(f"malformed model spec {spec!r}: a file spec needs ':attr'")
    elif ":" not in spec and (spec.endswith(".py") or "/" in spec or "\\" in spec):
        raise ModelError(f"model checkpoint directory not found: {spec!r}")
    else:
        obj, digest = resolve_attr_spec(spec)
    return _probed(obj, spec, role, declared, digest, dim, probe_time, allow_float32, shapes)


def model_from_object(
    obj: Any,
    *,
    role: str | None,
    dim: int,
    probe_time: float,
    spec: str = "<object>",
    allow_float32: bool = False,
    shapes: FieldShapes | None = None,
) -> LoadedModel:
    """Resolve and probe the roles of an in-memory model (a callable or a role object).

    What :func:`load_model` does after importing a SPEC, for a model the caller already
    holds (the pytest plugin's ``certify`` fixture). There is no file to hash, so
    ``model_sha256`` is the empty string; ``spec`` is what the certificate records.

    Parameters
    ----------
    obj : callable or object
        A plain callable (``role`` says which role it is) or an object with role methods.
    role : str or None
        The role of a plain callable (required then); for an object, only this role.
    dim : int
        Dimension d of x for the probe.
    probe_time : float
        Time t of the probe call.
    spec : str, default "<object>"
        Description stored as the certificate's ``model_spec``.
    allow_float32 : bool
        Accept float32 outputs (the certificate must record it).
    shapes : FieldShapes, optional
        As for :func:`load_model`.

    Raises
    ------
    ModelError
        One-line message naming the cause.
    """
    _check_dim(dim)
    return _probed(obj, spec, role, None, "", dim, probe_time, allow_float32, shapes)
