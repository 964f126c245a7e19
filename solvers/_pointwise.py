"""Autodiff of pointwise field models f(t, x) -> (F,): the derivatives PDE residuals need.

Forward mode in t (one ``jax.jvp`` per order) and ``jax.jacfwd``/``jax.hessian`` in x (d ≤ 3
inputs, so forward mode is cheapest). All act on one point; batch with ``jax.vmap``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

ScalarFn = Callable[[Float[Array, ""], Float[Array, " d"]], Float[Array, ""]]


def check_point(t, x, dim: int) -> tuple[Array, Array]:
    """(t, x) as float arrays; x must have shape (d,) (shape errors mention vmap)."""
    x = jnp.asarray(x, dtype=jnp.result_type(float))
    if x.shape != (dim,):
        raise ValueError(
            f"x must have shape ({dim},), got {x.shape}; pointwise functions act on one point, "
            "batch with jax.vmap"
        )
    t = jnp.asarray(t, dtype=jnp.result_type(float))
    if t.shape != ():
        raise ValueError(f"t must be a scalar, got shape {t.shape}; batch times with jax.vmap")
    return t, x


def component(field_fn, index: int, n_components: int) -> ScalarFn:
    """The scalar function (t, x) ↦ field_fn(t, x)[index], checking the output shape (F,)."""

    def scalar(t, x):
        out = jnp.asarray(field_fn(t, x))
        if out.shape != (n_components,):
            raise ValueError(
                f"the field model must return shape ({n_components},) at one point, got "
                f"{out.shape}; it is called on one (t, x), batch with jax.vmap"
            )
        return out[index]

    return scalar


def time_derivatives(f: ScalarFn, t: Array, x: Array, order: int) -> list[Array]:
    """[f, ∂ₜf, …, ∂ₜ^order f] at (t, x) by nested ``jax.jvp``."""
    g = lambda s: f(s, x)  # noqa: E731
    derivs = [g]
    for _ in range(order):
        prev = derivs[-1]
        derivs.append(lambda s, prev=prev: jax.jvp(prev, (s,), (jnp.ones_like(s),))[1])
    return [d(t) for d in derivs]


def gradient(f: ScalarFn, t: Array, x: Array) -> Float[Array, " d"]:
    """∇ₓf(t, x)."""
    return jax.jacfwd(f, argnums=1)(t, x)


def hessian(f: ScalarFn, t: Array, x: Array) -> Float[Array, "d d"]:
    """∇ₓ²f(t, x) (forward over forward: d ≤ 3 inputs)."""
    return jax.jacfwd(jax.jacfwd(f, argnums=1), argnums=1)(t, x)


def laplacian(f: ScalarFn, t: Array, x: Array) -> Float[Array, ""]:
    """Δₓf(t, x) = Σ_a ∂²f/∂x_a², one nested forward pass per direction (cheaper to trace
    and compile than the full Hessian when Laplacians are nested, as in Navier–Stokes)."""
    g = lambda y: f(t, y)  # noqa: E731
    total = jnp.zeros((), dtype=x.dtype)
    for e in jnp.eye(x.shape[0], dtype=x.dtype):
        first = lambda y, e=e: jax.jvp(g, (y,), (e,))[1]  # noqa: E731
        total = total + jax.jvp(first, (x,), (e,))[1]
    return total
