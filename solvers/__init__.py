"""Reference solvers in JAX: exact solutions and validated numerical methods.

This layer imports JAX, equinox and diffrax only; it knows nothing of certificates.
Problems (equation, data, time window, exact quantities, reference solver) are one module
each, registered by id in :mod:`solvers._registry`; TOML problem files are parsed by their
family. All functions act on one sample and are batched with ``jax.vmap``; float64 is
expected (the CLI and the tests switch it on; this package never does).
"""

from ._bkw import LandauBKWProblem, landau_bkw_2d, landau_bkw_3d
from ._blob import (
    BlobConfig,
    BlobScore,
    BlobSolution,
    blob_density,
    blob_entropy,
    blob_entropy_rate,
    blob_initial_particles,
    blob_score,
    cell_centred_grid,
    default_blob_epsilon,
    solve_blob,
)
from ._gmm import GaussianMixture
from ._landau_coulomb import LandauCoulombProblem, landau_coulomb_2d
from ._landau_kernel import (
    LandauKernel,
    landau_entropy_production,
    landau_velocity,
    landau_velocity_and_divergence,
)
from ._landau_particles import (
    RK4,
    AbstractParticleStepper,
    AbstractScoreProvider,
    ForwardEuler,
    Heun,
    ParticleTrajectory,
    ScoreFunction,
    time_grid,
    transport_particles,
)
from ._landau_problem import AbstractExactLandauProblem, AbstractLandauProblem
from ._linear_sde_gmm import (
    LinearSDEGMMProblem,
    linear_sde_gmm_from_mapping,
    ou_gmm_2d,
    ve_gmm_2d,
    vp_gmm_2d,
)
from ._problem import (
    AbstractExactMarginals,
    AbstractFokkerPlanckDynamics,
    AbstractProblem,
    ProblemError,
)
from ._registry import get_problem, load_problem_file, problem_families, problem_ids
from ._sde_samplers import (
    AbstractReverseSDESampler,
    EulerMaruyama,
    ProbabilityFlowODE,
    StochasticHeun,
)
from ._sde_schedules import OUSDE, VESDE, VPSDE, AbstractLinearSDE

__all__ = [
    "OUSDE",
    "RK4",
    "VESDE",
    "VPSDE",
    "AbstractExactLandauProblem",
    "AbstractExactMarginals",
    "AbstractFokkerPlanckDynamics",
    "AbstractLandauProblem",
    "AbstractLinearSDE",
    "AbstractParticleStepper",
    "AbstractProblem",
    "AbstractReverseSDESampler",
    "AbstractScoreProvider",
    "BlobConfig",
    "BlobScore",
    "BlobSolution",
    "EulerMaruyama",
    "ForwardEuler",
    "GaussianMixture",
    "Heun",
    "LandauBKWProblem",
    "LandauCoulombProblem",
    "LandauKernel",
    "LinearSDEGMMProblem",
    "ParticleTrajectory",
    "ProbabilityFlowODE",
    "ProblemError",
    "ScoreFunction",
    "StochasticHeun",
    "blob_density",
    "blob_entropy",
    "blob_entropy_rate",
    "blob_initial_particles",
    "blob_score",
    "cell_centred_grid",
    "default_blob_epsilon",
    "get_problem",
    "landau_bkw_2d",
    "landau_bkw_3d",
    "landau_coulomb_2d",
    "landau_entropy_production",
    "landau_velocity",
    "landau_velocity_and_divergence",
    "linear_sde_gmm_from_mapping",
    "load_problem_file",
    "ou_gmm_2d",
    "problem_families",
    "problem_ids",
    "solve_blob",
    "time_grid",
    "transport_particles",
    "ve_gmm_2d",
    "vp_gmm_2d",
]
