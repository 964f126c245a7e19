"""Capabilities of Landau problems: the collision kernel, the initial datum, exact solutions.

Two capability classes, in the equinox abstract/final pattern of :mod:`solvers._problem`:

* :class:`AbstractLandauProblem` — the spatially homogeneous Landau equation
  ∂_t f = ∇·∫ A(v − v_*) f f_* (∇log f − ∇_* log f_*) dv_* with a known kernel A
  (:class:`~solvers._landau_kernel.LandauKernel`), a known initial datum f₀ at ``t_min``
  (samples, log-density, score) and its collision invariants (momentum, energy);
* :class:`AbstractExactLandauProblem` — additionally exact marginals f_t, the exact particle
  velocity U(t, v), characteristics X(t₁; t₀, x₀) of dX/dt = U and the entropy rate dH/dt
  (the BKW solution, :mod:`solvers._bkw`).

Verification code asks ``isinstance(problem, AbstractExactLandauProblem)`` to decide whether
exact references (flow error, finite-N residual floor) exist; nothing is duck-typed.

Kept out of :mod:`solvers._problem` so that the generic interfaces do not import the
Landau kernel. All functions act on one sample (``x`` of shape ``(d,)``); batch with
``jax.vmap``.
"""

from __future__ import annotations

import abc

import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from ._landau_kernel import LandauKernel
from ._problem import AbstractExactMarginals, AbstractProblem


class AbstractLandauProblem(AbstractProblem):
    """A homogeneous Landau problem: kernel A, initial datum f₀ at ``t_min``, invariants."""

    @property
    @abc.abstractmethod
    def kernel(self) -> LandauKernel:
        """The collision kernel A(z) = C_γ |z|^γ (|z|² I − z zᵀ)."""

    @abc.abstractmethod
    def sample_initial(self, n: int, *, key: PRNGKeyArray) -> Float[Array, "n d"]:
        """``n`` iid samples of the initial datum f₀ = f(t_min, ·)."""

    @abc.abstractmethod
    def initial_log_density(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        """log f₀(x), normalised."""

    @abc.abstractmethod
    def initial_score(self, x: Float[Array, " d"]) -> Float[Array, " d"]:
        """∇log f₀(x)."""

    @abc.abstractmethod
    def momentum(self) -> np.ndarray:
        """∫ v f dv, shape (d,): a collision invariant, exact (from f₀)."""

    @abc.abstractmethod
    def energy(self) -> float:
        """½∫ |v|² f dv: a collision invariant, exact (from f₀)."""


class AbstractExactLandauProblem(AbstractLandauProblem, AbstractExactMarginals):
    """A Landau problem with exact marginals, particle velocity and characteristics."""

    @abc.abstractmethod
    def velocity(self, t: Float[Array, ""], x: Float[Array, " d"]) -> Float[Array, " d"]:
        """Exact Landau particle velocity U(t, x) = −(A * f_t)(x) ∇log f_t(x) + (A * ∇f_t)(x)."""

    @abc.abstractmethod
    def characteristic(
        self, t0: Float[Array, ""], x0: Float[Array, " d"], t1: Float[Array, ""]
    ) -> Float[Array, " d"]:
        """X(t1) of dX/dt = U(t, X) with X(t0) = x0 (differentiable in t1 by ``jax.jvp``)."""

    @abc.abstractmethod
    def entropy_rate(self, t: Float[Array, ""]) -> Float[Array, ""]:
        """dH/dt, H(t) = ∫ f_t log f_t."""
