"""Gaussian-mixture data pushed through a linear SDE: exact marginals, scores and dynamics.

Data p₀ = Σ_k π_k N(μ_k, Σ_k) and the forward SDE dx = f(t, x) dt + g(t) dW with
f = a(t) x (OU, VP or VE, :mod:`solvers._sde_schedules`). Since x_t = α_t x₀ + σ_t ε,

    p_t(x) = Σ_k π_k N(x; α_t μ_k, Σ_k^t),   Σ_k^t = α_t² Σ_k + σ_t² I,

with exact score, score Jacobian and Laplacian of log p_t (``MATH.md`` § 5), and p_t solves
the Fokker–Planck equation ∂_t p = −∇·(f p) + ½ g² Δp. The probability-flow ODE
dx/dt = f − ½ g² s and the reverse SDE dx = (f − g² s) dt + g dW̄ (run backward in time)
both have marginals p_t when s = ∇ log p_t.

A problem file (TOML, parsed to a mapping, see :func:`linear_sde_gmm_from_mapping`)::

    id = "my-ou-mixture"
    family = "linear-sde-gmm"
    [sde]
    kind = "ou"            # "ou" (rate, diffusion), "vp" (beta_min, beta_max),
    rate = 1.0             # "ve" (sigma_min, sigma_max)
    diffusion = 1.0
    t_min = 1e-3
    t_max = 10.0
    times = [0.1, 0.5, 1.0, 3.0]   # optional default certification times
    [data]
    weights = [0.5, 0.5]
    means = [[-1.0, 0.0], [1.0, 0.0]]
    covariances = [[[0.2, 0.0], [0.0, 0.2]], [[0.2, 0.0], [0.0, 0.2]]]

References
----------
Y. Song, J. Sohl-Dickstein, D. P. Kingma, A. Kumar, S. Ermon, B. Poole, "Score-Based
Generative Modeling through Stochastic Differential Equations", ICLR 2021 (reverse SDE,
probability-flow ODE, VP/VE SDEs).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, final

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._gmm import GaussianMixture
from ._problem import AbstractExactMarginals, AbstractFokkerPlanckDynamics, ProblemError
from ._sde_schedules import OUSDE, SDE_KINDS, VESDE, VPSDE, AbstractLinearSDE

FAMILY = "linear-sde-gmm"
"""``family`` of a problem file handled by :func:`linear_sde_gmm_from_mapping`."""

DEFAULT_TIME_FRACTIONS = (0.05, 0.1, 0.3, 0.5, 1.0)
"""Default certification times of a file without ``times``: these fractions of t_max
(raised to t_min where smaller, duplicates dropped)."""

ScoreFn = Callable[[Float[Array, ""], Float[Array, " d"]], Float[Array, " d"]]
"""score_fn(t, x) -> (d,): an exact or learned score."""

_SDE_FILE_KEYS = {
    # problem-file key -> schedule constructor argument
    "ou": {"rate": "rate", "diffusion": "diffusion_coefficient"},
    "vp": {"beta_min": "beta_min", "beta_max": "beta_max"},
    "ve": {"sigma_min": "sigma_min", "sigma_max": "sigma_max"},
}
_SDE_WINDOW_KEYS = ("t_min", "t_max")
_DATA_KEYS = ("weights", "means", "covariances")


@final
class LinearSDEGMMProblem(AbstractExactMarginals, AbstractFokkerPlanckDynamics):
    """Gaussian-mixture data under a linear SDE, with exact marginals p_t.

    Parameters
    ----------
    problem_id : str
        Registry id or the ``id`` of a problem file.
    sde : AbstractLinearSDE
        Forward SDE dx = a(t) x dt + g(t) dW (:class:`OUSDE`, :class:`VPSDE`, :class:`VESDE`).
    data : GaussianMixture
        p₀.
    t_min, t_max : float
        Time window, 0 ≤ t_min < t_max.
    default_times : sequence of float
        Strictly increasing certification times in [t_min, t_max].
    """

    sde: AbstractLinearSDE
    data: GaussianMixture
    problem_id: str = eqx.field(static=True)
    t_min: float = eqx.field(static=True)
    t_max: float = eqx.field(static=True)
    default_times: tuple[float, ...] = eqx.field(static=True)

    def __init__(
        self,
        problem_id: str,
        sde: AbstractLinearSDE,
        data: GaussianMixture,
        *,
        t_min: float,
        t_max: float,
        default_times: tuple[float, ...] | list[float],
    ):
        self.problem_id = problem_id
        self.sde = sde
        self.data = data
        self.t_min = float(t_min)
        self.t_max = float(t_max)
        self.default_times = tuple(float(t) for t in default_times)

    def __check_init__(self) -> None:
        # Messages start with the problem-file key so that the parser can prefix "sde.".
        if not (math.isfinite(self.t_min) and math.isfinite(self.t_max)):
            raise ProblemError(f"t_min and t_max must be finite, got {self.t_min}, {self.t_max}")
        if self.t_min < 0:
            raise ProblemError(f"t_min must be >= 0, got {self.t_min!r}")
        if self.t_min >= self.t_max:
            raise ProblemError(
                f"t_min must be < t_max, got t_min = {self.t_min!r} >= t_max = {self.t_max!r}"
            )
        if not self.default_times:
            raise ProblemError("times must not be empty")
        for i, t in enumerate(self.default_times):
            if not self.t_min <= t <= self.t_max:
                raise ProblemError(
                    f"times[{i}] = {t!r} lies outside [t_min, t_max] = "
                    f"[{self.t_min!r}, {self.t_max!r}]"
                )
            if i and t <= self.default_times[i - 1]:
                raise ProblemError(f"times must be strictly increasing, times[{i}] = {t!r}")

    @property
    def dim(self) -> int:
        """d."""
        return self.data.dim

    def parameters(self) -> dict[str, Any]:
        """The problem-file mapping; :func:`linear_sde_gmm_from_mapping` reads it back."""
        return {
            "id": self.problem_id,
            "family": FAMILY,
            "sde": {
                **self.sde.parameters(),
                "t_min": self.t_min,
                "t_max": self.t_max,
                "times": list(self.default_times),
            },
            "data": self.data.parameters(),
        }

    # --- exact marginals -------------------------------------------------------------

    def marginal(self, t: ArrayLike) -> GaussianMixture:
        """p_t = Σ_k π_k N(α_t μ_k, α_t² Σ_k + σ_t² I) (traceable, differentiable in t)."""
        return self.data.diffused(self.sde.alpha(t), self.sde.sigma2(t))

    def log_density(self, t: ArrayLike, x: Float[Array, " d"]) -> Float[Array, ""]:
        """log p_t(x)."""
        return self.marginal(t).log_density(x)

    def score(self, t: ArrayLike, x: Float[Array, " d"]) -> Float[Array, " d"]:
        """s(t, x) = ∇ log p_t(x) = Σ_k w_k m_k, m_k = (Σ_k^t)⁻¹(α_t μ_k − x)."""
        return self.marginal(t).score(x)

    def score_jacobian(self, t: ArrayLike, x: Float[Array, " d"]) -> Float[Array, "d d"]:
        """∇s = Σ_k w_k (m_k m_kᵀ − (Σ_k^t)⁻¹) − s sᵀ."""
        return self.marginal(t).score_jacobian(x)

    def score_divergence(self, t: ArrayLike, x: Float[Array, " d"]) -> Float[Array, ""]:
        """∇·s = Σ_k w_k (|m_k|² − tr (Σ_k^t)⁻¹) − |s|²."""
        return self.marginal(t).score_divergence(x)

    def sample(self, t: ArrayLike, n: int, *, key: PRNGKeyArray) -> Float[Array, "n d"]:
        """``n`` exact iid samples of p_t (``n`` static)."""
        return self.marginal(t).sample_n(n, key=key)

    def sample_data(self, n: int, *, key: PRNGKeyArray) -> Float[Array, "n d"]:
        """``n`` exact iid samples of p₀ (the data)."""
        return self.data.sample_n(n, key=key)

    def mean(self, t: ArrayLike) -> Float[Array, " d"]:
        """E_{p_t} x = α_t Σ_k π_k μ_k."""
        return self.marginal(t).mean()

    def covariance(self, t: ArrayLike) -> Float[Array, "d d"]:
        """Cov_{p_t} x = α_t² Cov_{p₀} x + σ_t² I."""
        return self.marginal(t).covariance()

    def fisher_information(self, t: ArrayLike) -> Float[Array, ""]:
        """I(t) = E_{p_t} |∇ log p_t|², deterministic quadrature.

        No closed form exists for a mixture. Each component is integrated in its whitened
        frame by tensor Gauss–Hermite quadrature (d ≤ 3; orders ``QUADRATURE_ORDER`` in
        :mod:`solvers._gmm`). Accuracy, measured as the change against a higher order:
        relative ≤ 5e-7 on the 2-D built-in problems at t_min and every default time
        (order 256; ≤ 1e-12 once the components overlap, e.g. VP t ≥ 0.5), ≤ 1e-4 for a
        well-separated 3-D mixture at t ≤ 0.1 (order 50). The tests also check the identity
        I = −E ∇·s and agreement with :meth:`fisher_information_estimate` within 5 standard
        errors. For d > 3 a deterministic Sobol quasi-Monte Carlo rule is used instead (see
        :meth:`GaussianMixture.expectation`); check it with :meth:`fisher_information_estimate`.
        Jittable (``equinox.filter_jit``) and differentiable in t.
        """
        return self.marginal(t).fisher_information()

    def fisher_information_estimate(
        self, t: ArrayLike, n: int, *, key: PRNGKeyArray
    ) -> tuple[Float[Array, ""], Float[Array, ""]]:
        """Monte Carlo I(t) ≈ (1/n) Σ |s(x_i)|², x_i ~ p_t iid; returns (estimate, stderr).

        stderr = sample standard deviation of |s(x_i)|² / √n.
        """
        marginal = self.marginal(t)
        values = jax.vmap(lambda x: jnp.sum(marginal.score(x) ** 2))(self.sample(t, n, key=key))
        return jnp.mean(values), jnp.std(values, ddof=1) / math.sqrt(n)

    # --- dynamics --------------------------------------------------------------------

    def drift(self, t: ArrayLike, x: Float[Array, " d"]) -> Float[Array, " d"]:
        """f(t, x) = a(t) x."""
        return self.sde.drift(t, x)

    def diffusion(self, t: ArrayLike) -> Float[Array, ""]:
        """g(t)."""
        return self.sde.diffusion(t)

    def probability_flow_drift(
        self, t: ArrayLike, x: Float[Array, " d"], score_fn: ScoreFn
    ) -> Float[Array, " d"]:
        """PF-ODE velocity f(t, x) − ½ g(t)² score_fn(t, x) (Song et al. 2021, eq. 13)."""
        return self.drift(t, x) - 0.5 * self.diffusion(t) ** 2 * score_fn(t, x)

    def reverse_sde_drift(
        self, t: ArrayLike, x: Float[Array, " d"], score_fn: ScoreFn
    ) -> Float[Array, " d"]:
        """Reverse-SDE drift f(t, x) − g(t)² score_fn(t, x) (Song et al. 2021, eq. 6)."""
        return self.drift(t, x) - self.diffusion(t) ** 2 * score_fn(t, x)


# --- built-in problems -----------------------------------------------------------------

_BUILTIN_DATA = {
    "weights": [0.5, 0.3, 0.2],
    "means": [[-2.0, 0.0], [2.0, 1.0], [0.0, 2.5]],
    "covariances": [
        [[0.3, 0.0], [0.0, 0.3]],
        [[0.5, 0.0], [0.0, 0.1]],
        [[0.4, 0.2], [0.2, 0.3]],
    ],
}


def builtin_mixture_2d() -> GaussianMixture:
    """The 2-D, three-component data of the built-in problems.

    Weights (0.5, 0.3, 0.2); means (−2, 0), (2, 1), (0, 2.5); covariances 0.3·I,
    diag(0.5, 0.1), [[0.4, 0.2], [0.2, 0.3]].
    """
    return GaussianMixture(**_BUILTIN_DATA)


def vp_gmm_2d() -> LinearSDEGMMProblem:
    """``vp-gmm-2d``: VP SDE, β_min = 0.1, β_max = 20, t ∈ [1e-3, 1]."""
    return LinearSDEGMMProblem(
        "vp-gmm-2d",
        VPSDE(beta_min=0.1, beta_max=20.0),
        builtin_mixture_2d(),
        t_min=1e-3,
        t_max=1.0,
        default_times=(0.05, 0.1, 0.3, 0.5, 1.0),
    )


def ve_gmm_2d() -> LinearSDEGMMProblem:
    """``ve-gmm-2d``: VE SDE, σ_min = 0.01, σ_max = 50, t ∈ [1e-3, 1]."""
    return LinearSDEGMMProblem(
        "ve-gmm-2d",
        VESDE(sigma_min=0.01, sigma_max=50.0),
        builtin_mixture_2d(),
        t_min=1e-3,
        t_max=1.0,
        default_times=(0.05, 0.1, 0.3, 0.5, 1.0),
    )


def ou_gmm_2d() -> LinearSDEGMMProblem:
    """``ou-gmm-2d``: OU SDE dx = −x dt + dW (σ_t² = ½(1 − e^{−2t})), t ∈ [1e-3, 5]."""
    return LinearSDEGMMProblem(
        "ou-gmm-2d",
        OUSDE(rate=1.0, diffusion_coefficient=1.0),
        builtin_mixture_2d(),
        t_min=1e-3,
        t_max=5.0,
        default_times=(0.1, 0.5, 1.0, 2.0, 5.0),
    )


# --- problem files ---------------------------------------------------------------------


def _check_keys(
    table: Mapping[str, Any], required: set[str], optional: set[str], source: str, prefix: str
) -> None:
    missing = sorted(required - table.keys())
    if missing:
        names = ", ".join(prefix + key for key in missing)
        raise ProblemError(f"{source}: missing key(s) {names}")
    unknown = sorted(table.keys() - required - optional)
    if unknown:
        names = ", ".join(prefix + str(key) for key in unknown)
        raise ProblemError(f"{source}: unknown key(s) {names}")


def _number(value: Any, key: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProblemError(f"{source}: {key} must be a number, got {value!r}")
    return float(value)


def _table(value: Any, key: str, source: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ProblemError(f"{source}: [{key}] must be a table")
    return value


def default_times_for(t_min: float, t_max: float) -> tuple[float, ...]:
    """``DEFAULT_TIME_FRACTIONS`` of t_max, raised to t_min, without duplicates."""
    return tuple(sorted({max(t_min, f * t_max) for f in DEFAULT_TIME_FRACTIONS}))


def linear_sde_gmm_from_mapping(mapping: Mapping[str, Any], source: str) -> LinearSDEGMMProblem:
    """Build a problem from a parsed problem file (the form in the module docstring).

    Parameters
    ----------
    mapping : mapping
        The parsed TOML document (``tomllib.load``) or :meth:`LinearSDEGMMProblem.parameters`.
    source : str
        Where the mapping came from (a path), named in every error message.

    Raises
    ------
    ProblemError
        One line naming ``source`` and the key: missing or unknown keys, a ``family``
        other than ``"linear-sde-gmm"``, an unknown ``sde.kind``, non-numeric or
        out-of-range SDE parameters, t_min ≥ t_max, ``times`` outside [t_min, t_max] or
        not strictly increasing, and invalid ``data`` (shapes, weights negative or not
        summing to 1 within 1e-9, covariances not symmetric positive definite).
    """
    mapping = _table(mapping, "problem", source)
    _check_keys(mapping, {"id", "family", "sde", "data"}, set(), source, "")
    problem_id = mapping["id"]
    if not isinstance(problem_id, str) or not problem_id:
        raise ProblemError(f"{source}: id must be a non-empty string, got {problem_id!r}")
    if mapping["family"] != FAMILY:
        raise ProblemError(f"{source}: family must be {FAMILY!r}, got {mapping['family']!r}")

    sde_table = _table(mapping["sde"], "sde", source)
    kind = sde_table.get("kind")
    if kind not in SDE_KINDS:
        raise ProblemError(
            f"{source}: sde.kind must be one of {', '.join(map(repr, SDE_KINDS))}, got {kind!r}"
        )
    file_keys = _SDE_FILE_KEYS[kind]
    _check_keys(sde_table, {"kind", *file_keys, *_SDE_WINDOW_KEYS}, {"times"}, source, "sde.")
    arguments = {
        arg: _number(sde_table[key], f"sde.{key}", source) for key, arg in file_keys.items()
    }
    try:
        sde = SDE_KINDS[kind](**arguments)
    except ProblemError as exc:
        raise ProblemError(f"{source}: sde.{exc}") from None
    t_min = _number(sde_table["t_min"], "sde.t_min", source)
    t_max = _number(sde_table["t_max"], "sde.t_max", source)
    times = sde_table.get("times")
    if times is None:
        times = default_times_for(t_min, t_max) if t_min < t_max else (t_max,)
    elif not isinstance(times, list | tuple):
        raise ProblemError(f"{source}: sde.times must be a list of numbers, got {times!r}")
    else:
        times = tuple(_number(t, f"sde.times[{i}]", source) for i, t in enumerate(times))

    data_table = _table(mapping["data"], "data", source)
    _check_keys(data_table, set(_DATA_KEYS), set(), source, "data.")
    try:
        data = GaussianMixture(**{key: data_table[key] for key in _DATA_KEYS})
    except ProblemError as exc:
        raise ProblemError(f"{source}: data.{exc}") from None

    try:
        return LinearSDEGMMProblem(
            problem_id, sde, data, t_min=t_min, t_max=t_max, default_times=times
        )
    except ProblemError as exc:
        raise ProblemError(f"{source}: sde.{exc}") from None
