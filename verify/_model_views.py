r"""One role of a model seen as another, through the problem's dynamics.

For dynamics :math:`dx = f\,dt + g\,dW` the probability-flow velocity and the score are
related by :math:`v = f - \tfrac12 g^2 s` (Song et al. 2021, eq. 13), and a log-density
gives the score by :math:`s = \nabla_x u`. Each view is an equinox module holding the
model, so ``eqx.filter_jit`` traces the model's arrays instead of hashing them.
"""

from __future__ import annotations

from collections.abc import Callable

import equinox as eqx
import jax

from solvers import AbstractFokkerPlanckDynamics


class GradLogDensity(eqx.Module):
    """s = ∇ₓ u(t, x) of a log-density model (a normalising constant drops out)."""

    log_density: Callable

    def __call__(self, t, x):
        return jax.grad(self.log_density, argnums=1)(t, x)


class VelocityOfScore(eqx.Module):
    """Probability-flow velocity v = f − ½ g² s of a score (Song et al. 2021, eq. 13)."""

    dynamics: AbstractFokkerPlanckDynamics
    score: Callable

    def __call__(self, t, x):
        g2 = self.dynamics.diffusion(t) ** 2
        return self.dynamics.drift(t, x) - 0.5 * g2 * self.score(t, x)


class ScoreOfVelocity(eqx.Module):
    """Score s = 2(f − v)/g² implied by a probability-flow velocity (needs g > 0)."""

    dynamics: AbstractFokkerPlanckDynamics
    velocity: Callable

    def __call__(self, t, x):
        g2 = self.dynamics.diffusion(t) ** 2
        return 2.0 * (self.dynamics.drift(t, x) - self.velocity(t, x)) / g2
