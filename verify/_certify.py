r"""``verify certify``: run every check that applies to a (problem, model) pair.

Which families are computed follows from what the problem knows (its capability classes,
:mod:`solvers._problem`) and which roles the model has (:mod:`verify._model`):

* ``score_gap`` — score_gap, score_gap_relative, hyvarinen_gap, hyvarinen_gap_relative;
  needs a score (the ``score`` role, or ∇ of ``log_density``, or 2(f − v)/g² of
  ``velocity``) and exact marginals;
* ``fokker_planck`` — fp_residual(_relative) for a ``score`` role and
  fp_log_residual(_relative) for a ``log_density`` role (FP dynamics and exact marginals);
  flow_residual(_relative) for ``flow`` + ``score`` on a Landau problem;
* ``invariants`` — mass_drift, momentum_drift, energy_drift, entropy_rate: a ``flow`` role
  on a Landau problem;
* ``density`` — density_error, kde_floor, density_error_excess: a ``flow`` role and exact
  marginals (d ≤ 3);
* ``samples`` — ode/sde/ode_sde MMD² (block), energy distance, sliced W2²: a score or
  velocity on a linear-SDE problem (generation backward from exact p_{t_max});
* ``reference_error`` — velocity_error, log_density_error (d ≤ 3), flow_error: the
  ``velocity`` / ``log_density`` / ``flow`` role and the exact solution.

A field problem (:class:`solvers.AbstractFieldProblem`: PINNs, neural operators, emulators
with the ``field`` / ``operator`` / ``step`` roles) is certified by
:func:`verify._field_certify.certify_field` instead (families pde_residual,
initial_boundary, reference_error, rollout, invariants; default bounds ``field-pde``).

The checks, formulas and default bounds are listed in ``certificates/SCHEMA.md`` § 3.3.

Randomness: the root key is ``jax.random.key(seed)``; each family draws its key with
``jax.random.fold_in(root, crc32(family))``, so adding or skipping a family never changes
another family's samples, and the same seed gives the same certificate (same content
digest: ``created_at`` is not part of it, ``SCHEMA.md`` § 8).

Compilation: every estimator takes the time as a traced argument and the model as an
equinox-filtered argument, so each kernel is compiled once per run, not per time point.

Default bounds per problem family are TOML files in ``verify/bounds/`` (read them with
``verify bounds PROBLEM``); only the bounds of checks that were computed are
stored, and a user's bounds file and ``--bound`` override them (``SCHEMA.md`` § 7).
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from certificates import (
    Bounds,
    Certificate,
    CheckResult,
    Evidence,
    IntervalMethod,
    Provenance,
    assemble_certificate,
    check_names,
    family_dataset,
    parse_bounds,
)
from solvers import (
    AbstractExactMarginals,
    AbstractFieldProblem,
    AbstractFokkerPlanckDynamics,
    AbstractLandauProblem,
    AbstractProblem,
    LandauBKWProblem,
    LandauCoulombProblem,
    LinearSDEGMMProblem,
)

from ._density import DensityGrid, default_bandwidth, default_grid, density_error
from ._density import grid_density_error as _grid_density_error
from ._estimate import Estimate, estimates_to_check
from ._fp_residual import fp_residuals
from ._landau_flow import flow_checks
from ._model import LoadedModel, ModelError
from ._model_views import GradLogDensity, ScoreOfVelocity
from ._sample_gap import SampleGapConfig, sample_gap
from ._score_gap import NORMALISER_FISHER, hyvarinen_gap, score_gap
from ._velocity_error import velocity_error
from ._version import tool_version

Divergence = Literal["exact", "hutchinson"]
ProgressFn = Callable[[str, int, int], None]
"""``progress(description, done, total)``: called before each stage and once at the end."""

MAX_SEED = 2**63
"""Seeds are unsigned 64-bit for jax.random.key; larger values overflow there."""

CPU_BLOCK_SIZE = 1024
ACCELERATOR_BLOCK_SIZE = 8192

DENSITY_MAX_DIM = 3
"""Grid-based checks (KDE, grid density error) run for d ≤ 3 only (grid size ~ cells^d)."""


class CertifyError(ValueError):
    """The run cannot proceed: nothing to certify, bad options (one-line message)."""


@dataclass(frozen=True)
class CertifyConfig:
    """Every option of a certify run that shapes a number (stored as ``config_json``).

    Attributes
    ----------
    times : tuple of float or None
        Certification times; ``None``: the problem's ``default_times``.
    n_samples : int
        Exact samples (or flow particles) per time for the Monte Carlo checks.
    seed : int
        Root seed (``jax.random.key(seed)``).
    divergence : {"exact", "hutchinson"}
        ∇·s by the Jacobian trace or by Hutchinson with ``probes`` Rademacher probes.
    probes : int
        K, probes per sample for Hutchinson.
    allow_float32 : bool
        Certify without x64 (the certificate records ``x64 = 0``).
    block_size : int or None
        Samples per vmapped block (memory O(block_size)); ``None``: 1024 on a CPU, 8192 on an
        accelerator (measured on an H100: the BKW flow checks at 10⁴ particles take 10.2 s
        with 1024-blocks and 2.2 s with 8192-blocks, warm; on the 2-core CPU 1024 is best).
    fisher_eps : float
        ε added to I(t) in the relative gaps.
    sample_gap : SampleGapConfig or None
        Options of the ``sample_gap`` family; ``None``: the defaults with ``n_samples``
        generated and exact samples.
    density_bandwidth : float or None
        KDE bandwidth; ``None``: the rule of :func:`verify._density.default_bandwidth`.
    density_bootstrap : int
        Bootstrap resamples for the KDE errors.
    """

    times: tuple[float, ...] | None = None
    n_samples: int = 10_000
    seed: int = 0
    divergence: Divergence = "exact"
    probes: int = 4
    allow_float32: bool = False
    block_size: int | None = None
    fisher_eps: float = 0.0
    sample_gap: SampleGapConfig | None = None
    density_bandwidth: float | None = None
    density_bootstrap: int = 32

    def __post_init__(self) -> None:
        if self.divergence not in ("exact", "hutchinson"):
            raise CertifyError(f"divergence must be 'exact' or 'hutchinson', got {self.divergence}")
        if int(self.n_samples) != self.n_samples or self.n_samples < 16:
            raise CertifyError(f"--samples must be an integer ≥ 16, got {self.n_samples}")
        if self.probes < 1:
            raise CertifyError(f"--probes must be ≥ 1, got {self.probes}")
        if not 0 <= self.seed < MAX_SEED:
            raise CertifyError(f"--seed must lie in [0, 2**63), got {self.seed}")

    @property
    def resolved_block_size(self) -> int:
        if self.block_size is not None:
            return int(self.block_size)
        return CPU_BLOCK_SIZE if jax.default_backend() == "cpu" else ACCELERATOR_BLOCK_SIZE

    @property
    def resolved_sample_gap(self) -> SampleGapConfig:
        if self.sample_gap is not None:
            return self.sample_gap
        return SampleGapConfig(n_samples=int(self.n_samples))

    @property
    def num_probes(self) -> int | None:
        return None if self.divergence == "exact" else int(self.probes)

    def parameters(self) -> dict[str, Any]:
        """JSON-serialisable form (``config_json``)."""
        return {
            "times": None if self.times is None else [float(t) for t in self.times],
            "n_samples": int(self.n_samples),
            "seed": int(self.seed),
            "divergence": self.divergence,
            "probes": int(self.probes) if self.divergence == "hutchinson" else None,
            "dtype": "float32" if self.allow_float32 else "float64",
            "block_size": self.resolved_block_size,
            "fisher_eps": float(self.fisher_eps),
            "sample_gap": self.resolved_sample_gap.parameters(),
            "density_bandwidth": self.density_bandwidth,
            "density_bootstrap": int(self.density_bootstrap),
        }


# --------------------------------------------------------------------------- model views


@dataclass(frozen=True)
class _Roles:
    """The model's functions as the checks need them, and where the score came from."""

    score: Callable | None
    score_source: str
    log_density: Callable | None
    flow: Callable | None
    velocity: Callable | None


