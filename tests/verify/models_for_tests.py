"""Small models for the model-loading tests (imported as ``tests.verify.models_for_tests``)."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray


def gaussian_score(t: Float[Array, ""], x: Float[Array, " d"]) -> Float[Array, " d"]:
    """Score of N(0, (1 + t) I)."""
    return -x / (1.0 + t)


def gaussian_log_density(t: Float[Array, ""], x: Float[Array, " d"]) -> Float[Array, ""]:
    """Unnormalised log-density of N(0, (1 + t) I)."""
    return -0.5 * jnp.sum(x**2) / (1.0 + t)


class ScoreAndFlow(eqx.Module):
    """A PINN-PM style model: score and flow of N(0, (1 + t) I) from N(0, I)."""

    unnormalised = False

    def score(self, t: Float[Array, ""], x: Float[Array, " d"]) -> Float[Array, " d"]:
        return gaussian_score(t, x)

    def flow(self, t: Float[Array, ""], x0: Float[Array, " d"]) -> Float[Array, " d"]:
        return jnp.sqrt(1.0 + t) * x0

    def log_density(self, t: Float[Array, ""], x: Float[Array, " d"]) -> Float[Array, ""]:
        d = x.shape[0]
        return gaussian_log_density(t, x) - 0.5 * d * jnp.log(2 * jnp.pi * (1.0 + t))


pinn = ScoreAndFlow()


def wrong_shape(t: Float[Array, ""], x: Float[Array, " d"]) -> Float[Array, "1 d"]:
    return -x[None, :]


def float32_score(t: Float[Array, ""], x: Float[Array, " d"]) -> Float[Array, " d"]:
    return (-x).astype(jnp.float32)


def nan_score(t: Float[Array, ""], x: Float[Array, " d"]) -> Float[Array, " d"]:
    return x * jnp.nan


def numpy_score(t, x):
    return -np.asarray(x)


def raising_score(t, x):
    raise RuntimeError("boom")


def tuple_score(t, x):
    return (-x, -x)


not_a_model = 3


class ScoreMLP(eqx.Module):
    """A small score network s(t, x) = MLP([t, x]), built by :func:`make_score_mlp`."""

    mlp: eqx.nn.MLP

    def score(self, t: Float[Array, ""], x: Float[Array, " d"]) -> Float[Array, " d"]:
        return self.mlp(jnp.concatenate([jnp.reshape(t, (1,)), x]))


class TimeMLP(eqx.Module):
    """A plain callable (t, x) -> (d,) with no role method: the checkpoint names its role."""

    mlp: eqx.nn.MLP

    def __call__(self, t: Float[Array, ""], x: Float[Array, " d"]) -> Float[Array, " d"]:
        return self.mlp(jnp.concatenate([jnp.reshape(t, (1,)), x]))


def make_score_mlp(*, dim: int, width: int, depth: int, key: PRNGKeyArray) -> ScoreMLP:
    return ScoreMLP(eqx.nn.MLP(dim + 1, dim, width, depth, activation=jax.nn.tanh, key=key))


def make_time_mlp(*, dim: int, width: int, depth: int, key: PRNGKeyArray) -> TimeMLP:
    return TimeMLP(eqx.nn.MLP(dim + 1, dim, width, depth, activation=jax.nn.tanh, key=key))
