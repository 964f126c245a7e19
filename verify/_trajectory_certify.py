r"""``verify certify --trajectories``: certify a solver from its stored particles alone.

The solver is not run: a trajectory artefact (``certificates/SCHEMA.md`` § "Trajectory and
sample artefacts"; any framework can write one) holds its particles :math:`X_i(t_k)`,
weights :math:`w_i` and optionally its score, score divergence and log-density at the
particles. What can be certified from data alone depends on the problem's capabilities and
on what the file holds:

* ``invariants`` (Landau problems, ≥ 2 frames) — the drifts of the stored particle system
  from its first frame (:func:`verify._audit.invariants_family`): ``mass_drift``,
  ``momentum_drift_relative``, ``energy_drift``, ``energy_excess`` (forward Euler with its
  per-step increments) and ``entropy_increase`` (with ``log_density``). These are exact
  numbers of the data. They are *not* compared with the problem's exact invariants: the
  stored initial particles are a finite sample whose moments differ from the exact ones by
  Monte Carlo error, which the sample gap at the first time already measures.
* ``density`` (exact marginals, d ≤ 3) — ``density_error``, ``kde_floor``,
  ``density_error_excess``: the weighted Gaussian KDE of the particles against the exact
  density on a grid, next to the KDE of as many exact samples (:mod:`verify._density`).
* ``samples`` (exact marginals) — ``sample_mmd2`` (block MMD², Gaussian kernel, median
  bandwidth), ``sample_energy`` (linear-time energy distance), ``sample_sliced_w2``
  (plug-in sliced W2²) of the particles against as many independent exact samples of
  :math:`p_t` (:mod:`verify._sample_gap`), n = min(N, ``--samples``) of each. Weighted
  particles are resampled by their weights (n multinomial draws, with the run's key; the
  ties this creates bias MMD² upward by at most about (1 − E k)/N_eff, N_eff = 1/Σ w̃²,
  negligible against the default bound for N_eff ≳ 10²); equally weighted ones are
  randomly permuted, so the blocks and pairs of the statistics are exchangeable whatever
  the stored order.
* ``score_gap`` (exact marginals, ``score`` stored) — over the stored particles, weights
  :math:`\tilde w_i = w_i/\sum_j w_j`:

  .. math::

      \hat G(t) = \sum_i \tilde w_i\,|s_i - \nabla\log p_t(X_i)|^2,\qquad
      \hat J(t) = \sum_i \tilde w_i\,\big(|s_i|^2 + 2(\nabla\cdot s)_i\big) + I(t),

  and both divided by :math:`I(t) + \epsilon`. :math:`\hat G` estimates the gap under the
  particles' law q, not under :math:`p_t` (equal when the particles are exact samples; a
  solver's particles differ by what the sample gap measures), so it is STATISTICAL about
  :math:`E_q`. Hyvärinen's identity holds only under :math:`p_t`: under q,
  :math:`\hat J` differs from :math:`E_q|s - \nabla\log p_t|^2` by a term that vanishes as
  q → p_t, hence evidence EMPIRICAL. Without stored divergences the Hyvärinen checks are
  absent and ``config_json`` says ``"hyvarinen": "unavailable (no score_divergence in the
  artefact)"``.

**Statistics over particles.** The CLT intervals treat the N particles at one time as iid
draws. For exact samples they are; for an interacting particle system (Landau) they are
exchangeable and only asymptotically independent (propagation of chaos, Sznitman 1991), so
the intervals are approximate there; the reasons say so. Weighted means use the
per-particle values :math:`N\tilde w_i h_i` (their mean is :math:`\sum_i \tilde w_i h_i`).

**Cost.** The KDE and two-sample checks use at most ``--samples`` particles per time (a
uniform random subset, weights renormalised, when N is larger); the score checks use all.

Provenance: ``model_spec`` is the artefact path, ``model_sha256`` its file SHA-256, and
``config_json`` records the artefact's attributes and everything that shaped a number.

References
----------
.. [1] A. Hyvärinen, "Estimation of non-normalized statistical models by score matching",
   JMLR 6 (2005) 695–709, Theorem 1.
.. [2] A.-S. Sznitman, "Topics in propagation of chaos", École d'Été de Probabilités de
   Saint-Flour XIX, LNM 1464, Springer (1991).
.. [3] Y. Huang, L. Wang, "A score-based particle method for homogeneous Landau equation",
   J. Comput. Phys. 536 (2025) 114053.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

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
    TrajectoryArtefact,
    assemble_certificate,
    check_names,
    family_dataset,
)
from solvers import AbstractExactMarginals, AbstractLandauProblem, AbstractProblem

from ._audit import AuditInputError, artefact_summary, invariants_family
from ._certify import (
    DENSITY_MAX_DIM,
    CertifyConfig,
    CertifyError,
    _aux,
    _density_grid,
    _family_key,
    default_bounds,
    run_provenance,
    run_stages,
)
from ._density import default_bandwidth, density_error
from ._estimate import Estimate, estimates_to_check, summarise
from ._sample_gap import (
    _exact_samples,
    block_size_for,
    energy_distance_linear,
    median_bandwidth,
    mmd2_block,
    sliced_w2,
)
from ._score_gap import NORMALISER_FISHER, blocked_map, roundoff_resolution

ProgressFn = Callable[[str, int, int], None]

_TIME_RTOL = 1e-9
"""--times match stored times to this relative tolerance (decimal round-off only)."""

NUM_PROJECTIONS = 128
"""Random directions of ``sample_sliced_w2`` (as ``SampleGapConfig.num_projections``)."""

MIN_PARTICLES = 16
"""Fewer particles give no meaningful two-sample statistic or KDE."""

IID_NOTE = (
    "interval treats the particles as iid draws (exact for exact samples; approximate for "
    "interacting particles, propagation of chaos)"
)


class TrajectoryInputError(ValueError):
    """The artefact does not fit the problem (dimension, problem id, window): exit 4."""


# --------------------------------------------------------------------------- times


def certified_times(
    problem: AbstractProblem, artefact: TrajectoryArtefact, times: Sequence[float] | None
) -> np.ndarray:
    """Indices of the stored frames to certify: all, or those matching ``--times``.

    Raises
    ------
    CertifyError
        A requested time is not a stored time (exit 2).
    TrajectoryInputError
        A certified time lies outside the problem's window (exit 4).
    """
    stored = artefact.time
    if times is None:
        index = np.arange(stored.size)
    else:
        wanted = np.asarray(times, dtype=np.float64)
        if wanted.ndim != 1 or wanted.size == 0 or np.any(np.diff(wanted) <= 0):
            raise CertifyError(f"--times must be strictly increasing, got {list(times)}")
        index = []
        for t in wanted:
            hit = np.flatnonzero(np.isclose(stored, t, rtol=_TIME_RTOL, atol=0.0))
            if hit.size == 0:
                raise CertifyError(
                    f"--times {t:g} is not a stored time of the artefact "
                    f"(stored: {', '.join(f'{s:g}' for s in stored)})"
                )
            index.append(int(hit[0]))
        index = np.asarray(index)
    chosen = stored[index]
    outside = [float(t) for t in chosen if not problem.t_min <= t <= problem.t_max]
    if outside:
        raise TrajectoryInputError(
            f"stored times {outside} lie outside the problem's window "
            f"[{problem.t_min:g}, {problem.t_max:g}] (choose others with --times)"
        )
    return index


# --------------------------------------------------------------------------- helpers


def _normalised(weights: np.ndarray) -> np.ndarray:
    return weights / weights.sum()


def _weighted_summary(values: np.ndarray, weights: np.ndarray, **kw: Any) -> Estimate:
    """Estimate of Σ w̃_i h_i from the per-particle values N w̃_i h_i (module docstring)."""
    return summarise(values.size * weights * values, **kw)


def _uniform(weights: np.ndarray) -> bool:
    return bool(np.all(np.abs(weights - weights[0]) <= 4 * np.finfo(float).eps * weights[0]))


def _subset(
    x: np.ndarray, weights: np.ndarray, cap: int, key: jax.Array
) -> tuple[np.ndarray, np.ndarray]:
    """At most ``cap`` particles (uniform random subset, weights renormalised)."""
    if x.shape[0] <= cap:
        return x, _normalised(weights)
    pick = np.asarray(jax.random.choice(key, x.shape[0], (cap,), replace=False))
    return x[pick], _normalised(weights[pick])


def _iid_draws(x: np.ndarray, weights: np.ndarray, n: int, key: jax.Array) -> np.ndarray:
    """n draws of the weighted empirical measure: a permutation if the weights are equal."""
    if _uniform(weights) and n <= x.shape[0]:
        return x[np.asarray(jax.random.permutation(key, x.shape[0]))[:n]]
    pick = jax.random.choice(key, x.shape[0], (n,), replace=True, p=jnp.asarray(weights))
    return x[np.asarray(pick)]


@eqx.filter_jit
def _exact_scores(problem: AbstractExactMarginals, t: jax.Array, x: jax.Array, block: int):
    return blocked_map(lambda xi: problem.score(t, xi), x, block)


def _exact_density(problem: AbstractExactMarginals, t: jax.Array, x: jax.Array) -> jax.Array:
    return jnp.exp(problem.log_density(t, x))


# --------------------------------------------------------------------------- families


@dataclasses.dataclass
class _Run:
    problem: AbstractProblem
    artefact: TrajectoryArtefact
    config: CertifyConfig
    index: np.ndarray
    root_key: jax.Array
    notes: dict[str, Any]

    @property
    def times(self) -> np.ndarray:
        return self.artefact.time[self.index]

    @property
    def weights(self) -> np.ndarray:
        return _normalised(self.artefact.particle_weights())

    def key(self, family: str) -> jax.Array:
        return _family_key(self.root_key, family)


def _check(name: str, estimates: Sequence[Estimate], units: str, long_name: str) -> CheckResult:
    return estimates_to_check(name, estimates, units=units, long_name=long_name)


def _with_reason(estimate: Estimate, note: str) -> Estimate:
    reason = f"{estimate.reason}; {note}" if estimate.reason else note
    return dataclasses.replace(estimate, reason=reason)


def _score_family(run: _Run) -> xr.Dataset:
    problem, artefact, w = run.problem, run.artefact, run.weights
    assert isinstance(problem, AbstractExactMarginals)
    assert artefact.score is not None
    block = run.config.resolved_block_size
    eps = run.config.fisher_eps
    direct, hyva, fisher = [], [], []
    for k, t in zip(run.index, run.times, strict=True):
        tt = jnp.asarray(t)
        x, s = artefact.positions[k], artefact.score[k]
        exact = np.asarray(_exact_scores(problem, tt, jnp.asarray(x), block))
        gap = np.sum((s - exact) ** 2, axis=1)
        scale = np.sum(s * s, axis=1) + np.sum(exact * exact, axis=1)
        direct.append(
            _with_reason(
                _weighted_summary(
                    gap,
                    w,
                    formula_id="score-gap-direct-particles",
                    resolution=roundoff_resolution(artefact.n_particles * w * scale),
                ),
                "over the stored particles (their law, not exact samples); " + IID_NOTE,
            )
        )
        fisher.append(float(problem.fisher_information(tt)))
        if artefact.score_divergence is not None:
            integrand = np.sum(s * s, axis=1) + 2.0 * artefact.score_divergence[k]
            hyva.append(
                dataclasses.replace(
                    _weighted_summary(integrand, w, formula_id="hyvarinen-2005-thm1-particles"),
                    evidence=Evidence.EMPIRICAL,
                    reason=(
                        "Hyvarinen's identity over the stored particles: exact only when they "
                        "are distributed as p_t (the sample gap measures how far they are); "
                        + IID_NOTE
                    ),
                )
            )
    if hyva:
        hyva = [e.shifted(i, formula_id=e.formula_id) for e, i in zip(hyva, fisher, strict=True)]

    def relative(estimates: Sequence[Estimate]) -> list[Estimate]:
        return [
            e.scaled(i + eps, normaliser=NORMALISER_FISHER, eps=eps)
            for e, i in zip(estimates, fisher, strict=True)
        ]

    checks = [
        _check("score_gap", direct, "x^-2", "score gap sum_i w_i |s_i - grad log p_t(X_i)|^2"),
        _check(
            "score_gap_relative",
            relative(direct),
            "1",
            "score gap over the particles relative to the Fisher information",
        ),
    ]
    if hyva:
        checks += [
            _check("hyvarinen_gap", hyva, "x^-2", "score gap by Hyvarinen's identity"),
            _check(
                "hyvarinen_gap_relative",
                relative(hyva),
                "1",
                "Hyvarinen score gap relative to the Fisher information",
            ),
        ]
        run.notes["hyvarinen"] = "from the stored score_divergence"
    else:
        run.notes["hyvarinen"] = "unavailable (no score_divergence in the artefact)"
    return family_dataset(
        "score_gap",
        "the stored scores at the stored particles against the exact score of p_t (weighted "
        "by the particle weights), directly and, where divergences are stored, by Hyvarinen's "
        "identity",
        checks,
        times=run.times,
        auxiliary={"fisher_information": _aux(fisher, "x^-2", "Fisher information I(t) of p_t")},
    )


def _density_family(run: _Run) -> xr.Dataset:
    problem, artefact, config = run.problem, run.artefact, run.config
    assert isinstance(problem, AbstractExactMarginals)
    key = run.key("density")
    subset_key, exact_key, boot_key = jax.random.split(key, 3)
    errors, floors, excesses, bandwidths = [], [], [], []
    grid = None
    for i, (k, t) in enumerate(zip(run.index, run.times, strict=True)):
        tt = jnp.asarray(t)
        x, w = _subset(
            artefact.positions[k],
            run.weights,
            int(config.n_samples),
            jax.random.fold_in(subset_key, i),
        )
        n = x.shape[0]
        exact = _exact_samples(problem, tt, n, jax.random.fold_in(exact_key, i))
        grid = _density_grid(problem, float(t))
        bandwidth = config.density_bandwidth or default_bandwidth(n, problem.dim, 1.0)
        result = density_error(
            jnp.asarray(x),
            eqx.Partial(_exact_density, problem, tt),
            exact,
            grid=grid,
            bandwidth=bandwidth,
            key=jax.random.fold_in(boot_key, i),
            n_bootstrap=config.density_bootstrap,
            weights=jnp.asarray(w),
            block_size=config.resolved_block_size,
            allow_float32=config.allow_float32,
        )
        errors.append(result.density_error)
        floors.append(result.kde_floor)
        excesses.append(result.excess)
        bandwidths.append(result.bandwidth)
    if grid is not None:
        run.notes["density_grid"] = grid.parameters()
    checks = [
        _check("density_error", errors, "1", "relative L2 error of the KDE of the particles"),
        _check("kde_floor", floors, "1", "relative L2 error of the KDE of as many exact samples"),
        _check("density_error_excess", excesses, "1", "density_error minus kde_floor"),
    ]
    return family_dataset(
        "density",
        "weighted Gaussian-KDE reconstruction of the stored particles against the exact "
        "density on a grid, next to the KDE floor of as many exact samples (bootstrap-normal "
        "intervals)",
        checks,
        times=run.times,
        auxiliary={"bandwidth": _aux(bandwidths, "x", "KDE bandwidth")},
    )


def _samples_family(run: _Run) -> xr.Dataset:
    problem, artefact, config = run.problem, run.artefact, run.config
    assert isinstance(problem, AbstractExactMarginals)
    key = run.key("samples")
    draw_key, exact_key, pool_key, projection_key = jax.random.split(key, 4)
    n = min(artefact.n_particles, int(config.n_samples))
    mmd, energy, sliced, bandwidths = [], [], [], []
    for i, (k, t) in enumerate(zip(run.index, run.times, strict=True)):
        tt = jnp.asarray(t)
        x = jnp.asarray(
            _iid_draws(artefact.positions[k], run.weights, n, jax.random.fold_in(draw_key, i))
        )
        reference = _exact_samples(problem, tt, n, jax.random.fold_in(exact_key, i))
        # An independent exact pool, so the MMD terms stay iid given the bandwidth.
        pool = _exact_samples(problem, tt, n, jax.random.fold_in(pool_key, i))
        bandwidth = median_bandwidth(pool[: n // 2], pool[n // 2 :], max_points=1000)
        kw = {"allow_float32": config.allow_float32}
        mmd.append(_with_reason(mmd2_block(x, reference, bandwidth=bandwidth, **kw), IID_NOTE))
        energy.append(_with_reason(energy_distance_linear(x, reference, **kw), IID_NOTE))
        sliced.append(
            sliced_w2(
                x,
                reference,
                num_projections=NUM_PROJECTIONS,
                key=jax.random.fold_in(projection_key, i),
                **kw,
            )
        )
        bandwidths.append(bandwidth)
    run.notes["samples"] = {
        "n_samples": n,
        "resampling": "permutation (equal weights)"
        if _uniform(run.weights)
        else "multinomial by weight",
        "mmd_block_size": block_size_for(n),
        "num_projections": NUM_PROJECTIONS,
        "bandwidth_source": "median-heuristic on independent exact samples per time",
    }
    checks = [
        _check("sample_mmd2", mmd, "1", "squared MMD, particles vs exact p_t samples"),
        _check("sample_energy", energy, "x", "energy distance, particles vs exact p_t samples"),
        _check("sample_sliced_w2", sliced, "x^2", "squared sliced W2, particles vs exact p_t"),
    ]
    return family_dataset(
        "samples",
        "the stored particles (resampled by weight) against as many independent exact samples "
        "of p_t: block MMD^2 (Gaussian kernel, median bandwidth), linear-time energy distance, "
        "plug-in sliced W2^2",
        checks,
        times=run.times,
        auxiliary={"mmd_bandwidth": _aux(bandwidths, "x", "Gaussian-kernel bandwidth")},
    )


# --------------------------------------------------------------------------- certify


def certify_trajectories(
    problem: AbstractProblem,
    artefact: TrajectoryArtefact,
    config: CertifyConfig,
    *,
    spec: str,
    sha256: str,
    user_bounds: Bounds | None = None,
    bounds_source: str = "",
    progress: ProgressFn | None = None,
) -> Certificate:
    """Certify what the artefact's data allow on ``problem`` (module docstring).

    Parameters
    ----------
    problem : AbstractProblem
        The reference problem.
    artefact : TrajectoryArtefact
        The solver's particles (:func:`certificates.read_trajectories`).
    config : CertifyConfig
        ``times`` (a subset of the stored times), ``n_samples`` (particle cap of the KDE
        and two-sample checks), ``seed``, KDE and block settings; the model-only options
        (divergence, probes) are ignored and not recorded.
    spec, sha256 : str
        The artefact's path and file SHA-256 (``model_spec``, ``model_sha256``).
    user_bounds : Bounds, optional
        The user's bounds over the problem defaults.
    bounds_source : str
        Where the user's bounds came from.
    progress : callable, optional
        ``progress(description, done, total)``.

    Raises
    ------
    CertifyError
        ``--times`` not among the stored times (exit 2).
    TrajectoryInputError
        The artefact does not fit the problem, or nothing can be certified (exit 4).
    """
    if artefact.dim != problem.dim:
        raise TrajectoryInputError(
            f"the artefact's particles have d = {artefact.dim}, problem "
            f"{problem.problem_id!r} has d = {problem.dim}"
        )
    if artefact.problem_id is not None and artefact.problem_id != problem.problem_id:
        raise TrajectoryInputError(
            f"the artefact declares problem_id {artefact.problem_id!r}, but --problem is "
            f"{problem.problem_id!r}"
        )
    index = certified_times(problem, artefact, config.times)
    run = _Run(problem, artefact, config, index, jax.random.key(int(config.seed)), {})
    exact = isinstance(problem, AbstractExactMarginals)
    small = int(np.count_nonzero(artefact.particle_weights())) < MIN_PARTICLES
    stages: list[tuple[str, Callable[[], xr.Dataset]]] = []
    extra_defaults = Bounds()
    if isinstance(problem, AbstractLandauProblem) and artefact.n_times >= 2:

        def invariants() -> xr.Dataset:
            nonlocal extra_defaults
            try:
                result = invariants_family(artefact)
            except AuditInputError as exc:
                raise TrajectoryInputError(str(exc)) from None
            # The round-off rule of energy_excess depends on the artefact: not in the TOML.
            if "energy_excess" in result.default_bounds.checks:
                extra_defaults = Bounds(
                    checks={"energy_excess": result.default_bounds.checks["energy_excess"]}
                )
            run.notes["invariants"] = result.notes
            return result.family

        stages.append(("invariants of the particle system", invariants))
    if exact and artefact.score is not None:
        stages.append(("score gap over the particles", lambda: _score_family(run)))
    elif exact:
        run.notes["score_gap"] = "unavailable (no score in the artefact)"
    if exact and not small and problem.dim <= DENSITY_MAX_DIM:
        stages.append(("density (KDE)", lambda: _density_family(run)))
    if exact and not small:
        stages.append(("sample gap against exact samples", lambda: _samples_family(run)))
    families = run_stages(stages, progress)
    if not families:
        raise TrajectoryInputError(
            f"nothing to certify: problem {problem.problem_id!r} has no exact marginals and is "
            "not a Landau problem, or the artefact has one frame and too few particles"
        )
    computed = [name for data in families.values() for name in check_names(data)]
    defaults = default_bounds(problem, computed).over(extra_defaults)
    bounds = (user_bounds or Bounds()).over(defaults)
    provenance = run_provenance(
        problem,
        config,
        spec=spec,
        sha256=sha256,
        settings={
            "command": "certify --trajectories",
            "artefact": artefact_summary(artefact),
            "times": [float(t) for t in run.times],
            "max_particles": int(config.n_samples),
            "seed": int(config.seed),
            "dtype": "float32" if config.allow_float32 else "float64",
            "block_size": config.resolved_block_size,
            "fisher_eps": float(config.fisher_eps),
            "density_bandwidth": config.density_bandwidth,
            "density_bootstrap": int(config.density_bootstrap),
        },
        bounds_source=bounds_source,
        notes=run.notes,
    )
    return assemble_certificate(provenance, families, bounds)
