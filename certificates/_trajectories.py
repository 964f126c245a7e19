"""Trajectory and sample artefacts: particles from any framework, as one NetCDF file.

A *trajectory artefact* holds the particles a solver produced — positions of shape
``(time, particle, dim)``, optional constant weights, and optionally the solver's own
score, score divergence, log-density and velocity at the particles — so that ``verify
certify --trajectories`` and ``verify audit`` can judge them without the solver, in
whatever framework it was written. A *sample artefact* is the special case of one time.
The contract is ``certificates/SCHEMA.md`` § "Trajectory and sample artefacts"; this
module reads and writes it with netCDF4 and numpy only (no JAX).
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._atomic import atomic_write
from ._errors import CertificateError

ARTEFACT_KIND = "solvercert-trajectories"
"""Value of the ``artefact`` global attribute that marks a trajectory artefact."""

ARTEFACT_VERSION = "1.0.0"
"""Version of the artefact layout (semantic versioning; readers accept the same major)."""

KNOWN_STEPPERS = ("forward_euler", "heun", "rk4")
"""Stepper names the audit knows the energy error of; any other text is kept verbatim."""

TIME_DIM, PARTICLE_DIM, SPACE_DIM, STEP_DIM = "time", "particle", "dim", "step"

# variable -> dimensions, in file order; "time" and "positions" are required.
_VARIABLE_DIMS: dict[str, tuple[str, ...]] = {
    "time": (TIME_DIM,),
    "positions": (TIME_DIM, PARTICLE_DIM, SPACE_DIM),
    "weights": (PARTICLE_DIM,),
    "score": (TIME_DIM, PARTICLE_DIM, SPACE_DIM),
    "score_divergence": (TIME_DIM, PARTICLE_DIM),
    "log_density": (TIME_DIM, PARTICLE_DIM),
    "velocity": (TIME_DIM, PARTICLE_DIM, SPACE_DIM),
    "step_time": (STEP_DIM,),
    "second_moment_increment": (STEP_DIM,),
}
_REQUIRED = ("time", "positions")
_STRING_ATTRS = ("problem_id", "stepper", "producer")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class TrajectoryError(CertificateError):
    """A trajectory artefact is unreadable or violates ``SCHEMA.md`` (one-line message).

    A subclass of :class:`CertificateError`, so the CLI reports it as invalid input
    (exit 4) with no traceback.
    """


@dataclass(frozen=True, eq=False)
class TrajectoryArtefact:
    """Particles of one solver run (or one set of samples), with what the solver knew.

    All arrays are float64 (converted on construction); the artefact is validated on
    construction, so an instance always satisfies the schema.

    Parameters
    ----------
    time : ndarray, shape (T,)
        Strictly increasing times :math:`t_k` of the stored frames (T = 1: samples).
    positions : ndarray, shape (T, N, d)
        Particle positions :math:`X_i(t_k)`.
    weights : ndarray, shape (N,), optional
        Non-negative particle weights :math:`w_i` (constant in time), not all zero;
        ``None`` means :math:`w_i = 1/N`.
    score : ndarray, shape (T, N, d), optional
        The solver's score :math:`s(t_k, X_i)`, its estimate of :math:`\\nabla\\log p_t`.
    score_divergence : ndarray, shape (T, N), optional
        :math:`\\nabla\\cdot s(t_k, X_i)` (enables the Hyvärinen gap).
    log_density : ndarray, shape (T, N), optional
        The solver's :math:`\\log f(t_k, X_i)` (enables the entropy audit).
    velocity : ndarray, shape (T, N, d), optional
        Particle velocities :math:`U_i(t_k) = \\dot X_i(t_k)` as the solver computed them.
    step_time : ndarray, shape (S,), optional
        Start times of the solver's steps at which ``second_moment_increment`` is given.
    second_moment_increment : ndarray, shape (S,), optional
        Per step, :math:`\\Delta t^2 \\sum_i w_i |U_i|^2` — the exact growth of the second
        moment :math:`\\sum_i w_i |X_i|^2` that forward Euler adds to an energy-conserving
        flow (given with ``step_time``).
    problem_id : str, optional
        Registry id of the problem the run solves (``landau-bkw-2d`` …).
    stepper : str, optional
        ``forward_euler``, ``heun``, ``rk4`` or free text.
    step_size : float, optional
        Constant step :math:`\\Delta t` (> 0).
    producer : str
        Free text: framework, code version, run id.
    """

    time: np.ndarray
    positions: np.ndarray
    weights: np.ndarray | None = None
    score: np.ndarray | None = None
    score_divergence: np.ndarray | None = None
    log_density: np.ndarray | None = None
    velocity: np.ndarray | None = None
    step_time: np.ndarray | None = None
    second_moment_increment: np.ndarray | None = None
    problem_id: str | None = None
    stepper: str | None = None
    step_size: float | None = None
    producer: str = ""

    def __post_init__(self) -> None:
        for name in _VARIABLE_DIMS:
            value = getattr(self, name)
            if value is None:
                if name in _REQUIRED:
                    raise TrajectoryError(f"trajectory artefact: {name!r} is required")
                continue
            array = np.asarray(value)
            if not (
                np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
            ):
                raise TrajectoryError(
                    f"trajectory artefact: {name!r} must be real numbers, got dtype {array.dtype}"
                )
            array = np.array(array, dtype=np.float64)  # a private copy: the artefact is frozen
            array.setflags(write=False)
            object.__setattr__(self, name, array)
        for name in _STRING_ATTRS:
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TrajectoryError(f"trajectory artefact: {name!r} must be a string")
        if self.producer is None:
            object.__setattr__(self, "producer", "")
        if self.step_size is not None:
            try:
                step = float(self.step_size)
            except (TypeError, ValueError):
                raise TrajectoryError("trajectory artefact: step_size must be a number") from None
            if not (math.isfinite(step) and step > 0):
                raise TrajectoryError(f"trajectory artefact: step_size must be > 0, got {step}")
            object.__setattr__(self, "step_size", step)
        problem = _problems(self)
        if problem:
            raise TrajectoryError(f"trajectory artefact: {problem}")

    # --- derived --------------------------------------------------------------------
    @property
    def n_times(self) -> int:
        return int(self.positions.shape[0])

    @property
    def n_particles(self) -> int:
        return int(self.positions.shape[1])

    @property
    def dim(self) -> int:
        return int(self.positions.shape[2])

    @property
    def is_sample(self) -> bool:
        """One frame only: a sample artefact."""
        return self.n_times == 1

    def particle_weights(self) -> np.ndarray:
        """The weights :math:`w_i` as stored, or :math:`1/N` each when none are stored."""
        if self.weights is None:
            return np.full(self.n_particles, 1.0 / self.n_particles)
        return np.asarray(self.weights)

    def attrs(self) -> dict[str, str | float]:
        """Global attributes as written (absent where ``None``)."""
        out: dict[str, str | float] = {
            "artefact": ARTEFACT_KIND,
            "artefact_version": ARTEFACT_VERSION,
        }
        for name in ("problem_id", "stepper", "step_size"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out["producer"] = self.producer
        return out


def _problems(artefact: TrajectoryArtefact) -> str:
    """The first violation of the schema, or ``""``."""
    positions = artefact.positions
    time = artefact.time
    if time.ndim != 1 or time.size == 0:
        return f"'time' must be 1-d with at least one entry, got shape {time.shape}"
    if positions.ndim != 3:
        return f"'positions' must have dims (time, particle, dim), got shape {positions.shape}"
    n_time, n_particle, n_dim = positions.shape
    if n_time != time.size:
        return f"'positions' has {n_time} times but 'time' has {time.size}"
    if n_particle == 0 or n_dim == 0:
        return f"'positions' needs at least one particle and one dimension, got {positions.shape}"
    sizes = {TIME_DIM: n_time, PARTICLE_DIM: n_particle, SPACE_DIM: n_dim}
    if artefact.step_time is not None:
        sizes[STEP_DIM] = artefact.step_time.size
    for name, dims in _VARIABLE_DIMS.items():
        value = getattr(artefact, name)
        if value is None:
            continue
        if STEP_DIM in dims and artefact.step_time is None:
            return f"{name!r} needs 'step_time'"
        expected = tuple(sizes[d] for d in dims)
        if value.shape != expected:
            return f"{name!r} must have shape {expected} {dims}, got {value.shape}"
        if not np.all(np.isfinite(value)):
            return f"{name!r} holds NaN or infinite values"
    if np.any(np.diff(time) <= 0):
        return "'time' must be strictly increasing"
    if artefact.weights is not None:
        if np.any(artefact.weights < 0):
            return "'weights' must be non-negative"
        if not np.sum(artefact.weights) > 0:
            return "'weights' must not sum to zero"
    if (artefact.step_time is None) != (artefact.second_moment_increment is None):
        return "'step_time' and 'second_moment_increment' go together"
    if artefact.step_time is not None:
        steps = artefact.step_time
        if np.any(np.diff(steps) <= 0):
            return "'step_time' must be strictly increasing"
        if steps.size and (steps[0] < time[0] or steps[-1] >= time[-1]):
            return (
                f"'step_time' must lie in [{time[0]}, {time[-1]}) (steps start inside the "
                f"stored window), got [{steps[0]}, {steps[-1]}]"
            )
        if np.any(artefact.second_moment_increment < 0):
            return "'second_moment_increment' must be non-negative (Δt² Σ w|U|²)"
    return ""


# --- writing -------------------------------------------------------------------------


def write_trajectories(path: str | Path, artefact: TrajectoryArtefact) -> Path:
    """Write ``artefact`` to ``path`` as NetCDF-4, atomically (temp file, fsync, rename).

    The artefact was validated when it was constructed; it is validated again here in
    case its arrays were changed in place through a view.

    Raises
    ------
    TrajectoryError
        The artefact violates the schema (nothing is written).
    """
    import netCDF4

    problem = _problems(artefact)
    if problem:
        raise TrajectoryError(f"trajectory artefact: {problem}")
    sizes = {
        TIME_DIM: artefact.n_times,
        PARTICLE_DIM: artefact.n_particles,
        SPACE_DIM: artefact.dim,
    }
    if artefact.step_time is not None:
        sizes[STEP_DIM] = artefact.step_time.size

    def write(tmp: Path) -> None:
        with netCDF4.Dataset(tmp, "w", format="NETCDF4") as handle:
            for dim, size in sizes.items():
                handle.createDimension(dim, size)
            for name, dims in _VARIABLE_DIMS.items():
                value = getattr(artefact, name)
                if value is None:
                    continue
                variable = handle.createVariable(name, "f8", dims)
                variable[...] = value
            handle.setncatts(artefact.attrs())

    return atomic_write(path, write)


# --- reading -------------------------------------------------------------------------


def read_trajectories(path: str | Path) -> TrajectoryArtefact:
    """Read and validate a trajectory artefact.

    Any NetCDF-4 file following ``SCHEMA.md`` reads, whether written by this module, by
    ``xarray``, by ``netCDF4`` or by ``h5netcdf``; integer and float32 variables are
    converted to float64.

    Raises
    ------
    TrajectoryError
        Missing, unreadable, not NetCDF-4, corrupt, not a trajectory artefact, or
        violating the schema (shapes, finiteness, time order, weights, attributes).
    """
    import netCDF4

    path = Path(path)
    if not path.exists():
        raise TrajectoryError(f"{path}: no such file")
    if path.is_dir():
        raise TrajectoryError(f"{path}: is a folder, not a trajectory artefact")
    try:
        with path.open("rb") as handle:
            signature = handle.read(len(_HDF5_SIGNATURE))
    except OSError as exc:
        raise TrajectoryError(f"{path}: cannot be read ({exc.strerror})") from None
    if signature != _HDF5_SIGNATURE:
        raise TrajectoryError(f"{path}: not a NetCDF-4 file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with netCDF4.Dataset(path, "r") as handle:
                handle.set_auto_mask(False)
                attrs = {name: handle.getncattr(name) for name in handle.ncattrs()}
                found = {
                    name: (tuple(var.dimensions), np.asarray(var[...]))
                    for name, var in handle.variables.items()
                }
    except Exception as exc:  # netCDF4/HDF5 raise many types for damaged files
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TrajectoryError(f"{path}: corrupt or truncated NetCDF-4 file ({detail})") from None
    kind = _text(attrs.get("artefact"))
    if kind != ARTEFACT_KIND:
        raise TrajectoryError(
            f"{path}: not a trajectory artefact (global attribute artefact = "
            f"{kind!r}, expected {ARTEFACT_KIND!r})"
        )
    version = _text(attrs.get("artefact_version"))
    if version is None or not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise TrajectoryError(
            f"{path}: artefact_version must be 'MAJOR.MINOR.PATCH', got {version!r}"
        )
    if version.split(".")[0] != ARTEFACT_VERSION.split(".")[0]:
        raise TrajectoryError(
            f"{path}: artefact_version {version} is not readable by this version "
            f"(reads {ARTEFACT_VERSION.split('.')[0]}.x)"
        )
    values: dict[str, object] = {}
    for name, expected_dims in _VARIABLE_DIMS.items():
        if name not in found:
            if name in _REQUIRED:
                raise TrajectoryError(f"{path}: variable {name!r} is missing")
            continue
        dims, data = found[name]
        if dims != expected_dims:
            raise TrajectoryError(
                f"{path}: variable {name!r} must have dims {expected_dims}, got {dims}"
            )
        values[name] = data
    for name in _STRING_ATTRS:
        if name in attrs:
            text = _text(attrs[name])
            if text is None:
                raise TrajectoryError(f"{path}: attribute {name!r} must be a string")
            values[name] = text
    if "step_size" in attrs:
        step = np.asarray(attrs["step_size"])
        if step.shape not in ((), (1,)) or not np.issubdtype(step.dtype, np.number):
            raise TrajectoryError(f"{path}: attribute 'step_size' must be one number")
        values["step_size"] = float(step.reshape(()))
    try:
        return TrajectoryArtefact(**values)  # type: ignore[arg-type]
    except TrajectoryError as exc:
        raise TrajectoryError(f"{path}: {exc}") from None


def _text(value: object) -> str | None:
    """A NetCDF text attribute as ``str`` (``None`` if it is not text)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind in "SU" and value.size == 1:
        return str(value.reshape(()).item())
    return None


__all__ = [
    "ARTEFACT_KIND",
    "ARTEFACT_VERSION",
    "KNOWN_STEPPERS",
    "TrajectoryArtefact",
    "TrajectoryError",
    "read_trajectories",
    "write_trajectories",
]
