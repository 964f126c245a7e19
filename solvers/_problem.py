"""Problem interfaces: what a certification problem knows, exactly or numerically.

A problem bundles an equation with its parameters, the initial/data distribution, a time
window, default certification times, and whatever is known exactly. Capabilities are
separate abstract classes (equinox abstract/final pattern), so a problem declares what it
can do by what it inherits, not by ``hasattr``:

* :class:`AbstractProblem` — identity, dimension, time window, parameters;
* :class:`AbstractExactMarginals` — exact density, score, divergence of the score, exact
  samples and Fisher information of the marginal p_t;
* :class:`AbstractFokkerPlanckDynamics` — the marginals solve a Fokker–Planck equation
  ∂_t p = −∇·(f p) + ½ g² Δp with known drift f(t, x) and diffusion g(t).

All functions act on one sample (``x`` of shape ``(d,)``); batch with ``jax.vmap``.
"""

from __future__ import annotations

import abc
from typing import Any

import equinox as eqx
from jaxtyping import Array, Float, PRNGKeyArray


class ProblemError(ValueError):
    """A problem id, file or parameter set is unknown or invalid (one-line message)."""


class AbstractProblem(eqx.Module):
    """A certification problem: an equation, its data, and a time window.

    Attributes
    ----------
    problem_id : str
        Registry id (``landau-bkw-2d``) or the ``id`` of a problem file.
    dim : int
        Dimension d of the state x.
    t_min, t_max : float
        Time window on which the problem is defined.
    default_times : tuple of float
        Certification times used when the user gives none (inside the window).
    """

    problem_id: eqx.AbstractVar[str]
    dim: eqx.AbstractVar[int]
    t_min: eqx.AbstractVar[float]
    t_max: eqx.AbstractVar[float]
    default_times: eqx.AbstractVar[tuple[float, ...]]

    @abc.abstractmethod
    def parameters(self) -> dict[str, Any]:
        """Every parameter of the problem as a JSON-serialisable mapping (``problem_json``)."""


class AbstractExactMarginals(AbstractProblem):
    """A problem whose marginals p_t are known in closed form."""

    @abc.abstractmethod
    def log_density(self, t: Float[Array, ""], x: Float[Array, " d"]) -> Float[Array, ""]:
        """log p_t(x), normalised."""

    @abc.abstractmethod
    def score(self, t: Float[Array, ""], x: Float[Array, " d"]) -> Float[Array, " d"]:
        """∇_x log p_t(x)."""

    @abc.abstractmethod
    def score_divergence(self, t: Float[Array, ""], x: Float[Array, " d"]) -> Float[Array, ""]:
        """∇·s = Δ log p_t(x), in closed form."""

    @abc.abstractmethod
    def sample(self, t: Float[Array, ""], n: int, *, key: PRNGKeyArray) -> Float[Array, "n d"]:
        """``n`` exact iid samples of p_t."""

    @abc.abstractmethod
    def fisher_information(self, t: Float[Array, ""]) -> Float[Array, ""]:
        """I(t) = E_{p_t}|∇ log p_t|² (closed form, quadrature, or a documented estimate)."""


class AbstractFokkerPlanckDynamics(AbstractProblem):
    """Marginals governed by ∂_t p = −∇·(f p) + ½ g(t)² Δp (a linear SDE dx = f dt + g dW)."""

    @abc.abstractmethod
    def drift(self, t: Float[Array, ""], x: Float[Array, " d"]) -> Float[Array, " d"]:
        """f(t, x)."""

    @abc.abstractmethod
    def diffusion(self, t: Float[Array, ""]) -> Float[Array, ""]:
        """g(t) (scalar, isotropic)."""