def _model_roles(model: LoadedModel, problem: AbstractProblem) -> _Roles:
    roles = model.roles
    log_density = roles.get("log_density")
    velocity = roles.get("velocity")
    if "score" in roles:
        score, source = roles["score"], "score role"
    elif log_density is not None:
        score, source = GradLogDensity(log_density), "gradient of the log_density role"
    elif velocity is not None and isinstance(problem, AbstractFokkerPlanckDynamics):
        score, source = ScoreOfVelocity(problem, velocity), "2(f - v)/g^2 of the velocity role"
    else:
        score, source = None, "none"
    return _Roles(score, source, log_density, roles.get("flow"), velocity)


# --------------------------------------------------------------------------- helpers


def _family_key(root: jax.Array, family: str) -> jax.Array:
    return jax.random.fold_in(root, zlib.crc32(family.encode("utf-8")))


def _aux(values: Sequence[float], units: str, long_name: str) -> xr.Variable:
    return xr.Variable(
        ("time",),
        np.asarray(values, dtype=np.float64),
        {"units": units, "long_name": long_name},
    )


def _exact_zero(name: str, times: np.ndarray, units: str, long_name: str, reason: str):
    zeros = np.zeros(times.shape)
    return CheckResult(
        name=name,
        estimate=zeros,
        stderr=zeros,
        n_samples=np.zeros(times.shape, dtype=np.int64),
        units=units,
        long_name=long_name,
        formula_id="mass-fixed-weights",
        evidence=Evidence.EXACT,
        interval_method=IntervalMethod.EXACT,
        reason=[reason] * times.size,
    )


