r"""Small equinox networks for learned scores and log-densities of the linear-SDE problems.

For a linear forward SDE with perturbation kernel :math:`N(\alpha_t x_0, \sigma_t^2 I)`
(:mod:`solvers._sde_schedules`), the networks here are *preconditioned* so that the part a
multilayer perceptron has to learn stays of order one over the whole time window. With
:math:`\tau_t^2 = \sigma_t^2 + \alpha_t^2 v` (``data_variance`` v, a typical per-coordinate
variance of the data) and a learned vector c,

.. math::

    s_\theta(t, x) = \frac{-x + \alpha_t c + \alpha_t^2\, G_\theta(t, x)}{\tau_t^2},
    \qquad
    u_\theta(t, x) = \frac{-\tfrac12 |x|^2 + \alpha_t\, c\cdot x
        + \alpha_t^2 H_\theta(t, x)}{\tau_t^2} - \frac d2 \log(2\pi\tau_t^2),

for :class:`ScoreMLP` and :class:`PotentialMLP` (:math:`\nabla_x u_\theta` has the form of
:math:`s_\theta` with :math:`G = \nabla_x H`). Why this form: for Gaussian data
:math:`N(m, vI)` the exact score and log-density are these with c = m and G = H = 0; for a
mixture with mean m, :math:`\tau_t^2 s + x = \alpha_t m + O(\alpha_t^2)` as
:math:`\alpha_t \to 0` (the responsibilities tend to the weights), so with c = m the
network's part G is O(1) at every t instead of growing like :math:`\alpha_t^{-2}`. The
Gaussian part solves the Fokker–Planck equation exactly, and the network's error enters the
score multiplied by :math:`\alpha_t^2/\tau_t^2`, which vanishes as the marginal forgets the data.

:math:`G_\theta` and :math:`H_\theta` are :class:`TimeConditionedMLP` s (SiLU) of the scaled
state :math:`x/\tau_t` and the time features
:math:`\varphi(t) = (t, \log(\alpha_t/\sigma_t), \sin \pi k t, \cos \pi k t)_{k=1..K}`
(the log signal-to-noise ratio resolves the fast change of the marginals near t = 0).

``time_scale`` (default 1) makes a model evaluate everything at ``time_scale * t``; a value
other than 1 gives the "wrong time scaling" defect of the test fixtures.

Every function acts on one sample (``t`` a scalar, ``x`` of shape (d,)); batch with
``jax.vmap``. The array leaves take JAX's default float dtype: float64 when the caller has
switched x64 on (the CLI and the tests do; this module never does). The models are traced
as pytrees (``equinox.filter_jit``, ``jax.grad`` in t and x).

Checkpoints (:mod:`verify._checkpoint`) rebuild a model with
``score_mlp(**hyperparameters, key=...)`` or ``potential_mlp(...)``: the builder spec is
``"solvers.networks:score_mlp"``; the ``sde`` hyper-parameter is the problem file's
``[sde]`` table without the time window (``{"kind": "vp", "beta_min": 0.1,
"beta_max": 20.0}``).

References
----------
.. [1] Y. Song, J. Sohl-Dickstein, D. P. Kingma, A. Kumar, S. Ermon, B. Poole, "Score-Based
   Generative Modeling through Stochastic Differential Equations", ICLR 2021 (linear
   SDEs, time-conditioned score networks).
.. [2] T. Karras, M. Aittala, T. Aila, S. Laine, "Elucidating the Design Space of
   Diffusion-Based Generative Models", NeurIPS 2022 (preconditioning of the network's
   inputs and outputs by the noise level).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar, Literal, final

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._linear_sde_gmm import _SDE_FILE_KEYS
from ._sde_schedules import SDE_KINDS, AbstractLinearSDE

__all__ = [
    "PotentialMLP",
    "ScoreMLP",
    "TimeConditionedMLP",
    "potential_mlp",
    "score_mlp",
    "sde_from_parameters",
    "time_features",
]


def _float_dtype() -> Any:
    # float64 under x64 (checkpoints store float64 leaves), float32 otherwise.
    return jnp.result_type(float)


def time_features(
    t: Float[Array, ""], alpha: Float[Array, ""], sigma2: Float[Array, ""], n_fourier: int
) -> Float[Array, " 2+2*n_fourier"]:
    r"""φ(t) = (t, log(α_t/σ_t), sin πkt, cos πkt for k = 1..K), shape (2 + 2K,).

    Requires σ_t > 0 (t > 0 for the built-in schedules).
    """
    t = jnp.asarray(t)
    if t.ndim != 0:
        raise ValueError(f"t must be a scalar, got shape {t.shape}; batch with jax.vmap")
    log_snr = jnp.log(alpha) - 0.5 * jnp.log(sigma2)
    frequencies = math.pi * jnp.arange(1, n_fourier + 1, dtype=t.dtype)
    return jnp.concatenate(
        [jnp.stack([t, log_snr]), jnp.sin(frequencies * t), jnp.cos(frequencies * t)]
    )


@final
class TimeConditionedMLP(eqx.Module):
    """y = MLP([x, φ]): a SiLU multilayer perceptron of a state and time features.

    Parameters
    ----------
    dim : int
        d, size of x.
    out_size : int or "scalar"
        Output size; ``"scalar"`` returns shape ().
    width, depth : int
        Hidden width and number of hidden layers (``equinox.nn.MLP``).
    n_fourier : int
        K, the number of Fourier frequencies in φ (:func:`time_features`).
    key : PRNG key
        Initialisation (keyword-only).
    """

    mlp: eqx.nn.MLP
    dim: int = eqx.field(static=True)
    n_fourier: int = eqx.field(static=True)

    def __init__(
        self,
        *,
        dim: int,
        out_size: int | Literal["scalar"],
        width: int,
        depth: int,
        n_fourier: int,
        key: PRNGKeyArray,
    ):
        self.dim = int(dim)
        self.n_fourier = int(n_fourier)
        self.mlp = eqx.nn.MLP(
            self.dim + 2 + 2 * self.n_fourier,
            out_size,
            int(width),
            int(depth),
            activation=jax.nn.silu,
            dtype=_float_dtype(),
            key=key,
        )

    def __call__(self, features: Float[Array, " f"], x: Float[Array, " d"]) -> Array:
        if x.shape != (self.dim,):
            raise ValueError(
                f"x must have shape ({self.dim},), got {x.shape}; the network acts on one "
                "sample, batch with jax.vmap"
            )
        return self.mlp(jnp.concatenate([x, features]))


def _check_time(t: ArrayLike) -> Float[Array, ""]:
    t = jnp.asarray(t, dtype=jnp.result_type(t, float))
    if t.ndim != 0:
        raise ValueError(f"t must be a scalar, got shape {t.shape}; batch with jax.vmap")
    return t


class _Preconditioning(eqx.Module):
    """α_t, τ_t² = σ_t² + α_t² v and φ(t) at the scaled time ``time_scale * t``."""

    sde: AbstractLinearSDE
    data_variance: float = eqx.field(static=True)
    n_fourier: int = eqx.field(static=True)
    time_scale: float = eqx.field(static=True)

    def __call__(self, t: ArrayLike) -> tuple[Array, Array, Array]:
        t = self.time_scale * _check_time(t)
        alpha, sigma2 = self.sde.alpha(t), self.sde.sigma2(t)
        tau2 = sigma2 + alpha**2 * self.data_variance
        return alpha, tau2, time_features(t, alpha, sigma2, self.n_fourier)


@final
class ScoreMLP(eqx.Module):
    r"""Learned score :math:`s_\theta = (-x + \alpha_t c + \alpha_t^2 G_\theta(t, x))/\tau_t^2`.

    See the module docstring for the form and its motivation; build with :func:`score_mlp`.
    """

    net: TimeConditionedMLP
    mean: Float[Array, " d"]
    preconditioning: _Preconditioning

    def score(self, t: ArrayLike, x: Float[Array, " d"]) -> Float[Array, " d"]:
        """s_θ(t, x) of shape (d,) (one sample; ``t`` a scalar)."""
        alpha, tau2, features = self.preconditioning(t)
        g = self.net(features, x / jnp.sqrt(tau2))
        return (-x + alpha * self.mean + alpha**2 * g) / tau2


@final
class PotentialMLP(eqx.Module):
    r"""Learned unnormalised log-density :math:`u_\theta(t, x) \approx \log p_t(x) + c(t)`.

    :math:`u_\theta = (-\tfrac12|x|^2 + \alpha_t c\cdot x + \alpha_t^2 H_\theta(t,x))/\tau_t^2
    - \tfrac d2\log(2\pi\tau_t^2)` (module docstring); its score is
    :math:`\nabla_x u_\theta`. Build with :func:`potential_mlp`.
    """

    unnormalised: ClassVar[bool] = True
    net: TimeConditionedMLP
    mean: Float[Array, " d"]
    preconditioning: _Preconditioning

    def log_density(self, t: ArrayLike, x: Float[Array, " d"]) -> Float[Array, ""]:
        """u_θ(t, x), a scalar, known up to an additive function of t."""
        alpha, tau2, features = self.preconditioning(t)
        h = self.net(features, x / jnp.sqrt(tau2))
        d = x.shape[0]
        quadratic = -0.5 * jnp.sum(x * x) + alpha * jnp.dot(self.mean, x) + alpha**2 * h
        return quadratic / tau2 - 0.5 * d * jnp.log(2 * math.pi * tau2)


def sde_from_parameters(parameters: Mapping[str, Any]) -> AbstractLinearSDE:
    """The schedule of a problem file's ``[sde]`` table (``kind`` and its parameters).

    ``t_min``, ``t_max`` and ``times`` are ignored, so ``problem.parameters()["sde"]`` works.
    """
    kind = parameters.get("kind")
    if kind not in SDE_KINDS:
        raise ValueError(f"sde kind must be one of {sorted(SDE_KINDS)}, got {kind!r}")
    keys = _SDE_FILE_KEYS[kind]
    missing = sorted(set(keys) - parameters.keys())
    if missing:
        raise ValueError(f"sde parameters lack {missing} for kind {kind!r}")
    return SDE_KINDS[kind](**{arg: float(parameters[key]) for key, arg in keys.items()})


def _preconditioning(
    sde: Mapping[str, Any], data_variance: float, n_fourier: int, time_scale: float
) -> _Preconditioning:
    for name, value in (("data_variance", data_variance), ("time_scale", time_scale)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if n_fourier < 0:
        raise ValueError(f"n_fourier must be >= 0, got {n_fourier!r}")
    return _Preconditioning(
        sde_from_parameters(sde), float(data_variance), int(n_fourier), float(time_scale)
    )


def score_mlp(
    *,
    dim: int,
    width: int,
    depth: int,
    sde: Mapping[str, Any],
    data_variance: float = 1.0,
    n_fourier: int = 4,
    time_scale: float = 1.0,
    key: PRNGKeyArray,
) -> ScoreMLP:
    r"""Build a :class:`ScoreMLP` (a checkpoint builder: JSON hyper-parameters and ``key``).

    Parameters
    ----------
    dim : int
        d.
    width, depth : int
        Hidden width and number of hidden layers of :math:`G_\theta`.
    sde : mapping
        The forward SDE, ``{"kind": "vp", "beta_min": ..., "beta_max": ...}`` (the keys of a
        problem file's ``[sde]`` table; see :func:`sde_from_parameters`).
    data_variance : float, default 1.0
        v in :math:`\tau_t^2 = \sigma_t^2 + \alpha_t^2 v`.
    n_fourier : int, default 4
        K, Fourier frequencies of the time features.
    time_scale : float, default 1.0
        Evaluate the model at ``time_scale * t`` (≠ 1: a deliberately wrong model).
    key : PRNG key
        Initialisation of the MLP (keyword-only, no default); c starts at 0.
    """
    net = TimeConditionedMLP(
        dim=dim, out_size=dim, width=width, depth=depth, n_fourier=n_fourier, key=key
    )
    return ScoreMLP(
        net=net,
        mean=jnp.zeros(dim, dtype=_float_dtype()),
        preconditioning=_preconditioning(sde, data_variance, n_fourier, time_scale),
    )


def potential_mlp(
    *,
    dim: int,
    width: int,
    depth: int,
    sde: Mapping[str, Any],
    data_variance: float = 1.0,
    n_fourier: int = 4,
    time_scale: float = 1.0,
    key: PRNGKeyArray,
) -> PotentialMLP:
    r"""Build a :class:`PotentialMLP`; parameters as :func:`score_mlp` (:math:`H_\theta`
    has a scalar output)."""
    net = TimeConditionedMLP(
        dim=dim, out_size="scalar", width=width, depth=depth, n_fourier=n_fourier, key=key
    )
    return PotentialMLP(
        net=net,
        mean=jnp.zeros(dim, dtype=_float_dtype()),
        preconditioning=_preconditioning(sde, data_variance, n_fourier, time_scale),
    )
