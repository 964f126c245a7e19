r"""Capabilities of PDE problems for fields u(t, x) on a periodic box (PINNs, neural operators).

Two capability classes, in the equinox abstract/final pattern of :mod:`solvers._problem`:

* :class:`AbstractFieldProblem` — an evolution PDE written as a first-order system
  ∂ₜq = N(q) for a *state* q(t, x) with C components on the periodic box [0, L)^d, its
  initial state, a pointwise residual for differentiable *fields* (PINN outputs), the
  right-hand side N on a grid (spectral derivatives), a reference solution on the grid
  (exact or numerical) with an estimate of its own error, and discrete invariants;
* :class:`AbstractExactFieldProblem` — additionally the exact state q(t, x) pointwise.

State and field. The *state* is what an operator/emulator maps and what errors are measured
on: burgers/heat: q = u (C = 1); sine-Gordon: q = (u, ∂ₜu) (C = 2, the equation is second
order in time); Navier–Stokes in vorticity form: q = ω (C = 1). The *field* is what a
pointwise model (``field`` role, PINN style) outputs: the primary unknown from which the
state follows by differentiation — u for burgers/heat/sine-Gordon, the stream function ψ
for Navier–Stokes (ω = −Δψ, velocity (∂_yψ, −∂_xψ), so the residual is local).
:meth:`AbstractFieldProblem.state_from_field` maps one to the other by autodiff.

Grids. ``grid(n)`` is the uniform periodic grid x_j = j L / n in every direction, of shape
``(n,)*d + (d,)``; a gridded state has shape ``(n,)*d + (C,)`` (channels last, so one
point's state is ``q[j]``). The reference solution's resolution is ``grid_size``.

All pointwise functions act on one point (x of shape ``(d,)``); batch with ``jax.vmap``.
Verification code asks ``isinstance(problem, AbstractFieldProblem)``; nothing is duck-typed.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence

import equinox as eqx
from jaxtyping import Array, Float

from ._problem import AbstractProblem

FieldFn = Callable[[Float[Array, ""], Float[Array, " d"]], Float[Array, " F"]]
"""A pointwise field model ``field(t, x) -> (F,)`` (F = ``field_components``)."""


class AbstractFieldProblem(AbstractProblem):
    """An evolution PDE ∂ₜq = N(q) for a C-component state on the periodic box [0, L)^d.

    Attributes
    ----------
    dim : int
        Spatial dimension d (inherited).
    length : float
        Period L in every direction.
    n_components : int
        C, components of the state q.
    component_names : tuple of str
        Names of the state components (``("u",)``, ``("u", "u_t")``, ``("omega",)``).
    field_components : int
        F, outputs of a pointwise ``field`` model (the primary unknown, module docstring).
    grid_size : int
        n, grid points per direction of the reference solution.
    """

    length: eqx.AbstractVar[float]
    n_components: eqx.AbstractVar[int]
    component_names: eqx.AbstractVar[tuple[str, ...]]
    field_components: eqx.AbstractVar[int]
    grid_size: eqx.AbstractVar[int]

    @abc.abstractmethod
    def grid(self, n: int) -> Float[Array, "*grid d"]:
        """The periodic grid x_j = j L / n, shape ``(n,)*d + (d,)``."""

    @abc.abstractmethod
    def initial_state(self, x: Float[Array, " d"]) -> Float[Array, " C"]:
        """q(t_min, x), pointwise."""

    @abc.abstractmethod
    def state_from_field(
        self, field_fn: FieldFn, t: Float[Array, ""], x: Float[Array, " d"]
    ) -> Float[Array, " C"]:
        """The state q(t, x) of a pointwise field model (autodiff where derivatives enter)."""

    @abc.abstractmethod
    def field_residual(
        self, field_fn: FieldFn, t: Float[Array, ""], x: Float[Array, " d"]
    ) -> Float[Array, " R"]:
        """Pointwise PDE residual of a field model by autodiff (zero for the exact solution)."""

    @abc.abstractmethod
    def rhs(self, t: Float[Array, ""], state: Float[Array, "*grid C"]) -> Float[Array, "*grid C"]:
        """N(q) on the grid (spectral derivatives, 2/3-dealiased products): ∂ₜq = N(q)."""

    @abc.abstractmethod
    def reference(self, times: Sequence[float], n: int) -> Float[Array, "T *grid C"]:
        """The reference state on ``grid(n)`` at ``times``: exact, or the numerical solver's."""

    @abc.abstractmethod
    def reference_error(self, times: Sequence[float], n: int) -> Float[Array, " T"]:
        """Relative L2 error estimate of :meth:`reference` at ``times`` (0 where exact).

        Self-convergence for a numerical reference: the relative L2 difference from a run at
        twice the resolution (and half the time step), interpolated spectrally.
        """

    @abc.abstractmethod
    def invariants(self, state: Float[Array, "*grid C"]) -> dict[str, Float[Array, ""]]:
        """Discrete invariants of a gridded state (Hamiltonian, energy, enstrophy, mass)."""

    @abc.abstractmethod
    def invariant_laws(self, t: Float[Array, ""]) -> dict[str, Float[Array, ""]]:
        """Exact values at time t of the invariants whose law is known (conserved or known
        decay), by name: a subset of :meth:`invariants`' keys."""


class AbstractExactFieldProblem(AbstractFieldProblem):
    """A field problem whose solution is known in closed form."""

    @abc.abstractmethod
    def exact_state(self, t: Float[Array, ""], x: Float[Array, " d"]) -> Float[Array, " C"]:
        """q(t, x), pointwise."""
