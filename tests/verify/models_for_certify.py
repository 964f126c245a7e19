"""Models built from the exact solutions, and known defects of them, for the certify tests.

Imported as ``tests.verify.models_for_certify:<name>`` by model SPECs. Each model is an
equinox module holding its problem, so its roles are bound methods that JAX traces.
"""

from __future__ import annotations

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from solvers import (
    AbstractExactMarginals,
    LandauBKWProblem,
    landau_bkw_2d,
    landau_bkw_3d,
    ou_gmm_2d,
    ve_gmm_2d,
    vp_gmm_2d,
)

Scalar = Float[Array, ""]
Vector = Float[Array, " d"]


class ExactScore(eqx.Module):
    """s(t, x) = (1 + eps) ∇log p_{t + shift}(x) + offset (exact for the defaults)."""

    problem: AbstractExactMarginals
    eps: float = 0.0
    shift: float = 0.0
    offset: tuple[float, ...] | None = None

    def score(self, t: Scalar, x: Vector) -> Vector:
        s = (1.0 + self.eps) * self.problem.score(t + self.shift, x)
        if self.offset is not None:
            s = s + jnp.asarray(self.offset)
        return s


class ExactLogDensity(eqx.Module):
    """u(t, x) = log p_t(x) + c(t): an unnormalised log-density model."""

    problem: AbstractExactMarginals
    unnormalised: bool = eqx.field(static=True, default=True)

    def log_density(self, t: Scalar, x: Vector) -> Scalar:
        return self.problem.log_density(t, x) + 2.0 * t


class ExactVelocity(eqx.Module):
    """v(t, x) = f − ½ g² ∇log p_t, the probability-flow velocity."""

    problem: AbstractExactMarginals

    def velocity(self, t: Scalar, x: Vector) -> Vector:
        g2 = self.problem.diffusion(t) ** 2
        return self.problem.drift(t, x) - 0.5 * g2 * self.problem.score(t, x)


class ExactFlowScore(eqx.Module):
    """A PINN-PM model made exact: BKW characteristics from t_min and the exact score.

    ``leak`` multiplies the flow by (1 − leak·(t − t_min)), a flow that loses energy.
    """

    problem: LandauBKWProblem
    leak: float = 0.0

    def flow(self, t: Scalar, x0: Vector) -> Vector:
        t0 = jnp.asarray(self.problem.t_min, dtype=jnp.result_type(t))
        x = self.problem.characteristic(t0, x0, t)
        return (1.0 - self.leak * (t - t0)) * x

    def score(self, t: Scalar, x: Vector) -> Vector:
        return self.problem.score(t, x)


class NaNScore(eqx.Module):
    """The exact score except NaN where x₀ > 2 (rare, but in any large sample)."""

    problem: AbstractExactMarginals

    def score(self, t: Scalar, x: Vector) -> Vector:
        s = self.problem.score(t, x)
        return jnp.where(x[0] > 2.0, jnp.nan, s)


vp = vp_gmm_2d()
ve = ve_gmm_2d()
ou = ou_gmm_2d()
bkw2 = landau_bkw_2d()
bkw3 = landau_bkw_3d()

vp_exact = ExactScore(vp)
ve_exact = ExactScore(ve)
ou_exact = ExactScore(ou)
bkw2_exact = ExactScore(bkw2)
bkw3_exact = ExactScore(bkw3)
vp_log_density = ExactLogDensity(vp)
bkw2_log_density = ExactLogDensity(bkw2)
vp_velocity = ExactVelocity(vp)
bkw2_flow = ExactFlowScore(bkw2)
bkw2_flow_leaky = ExactFlowScore(bkw2, leak=0.05)
vp_scaled = ExactScore(vp, eps=0.3)
vp_time_shifted = ExactScore(vp, shift=0.1)
vp_nan = NaNScore(vp)
bkw2_scaled = ExactScore(bkw2, eps=0.3)
