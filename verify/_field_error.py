"""The ``reference_error``, ``rollout`` and ``invariants`` families of a field certify run.

Grid metrics in :mod:`verify._field_metrics`; formulas in ``certificates/SCHEMA.md`` § 3.3.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from certificates import CheckResult, Evidence, family_dataset
from solvers import AbstractFieldProblem

from ._estimate import estimates_to_check
from ._field_metrics import BAND_NAMES, grid_errors, growth_rate
from ._field_run import (
    FORMULA,
    GROWTH_MAX_POINTS,
    FieldRun,
    aux_variable,
    exact_estimate,
    identifier,
    relative,
    role_states,
)
from ._model import FIELD_ROLES

# --------------------------------------------------------------------------- reference_error


def reference_family(run: FieldRun) -> xr.Dataset:
    q_ref = run.reference(run.times)
    edges, eps = run.options.band_edges, run.eps
    checks: list[CheckResult] = []
    for role in (r for r in FIELD_ROLES if r in run.model.roles):
        states = role_states(run, role)
        errors = [
            grid_errors(q, r, edges=edges, eps=eps) for q, r in zip(states, q_ref, strict=True)
        ]
        columns = [
            (
                "error",
                "l2_reference",
                lambda e: e.relative_l2,
                FORMULA["error"],
                "relative L2 error against the reference on the grid",
            ),
            (
                "error_max",
                "max_abs_reference",
                lambda e: e.relative_linf,
                FORMULA["error_max"],
                "relative max error against the reference on the grid",
            ),
        ]
        for b, band in enumerate(BAND_NAMES):
            columns.append(
                (
                    f"error_{band}",
                    "l2_reference",
                    (lambda e, b=b: e.bands[b]),
                    FORMULA["band"],
                    f"relative L2 error in the {band} Fourier band",
                )
            )
        for suffix, normaliser, pick, formula, long_name in columns:
            estimates = [
                exact_estimate(pick(e), formula, normaliser=normaliser, eps=eps, reason=e.reason)
                for e in errors
            ]
            checks.append(
                estimates_to_check(
                    f"{role}_{suffix}", estimates, units="1", long_name=f"{role} model: {long_name}"
                )
            )
    self_error = np.asarray(run.problem.reference_error(list(run.times), run.n), dtype=np.float64)
    return family_dataset(
        "reference_error",
        "errors of the model's state against the reference on its grid: relative L2, "
        "relative max, and the L2 error in low / mid / high Fourier bands, next to the "
        "reference's own error estimate",
        checks,
        times=run.times,
        auxiliary={
            "reference_self_error": aux_variable(
                self_error,
                "1",
                "relative L2 error estimate of the reference itself (0 where exact)",
            )
        },
    )


# --------------------------------------------------------------------------- rollout


def rollout_family(run: FieldRun) -> xr.Dataset | None:
    checks = []
    for role in ("operator", "step"):
        if role not in run.model.roles:
            continue
        if role == "operator":
            q_ref = run.reference(run.times)
            errors = [
                grid_errors(q, r, eps=run.eps).relative_l2
                for q, r in zip(role_states(run, role), q_ref, strict=True)
            ]
            keep = run.times > run.problem.t_min
            times, series = run.times[keep], np.asarray(errors)[keep]
        else:
            steps = run.growth_steps()
            times = run.problem.t_min + np.asarray(steps, dtype=np.float64) * run.step_size
            q_ref = run.reference(times)
            series = np.asarray(
                [
                    grid_errors(run.step_state(k), r, eps=run.eps).relative_l2
                    for k, r in zip(steps, q_ref, strict=True)
                ]
            )
        rate, points, reason = growth_rate(times, series)
        run.notes.setdefault("growth_points", {})[role] = points
        estimate = exact_estimate(
            rate, FORMULA["growth"], reason=reason, evidence=Evidence.EMPIRICAL
        )
        checks.append(
            estimate.to_check(
                f"{role}_error_growth",
                "time^-1",
                f"fitted exponential growth rate of the {role} model's relative L2 error",
            )
        )
    if not checks:
        return None
    return family_dataset(
        "rollout",
        "growth of the relative L2 error along the rollout: least-squares slope of log error "
        "against t (operator: the certification times after t_min; step: up to "
        f"{GROWTH_MAX_POINTS} evenly spaced step times)",
        checks,
    )


# --------------------------------------------------------------------------- invariants


@eqx.filter_jit
def _invariants_jit(problem: AbstractFieldProblem, state: jax.Array) -> dict[str, jax.Array]:
    return problem.invariants(state)


def _invariants(problem: AbstractFieldProblem, state: np.ndarray) -> dict[str, float]:
    return {k: float(v) for k, v in _invariants_jit(problem, jnp.asarray(state)).items()}


def invariant_family(run: FieldRun) -> xr.Dataset | None:
    """``<role>_<I>_drift`` from the exact law; ``<role>_<I>_change`` where none is known.

    Without a law an invariant need not be conserved (the energy of viscous Burgers decays),
    so its relative change from the initial state's value is informational, next to the
    reference's own change (auxiliary ``<I>_reference_change``) for comparison.
    """
    problem, eps = run.problem, run.eps
    q_ref = run.reference(run.times)
    initial = _invariants(problem, run.u0)
    if not initial:
        return None
    laws = [
        {k: float(v) for k, v in problem.invariant_laws(jnp.asarray(t)).items()} for t in run.times
    ]
    reference = [_invariants(problem, r) for r in q_ref]
    # The scale of an invariant: |I(q*)| and I(|q*|), which does not vanish for a
    # sign-changing state whose invariant is 0 (the mass of a zero-mean field).
    scales = {
        name: [
            max(abs(ref[name]), abs(_invariants(problem, np.abs(r))[name]))
            for ref, r in zip(reference, q_ref, strict=True)
        ]
        for name in initial
    }
    checks: list[CheckResult] = []
    aux: dict[str, xr.Variable] = {}
    for name in initial:
        label = identifier(name)
        known = all(name in law for law in laws)
        target = [law[name] for law in laws] if known else [initial[name]] * run.times.size
        aux[f"{label}_target"] = aux_variable(
            target,
            "invariant",
            f"{name}: exact law at t" if known else f"{name}: value of the initial state",
        )
        if not known:
            aux[f"{label}_reference_change"] = aux_variable(
                [
                    relative(abs(ref[name] - initial[name]), scale, eps)[0]
                    for ref, scale in zip(reference, scales[name], strict=True)
                ],
                "1",
                f"relative change of the {name} of the reference from the initial state",
            )
        for role in (r for r in FIELD_ROLES if r in run.model.roles):
            estimates = []
            for i, state in enumerate(role_states(run, role)):
                value = _invariants(problem, state)[name]
                drift, why = relative(abs(value - target[i]), scales[name][i], eps)
                formula = FORMULA["drift_law" if known else "change_initial"]
                estimates.append(
                    exact_estimate(
                        drift, formula, normaliser="invariant_scale", eps=eps, reason=why
                    )
                )
            what = "drift from its exact law" if known else "change from its initial value"
            checks.append(
                estimates_to_check(
                    f"{role}_{label}_{'drift' if known else 'change'}",
                    estimates,
                    units="1",
                    long_name=f"relative {what} of the {name} of the {role} model",
                )
            )
    return family_dataset(
        "invariants",
        "the problem's discrete invariants of the model's state: drift from their exact law, "
        "or, where none is known, change from the initial state's value (informational), "
        "relative to max(|I(q*)|, I(|q*|)) at the reference",
        checks,
        times=run.times,
        auxiliary=aux,
    )
