"""Shared state and helpers of a field certify run (:mod:`verify._field_certify`).

:class:`FieldConfig` holds the options of the field checks; :class:`FieldRun` the problem,
the model, the times and the reference states (computed once, cached by time); the helpers
turn deterministic grid numbers into :class:`verify._estimate.Estimate` objects with their
normaliser and eps.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from certificates import Evidence, IntervalMethod
from solvers import AbstractFieldProblem

from . import _field_kernels as fk
from ._estimate import Estimate
from ._field_metrics import DEFAULT_BAND_EDGES
from ._model import FieldShapes, LoadedModel

FORMULA = {
    "field_residual": "field-residual-rms-relative",
    "field_residual_max": "field-residual-max-relative",
    "operator_residual": "operator-residual-fd-central-2",
    "step_residual": "step-residual-trapezoid",
    "initial_error": "grid-relative-l2-initial",
    "periodicity": "periodic-jump-max-relative",
    "periodicity_grad": "periodic-grad-jump-max-relative",
    "error": "grid-relative-l2",
    "error_max": "grid-relative-linf",
    "band": "grid-band-relative-l2",
    "growth": "log-error-growth-lsq",
    "drift_law": "invariant-drift-law",
    "change_initial": "invariant-change-initial",
}
NORMALISER_RHS = "rms_reference_rhs"
GROWTH_MAX_POINTS = 64
"""A step rollout's error growth is fitted on at most this many step times (evenly spaced)."""


class FieldCertifyError(ValueError):
    """Options that do not fit a field run (one-line message; a :class:`CertifyError`
    is raised by the caller with the same message)."""


@dataclass(frozen=True)
class FieldConfig:
    """Options of the field checks (stored in ``config_json`` under ``field``).

    Attributes
    ----------
    slab_times : int
        M, times per slab of the dense residual maximum and the periodicity check (both
        ends included).
    dense_points : int or None
        m, points per direction of the dense cell-centred grid x_j = (j + ½)L/m (off the
        reference grid); ``None``: 2n for d ≤ 2, n for d = 3.
    fd_delta : float or None
        δ of the operator's time derivative; ``None``: 10⁻³ (t_max − t_min) (truncation
        δ²/6 |∂ₜ³q| ≈ 10⁻⁷ relative for rates ~1 per unit time, round-off ε|q|/δ ≈ 10⁻¹³).
    band_edges : (float, float)
        (f₁, f₂), band edges as fractions of the Nyquist wave number.
    eps : float
        ε added to every normaliser (default 0; a NaN with its reason where one is 0).
    """

    slab_times: int = 9
    dense_points: int | None = None
    fd_delta: float | None = None
    band_edges: tuple[float, float] = DEFAULT_BAND_EDGES
    eps: float = 0.0

    def __post_init__(self) -> None:
        if self.slab_times < 2:
            raise FieldCertifyError(f"slab_times must be >= 2, got {self.slab_times}")
        if self.dense_points is not None and self.dense_points < 1:
            raise FieldCertifyError(f"dense_points must be >= 1, got {self.dense_points}")
        if self.fd_delta is not None and not (math.isfinite(self.fd_delta) and self.fd_delta > 0):
            raise FieldCertifyError(f"fd_delta must be positive, got {self.fd_delta}")
        if not 0 < self.band_edges[0] < self.band_edges[1]:
            raise FieldCertifyError(f"band_edges must satisfy 0 < f1 < f2, got {self.band_edges}")
        if not (math.isfinite(self.eps) and self.eps >= 0):
            raise FieldCertifyError(f"eps must be >= 0, got {self.eps}")

    def resolved_dense_points(self, problem: AbstractFieldProblem) -> int:
        if self.dense_points is not None:
            return int(self.dense_points)
        return 2 * problem.grid_size if problem.dim <= 2 else problem.grid_size

    def resolved_fd_delta(self, problem: AbstractFieldProblem) -> float:
        if self.fd_delta is not None:
            return float(self.fd_delta)
        return 1e-3 * (problem.t_max - problem.t_min)

    def parameters(self, problem: AbstractFieldProblem) -> dict[str, Any]:
        """JSON form, defaults resolved, with the definitions that shape the numbers."""
        return {
            "grid_size": int(problem.grid_size),
            "slab_times": int(self.slab_times),
            "slabs": "[t_{i-1}, t_i], t_{-1} = t_min",
            "dense_points": self.resolved_dense_points(problem),
            "dense_grid": "cell-centred x_j = (j + 1/2) L / m",
            "fd_delta": self.resolved_fd_delta(problem),
            "fd_stencil": "central 2nd order; one-sided 2nd order within fd_delta of the window",
            "step_stencil": "trapezoid: (q_b - q_a)/dt - (N(q_a) + N(q_b))/2",
            "band_edges": [float(f) for f in self.band_edges],
            "bands": "|k|_2 <= f1 k_max, f1 k_max < |k|_2 <= f2 k_max, rest; k_max = n // 2",
            "eps": float(self.eps),
            "quadrature": "periodic trapezoid (uniform weights)",
            "growth_max_points": GROWTH_MAX_POINTS,
        }


