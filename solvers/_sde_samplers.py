"""Samplers for score-based diffusion: reverse-SDE schemes and the probability-flow ODE.

All samplers take any score function ``score_fn(t, x) -> (d,)`` (exact or learned) and any
problem with Fokker–Planck dynamics dx = f(t, x) dt + g(t) dW
(:class:`~solvers._problem.AbstractFokkerPlanckDynamics`), act on one sample ``x`` of shape
``(d,)`` (batch with ``jax.vmap``), and are jittable (``equinox.filter_jit``).

* Reverse SDE (Song et al. 2021, eq. 6), integrated backward from t_start to t_end:
  dx = [f(t, x) − g(t)² s(t, x)] dt + g(t) dW̄. In the reversed time τ = t_start − t it is
  the forward SDE dy = b(τ, y) dτ + g dB with b = −f + g² s; both schemes below use a
  uniform grid of ``n_steps`` steps of size h = (t_start − t_end)/n_steps and ``lax.scan``.

  - :class:`EulerMaruyama`: y' = y + h b(t, y) + g(t) √h ξ. Weak order 1, and strong
    order 1 because the noise is additive (Kloeden & Platen 1992, §10.2, §14.1).
  - :class:`StochasticHeun`: with ḡ = ½(g(t) + g(t − h)),
    ỹ = y + h b(t, y) + ḡ √h ξ,  y' = y + ½h [b(t, y) + b(t − h, ỹ)] + ḡ √h ξ.
    For additive noise this is the weak order 2.0 explicit scheme of Kloeden & Platen
    (1992, eq. 15.1.4); averaging g over the step supplies the ∂_t g term of the weak
    order 2 Taylor scheme. Strong order 1.

* Probability-flow ODE (Song et al. 2021, eq. 13) dx/dt = f(t, x) − ½ g(t)² s(t, x),
  solved with diffrax (Tsit5 or Dopri5, adaptive steps with a PID controller) forward or
  backward in time; its marginals are p_t when s = ∇ log p_t.

References
----------
Y. Song, J. Sohl-Dickstein, D. P. Kingma, A. Kumar, S. Ermon, B. Poole, "Score-Based
Generative Modeling through Stochastic Differential Equations", ICLR 2021.
T. Karras, M. Aittala, T. Aila, S. Laine, "Elucidating the Design Space of Diffusion-Based
Generative Models", NeurIPS 2022 (Heun's second-order method for diffusion sampling).
P. E. Kloeden, E. Platen, "Numerical Solution of Stochastic Differential Equations",
Springer 1992.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar, final

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray

from ._problem import AbstractFokkerPlanckDynamics

ScoreFn = Callable[[Float[Array, ""], Float[Array, " d"]], Float[Array, " d"]]


def _time_window(
    dynamics: AbstractFokkerPlanckDynamics, t_start: ArrayLike | None, t_end: ArrayLike | None
) -> tuple[Array, Array]:
    t_start = dynamics.t_max if t_start is None else t_start
    t_end = dynamics.t_min if t_end is None else t_end
    dtype = jnp.result_type(float)
    return jnp.asarray(t_start, dtype=dtype), jnp.asarray(t_end, dtype=dtype)


def _check_point(x: Array, dynamics: AbstractFokkerPlanckDynamics) -> None:
    if x.shape != (dynamics.dim,):
        raise ValueError(
            f"expected one point x of shape ({dynamics.dim},), got shape {x.shape}; "
            "samplers act on one sample, batch with jax.vmap"
        )


class AbstractReverseSDESampler(eqx.Module):
    """A fixed-step scheme for the reverse SDE dx = (f − g² s) dt + g dW̄, run backward.

    Subclasses give one step; :meth:`integrate` (given the standard normal increments) and
    :meth:`__call__` (given a key) run it over the uniform grid with ``lax.scan``.
    """

    n_steps: eqx.AbstractVar[int]
    name: eqx.AbstractClassVar[str]
    weak_order: eqx.AbstractClassVar[float]
    strong_order: eqx.AbstractClassVar[float]

    def __check_init__(self) -> None:
        # Runs for every concrete sampler (equinox calls each class's __check_init__).
        if self.n_steps < 1:
            raise ValueError(f"n_steps must be >= 1, got {self.n_steps}")

    @abc.abstractmethod
    def step(
        self,
        dynamics: AbstractFokkerPlanckDynamics,
        score_fn: ScoreFn,
        t: Float[Array, ""],
        h: Float[Array, ""],
        x: Float[Array, " d"],
        xi: Float[Array, " d"],
    ) -> Float[Array, " d"]:
        """One step from time t to t − h (h > 0) with standard normal ξ: ΔW = √h ξ."""

    def integrate(
        self,
        dynamics: AbstractFokkerPlanckDynamics,
        score_fn: ScoreFn,
        x: Float[Array, " d"],
        noise: Float[Array, "n_steps d"],
        *,
        t_start: ArrayLike | None = None,
        t_end: ArrayLike | None = None,
    ) -> Float[Array, " d"]:
        """Run the scheme from ``t_start`` (default t_max) down to ``t_end`` (default t_min).

        Deterministic given ``noise``, the ``n_steps`` standard normal vectors ξ_n (the
        Brownian increments are √h ξ_n), so two step sizes can share one Brownian path.
        """
        _check_point(x, dynamics)
        if noise.shape != (self.n_steps, dynamics.dim):
            raise ValueError(
                f"noise must have shape ({self.n_steps}, {dynamics.dim}), got {noise.shape}"
            )
        t_start, t_end = _time_window(dynamics, t_start, t_end)
        h = (t_start - t_end) / self.n_steps

        def body(y: Array, inputs: tuple[Array, Array]) -> tuple[Array, None]:
            n, xi = inputs
            return self.step(dynamics, score_fn, t_start - n * h, h, y, xi), None

        steps = jnp.arange(self.n_steps, dtype=h.dtype)
        x_end, _ = lax.scan(body, x, (steps, noise.astype(x.dtype)))
        return x_end

    def __call__(
        self,
        dynamics: AbstractFokkerPlanckDynamics,
        score_fn: ScoreFn,
        x: Float[Array, " d"],
        *,
        key: PRNGKeyArray,
        t_start: ArrayLike | None = None,
        t_end: ArrayLike | None = None,
    ) -> Float[Array, " d"]:
        """One reverse-SDE sample path from ``x`` at ``t_start`` to ``t_end``; returns x(t_end).

        Parameters
        ----------
        dynamics : AbstractFokkerPlanckDynamics
            Supplies f(t, x), g(t) and the default window [t_min, t_max].
        score_fn : callable
            s(t, x) → ``(d,)``.
        x : array ``(d,)``
            State at ``t_start`` (a sample of p_{t_start} for an exact sampler).
        key : PRNG key
            For the ``n_steps`` Gaussian increments.
        t_start, t_end : float, optional
            Defaults t_max and t_min; t_start > t_end.
        """
        noise = jax.random.normal(key, (self.n_steps, dynamics.dim), dtype=x.dtype)
        return self.integrate(dynamics, score_fn, x, noise, t_start=t_start, t_end=t_end)

    def parameters(self) -> dict[str, Any]:
        """Scheme name, ``n_steps`` and orders, for provenance."""
        return {
            "scheme": self.name,
            "n_steps": self.n_steps,
            "weak_order": self.weak_order,
            "strong_order": self.strong_order,
        }


def _reverse_drift(
    dynamics: AbstractFokkerPlanckDynamics, score_fn: ScoreFn, t: Array, x: Array
) -> Array:
    # b = −f + g² s: the reverse-SDE drift written in the reversed time τ = −t.
    return -dynamics.drift(t, x) + dynamics.diffusion(t) ** 2 * score_fn(t, x)


@final
class EulerMaruyama(AbstractReverseSDESampler):
    """Euler–Maruyama for the reverse SDE: x' = x + h (g² s − f)(t, x) + g(t) √h ξ.

    Weak order 1; strong order 1 (additive noise). ``n_steps`` ≥ 1 uniform steps.
    """

    name: ClassVar[str] = "euler-maruyama"
    weak_order: ClassVar[float] = 1.0
    strong_order: ClassVar[float] = 1.0
    n_steps: int = eqx.field(static=True)

    def step(self, dynamics, score_fn, t, h, x, xi):
        return (
            x
            + h * _reverse_drift(dynamics, score_fn, t, x)
            + dynamics.diffusion(t) * jnp.sqrt(h) * xi
        )


@final
class StochasticHeun(AbstractReverseSDESampler):
    """Stochastic Heun (predictor–corrector trapezoid) for the reverse SDE, additive noise.

    With b = g² s − f, ḡ = ½(g(t) + g(t − h)) and ΔW = √h ξ:

        x̃ = x + h b(t, x) + ḡ ΔW,   x' = x + ½h [b(t, x) + b(t − h, x̃)] + ḡ ΔW.

    Weak order 2 for additive noise (Kloeden & Platen 1992, eq. 15.1.4); strong order 1.
    Two score evaluations per step.
    """

    name: ClassVar[str] = "stochastic-heun"
    weak_order: ClassVar[float] = 2.0
    strong_order: ClassVar[float] = 1.0
    n_steps: int = eqx.field(static=True)

    def step(self, dynamics, score_fn, t, h, x, xi):
        noise = 0.5 * (dynamics.diffusion(t) + dynamics.diffusion(t - h)) * jnp.sqrt(h) * xi
        b0 = _reverse_drift(dynamics, score_fn, t, x)
        predictor = x + h * b0 + noise
        b1 = _reverse_drift(dynamics, score_fn, t - h, predictor)
        return x + 0.5 * h * (b0 + b1) + noise


_ODE_SOLVERS = {"tsit5": diffrax.Tsit5, "dopri5": diffrax.Dopri5}
_ADJOINTS = {"reverse": diffrax.RecursiveCheckpointAdjoint, "forward": diffrax.ForwardMode}


@final
class ProbabilityFlowODE(eqx.Module):
    """Probability-flow ODE dx/dt = f(t, x) − ½ g(t)² s(t, x) with diffrax, either direction.

    Parameters
    ----------
    rtol, atol : float
        Tolerances of the PID step-size controller (default 1e-8 both).
    solver : {"tsit5", "dopri5"}
        Explicit Runge–Kutta pair of order 5(4) (Tsitouras 2011; Dormand–Prince 1980).
    max_steps : int
        Step budget; exceeding it raises at run time.
    adjoint : {"reverse", "forward"}
        How to differentiate through the solve: ``"reverse"`` (default; diffrax's
        ``RecursiveCheckpointAdjoint``, for ``jax.grad``/``jacrev``) or ``"forward"``
        (``diffrax.ForwardMode``, for ``jax.jvp``/``jacfwd`` — cheaper for the d × d flow
        Jacobian in small d). The solution itself does not depend on it.

    References
    ----------
    Song et al. 2021, ICLR, eq. 13; P. Kidger, "On Neural Differential Equations", 2021
    (diffrax).
    """

    rtol: float = eqx.field(static=True, default=1e-8)
    atol: float = eqx.field(static=True, default=1e-8)
    solver: str = eqx.field(static=True, default="tsit5")
    max_steps: int = eqx.field(static=True, default=16384)
    adjoint: str = eqx.field(static=True, default="reverse")

    def __check_init__(self) -> None:
        if self.solver not in _ODE_SOLVERS:
            raise ValueError(f"solver must be one of {sorted(_ODE_SOLVERS)}, got {self.solver!r}")
        if self.adjoint not in _ADJOINTS:
            raise ValueError(f"adjoint must be one of {sorted(_ADJOINTS)}, got {self.adjoint!r}")
        if not (self.rtol > 0 and self.atol > 0):
            raise ValueError(f"rtol and atol must be > 0, got {self.rtol}, {self.atol}")

    def solve(
        self,
        dynamics: AbstractFokkerPlanckDynamics,
        score_fn: ScoreFn,
        x: Float[Array, " d"],
        *,
        t_start: ArrayLike | None = None,
        t_end: ArrayLike | None = None,
        save_times: Float[Array, " m"] | None = None,
    ) -> diffrax.Solution:
        """The diffrax solution from ``x`` at ``t_start`` (default t_max) to ``t_end``
        (default t_min; t_end > t_start integrates forward in time).

        ``save_times`` (monotone between t_start and t_end) selects the saved states;
        by default only x(t_end). ``solution.stats["num_steps"]`` counts accepted and
        rejected steps.
        """
        _check_point(x, dynamics)
        t_start, t_end = _time_window(dynamics, t_start, t_end)

        def velocity(t: Array, y: Array, args: None) -> Array:
            return dynamics.drift(t, y) - 0.5 * dynamics.diffusion(t) ** 2 * score_fn(t, y)

        saveat = diffrax.SaveAt(t1=True) if save_times is None else diffrax.SaveAt(ts=save_times)
        return diffrax.diffeqsolve(
            diffrax.ODETerm(velocity),
            _ODE_SOLVERS[self.solver](),
            t0=t_start,
            t1=t_end,
            dt0=None,
            y0=x,
            saveat=saveat,
            stepsize_controller=diffrax.PIDController(rtol=self.rtol, atol=self.atol),
            max_steps=self.max_steps,
            adjoint=_ADJOINTS[self.adjoint](),
        )

    def __call__(
        self,
        dynamics: AbstractFokkerPlanckDynamics,
        score_fn: ScoreFn,
        x: Float[Array, " d"],
        *,
        t_start: ArrayLike | None = None,
        t_end: ArrayLike | None = None,
    ) -> Float[Array, " d"]:
        """x(t_end) of the probability-flow ODE started at x(t_start) = ``x``."""
        solution = self.solve(dynamics, score_fn, x, t_start=t_start, t_end=t_end)
        return solution.ys[-1]

    def parameters(self) -> dict[str, Any]:
        """Solver, tolerances and step budget, for provenance."""
        return {
            "scheme": "probability-flow-ode",
            "solver": self.solver,
            "rtol": self.rtol,
            "atol": self.atol,
            "max_steps": self.max_steps,
            "controller": "pid",
            "adjoint": self.adjoint,
        }
