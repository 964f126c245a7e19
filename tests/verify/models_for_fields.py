"""PDE-surrogate models for the field-certify tests: the exact heat solution and defects.

Imported as ``tests.verify.models_for_fields:<name>`` by model SPECs. Every model is an
equinox module holding its problem, so its roles are bound methods that JAX traces. The
exact heat solution serves all three field roles: ``field`` (pointwise, as a PINN),
``operator`` (grid state at t from u0) and ``step`` (the exact spectral propagator
F⁻¹ e^{−κ|ω|²Δt} F, which has no time-discretisation error).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from solvers import AbstractExactFieldProblem, HeatProblem, heat_1d, heat_2d

Scalar = Float[Array, ""]


class ExactHeat(eqx.Module):
    r"""u(t + shift, x) + ε cos(k·x) + slope·x₀: exact for the defaults.

    ``mode`` = k (integer wave vector) and ``eps`` = ε add a time-independent Fourier mode
    (its relative L2 size on the grid is ε‖cos(k·x)‖/‖u‖); ``shift`` evaluates the exact
    solution at a shifted time (it still solves the PDE); ``slope`` adds a non-periodic
    linear ramp in x₀ (a jump slope·L across the box). ``nan_after`` returns NaN for
    t > that time (the probe at the first certification time passes).
    """

    problem: HeatProblem
    # arrays, not Python floats: traced leaves, so variants share one compilation
    shift: Array = eqx.field(converter=jnp.asarray, default=0.0)
    eps: Array = eqx.field(converter=jnp.asarray, default=0.0)
    mode: tuple[int, ...] | None = eqx.field(static=True, default=None)
    slope: Array = eqx.field(converter=jnp.asarray, default=0.0)
    nan_after: float | None = eqx.field(static=True, default=None)
    step_size: float = eqx.field(static=True, default=0.05)

    def _extra(self, x: Float[Array, " d"]) -> Float[Array, ""]:
        extra = self.slope * x[0]
        if self.mode is not None:
            k = 2 * math.pi * jnp.asarray(self.mode, dtype=x.dtype) / self.problem.length
            extra = extra + self.eps * jnp.cos(k @ x)
        return extra

    def field(self, t: Scalar, x: Float[Array, " d"]) -> Float[Array, " 1"]:
        u = self.problem.exact_state(t + self.shift, x) + self._extra(x)
        if self.nan_after is not None:
            u = jnp.where(t > self.nan_after, jnp.nan, u)
        return u

    def operator(self, u0: Float[Array, "*grid 1"], t: Scalar) -> Float[Array, "*grid 1"]:
        points = self.problem.grid(u0.shape[0]).reshape(-1, self.problem.dim)
        return jax.vmap(lambda x: self.field(t, x))(points).reshape(u0.shape)

    def step(self, u: Float[Array, "*grid 1"]) -> Float[Array, "*grid 1"]:
        p = self.problem
        axes = tuple(range(p.dim))
        omega = 2 * jnp.pi * jnp.fft.fftfreq(u.shape[0], d=p.length / u.shape[0])
        k2 = sum(w * w for w in jnp.meshgrid(*([omega] * p.dim), indexing="ij"))[..., None]
        propagator = jnp.exp(-p.kappa * k2 * self.step_size)
        return jnp.real(jnp.fft.ifftn(propagator * jnp.fft.fftn(u, axes=axes), axes=axes))


class ExactState(eqx.Module):
    """field = operator = the exact state of any problem whose field is its state (F = C)."""

    problem: AbstractExactFieldProblem

    def field(self, t: Scalar, x: Float[Array, " d"]) -> Float[Array, " C"]:
        return self.problem.exact_state(t, x)

    def operator(self, u0: Array, t: Scalar) -> Array:
        points = self.problem.grid(u0.shape[0]).reshape(-1, self.problem.dim)
        return jax.vmap(lambda x: self.field(t, x))(points).reshape(u0.shape)


class ChannelsFirst(eqx.Module):
    """An operator that returns (C, n) instead of (n, C): a shape error."""

    problem: HeatProblem

    def operator(self, u0: Array, t: Scalar) -> Array:
        return jnp.moveaxis(u0, -1, 0) * jnp.exp(-t)


class ScalarField(eqx.Module):
    """A field that returns a scalar () instead of (F,) = (1,)."""

    problem: HeatProblem

    def field(self, t: Scalar, x: Array) -> Array:
        return self.problem.exact_state(t, x)[0]


class NaNStep(eqx.Module):
    """A step that returns NaN (caught by the probe)."""

    step_size: float = eqx.field(static=True, default=0.05)

    def step(self, u: Array) -> Array:
        return u * jnp.nan


class StepWithoutSize(eqx.Module):
    """A step without the required ``step_size`` attribute."""

    def step(self, u: Array) -> Array:
        return u


heat1d_exact = ExactHeat(heat_1d())
heat2d_exact = ExactHeat(heat_2d())
heat1d_shifted = ExactHeat(heat_1d(), shift=0.5)
heat1d_channels_first = ChannelsFirst(heat_1d())
heat1d_scalar_field = ScalarField(heat_1d())
nan_step = NaNStep()
step_without_size = StepWithoutSize()


# --------------------------------------------------------------------------- networks


class TinyPINN(eqx.Module):
    """A small MLP field(t, x) -> (F,): the shape of a PINN checkpoint (untrained)."""

    mlp: eqx.nn.MLP

    def __init__(self, dim: int, width: int, *, key):
        self.mlp = eqx.nn.MLP(dim + 1, 1, width, 2, activation=jnp.tanh, key=key)

    def field(self, t: Scalar, x: Float[Array, " d"]) -> Float[Array, " 1"]:
        # periodic features: the network is periodic in x by construction
        return self.mlp(jnp.concatenate([jnp.reshape(t, (1,)), jnp.sin(x)]))


class TinyFNO(eqx.Module):
    """One Fourier layer u ↦ u + F⁻¹[W(t) F u] on the lowest modes: a 1-D operator shape."""

    weights: Array
    modes: int = eqx.field(static=True)

    def __init__(self, modes: int, *, key):
        self.modes = modes
        self.weights = 0.01 * jax.random.normal(key, (2, modes))

    def operator(self, u0: Float[Array, "n 1"], t: Scalar) -> Float[Array, "n 1"]:
        hat = jnp.fft.rfft(u0[:, 0])
        scale = self.weights[0] + t * self.weights[1]
        hat = hat.at[: self.modes].multiply(jnp.exp(-jnp.abs(scale)))
        return jnp.fft.irfft(hat, n=u0.shape[0])[:, None]


def make_pinn(dim: int, width: int, *, key) -> TinyPINN:
    return TinyPINN(dim, width, key=key)


def make_fno(modes: int, *, key) -> TinyFNO:
    return TinyFNO(modes, key=key)