def _check(name: str, estimates: Sequence[Estimate], units: str, long_name: str) -> CheckResult:
    return estimates_to_check(name, estimates, units=units, long_name=long_name)


def resolve_times(problem: AbstractProblem, times: Sequence[float] | None) -> np.ndarray:
    """Certification times: given ones (validated against the window) or the defaults."""
    chosen = problem.default_times if times is None else tuple(times)
    array = np.asarray(chosen, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise CertifyError("--times needs at least one time")
    if not np.all(np.isfinite(array)):
        raise CertifyError(f"--times must be finite numbers, got {list(chosen)}")
    if np.any(np.diff(array) <= 0):
        raise CertifyError(f"--times must be strictly increasing, got {list(chosen)}")
    outside = [float(t) for t in array if not problem.t_min <= t <= problem.t_max]
    if outside:
        raise CertifyError(
            f"--times {outside} lie outside the problem's window "
            f"[{problem.t_min:g}, {problem.t_max:g}]"
        )
    return array


# --------------------------------------------------------------------------- families


@dataclass
class _Run:
    """Shared state of one certify run."""

    problem: AbstractProblem
    roles: _Roles
    config: CertifyConfig
    times: np.ndarray
    root_key: jax.Array
    unnormalised: bool
    notes: dict[str, Any] = field(default_factory=dict)

    def key(self, family: str) -> jax.Array:
        return _family_key(self.root_key, family)

    @property
    def common(self) -> dict[str, Any]:
        return {
            "n_samples": int(self.config.n_samples),
            "block_size": self.config.resolved_block_size,
            "allow_float32": self.config.allow_float32,
        }


def _score_family(run: _Run) -> xr.Dataset:
    problem, times, score = run.problem, run.times, run.roles.score
    key = run.key("score_gap")
    direct = score_gap(score, problem, times, key=key, **run.common)
    hyva = hyvarinen_gap(
        score, problem, times, key=key, num_probes=run.config.num_probes, **run.common
    )
    eps = run.config.fisher_eps
    fisher = [float(problem.fisher_information(jnp.asarray(t))) for t in times]

    def relative(estimates: Sequence[Estimate]) -> list[Estimate]:
        # As verify._score_gap.relative_to_fisher, with I(t) computed once for both gaps.
        return [
            e.scaled(i + eps, normaliser=NORMALISER_FISHER, eps=eps)
            for e, i in zip(estimates, fisher, strict=True)
        ]

    checks = [
        _check("score_gap", direct, "x^-2", "score-matching gap E|s - grad log p|^2"),
        _check(
            "score_gap_relative",
            relative(direct),
            "1",
            "score-matching gap relative to the Fisher information",
        ),
        _check("hyvarinen_gap", hyva, "x^-2", "score-matching gap by Hyvarinen's identity"),
        _check(
            "hyvarinen_gap_relative",
            relative(hyva),
            "1",
            "Hyvarinen score gap relative to the Fisher information",
        ),
    ]
    description = (
        "E|s - grad log p_t|^2 over exact samples of p_t, directly and by Hyvarinen's "
        f"identity (divergence: {run.config.divergence}); score from the {run.roles.score_source}"
    )
    return family_dataset(
        "score_gap",
        description,
        checks,
        times=times,
        auxiliary={
            "fisher_information": _aux(fisher, "x^-2", "Fisher information I(t) of p_t"),
            # With Hutchinson the probe noise is part of each per-sample value, so this
            # variance is Var_x + E_x Var_probe / K (verify._score_gap).
            "hyvarinen_integrand_variance": _aux(
                [e.sample_variance for e in hyva],
                "x^-4",
                "sample variance of the Hyvarinen integrand |s|^2 + 2 div s (probe noise included)",
            ),
            "hyvarinen_tail_share": _aux(
                [e.tail_share for e in hyva],
                "1",
                "top-10 share of squared deviations of the Hyvarinen integrand (> 0.25: heavy)",
            ),
        },
    )


def _fokker_planck_family(run: _Run, flow: Any | None) -> xr.Dataset | None:
    problem, times = run.problem, run.times
    checks: list[CheckResult] = []
    auxiliary: dict[str, xr.Variable] = {}
    parts = []
    exact_fp = isinstance(problem, AbstractExactMarginals) and isinstance(
        problem, AbstractFokkerPlanckDynamics
    )
    key = run.key("fokker_planck")
    probes = run.config.num_probes
    if exact_fp and "score" in _explicit_roles(run):
        absolute, relative = fp_residuals(
            run.roles.score, problem, times, form="score", key=key, num_probes=probes, **run.common
        )
        checks += [
            _check("fp_residual", absolute, "(x*time)^-2", "score-form Fokker-Planck residual"),
            _check(
                "fp_residual_relative",
                relative,
                "1",
                "score-form FP residual relative to its cancelling terms",
            ),
        ]
        parts.append("score form E|R|^2")
    if exact_fp and run.roles.log_density is not None:
        absolute, relative = fp_residuals(
            run.roles.log_density,
            problem,
            times,
            form="log_density",
            key=jax.random.fold_in(key, 1),
            num_probes=probes,
            **run.common,
        )
        checks += [
            _check(
                "fp_log_residual",
                absolute,
                "time^-2",
                "log-density-form Fokker-Planck residual (variance over p_t)",
            ),
            _check(
                "fp_log_residual_relative",
                relative,
                "1",
                "log-density-form FP residual relative to its cancelling terms",
            ),
        ]
        parts.append("log-density form Var R")
    if flow is not None and flow.flow_residual is not None:
        checks += [
            _check(
                "flow_residual",
                flow.flow_residual,
                "(x/time)^2",
                "flow-map residual E|d/dt X - U_N[s](X)|^2",
            ),
            _check(
                "flow_residual_relative",
                flow.flow_residual_relative,
                "1",
                "flow-map residual relative to E|d/dt X|^2",
            ),
        ]
        if flow.residual_floor is not None:
            auxiliary["flow_residual_floor"] = _aux(
                flow.residual_floor,
                "(x/time)^2",
                "flow-map residual of the exact solution with as many particles (finite-N floor)",
            )
        parts.append("flow-map residual along the learned characteristics")
    if not checks:
        return None
    return family_dataset(
        "fokker_planck",
        "Fokker-Planck / Landau residuals of the learned objects: " + "; ".join(parts),
        checks,
        times=times,
        auxiliary=auxiliary,
    )


def _explicit_roles(run: _Run) -> set[str]:
    """Roles whose score-form residual is meaningful (a derived score is checked elsewhere)."""
    return {"score"} if run.roles.score_source == "score role" else set()


def absolute_drift(estimates: Sequence[Estimate]) -> list[Estimate]:
    r"""|m̂| with the stderr of m̂: an interval for |μ| at the same level.

    Since :math:`\big||\hat m| - |\mu|\big| \le |\hat m - \mu|`, the event
    :math:`|\hat m - \mu| \le z\,\mathrm{se}` implies :math:`|\mu| \in |\hat m| \pm
    z\,\mathrm{se}`, so the normal interval rebuilt around :math:`|\hat m|` covers
    :math:`|\mu|` at least as often as the signed one covers μ. A drift in either direction
    then fails an upper bound.
    """
    return [
        dataclasses.replace(e, estimate=abs(e.estimate), formula_id=e.formula_id + "-abs")
        for e in estimates
    ]


def _invariants_family(run: _Run, flow: Any) -> xr.Dataset:
    times = run.times
    checks = [
        _exact_zero(
            "mass_drift",
            times,
            "1",
            "relative drift of the total mass",
            "particle weights are fixed: mass is conserved by construction",
        ),
        _check(
            "momentum_drift", flow.momentum_drift, "x", "population momentum drift |E(X_t - X_0)|"
        ),
        _check(
            "energy_drift",
            absolute_drift(flow.energy_drift),
            "1",
            "absolute drift of the second moment |E|X_t|^2 - E|X_0|^2| / E_0 (exact initial)",
        ),
    ]
    auxiliary = {
        "energy_drift_signed": _aux(
            [e.estimate for e in flow.energy_drift],
            "1",
            "signed relative drift of the second moment (negative: energy lost)",
        )
    }
    if flow.entropy_rate is not None:
        checks.append(_check("entropy_rate", flow.entropy_rate, "time^-1", "entropy rate dH/dt"))
    if flow.entropy_rate_exact is not None:
        auxiliary["entropy_rate_exact"] = _aux(
            flow.entropy_rate_exact, "time^-1", "exact entropy rate dH/dt of the problem"
        )
    return family_dataset(
        "invariants",
        "mass, momentum and energy drift of the flow's particles from t_min, and the entropy "
        "rate dH/dt = E[s(t, X_t) . d/dt X_t] (H must not increase)",
        checks,
        times=times,
        auxiliary=auxiliary,
    )


def _density_grid(problem: AbstractProblem, t: float) -> DensityGrid:
    """The grid of the density checks: [−4, 4]^d for Landau (Huang–Wang), mean ± 5 sd else."""
    if isinstance(problem, LinearSDEGMMProblem):
        mean = np.asarray(problem.mean(jnp.asarray(t)))
        sd = np.sqrt(np.diag(np.asarray(problem.covariance(jnp.asarray(t)))))
        lower, upper = float(np.min(mean - 5 * sd)), float(np.max(mean + 5 * sd))
        return default_grid(problem.dim, lower, upper)
    return default_grid(problem.dim, -4.0, 4.0)


@eqx.filter_jit
def _flow_positions(flow_fn: Callable, t: jax.Array, x0: jax.Array) -> jax.Array:
    """X(t, x0_i) for every initial particle (time traced: one compilation)."""
    return jax.vmap(lambda x: flow_fn(t, x))(x0)


def _density_family(run: _Run) -> xr.Dataset:
    problem, times, config = run.problem, run.times, run.config
    flow_fn = run.roles.flow
    key = run.key("density")
    n = int(config.n_samples)
    init_key, exact_key, boot_key = jax.random.split(key, 3)
    x0 = problem.sample_initial(n, key=init_key)
    errors, floors, excesses, bandwidths = [], [], [], []
    for i, t in enumerate(times):
        tt = jnp.asarray(t)
        particles = _flow_positions(flow_fn, tt, x0)
        exact = problem.sample(tt, n, key=jax.random.fold_in(exact_key, i))
        grid = _density_grid(problem, float(t))
        bandwidth = config.density_bandwidth or default_bandwidth(n, problem.dim, 1.0)
        result = density_error(
            particles,
            # t as a traced leaf, not a closure constant: one compilation for all times
            eqx.Partial(problem.density, tt),
            exact,
            grid=grid,
            bandwidth=bandwidth,
            key=jax.random.fold_in(boot_key, i),
            n_bootstrap=config.density_bootstrap,
            block_size=config.resolved_block_size,
            allow_float32=config.allow_float32,
        )
        errors.append(result.density_error)
        floors.append(result.kde_floor)
        excesses.append(result.excess)
        bandwidths.append(result.bandwidth)
    run.notes["density_grid"] = grid.parameters()
    checks = [
        _check("density_error", errors, "1", "relative L2 error of the KDE of the flow particles"),
        _check("kde_floor", floors, "1", "relative L2 error of the KDE of as many exact samples"),
        _check("density_error_excess", excesses, "1", "density_error minus kde_floor"),
    ]
    return family_dataset(
        "density",
        "Gaussian-KDE reconstruction of the flow's particles against the exact density on a "
        "grid, next to the KDE floor of as many exact samples (bootstrap-normal intervals)",
        checks,
        times=times,
        auxiliary={"bandwidth": _aux(bandwidths, "x", "KDE bandwidth")},
    )


def _sample_gap_family(run: _Run) -> xr.Dataset:
    result = sample_gap(
        run.problem,
        score_fn=run.roles.score if run.roles.velocity is None else None,
        velocity_fn=run.roles.velocity,
        config=run.config.resolved_sample_gap,
        key=run.key("samples"),
        allow_float32=run.config.allow_float32,
    )
    run.notes["sample_gap"] = result.parameters
    units = {"mmd2": "1", "energy": "x", "sliced_w2": "x^2"}
    names = {
        "ode_mmd2": "MMD^2 of probability-flow ODE samples against exact p_0",
        "sde_mmd2": "MMD^2 of reverse-SDE samples against exact p_0",
        "ode_sde_mmd2": "MMD^2 between probability-flow ODE and reverse-SDE samples",
        "ode_energy": "energy distance of probability-flow ODE samples against exact p_0",
        "sde_energy": "energy distance of reverse-SDE samples against exact p_0",
        "ode_sde_energy": "energy distance between ODE and SDE samples",
        "ode_sliced_w2": "sliced W2^2 of probability-flow ODE samples against exact p_0",
        "sde_sliced_w2": "sliced W2^2 of reverse-SDE samples against exact p_0",
    }
    checks = []
    for name, estimate in result.estimates.items():
        unit = next(u for suffix, u in units.items() if name.endswith(suffix))
        checks.append(estimate.to_check(name, unit, names.get(name, name)))
    return family_dataset(
        "samples",
        "samples generated from exact p_{t_max} by the probability-flow ODE and the reverse "
        "SDE with the learned model, against exact p_{t_min} samples and each other "
        f"(Gaussian-kernel bandwidth {result.bandwidth:.6g})",
        checks,
    )


def _reference_family(run: _Run, flow: Any | None) -> xr.Dataset | None:
    problem, times = run.problem, run.times
    checks = []
    key = run.key("reference_error")
    exact_fp = isinstance(problem, AbstractExactMarginals) and isinstance(
        problem, AbstractFokkerPlanckDynamics
    )
    if run.roles.velocity is not None and exact_fp:
        estimates = velocity_error(run.roles.velocity, problem, times, key=key, **run.common)
        checks.append(
            _check("velocity_error", estimates, "1", "relative mean-square velocity error")
        )
    if (
        run.roles.log_density is not None
        and isinstance(problem, AbstractExactMarginals)
        and problem.dim <= DENSITY_MAX_DIM
    ):
        estimates = [
            _grid_density_error(
                run.roles.log_density,
                problem.log_density,
                t=jnp.asarray(t),
                grid=_density_grid(problem, float(t)),
                normalise=run.unnormalised,
                block_size=run.config.resolved_block_size,
                allow_float32=run.config.allow_float32,
            )
            for t in times
        ]
        checks.append(
            _check("log_density_error", estimates, "1", "relative L2 error of the model density")
        )
    if flow is not None and flow.flow_error is not None:
        checks.append(
            _check("flow_error", flow.flow_error, "1", "relative mean-square flow-map error")
        )
    if not checks:
        return None
    return family_dataset(
        "reference_error",
        "errors against the exact solution: velocity field, normalised density on a grid, "
        "characteristic flow map",
        checks,
        times=times,
    )


# --------------------------------------------------------------------------- bounds


def default_bounds_name(problem: AbstractProblem) -> str:
    """Name of the default-bounds file of a problem (``verify/bounds/<name>.toml``)."""
    if isinstance(problem, LinearSDEGMMProblem):
        return "linear-sde-gmm"
    if isinstance(problem, LandauBKWProblem):
        return "landau-bkw"
    if isinstance(problem, LandauCoulombProblem):
        return "landau-coulomb"
    if isinstance(problem, AbstractFieldProblem):
        return "field-pde"
    raise CertifyError(f"no default bounds for problems of type {type(problem).__name__}")


def default_bounds_text(problem: AbstractProblem) -> str:
    """The default-bounds TOML of a problem, as shipped."""
    name = default_bounds_name(problem)
    return (importlib.resources.files("verify") / "bounds" / f"{name}.toml").read_text("utf-8")


def default_bounds(problem: AbstractProblem, checks: Sequence[str] | None = None) -> Bounds:
    """The problem's default bounds, restricted to ``checks`` when given."""
    import tomllib

    name = default_bounds_name(problem)
    bounds = parse_bounds(tomllib.loads(default_bounds_text(problem)), f"default bounds {name}")
    if checks is None:
        return bounds
    keep = set(checks)
    return dataclasses.replace(bounds, checks={k: v for k, v in bounds.checks.items() if k in keep})


# --------------------------------------------------------------------------- certify


def _stages(run: _Run) -> list[tuple[str, Callable[[dict], xr.Dataset | None]]]:
    problem, roles = run.problem, run.roles
    stages: list[tuple[str, Callable[[dict], xr.Dataset | None]]] = []
    exact = isinstance(problem, AbstractExactMarginals)
    landau_flow = isinstance(problem, AbstractLandauProblem) and roles.flow is not None
    if landau_flow:

        def flow_stage(state: dict) -> None:
            state["flow"] = flow_checks(
                problem,
                flow_fn=roles.flow,
                score_fn=roles.score,
                times=run.times,
                n_particles=int(run.config.n_samples),
                key=run.key("flow"),
                block_size=run.config.resolved_block_size,
                allow_float32=run.config.allow_float32,
            )
            run.notes["flow"] = state["flow"].parameters
            return None

        stages.append(("flow particles, residual and invariants", flow_stage))
    if roles.score is not None and exact:
        stages.append(("score gap", lambda state: _score_family(run)))
    stages.append(("Fokker-Planck residuals", lambda s: _fokker_planck_family(run, s.get("flow"))))
    if landau_flow:
        stages.append(("invariants", lambda state: _invariants_family(run, state["flow"])))
        if exact and problem.dim <= DENSITY_MAX_DIM:
            stages.append(("density (KDE)", lambda state: _density_family(run)))
    if isinstance(problem, LinearSDEGMMProblem) and (
        roles.score is not None or roles.velocity is not None
    ):
        stages.append(("sample gap (ODE and SDE generation)", lambda s: _sample_gap_family(run)))
    stages.append(("reference errors", lambda state: _reference_family(run, state.get("flow"))))
    return stages


def certify(
    problem: AbstractProblem,
    model: LoadedModel,
    config: CertifyConfig,
    *,
    user_bounds: Bounds | None = None,
    bounds_source: str = "",
    progress: ProgressFn | None = None,
) -> Certificate:
    """Compute every applicable check of ``model`` on ``problem`` and assemble the certificate.

    Parameters
    ----------
    problem : AbstractProblem
        The reference problem (its capabilities select the families; module docstring).
    model : LoadedModel
        The probed model (:func:`verify._model.load_model`).
    config : CertifyConfig
        Options; stored as ``config_json``.
    user_bounds : Bounds, optional
        The user's bounds (file and CLI layers), over the problem defaults.
    bounds_source : str
        Where the user's bounds came from (recorded in the config).
    progress : callable, optional
        ``progress(description, done, total)`` before each stage and at the end.

    Raises
    ------
    CertifyError
        The options are invalid (times outside the window, …).
    ModelError
        The model does not fit the problem: another dimension, or roles that no check of
        this problem applies to ("nothing to certify").
    """
    if model.dim != problem.dim:
        raise ModelError(f"model was probed with d = {model.dim}, problem has d = {problem.dim}")
    if isinstance(problem, AbstractFieldProblem):
        # PDE surrogates (field, operator, step roles): their own families (SCHEMA.md § 3.3)
        from ._field_certify import certify_field

        return certify_field(
            problem,
            model,
            config,
            user_bounds=user_bounds,
            bounds_source=bounds_source,
            progress=progress,
        )
    times = resolve_times(problem, config.times)
    run = _Run(
        problem=problem,
        roles=_model_roles(model, problem),
        config=config,
        times=times,
        root_key=jax.random.key(int(config.seed)),
        unnormalised=model.unnormalised,
    )
    state: dict[str, Any] = {}
    families = run_stages(
        [(description, partial(stage, state)) for description, stage in _stages(run)], progress
    )
    if not families:
        raise ModelError(
            f"nothing to certify: problem {problem.problem_id!r} and model roles "
            f"{sorted(model.roles)} share no check (a score needs exact marginals; a flow "
            "needs a Landau problem)"
        )
    computed = [name for data in families.values() for name in check_names(data)]
    bounds = (user_bounds or Bounds()).over(default_bounds(problem, computed))
    provenance = run_provenance(
        problem,
        config,
        spec=model.spec,
        sha256=model.model_sha256,
        settings={
            **config.parameters(),
            "times": [float(t) for t in times],
            "roles": sorted(model.roles),
            "score_source": run.roles.score_source,
            "log_density_unnormalised": bool(model.unnormalised),
        },
        bounds_source=bounds_source,
        notes=run.notes,
    )
    return assemble_certificate(provenance, families, bounds)


def run_stages(
    stages: Sequence[tuple[str, Callable[[], xr.Dataset | None]]],
    progress: ProgressFn | None,
) -> dict[str, xr.Dataset]:
    """Run (description, stage) pairs in order; the families they return, by family name.

    ``progress(description, done, total)`` is called before each stage and once at the end
    ("done"); a stage that returns None adds no family.
    """
    families: dict[str, xr.Dataset] = {}
    for index, (description, stage) in enumerate(stages):
        if progress is not None:
            progress(description, index, len(stages))
        data = stage()
        if data is not None:
            families[str(data.attrs["family"])] = data
    if progress is not None:
        progress("done", len(stages), len(stages))
    return families


def run_provenance(
    problem: AbstractProblem,
    config: CertifyConfig,
    *,
    spec: str,
    sha256: str,
    settings: Mapping[str, Any],
    bounds_source: str,
    notes: Mapping[str, Any],
) -> Provenance:
    """Provenance of a JAX-computed certificate (model, artefact or field runs alike).

    The tool, JAX version, backend and x64 state of this process, the seed, the problem and
    what was certified (``spec``, ``sha256``); ``config_json`` is ``settings`` (every option
    that shaped a number) followed by the default-bounds name, where the user's bounds came
    from and the run's notes (non-finite floats as strings).
    """
    return Provenance(
        tool_version=tool_version(),
        jax_version=jax.__version__,
        backend=jax.default_backend(),
        x64=bool(jnp.zeros(()).dtype == jnp.float64),
        seed=int(config.seed),
        problem_id=problem.problem_id,
        problem=problem.parameters(),
        model_spec=spec,
        model_sha256=sha256,
        config={
            **settings,
            "default_bounds": default_bounds_name(problem),
            "bounds_source": bounds_source,
            **_finite_notes(notes),
        },
    )


def _finite_notes(notes: Mapping[str, Any]) -> dict[str, Any]:
    """Run notes with non-finite floats as strings (JSON has no NaN)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        if isinstance(value, Mapping):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        if isinstance(value, np.generic):
            return clean(value.item())
        return value

    return {k: clean(v) for k, v in notes.items()}