def field_shapes(problem: AbstractFieldProblem) -> FieldShapes:
    """The shapes the field roles are probed with (:class:`verify._model.FieldShapes`)."""
    return FieldShapes(
        dim=int(problem.dim),
        grid_size=int(problem.grid_size),
        n_components=int(problem.n_components),
        field_components=int(problem.field_components),
        length=float(problem.length),
    )


# --------------------------------------------------------------------------- helpers


def exact_estimate(
    value: float,
    formula: str,
    *,
    normaliser: str = "none",
    eps: float = 0.0,
    reason: str = "",
    evidence: Evidence = Evidence.EXACT,
) -> Estimate:
    """A deterministic grid quantity: stderr 0, exact interval."""
    value = float(value)
    if math.isnan(value) and not reason:
        reason = "estimate could not be computed"
    return Estimate(
        value,
        0.0,
        0,
        formula,
        evidence=evidence,
        interval_method=IntervalMethod.EXACT,
        normaliser=normaliser,
        eps=eps,
        reason=reason,
    )


def relative(numerator: float, scale: float, eps: float) -> tuple[float, str]:
    """numerator / (scale + eps), NaN with a reason where that is undefined."""
    if not math.isfinite(numerator):
        return math.nan, "the model's value is not finite (NaN or inf)"
    if scale + eps == 0:
        return math.nan, "normaliser is 0 and eps = 0"
    return numerator / (scale + eps), ""


def rms_relative(ms: Estimate, scale: float, eps: float, formula: str) -> Estimate:
    r"""√(mean |R|²) / (scale + eps) with the delta-method stderr se(ms) / (2√ms (scale + eps)).

    The normal interval on the RMS is first order (valid for RMS > 0); where every |R|² is 0
    the stderr is 0 too.
    """
    denom = scale + eps
    reason = ms.reason
    if not math.isfinite(ms.estimate) or denom == 0:
        reason = reason or "normaliser is 0 and eps = 0"
        return Estimate(
            math.nan,
            math.nan,
            ms.n_samples,
            formula,
            normaliser=NORMALISER_RHS,
            eps=eps,
            reason=reason,
        )
    root = math.sqrt(max(ms.estimate, 0.0))
    # at a zero residual the stderr is 0 too, unless the tail diagnostic fired (inf)
    stderr = ms.stderr / (2 * root * denom) if root > 0 else ms.stderr
    return Estimate(
        root / denom,
        stderr,
        ms.n_samples,
        formula,
        normaliser=NORMALISER_RHS,
        eps=eps,
        reason=reason,
        sample_variance=ms.sample_variance,
        tail_share=ms.tail_share,
        tail_index=ms.tail_index,
        tail_fired=ms.tail_fired,
    )


def aux_variable(values: Sequence[float], units: str, long_name: str) -> xr.Variable:
    return xr.Variable(
        ("time",), np.asarray(values, dtype=np.float64), {"units": units, "long_name": long_name}
    )


def identifier(text: str) -> str:
    return re.sub(r"\W", "_", text)


def step_indices(times: np.ndarray, t_min: float, step_size: float) -> np.ndarray:
    """k_i with t_i = t_min + k_i Δt (relative tolerance 1e-9 of Δt); FieldCertifyError else."""
    k = np.rint((times - t_min) / step_size)
    off = np.abs(times - t_min - k * step_size) > 1e-9 * max(step_size, abs(float(times[-1])))
    if np.any(off):
        bad = [float(t) for t in times[off]]
        raise FieldCertifyError(
            f"a step model with step_size {step_size:g} can only be certified at t_min + "
            f"k*step_size; times {bad} are not (pass --times)"
        )
    return k.astype(np.int64)


# --------------------------------------------------------------------------- the run


