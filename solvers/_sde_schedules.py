"""Linear forward SDEs dx = a(t) x dt + g(t) dW with closed-form perturbation kernels.

Every schedule here has a scalar linear drift f(t, x) = a(t) x and an isotropic diffusion
g(t), so a sample started at x₀ is, at time t,

    x_t = α_t x₀ + σ_t ε,   ε ~ N(0, I),   α_t = exp(∫₀ᵗ a),   σ_t² = α_t² ∫₀ᵗ g²/α_s² ds,

and the moments obey dα/dt = a α, dσ²/dt = 2a σ² + g². Three schedules:

* :class:`OUSDE` — Ornstein–Uhlenbeck dx = −θx dt + σ dW: α_t = e^{−θt},
  σ_t² = σ²(1 − e^{−2θt})/(2θ);
* :class:`VPSDE` — variance preserving, β(t) = β_min + t(β_max − β_min), f = −½β x, g = √β:
  α_t = exp(−½∫₀ᵗβ), σ_t² = 1 − α_t²;
* :class:`VESDE` — variance exploding, σ(t) = σ_min(σ_max/σ_min)^t, f = 0,
  g² = dσ²/dt = 2σ(t)² ln(σ_max/σ_min): α_t = 1, σ_t² = σ(t)² − σ(0)².

σ_t² is evaluated with ``expm1`` so that it keeps full relative precision as t → 0.

References
----------
Y. Song, J. Sohl-Dickstein, D. P. Kingma, A. Kumar, S. Ermon, B. Poole, "Score-Based
Generative Modeling through Stochastic Differential Equations", ICLR 2021 (VP and VE SDEs,
their perturbation kernels, Appendix B).
"""

from __future__ import annotations

import abc
import math
from typing import Any, ClassVar, final

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from ._problem import ProblemError


def _as_time(t: ArrayLike) -> Float[Array, ""]:
    # The default float dtype (float64 under x64), so that an integer time such as 0 works.
    return jnp.asarray(t, dtype=jnp.result_type(float))


