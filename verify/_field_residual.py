"""The ``pde_residual`` and ``initial_boundary`` families of a field certify run.

Formulas in :mod:`verify._field_certify` and ``certificates/SCHEMA.md`` § 3.3; the JAX
kernels (autodiff residual, finite-difference stencils, boundary jumps) in
:mod:`verify._field_kernels`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from certificates import CheckResult, Evidence, family_dataset

from . import _field_kernels as fk
from ._estimate import estimates_to_check, summarise
from ._field_metrics import grid_errors, nonfinite_reason, rms, spectral_gradient
from ._field_run import (
    FORMULA,
    NORMALISER_RHS,
    FieldRun,
    aux_variable,
    exact_estimate,
    relative,
    rms_relative,
    role_states,
    step_indices,
)
from ._score_gap import roundoff_resolution

# --------------------------------------------------------------------------- pde_residual


def _field_residuals(run: FieldRun) -> tuple[list[CheckResult], dict[str, xr.Variable]]:
    """field_residual (collocation, CLT) and field_residual_max (dense grid, witness)."""
    problem, fn, eps = run.problem, run.model.role("field"), run.eps
    dense = fk.cell_centred_points(problem, run.options.resolved_dense_points(problem))
    key = run.key
    mc, peaks, scales, where = [], [], [], []
    for i, slab in enumerate(run.slabs()):
        scale = rms(run.rhs(slab, run.reference(slab)))
        scales.append(scale)
        t_key, x_key = jax.random.split(jax.random.fold_in(key, i))
        a, b = float(slab[0]), float(slab[-1])
        t = a + (b - a) * jax.random.uniform(t_key, (run.n_samples,))
        x = problem.length * jax.random.uniform(x_key, (run.n_samples, problem.dim))
        squares = np.asarray(fk.field_residual_squares(fn, problem, t, x, run.block))
        ms = summarise(
            squares,
            formula_id=FORMULA["field_residual"],
            normaliser=NORMALISER_RHS,
            eps=eps,
            resolution=roundoff_resolution(np.asarray([scale * scale])),
        )
        mc.append(rms_relative(ms, scale, eps, FORMULA["field_residual"]))
        values = fk.field_residual_dense(fn, problem, slab, dense, run.block)
        reason = nonfinite_reason("the residual on the dense grid", values)
        flat = int(np.argmax(np.where(np.isfinite(values), values, np.inf)))
        m_t, m_x = np.unravel_index(flat, values.shape)
        peak, why = relative(float(values.flat[flat]), scale, eps)
        peaks.append(
            exact_estimate(
                math.nan if reason else peak,
                FORMULA["field_residual_max"],
                normaliser=NORMALISER_RHS,
                eps=eps,
                reason=reason or why,
                evidence=Evidence.EMPIRICAL,
            )
        )
        where.append([float(slab[m_t]), *np.asarray(dense[m_x], dtype=np.float64).tolist()])
    witness = np.asarray(where)
    aux = {
        "field_residual_scale": aux_variable(
            scales, "q/time", "normaliser: RMS of N(q*) over the grid and the slab's times"
        ),
        "field_residual_max_t": aux_variable(
            witness[:, 0], "time", "time of the largest residual on the dense grid (witness)"
        ),
    }
    for a in range(problem.dim):
        aux[f"field_residual_max_x{a}"] = aux_variable(
            witness[:, 1 + a], "x", f"coordinate x{a} of the largest residual (witness)"
        )
    checks = [
        estimates_to_check(
            "field_residual",
            mc,
            units="1",
            long_name="relative RMS PDE residual of the field model at random collocation points",
        ),
        estimates_to_check(
            "field_residual_max",
            peaks,
            units="1",
            long_name="relative max PDE residual of the field model on a dense space-time grid",
        ),
    ]
    return checks, aux


def _operator_residual(run: FieldRun) -> tuple[list[CheckResult], dict[str, xr.Variable]]:
    problem, eps = run.problem, run.eps
    delta = run.options.resolved_fd_delta(problem)
    nodes, weights, stencils = fk.fd_stencils(run.times, delta, problem.t_min, problem.t_max)
    flat = nodes.ravel()
    fn = run.model.role("operator")
    model = np.asarray(fk.operator_states(fn, jnp.asarray(run.u0), jnp.asarray(flat)))
    model = model.reshape(nodes.shape + model.shape[1:])
    reference = run.reference(flat).reshape(model.shape)
    q, q_ref = role_states(run, "operator"), run.reference(run.times)
    residual = fk.stencil_derivative(model, weights) - run.rhs(run.times, q)
    floor = fk.stencil_derivative(reference, weights) - run.rhs(run.times, q_ref)
    values, floors, scales = [], [], []
    for i in range(run.times.size):
        scale = rms(run.rhs(run.times[i : i + 1], q_ref[i : i + 1]))
        value, why = relative(rms(residual[i]), scale, eps)
        values.append(
            exact_estimate(
                value,
                FORMULA["operator_residual"],
                normaliser=NORMALISER_RHS,
                eps=eps,
                reason=why,
                evidence=Evidence.EMPIRICAL,
            )
        )
        floors.append(relative(rms(floor[i]), scale, eps)[0])
        scales.append(scale)
    run.notes["operator_stencils"] = stencils
    aux = {
        "operator_residual_floor": aux_variable(
            floors, "1", "the same residual of the reference (finite-difference floor)"
        ),
        "operator_residual_scale": aux_variable(
            scales, "q/time", "normaliser: RMS of N(q*) on the grid"
        ),
    }
    check = estimates_to_check(
        "operator_residual",
        values,
        units="1",
        long_name="relative RMS residual of the operator (finite difference in t, spectral N)",
    )
    return [check], aux


def _step_residual(run: FieldRun) -> tuple[list[CheckResult], dict[str, xr.Variable]]:
    problem, eps, dt = run.problem, run.eps, run.step_size
    indices = step_indices(run.times, problem.t_min, dt)
    values, floors, scales = [], [], []
    for k in indices:
        a, b = (int(k) - 1, int(k)) if k >= 1 else (0, 1)
        t_ab = [problem.t_min + a * dt, problem.t_min + b * dt]
        q = np.stack([run.step_state(a), run.step_state(b)])
        q_ref = run.reference(t_ab)
        n_q, n_ref = run.rhs(t_ab, q), run.rhs(t_ab, q_ref)
        residual = (q[1] - q[0]) / dt - 0.5 * (n_q[0] + n_q[1])
        floor = (q_ref[1] - q_ref[0]) / dt - 0.5 * (n_ref[0] + n_ref[1])
        scale = rms(0.5 * (n_ref[0] + n_ref[1]))
        value, why = relative(rms(residual), scale, eps)
        values.append(
            exact_estimate(
                value,
                FORMULA["step_residual"],
                normaliser=NORMALISER_RHS,
                eps=eps,
                reason=why,
                evidence=Evidence.EMPIRICAL,
            )
        )
        floors.append(relative(rms(floor), scale, eps)[0])
        scales.append(scale)
    aux = {
        "step_residual_floor": aux_variable(
            floors, "1", "the same residual of the reference (trapezoidal consistency floor)"
        ),
        "step_residual_scale": aux_variable(
            scales, "q/time", "normaliser: RMS of (N(q*_a) + N(q*_b))/2 on the grid"
        ),
    }
    check = estimates_to_check(
        "step_residual",
        values,
        units="1",
        long_name="relative RMS one-step residual of the emulator (trapezoidal rule)",
    )
    return [check], aux


def residual_family(run: FieldRun) -> xr.Dataset:
    checks: list[CheckResult] = []
    aux: dict[str, xr.Variable] = {}
    for role, compute in (
        ("field", _field_residuals),
        ("operator", _operator_residual),
        ("step", _step_residual),
    ):
        if role in run.model.roles:
            more, extra = compute(run)
            checks += more
            aux.update(extra)
    return family_dataset(
        "pde_residual",
        "PDE residual dq/dt - N(q) of the model relative to the RMS of N at the reference: "
        "by autodiff at random collocation points and on a dense grid (field), by finite "
        "differences in t with spectral N on the grid (operator, step)",
        checks,
        times=run.times,
        auxiliary=aux,
    )


# --------------------------------------------------------------------------- initial_boundary


def initial_boundary_family(run: FieldRun) -> xr.Dataset | None:
    problem, eps = run.problem, run.eps
    checks: list[CheckResult] = []
    aux: dict[str, xr.Variable] = {}
    t_min = jnp.asarray([problem.t_min])
    initial = {}
    if "field" in run.model.roles:
        initial["field"] = fk.field_states(
            run.model.role("field"), problem, t_min, run.n, run.block
        )[0]
    if "operator" in run.model.roles:
        initial["operator"] = fk.operator_states(
            run.model.role("operator"), jnp.asarray(run.u0), t_min
        )[0]
    for role, state in initial.items():
        result = grid_errors(np.asarray(state), run.u0, eps=eps)
        estimate = exact_estimate(
            result.relative_l2,
            FORMULA["initial_error"],
            normaliser="l2_initial_state",
            eps=eps,
            reason=result.reason,
        )
        checks.append(
            estimate.to_check(
                f"{role}_initial_error", "1", f"relative L2 error of the {role} model at t_min"
            )
        )
    if "field" in run.model.roles:
        more, extra = _periodicity(run)
        checks += more
        aux.update(extra)
    if not checks:
        return None
    return family_dataset(
        "initial_boundary",
        "initial condition on the grid (relative L2 at t_min) and periodicity of a field "
        "model across the box (jumps of q and grad q over each slab)",
        checks,
        times=run.times if aux else None,
        auxiliary=aux,
    )


def _periodicity(run: FieldRun) -> tuple[list[CheckResult], dict[str, xr.Variable]]:
    problem, eps = run.problem, run.eps
    m = run.options.resolved_dense_points(problem)
    # The other coordinates range over the dense grid; in 1-D there is one pair of ends.
    points = fk.cell_centred_points(problem, m if problem.dim > 1 else 1)
    jumps, grad_jumps, q_scales, g_scales = [], [], [], []
    for slab in run.slabs():
        jump, grad_jump = fk.periodicity_jumps(
            run.model.role("field"), problem, slab, points, run.block
        )
        reference = run.reference(slab)
        q_scale = rms(reference)
        g_scale = rms(np.stack([spectral_gradient(r, problem.length) for r in reference]))
        for values, scales, raw, scale, formula in (
            (jumps, q_scales, jump, q_scale, FORMULA["periodicity"]),
            (grad_jumps, g_scales, grad_jump, g_scale, FORMULA["periodicity_grad"]),
        ):
            value, why = relative(raw, scale, eps)
            normaliser = "rms_reference" if scales is q_scales else "rms_reference_gradient"
            values.append(
                exact_estimate(
                    value,
                    formula,
                    normaliser=normaliser,
                    eps=eps,
                    reason=why,
                    evidence=Evidence.EMPIRICAL,
                )
            )
            scales.append(scale)
    checks = [
        estimates_to_check(
            "field_periodicity_error",
            jumps,
            units="1",
            long_name="max jump of the field model's state across the box",
        ),
        estimates_to_check(
            "field_periodicity_grad_error",
            grad_jumps,
            units="1",
            long_name="max jump of the gradient of the state across the box",
        ),
    ]
    aux = {
        "periodicity_scale": aux_variable(q_scales, "q", "normaliser: RMS of q* over the slab"),
        "periodicity_grad_scale": aux_variable(
            g_scales, "q/x", "normaliser: RMS of grad q* over the slab"
        ),
    }
    return checks, aux