@dataclass
class FieldRun:
    """Shared state of one field certify run (reference values are computed once)."""

    problem: AbstractFieldProblem
    model: LoadedModel
    times: np.ndarray
    key: jax.Array
    n_samples: int
    block: int
    options: FieldConfig
    notes: dict[str, Any] = field(default_factory=dict)
    cache: dict[float, np.ndarray] = field(default_factory=dict)
    states: dict[str, np.ndarray] = field(default_factory=dict)
    step_saved: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.problem.grid_size)

    @property
    def eps(self) -> float:
        return float(self.options.eps)

    def reference(self, times: Sequence[float]) -> np.ndarray:
        """q* on the grid at ``times``, (T, *grid, C); asked for in sorted unique batches."""
        wanted = sorted({float(t) for t in times} - set(self.cache))
        if wanted:
            values = np.asarray(self.problem.reference(wanted, self.n), dtype=np.float64)
            self.cache.update(zip(wanted, values, strict=True))
        return np.stack([self.cache[float(t)] for t in times])

    def rhs(self, times: Sequence[float], states: np.ndarray) -> np.ndarray:
        """N(q) of a stack of grid states at their times."""
        return fk.rhs_states(self.problem, times, states)

    def slabs(self) -> list[np.ndarray]:
        """M times per slab [t_{i−1}, t_i] (t_{−1} = t_min), both ends included."""
        starts = np.concatenate([[self.problem.t_min], self.times[:-1]])
        m = self.options.slab_times
        return [np.linspace(a, b, m) for a, b in zip(starts, self.times, strict=True)]

    @property
    def u0(self) -> np.ndarray:
        if "u0" not in self.states:
            self.states["u0"] = np.asarray(fk.initial_grid_state(self.problem, self.n))
        return self.states["u0"]

    @property
    def step_size(self) -> float:
        step = self.model.step_size
        window = self.problem.t_max - self.problem.t_min
        if step is None or step > window:
            raise FieldCertifyError(
                f"step_size {step} must be set and at most the problem's window length {window:g}"
            )
        return float(step)

    def step_state(self, k: int) -> np.ndarray:
        """The rollout's state after k steps (rolled out once, states kept as needed)."""
        if not self.step_saved:
            self._roll_out()
        return self.step_saved[int(k)]

    def step_counts(self) -> list[int]:
        """Step counts whose states the checks use: the certification times, the step
        before each (the step residual; the first step at t_min) and the growth fit's."""
        indices = step_indices(self.times, self.problem.t_min, self.step_size)
        needed = {int(k) for k in indices} | {max(int(k) - 1, 0) for k in indices} | {1}
        return sorted(needed | set(self.growth_steps()))

    def _roll_out(self) -> None:
        fn = self.model.role("step")
        u, done = jnp.asarray(self.u0), 0
        self.step_saved[0] = self.u0
        for k in self.step_counts():
            if k > done:
                u = fk.advance(fn, u, jnp.asarray(k - done))
                done = k
                self.step_saved[k] = np.asarray(u, dtype=np.float64)

    def needed_times(self) -> list[float]:
        """Every time at which a check needs the reference: asked for in one batch, so a
        numerical reference solves once."""
        problem = self.problem
        times = {float(problem.t_min), *map(float, self.times)}
        for slab in self.slabs():
            times |= set(map(float, slab))
        if "operator" in self.model.roles:
            delta = self.options.resolved_fd_delta(problem)
            nodes, _, _ = fk.fd_stencils(self.times, delta, problem.t_min, problem.t_max)
            times |= set(map(float, nodes.ravel()))
        if "step" in self.model.roles:
            step = self.step_size
            times |= {float(problem.t_min + k * step) for k in self.step_counts()}
        return sorted(times)

    def growth_steps(self) -> list[int]:
        """Step counts of the growth fit: ≤ GROWTH_MAX_POINTS evenly spaced in 1..k_last."""
        last = int(step_indices(self.times, self.problem.t_min, self.step_size).max())
        if last < 1:
            return []
        count = min(last, GROWTH_MAX_POINTS)
        return sorted({int(k) for k in np.rint(np.linspace(1, last, count))})


def role_states(run: FieldRun, role: str) -> np.ndarray:
    """The role's states at the certification times, shape (T, *grid, C) (cached)."""
    if role not in run.states:
        fn = run.model.role(role)
        times = jnp.asarray(run.times)
        if role == "field":
            states = fk.field_states(fn, run.problem, times, run.n, run.block)
        elif role == "operator":
            states = fk.operator_states(fn, jnp.asarray(run.u0), times)
        else:
            indices = step_indices(run.times, run.problem.t_min, run.step_size)
            states = np.stack([run.step_state(int(k)) for k in indices])
        run.states[role] = np.asarray(states, dtype=np.float64)
    return run.states[role]
