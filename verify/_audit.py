r"""``verify audit``: invariant preservation of a trajectory artefact, with no reference.

A deterministic particle solver of a conservative equation (Landau: mass, momentum and
energy conserved, entropy non-increasing) should keep the invariants of its *own* particle
system, whatever its accuracy. From the stored frames :math:`X_i(t_k)` and fixed weights
:math:`w_i` of a trajectory artefact (``certificates/SCHEMA.md`` § "Trajectory and sample
artefacts") this module computes, at every stored time :math:`t_k` and from the first
frame :math:`t_0`,

.. math::

    \text{mass\_drift} = \frac{|\sum_i w_i - \sum_i w_i|}{\sum_i w_i} = 0,\qquad
    \text{momentum\_drift\_relative} = \frac{|P(t_k) - P(t_0)|}{\sqrt{W\,M_2(t_0)}},

    \text{energy\_drift} = \frac{|M_2(t_k) - M_2(t_0)|}{M_2(t_0)},\qquad
    \text{entropy\_increase} = \max_{0 \le i < j \le k}\big(H(t_j) - H(t_i)\big)^+,

with :math:`W = \sum_i w_i`, :math:`P = \sum_i w_i X_i`, :math:`M_2 = \sum_i w_i |X_i|^2`
(twice the kinetic energy) and :math:`H = \sum_i w_i \log f_i` from the stored
``log_density`` (Huang & Wang 2025, eq. 3.9). The momentum scale :math:`\sqrt{W M_2(t_0)}` is
the total mass times the r.m.s. speed :math:`\sqrt{M_2/W}` (the thermal speed), so the
check is dimensionless and unchanged under rescaling of x or of the weights. The data are
deterministic numbers: evidence EXACT, stderr 0, n_samples 0; the tolerance is an upper
bound on the estimate.

**Energy and the time stepper.** Forward Euler does not conserve energy even for an exactly
antisymmetric Landau velocity: since :math:`\sum_i w_i X_i\cdot U_i = 0`, one step changes the
second moment by exactly

.. math::

    M_2^{n+1} - M_2^n = \Delta t_n^2 \sum_i w_i |U_i^n|^2 \quad(\ge 0)

(``solvers/_landau_particles.py``, MATH.md §2.4). Where the artefact declares
``stepper = forward_euler`` and stores these per-step increments (``step_time`` and
``second_moment_increment``), or the velocities :math:`U_i(t_k)` at every step (frames one
step apart), the audit reports the raw drift (``energy_drift``, not bounded), the drift
the stepper predicts (auxiliary ``energy_drift_predicted`` :math:`= \sum_{n:\,t_n < t_k}
\Delta t_n^2 \sum_i w_i|U^n_i|^2 / M_2(t_0)`) and judges the **excess**

.. math::

    \text{energy\_excess}(t_k) = \frac{|M_2(t_k) - M_2(t_0) - \sum_{n:\,t_n < t_k}
        \Delta t_n^2 \sum_i w_i |U_i^n|^2|}{M_2(t_0)}
    \;\le\; \kappa\,\varepsilon\,(S + 1),\qquad \kappa = 16,

S the number of stored steps, ε the float64 machine epsilon: what is left is round-off
(each step rounds every coordinate of :math:`X + \Delta t\,U`, changing :math:`M_2` by at
most about :math:`\varepsilon M_2`, and the computed :math:`\sum_i w_i X_i\cdot U_i` vanishes
only to round-off). Measured on BKW-2D (N = 512, exact score, 40 and 200 steps of
Δt = 0.05 and 0.01): excess ≤ 3.4 ε in total, against a rule of ≥ 656 ε. The rule assumes
the solver computed in float64; a float32 solver needs ``--tolerance energy=…``. For any
other stepper (Heun, RK4: their drift is O(Δt^p) with no closed form) or without the
increments the raw ``energy_drift`` is judged against the tolerance (default 1e-6, which
RK4 meets at Δt = 0.05 on BKW-2D and forward Euler does not).

Default tolerances (``DEFAULT_TOLERANCES``; ``--tolerance`` overrides): mass 1e-12 (fixed
weights give exactly 0), momentum 1e-10 (any explicit Runge–Kutta step conserves it to
round-off, ~1e-16 per step), energy 1e-6 (raw drift) or the round-off rule above (excess),
entropy 1e-8 nats. The tolerance that applied and where it came from are recorded in
``config_json``.

References
----------
.. [1] Y. Huang, L. Wang, "A score-based particle method for homogeneous Landau equation",
   J. Comput. Phys. 536 (2025) 114053.
.. [2] J. A. Carrillo, J. Hu, L. Wang, J. Wu, "A particle method for the homogeneous Landau
   equation", J. Comput. Phys. X 7 (2020) 100066 (conservation of the particle scheme).
.. [3] N. J. Higham, "Accuracy and Stability of Numerical Algorithms", 2nd ed., SIAM (2002),
   §3.1 (rounding error of sums).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from certificates import (
    Bound,
    Bounds,
    Certificate,
    CheckBound,
    CheckResult,
    Comparison,
    Evidence,
    IntervalMethod,
    Provenance,
    TrajectoryArtefact,
    assemble_certificate,
    family_dataset,
)

from ._version import tool_version

INVARIANTS = ("mass", "momentum", "energy", "entropy")
"""Invariants ``verify audit`` knows, in report order."""

DEFAULT_TOLERANCES: Mapping[str, float] = {
    "mass": 1e-12,
    "momentum": 1e-10,
    "energy": 1e-6,
    "entropy": 1e-8,
}
"""Tolerances used when ``--tolerance`` gives none (module docstring)."""

ROUNDOFF_KAPPA = 16
"""κ of the forward-Euler excess tolerance κ ε (S + 1) (module docstring)."""

EPS64 = float(np.finfo(np.float64).eps)

_STEP_RTOL = 1e-9
"""Relative tolerance (of Δt) for matching frame and step times stored as decimals."""


class AuditError(ValueError):
    """Bad ``--invariants``/``--tolerance`` text (one-line message; exit 2)."""


class AuditInputError(ValueError):
    """The artefact cannot be audited as asked (one-line message; exit 4)."""


def parse_invariants(text: str | None) -> tuple[str, ...] | None:
    """``"mass,energy"`` → ``("mass", "energy")``; ``None`` → every applicable invariant."""
    if text is None:
        return None
    names = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in INVARIANTS]
    if not names or unknown:
        raise AuditError(
            f"--invariants must be a comma-separated subset of {','.join(INVARIANTS)}, got {text!r}"
        )
    return tuple(name for name in INVARIANTS if name in names)


def parse_tolerances(text: str | None) -> dict[str, float]:
    """``"1e-6"`` (every invariant) or ``"energy=1e-4,momentum=1e-9"`` → {invariant: tol}."""
    if text is None:
        return {}
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        targets = [name.strip().lower()] if sep else list(INVARIANTS)
        raw = value if sep else name
        if sep and targets[0] not in INVARIANTS:
            raise AuditError(
                f"--tolerance: unknown invariant {targets[0]!r} (use {', '.join(INVARIANTS)})"
            )
        try:
            tolerance = float(raw)
        except ValueError:
            raise AuditError(f"--tolerance: {raw.strip()!r} is not a number") from None
        if not (math.isfinite(tolerance) and tolerance >= 0):
            raise AuditError(f"--tolerance must be finite and ≥ 0, got {raw.strip()}")
        out.update(dict.fromkeys(targets, tolerance))
    if not out:
        raise AuditError(f"--tolerance: nothing given in {text!r}")
    return out


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def normalised_stepper(stepper: str | None) -> str | None:
    """``"Forward-Euler"`` → ``"forward_euler"`` (case, hyphens and spaces folded)."""
    if stepper is None:
        return None
    return "_".join(stepper.strip().lower().replace("-", " ").split()) or None


# --------------------------------------------------------------------------- energy model


@dataclass(frozen=True)
class EnergyModel:
    """What the declared stepper predicts for the second moment at the stored times.

    Attributes
    ----------
    applies : bool
        Forward Euler with per-step increments (stored, or from velocities at every step).
    predicted : ndarray (T,)
        :math:`\\sum_{n:\\,t_n < t_k} \\Delta t_n^2 \\sum_i w_i |U^n_i|^2` (zeros if not applies).
    n_steps : int
        S, the number of steps behind the prediction.
    source : str
        ``second_moment_increment``, ``velocity`` or ``none``.
    note : str
        Why the model does or does not apply (recorded in ``config_json``).
    """

    applies: bool
    predicted: np.ndarray
    n_steps: int
    source: str
    note: str


def _close(a: np.ndarray, b: np.ndarray, scale: float) -> np.ndarray:
    return np.abs(np.asarray(a) - np.asarray(b)) <= _STEP_RTOL * max(scale, 1e-300)


def energy_model(artefact: TrajectoryArtefact) -> EnergyModel:
    """The forward-Euler prediction of :math:`M_2(t_k) - M_2(t_0)`, where it is known."""
    time = artefact.time
    none = np.zeros(time.shape)
    stepper = normalised_stepper(artefact.stepper)
    if stepper != "forward_euler":
        why = "no stepper declared" if stepper is None else f"stepper {artefact.stepper!r}"
        return EnergyModel(
            False, none, 0, "none", f"{why}: no exact energy increment is known, raw drift judged"
        )
    weights = artefact.particle_weights()
    span = float(time[-1] - time[0]) if time.size > 1 else 1.0
    if artefact.second_moment_increment is not None:
        starts = np.asarray(artefact.step_time)
        increments = np.asarray(artefact.second_moment_increment)
        source = "second_moment_increment"
        if starts.size == 0 or not _close(starts[0], time[0], span):
            return EnergyModel(
                False, none, 0, source, "the stored steps do not start at the first frame"
            )
        # Every frame after the first must end a step: start of the next one, or the end.
        ends = np.append(starts[1:], time[-1])
        on_grid = [bool(np.any(_close(ends, t, span))) for t in time[1:]]
        if not all(on_grid):
            return EnergyModel(
                False,
                none,
                0,
                source,
                "a stored frame lies inside a step: the increments do not partition the frames",
            )
        if artefact.step_size is not None and not np.all(
            _close(ends - starts, artefact.step_size, artefact.step_size)
        ):
            return EnergyModel(
                False,
                none,
                0,
                source,
                f"the stored steps are not of the declared step_size {artefact.step_size}: "
                "steps are missing",
            )
    elif artefact.velocity is not None and time.size > 1:
        steps = np.diff(time)
        source = "velocity"
        if artefact.step_size is None or not np.all(
            _close(steps, artefact.step_size, artefact.step_size)
        ):
            return EnergyModel(
                False,
                none,
                0,
                source,
                "velocities give the increments only when frames are one declared step_size apart",
            )
        starts = time[:-1]
        speed2 = np.einsum("i,tid->t", weights, artefact.velocity[:-1] ** 2)
        increments = steps**2 * speed2
    else:
        return EnergyModel(
            False,
            none,
            0,
            "none",
            "forward_euler declared but neither second_moment_increment nor velocities at "
            "every step are stored: raw drift judged",
        )
    predicted = np.array(
        [increments[starts < t - _STEP_RTOL * span].sum() for t in time], dtype=np.float64
    )
    return EnergyModel(
        True,
        predicted,
        int(increments.size),
        source,
        f"forward Euler: M2 grows by dt^2 sum_i w_i |U_i|^2 per step ({increments.size} steps "
        f"from {source})",
    )


def roundoff_tolerance(n_steps: int) -> float:
    """κ ε (S + 1): default bound of ``energy_excess`` (module docstring)."""
    return ROUNDOFF_KAPPA * EPS64 * (int(n_steps) + 1)


# --------------------------------------------------------------------------- the family


def _exact(name: str, values, units: str, long_name: str, formula_id: str, **kw) -> CheckResult:
    values = np.asarray(values, dtype=np.float64)
    return CheckResult(
        name=name,
        estimate=values,
        stderr=np.zeros(values.shape),
        n_samples=np.zeros(values.shape, dtype=np.int64),
        units=units,
        long_name=long_name,
        formula_id=formula_id,
        evidence=Evidence.EXACT,
        interval_method=IntervalMethod.EXACT,
        **kw,
    )


def _aux(values, units: str, long_name: str) -> xr.Variable:
    return xr.Variable(
        ("time",), np.asarray(values, np.float64), {"units": units, "long_name": long_name}
    )


@dataclass(frozen=True)
class InvariantsResult:
    """The ``invariants`` family of an artefact and what judged it.

    Attributes
    ----------
    family : xarray.Dataset
    judged : dict of str to str
        Invariant → the check that carries its verdict.
    default_bounds : Bounds
        The documented defaults for the judged checks (``DEFAULT_TOLERANCES``, the
        round-off rule for ``energy_excess``).
    notes : dict
        JSON-serialisable: energy model, unavailable invariants, scales.
    """

    family: xr.Dataset
    judged: dict[str, str]
    default_bounds: Bounds
    notes: dict[str, Any] = field(default_factory=dict)


def _max_increase(entropy: np.ndarray) -> np.ndarray:
    """max_{i<j≤k} (H_j − H_i)^+ for every k (0 at k = 0)."""
    running_min = np.minimum.accumulate(entropy)
    rise = np.maximum(entropy - running_min, 0.0)
    return np.maximum.accumulate(rise)


def invariants_family(
    artefact: TrajectoryArtefact, invariants: Sequence[str] | None = None
) -> InvariantsResult:
    """Invariant drifts of the stored particles from the first frame (module docstring).

    Parameters
    ----------
    artefact : TrajectoryArtefact
        At least two frames.
    invariants : sequence of str, optional
        Subset of ``INVARIANTS``; ``None``: every one the artefact allows (entropy needs
        ``log_density``).

    Raises
    ------
    AuditInputError
        One frame only, or ``entropy`` asked for without a stored ``log_density``.
    """
    if artefact.n_times < 2:
        raise AuditInputError(
            "the artefact has one frame (a sample artefact): invariants need two or more times"
        )
    unavailable: dict[str, str] = {}
    if invariants is None:
        chosen = [
            name for name in INVARIANTS if name != "entropy" or artefact.log_density is not None
        ]
        if artefact.log_density is None:
            unavailable["entropy"] = "unavailable (no log_density in the artefact)"
    else:
        chosen = list(invariants)
        if "entropy" in chosen and artefact.log_density is None:
            raise AuditInputError("entropy was asked for but the artefact stores no log_density")
    time = artefact.time
    w = artefact.particle_weights()
    x = artefact.positions
    mass = float(np.sum(w))
    m2 = np.einsum("i,tid->t", w, x**2)
    if not m2[0] > 0:
        raise AuditInputError("the second moment of the first frame is 0: nothing to scale by")
    checks: list[CheckResult] = []
    auxiliary: dict[str, xr.Variable] = {}
    judged: dict[str, str] = {}
    defaults: dict[str, CheckBound] = {}
    notes: dict[str, Any] = {"first_frame_time": float(time[0]), "total_weight": mass}

    def bound(check: str, threshold: float, invariant: str) -> None:
        judged[invariant] = check
        defaults[check] = CheckBound(default=Bound(float(threshold), Comparison.AT_MOST))

    if "mass" in chosen:
        checks.append(
            _exact(
                "mass_drift",
                np.zeros(time.shape),
                "1",
                "relative drift of the total weight",
                "mass-fixed-weights",
                normaliser="total_weight",
                reason=["the artefact's weights are fixed in time: mass is conserved exactly"]
                * time.size,
            )
        )
        bound("mass_drift", DEFAULT_TOLERANCES["mass"], "mass")
    if "momentum" in chosen:
        momentum = np.einsum("i,tid->td", w, x)
        scale = math.sqrt(mass * m2[0])
        drift = np.linalg.norm(momentum - momentum[0], axis=1) / scale
        checks.append(
            _exact(
                "momentum_drift_relative",
                drift,
                "1",
                "momentum drift |P(t) - P(t0)| over total weight times rms speed",
                "momentum-drift-particles-relative",
                normaliser="sqrt(total_weight * second_moment_t0)",
            )
        )
        bound("momentum_drift_relative", DEFAULT_TOLERANCES["momentum"], "momentum")
        notes["momentum_scale"] = scale
    if "energy" in chosen:
        model = energy_model(artefact)
        signed = (m2 - m2[0]) / m2[0]
        checks.append(
            _exact(
                "energy_drift",
                np.abs(signed),
                "1",
                "relative drift of the second moment |M2(t) - M2(t0)| / M2(t0)",
                "energy-drift-particles-relative",
                normaliser="second_moment_t0",
            )
        )
        auxiliary["energy_drift_signed"] = _aux(
            signed, "1", "signed relative drift of the second moment (negative: energy lost)"
        )
        notes["energy_model"] = {
            "applies": model.applies,
            "source": model.source,
            "n_steps": model.n_steps,
            "note": model.note,
        }
        if model.applies:
            predicted = model.predicted / m2[0]
            auxiliary["energy_drift_predicted"] = _aux(
                predicted,
                "1",
                "second-moment drift forward Euler adds: sum of dt^2 sum_i w_i |U_i|^2 / M2(t0)",
            )
            checks.append(
                _exact(
                    "energy_excess",
                    np.abs(signed - predicted),
                    "1",
                    "second-moment drift beyond what forward Euler adds, relative to M2(t0)",
                    "energy-excess-forward-euler",
                    normaliser="second_moment_t0",
                )
            )
            bound("energy_excess", roundoff_tolerance(model.n_steps), "energy")
            notes["energy_excess_default_rule"] = (
                f"{ROUNDOFF_KAPPA} * eps64 * (S + 1), S = {model.n_steps} steps"
            )
        else:
            bound("energy_drift", DEFAULT_TOLERANCES["energy"], "energy")
    if "entropy" in chosen:
        entropy = artefact.log_density @ w
        checks.append(
            _exact(
                "entropy_increase",
                _max_increase(entropy),
                "1",
                "largest increase of the particle entropy H = sum_i w_i log f_i up to t",
                "entropy-max-increase",
            )
        )
        auxiliary["entropy"] = _aux(entropy, "1", "particle entropy H = sum_i w_i log f_i")
        bound("entropy_increase", DEFAULT_TOLERANCES["entropy"], "entropy")
    notes["unavailable"] = unavailable
    family = family_dataset(
        "invariants",
        "mass, momentum, energy drift and entropy increase of the stored particle system from "
        "its first frame (exact numbers of the data; the energy against what the declared "
        "stepper adds, where known)",
        checks,
        times=time,
        auxiliary=auxiliary,
    )
    return InvariantsResult(family, judged, Bounds(checks=defaults), notes)


# --------------------------------------------------------------------------- audit


@dataclass(frozen=True)
class AuditConfig:
    """Options of ``verify audit`` (stored in ``config_json``).

    Attributes
    ----------
    invariants : tuple of str or None
        Subset of ``INVARIANTS``; ``None``: every one the artefact allows.
    tolerances : mapping of str to float
        Invariant → tolerance given by the user (the rest use their defaults).
    confidence : float or None
        Overall confidence of the verdict family (irrelevant for EXACT checks; stored).
    """

    invariants: tuple[str, ...] | None = None
    tolerances: Mapping[str, float] = field(default_factory=dict)
    confidence: float | None = None


def audit(
    artefact: TrajectoryArtefact, config: AuditConfig, *, spec: str, sha256: str
) -> Certificate:
    """Audit the invariants of ``artefact`` and assemble the certificate.

    Parameters
    ----------
    artefact : TrajectoryArtefact
        At least two frames.
    config : AuditConfig
    spec : str
        How the artefact was named (its path; ``model_spec``).
    sha256 : str
        SHA-256 of the artefact file (``model_sha256``).

    Raises
    ------
    AuditInputError
        The artefact cannot be audited as asked.
    """
    result = invariants_family(artefact, config.invariants)
    user: dict[str, CheckBound] = {}
    applied: dict[str, dict[str, Any]] = {}
    for invariant, check in result.judged.items():
        default = result.default_bounds.checks[check].default
        assert default is not None
        if invariant in config.tolerances:
            threshold, source = float(config.tolerances[invariant]), "user (--tolerance)"
            user[check] = CheckBound(default=Bound(threshold, Comparison.AT_MOST))
        else:
            threshold, source = default.threshold, "default"
        applied[invariant] = {"check": check, "tolerance": threshold, "source": source}
    bounds = Bounds(confidence=config.confidence, checks=user).over(result.default_bounds)
    problem_id = artefact.problem_id or "none"
    provenance = Provenance(
        tool_version=tool_version(),
        jax_version="none",
        backend="none",
        x64=True,
        seed=0,
        problem_id=problem_id,
        problem={
            "id": problem_id,
            "reference": "none: audit judges the artefact against its own first frame",
        },
        model_spec=spec,
        model_sha256=sha256,
        config={
            "command": "audit",
            "randomness": "none (the checks are deterministic; seed recorded as 0)",
            "artefact": artefact_summary(artefact),
            "invariants": list(result.judged),
            "tolerances": applied,
            "default_tolerances": dict(DEFAULT_TOLERANCES),
            **result.notes,
        },
    )
    return assemble_certificate(provenance, {"invariants": result.family}, bounds)


def artefact_summary(artefact: TrajectoryArtefact) -> dict[str, Any]:
    """The artefact's attributes and sizes, JSON-serialisable (for ``config_json``)."""
    return {
        "problem_id": artefact.problem_id,
        "stepper": artefact.stepper,
        "step_size": artefact.step_size,
        "producer": artefact.producer,
        "n_times": artefact.n_times,
        "n_particles": artefact.n_particles,
        "dim": artefact.dim,
        "weights": "stored" if artefact.weights is not None else "uniform 1/N",
        "variables": [
            name
            for name in (
                "score",
                "score_divergence",
                "log_density",
                "velocity",
                "second_moment_increment",
            )
            if getattr(artefact, name) is not None
        ],
    }
