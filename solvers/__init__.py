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
from ._burgers import (
    BurgersProblem,
    ColeHopfBurgersProblem,
    burgers_1d,
    burgers_from_fourier,
    burgers_from_grid,
    solve_burgers,
)
from ._etdrk4 import (
    ETDRK4Coefficients,
    etdrk4,
    etdrk4_coefficients,
    etdrk4_save_at,
    etdrk4_step,
)
from ._field_problem import AbstractExactFieldProblem, AbstractFieldProblem, FieldFn
from ._gmm import GaussianMixture
from ._heat import HeatProblem, heat_1d, heat_2d, heat_problem_from_grid
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
from ._navier_stokes import (
    NavierStokesProblem,
    TaylorGreenProblem,
    navier_stokes_from_fourier,
    ns_perturbed_taylor_green_2d,
    ns_taylor_green_2d,
    solve_navier_stokes,
)
from ._pinn_pm import PINNPM, pinn_pm_model
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
from ._sine_gordon import (
    SineGordonBreatherProblem,
    sine_gordon_1d,
    sine_gordon_breather,
    sine_gordon_kink,
    sine_gordon_kink_antikink,
    solve_sine_gordon,
)
from ._spectral import (
    FourierSeries,
    dealias,
    dealias_mask,
    inverse_laplacian,
    l2_inner,
    l2_norm,
    periodic_grid,
    relative_l2_error,
    spectral_derivative,
    spectral_gradient,
    spectral_interpolate,
    spectral_laplacian,
    wavenumbers,
)
from ._symplectic import rk4_second_order, stormer_verlet
from .field_networks import (
    FourierNeuralOperator1d,
    PeriodicPINN,
    fourier_neural_operator_1d,
    periodic_pinn,
)

__all__ = [
    "OUSDE",
    "PINNPM",
    "RK4",
    "VESDE",
    "VPSDE",
    "AbstractExactFieldProblem",
    "AbstractExactLandauProblem",
    "AbstractExactMarginals",
    "AbstractFieldProblem",
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
    "BurgersProblem",
    "ColeHopfBurgersProblem",
    "ETDRK4Coefficients",
    "EulerMaruyama",
    "FieldFn",
    "ForwardEuler",
    "FourierNeuralOperator1d",
    "FourierSeries",
    "GaussianMixture",
    "HeatProblem",
    "Heun",
    "LandauBKWProblem",
    "LandauCoulombProblem",
    "LandauKernel",
    "LinearSDEGMMProblem",
    "NavierStokesProblem",
    "ParticleTrajectory",
    "PeriodicPINN",
    "ProbabilityFlowODE",
    "ProblemError",
    "ScoreFunction",
    "SineGordonBreatherProblem",
    "StochasticHeun",
    "TaylorGreenProblem",
    "blob_density",
    "blob_entropy",
    "blob_entropy_rate",
    "blob_initial_particles",
    "blob_score",
    "burgers_1d",
    "burgers_from_fourier",
    "burgers_from_grid",
    "cell_centred_grid",
    "dealias",
    "dealias_mask",
    "default_blob_epsilon",
    "etdrk4",
    "etdrk4_coefficients",
    "etdrk4_save_at",
    "etdrk4_step",
    "fourier_neural_operator_1d",
    "get_problem",
    "heat_1d",
    "heat_2d",
    "heat_problem_from_grid",
    "inverse_laplacian",
    "l2_inner",
    "l2_norm",
    "landau_bkw_2d",
    "landau_bkw_3d",
    "landau_coulomb_2d",
    "landau_entropy_production",
    "landau_velocity",
    "landau_velocity_and_divergence",
    "linear_sde_gmm_from_mapping",
    "load_problem_file",
    "navier_stokes_from_fourier",
    "ns_perturbed_taylor_green_2d",
    "ns_taylor_green_2d",
    "ou_gmm_2d",
    "periodic_grid",
    "periodic_pinn",
    "pinn_pm_model",
    "problem_families",
    "problem_ids",
    "relative_l2_error",
    "rk4_second_order",
    "sine_gordon_1d",
    "sine_gordon_breather",
    "sine_gordon_kink",
    "sine_gordon_kink_antikink",
    "solve_blob",
    "solve_burgers",
    "solve_navier_stokes",
    "solve_sine_gordon",
    "spectral_derivative",
    "spectral_gradient",
    "spectral_interpolate",
    "spectral_laplacian",
    "stormer_verlet",
    "time_grid",
    "transport_particles",
    "ve_gmm_2d",
    "vp_gmm_2d",
    "wavenumbers",
]