def _check_finite(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProblemError(f"{name} must be a finite number, got {value!r}")


class AbstractLinearSDE(eqx.Module):
    """A forward SDE dx = a(t) x dt + g(t) dW with scalar a, g and known α_t, σ_t².

    Subclasses give the drift coefficient a(t), the diffusion g(t) and the kernel moments;
    :meth:`drift` is f(t, x) = a(t) x and ∇·f = d·a(t).
    """

    kind: eqx.AbstractClassVar[str]

    @abc.abstractmethod
    def drift_coefficient(self, t: ArrayLike) -> Float[Array, ""]:
        """a(t) in f(t, x) = a(t) x."""

    @abc.abstractmethod
    def diffusion(self, t: ArrayLike) -> Float[Array, ""]:
        """g(t)."""

    @abc.abstractmethod
    def alpha(self, t: ArrayLike) -> Float[Array, ""]:
        """Signal scale α_t of the perturbation kernel N(α_t x₀, σ_t² I)."""

    @abc.abstractmethod
    def sigma2(self, t: ArrayLike) -> Float[Array, ""]:
        """Noise variance σ_t² of the perturbation kernel N(α_t x₀, σ_t² I)."""

    @abc.abstractmethod
    def parameters(self) -> dict[str, Any]:
        """``{"kind": ..., <parameters>}``, the ``[sde]`` table of a problem file."""

    def drift(self, t: ArrayLike, x: Float[Array, " d"]) -> Float[Array, " d"]:
        """f(t, x) = a(t) x."""
        return self.drift_coefficient(t) * x


@final
class OUSDE(AbstractLinearSDE):
    """Ornstein–Uhlenbeck SDE dx = −θ x dt + σ dW.

    α_t = e^{−θt},  σ_t² = σ² (1 − e^{−2θt}) / (2θ);  stationary law N(0, σ²/(2θ) I).

    Parameters
    ----------
    rate : float
        Mean-reversion rate θ > 0.
    diffusion_coefficient : float
        Noise amplitude σ > 0 (``diffusion`` in a problem file).
    """

    kind: ClassVar[str] = "ou"
    rate: float = eqx.field(static=True)
    diffusion_coefficient: float = eqx.field(static=True)

    def __check_init__(self) -> None:
        _check_finite("rate", self.rate)
        _check_finite("diffusion", self.diffusion_coefficient)
        if self.rate <= 0:
            raise ProblemError(f"rate must be > 0, got {self.rate!r}")
        if self.diffusion_coefficient <= 0:
            raise ProblemError(f"diffusion must be > 0, got {self.diffusion_coefficient!r}")

    def drift_coefficient(self, t: ArrayLike) -> Float[Array, ""]:
        return jnp.full_like(_as_time(t), -self.rate)

    def diffusion(self, t: ArrayLike) -> Float[Array, ""]:
        return jnp.full_like(_as_time(t), self.diffusion_coefficient)

    def alpha(self, t: ArrayLike) -> Float[Array, ""]:
        return jnp.exp(-self.rate * _as_time(t))

    def sigma2(self, t: ArrayLike) -> Float[Array, ""]:
        t = _as_time(t)
        return -(self.diffusion_coefficient**2) * jnp.expm1(-2 * self.rate * t) / (2 * self.rate)

    def parameters(self) -> dict[str, Any]:
        return {"kind": self.kind, "rate": self.rate, "diffusion": self.diffusion_coefficient}


@final
class VPSDE(AbstractLinearSDE):
    """Variance-preserving SDE dx = −½β(t) x dt + √β(t) dW, β(t) = β_min + t(β_max − β_min).

    log α_t = −½ t β_min − ¼ t² (β_max − β_min),  σ_t² = 1 − α_t² = −expm1(2 log α_t).

    Parameters
    ----------
    beta_min, beta_max : float
        β(0) ≥ 0 and β(1) ≥ β(0), β(1) > 0 (Song et al. 2021 use 0.1 and 20).
    """

    kind: ClassVar[str] = "vp"
    beta_min: float = eqx.field(static=True)
    beta_max: float = eqx.field(static=True)

    def __check_init__(self) -> None:
        _check_finite("beta_min", self.beta_min)
        _check_finite("beta_max", self.beta_max)
        if self.beta_min < 0:
            raise ProblemError(f"beta_min must be >= 0, got {self.beta_min!r}")
        if self.beta_max <= 0 or self.beta_max < self.beta_min:
            raise ProblemError(
                f"beta_max must be > 0 and >= beta_min, got {self.beta_max!r} "
                f"(beta_min = {self.beta_min!r})"
            )

    def beta(self, t: ArrayLike) -> Float[Array, ""]:
        """β(t) = β_min + t (β_max − β_min)."""
        return self.beta_min + _as_time(t) * (self.beta_max - self.beta_min)

    def drift_coefficient(self, t: ArrayLike) -> Float[Array, ""]:
        return -0.5 * self.beta(t)

    def diffusion(self, t: ArrayLike) -> Float[Array, ""]:
        return jnp.sqrt(self.beta(t))

    def log_alpha(self, t: ArrayLike) -> Float[Array, ""]:
        """log α_t = −½ ∫₀ᵗ β."""
        t = _as_time(t)
        return -0.5 * t * self.beta_min - 0.25 * t**2 * (self.beta_max - self.beta_min)

    def alpha(self, t: ArrayLike) -> Float[Array, ""]:
        return jnp.exp(self.log_alpha(t))

    def sigma2(self, t: ArrayLike) -> Float[Array, ""]:
        return -jnp.expm1(2 * self.log_alpha(t))

    def parameters(self) -> dict[str, Any]:
        return {"kind": self.kind, "beta_min": self.beta_min, "beta_max": self.beta_max}


@final
class VESDE(AbstractLinearSDE):
    """Variance-exploding SDE dx = g(t) dW, σ(t) = σ_min (σ_max/σ_min)^t, g² = d σ(t)²/dt.

    g(t) = σ(t) √(2 ln(σ_max/σ_min)),  α_t = 1,  σ_t² = σ(t)² − σ(0)² = σ_min² expm1(2t ln r)
    with r = σ_max/σ_min.

    Parameters
    ----------
    sigma_min, sigma_max : float
        0 < σ_min < σ_max (Song et al. 2021 use 0.01 and 50 for CIFAR-10).
    """

    kind: ClassVar[str] = "ve"
    sigma_min: float = eqx.field(static=True)
    sigma_max: float = eqx.field(static=True)

    def __check_init__(self) -> None:
        _check_finite("sigma_min", self.sigma_min)
        _check_finite("sigma_max", self.sigma_max)
        if self.sigma_min <= 0:
            raise ProblemError(f"sigma_min must be > 0, got {self.sigma_min!r}")
        if self.sigma_max <= self.sigma_min:
            raise ProblemError(
                f"sigma_max must be > sigma_min, got {self.sigma_max!r} "
                f"(sigma_min = {self.sigma_min!r})"
            )

    @property
    def _log_ratio(self) -> float:
        return math.log(self.sigma_max / self.sigma_min)

    def sigma(self, t: ArrayLike) -> Float[Array, ""]:
        """σ(t) = σ_min (σ_max/σ_min)^t."""
        return self.sigma_min * jnp.exp(_as_time(t) * self._log_ratio)

    def drift_coefficient(self, t: ArrayLike) -> Float[Array, ""]:
        return jnp.zeros_like(_as_time(t))

    def diffusion(self, t: ArrayLike) -> Float[Array, ""]:
        return self.sigma(t) * math.sqrt(2 * self._log_ratio)

    def alpha(self, t: ArrayLike) -> Float[Array, ""]:
        return jnp.ones_like(_as_time(t))

    def sigma2(self, t: ArrayLike) -> Float[Array, ""]:
        t = _as_time(t)
        return self.sigma_min**2 * jnp.expm1(2 * t * self._log_ratio)

    def parameters(self) -> dict[str, Any]:
        return {"kind": self.kind, "sigma_min": self.sigma_min, "sigma_max": self.sigma_max}


SDE_KINDS: dict[str, type[AbstractLinearSDE]] = {"ou": OUSDE, "vp": VPSDE, "ve": VESDE}
"""Problem-file ``[sde] kind`` → schedule class."""
