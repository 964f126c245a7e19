r"""``verify certify`` for PDE surrogates: field (PINN), operator and step models.

Called by :func:`verify._certify.certify` when the problem is a
:class:`solvers.AbstractFieldProblem` (∂ₜq = N(q) on the periodic box [0, L)^d). The model's
roles (:mod:`verify._model`) are ``field(t, x)``, ``operator(u0, t)`` and ``step(u)``; each
present role gets the checks below, named ``<role>_…`` so that a model with several roles
gets them all. Formulas, units, evidence and default bounds: ``certificates/SCHEMA.md``
§ 3.3 "Field (PDE) checks"; the grid metrics are in :mod:`verify._field_metrics`, the JAX
kernels (derivative stencils) in :mod:`verify._field_kernels`; the families in
:mod:`verify._field_residual` and :mod:`verify._field_error`.

Model states. At each certification time t_i the role's state on the reference grid
(n = ``problem.grid_size``): ``field`` → ``problem.state_from_field`` at the grid points;
``operator`` → operator(u0, t_i), u0 = q(t_min) on the grid; ``step`` → the rollout from u0,
k_i = (t_i − t_min)/Δt steps (certification times must be multiples of ``step_size``).

Families:

* ``pde_residual`` — ``field_residual`` (RMS of the autodiff residual over random
  collocation points of the slab, relative; CLT), ``field_residual_max`` (max over a dense
  space-time grid of the slab, with the witness (t, x)); ``operator_residual``,
  ``step_residual`` (finite differences in t, spectral N on the grid; next to each its
  *floor*, the same formula on the reference). The *slab* of t_i is [t_{i−1}, t_i]
  (t_{−1} = t_min). Normaliser: the RMS over the grid (and the slab's times) of N(q*) for
  the reference q*, plus eps.
* ``initial_boundary`` — ``<role>_initial_error`` (aggregate) for field and operator;
  ``field_periodicity_error`` and ``field_periodicity_grad_error`` (max jump of q and ∇q
  across the box over the slab, relative to the reference's RMS q and RMS ∇q).
* ``reference_error`` — ``<role>_error`` (relative L2), ``<role>_error_max`` (relative
  L∞), ``<role>_error_low/mid/high`` (Fourier bands), and the reference's own error
  estimate ``reference_self_error`` (auxiliary).
* ``rollout`` — ``operator_error_growth``, ``step_error_growth`` (aggregate): fitted
  exponential growth rate of the relative L2 error.
* ``invariants`` — ``<role>_<invariant>_drift`` from the exact law for each invariant with
  one (``problem.invariant_laws``), else ``<role>_<invariant>_change`` from the initial
  state's value (informational: the invariant need not be conserved).

Randomness: only the collocation points are random, drawn from
``fold_in(root, crc32("pde_residual"))`` (as :func:`verify._certify._family_key`) and
``fold_in`` of the slab index; the same seed gives the same certificate.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax

from certificates import Bounds, Certificate, assemble_certificate, check_names
from solvers import AbstractFieldProblem

from ._field_error import invariant_family, reference_family, rollout_family
from ._field_residual import initial_boundary_family, residual_family
from ._field_run import FieldCertifyError, FieldConfig, FieldRun, field_shapes
from ._model import FIELD_ROLES, LoadedModel, ModelError, probe_field_roles
from ._score_gap import require_float64

__all__ = ["FieldConfig", "certify_field", "field_shapes"]

# --------------------------------------------------------------------------- certify


def certify_field(
    problem: AbstractFieldProblem,
    model: LoadedModel,
    config: Any,
    *,
    user_bounds: Bounds | None = None,
    bounds_source: str = "",
    progress: Callable[[str, int, int], None] | None = None,
    options: FieldConfig | None = None,
) -> Certificate:
    """Certify a field / operator / step model on a field problem (module docstring).

    Parameters
    ----------
    problem : AbstractFieldProblem
        The PDE problem.
    model : LoadedModel
        The loaded model; its field roles are probed here with the problem's shapes.
    config : verify._certify.CertifyConfig
        times, n_samples (collocation points per slab), seed, allow_float32, block_size.
    user_bounds, bounds_source, progress
        As for :func:`verify._certify.certify`.
    options : FieldConfig, optional
        Options of the field checks (default :class:`FieldConfig`).

    Raises
    ------
    ModelError
        No field role, a wrong shape, NaN at the probe.
    verify._certify.CertifyError
        Times that do not fit the model (a step model off its time grid).
    """
    from ._certify import (
        CertifyError,
        _family_key,
        default_bounds,
        resolve_times,
        run_provenance,
        run_stages,
    )

    options = options or FieldConfig()
    require_float64(config.allow_float32)
    times = resolve_times(problem, config.times)
    roles = [r for r in FIELD_ROLES if r in model.roles]
    if not roles:
        raise ModelError(
            f"nothing to certify: field problem {problem.problem_id!r} needs a field, operator "
            f"or step role; the model has {sorted(model.roles)}"
        )
    model = probe_field_roles(
        model,
        field_shapes(problem),
        probe_time=float(times[0]),
        allow_float32=config.allow_float32,
    )
    root = jax.random.key(int(config.seed))
    run = FieldRun(
        problem=problem,
        model=model,
        times=times,
        key=_family_key(root, "pde_residual"),
        n_samples=int(config.n_samples),
        block=config.resolved_block_size,
        options=options,
    )
    stages = [
        ("reference errors", reference_family),
        ("PDE residuals", residual_family),
        ("initial and boundary conditions", initial_boundary_family),
        ("rollout error growth", rollout_family),
        ("invariants", invariant_family),
    ]
    try:
        # one batch of reference times: a numerical reference solves once
        run.reference(run.needed_times())
        families = run_stages(
            [(description, partial(stage, run)) for description, stage in stages], progress
        )
    except FieldCertifyError as exc:
        raise CertifyError(str(exc)) from None
    order = ["pde_residual", "initial_boundary", "reference_error", "rollout", "invariants"]
    families = {name: families[name] for name in order if name in families}
    computed = [name for data in families.values() for name in check_names(data)]
    bounds = (user_bounds or Bounds()).over(default_bounds(problem, computed))
    provenance = run_provenance(
        problem,
        config,
        spec=model.spec,
        sha256=model.model_sha256,
        settings={
            "times": [float(t) for t in times],
            "n_samples": int(config.n_samples),
            "seed": int(config.seed),
            "dtype": "float32" if config.allow_float32 else "float64",
            "block_size": int(run.block),
            "roles": sorted(model.roles),
            "step_size": model.step_size,
            "field": options.parameters(problem),
        },
        bounds_source=bounds_source,
        notes=run.notes,
    )
    return assemble_certificate(provenance, families, bounds)
