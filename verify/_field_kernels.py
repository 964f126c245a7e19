r"""JAX kernels of the field checks: model states on the grid, PDE residuals, periodicity.

Three roles of a PDE surrogate on a field problem ∂ₜq = N(q) (:mod:`verify._model`):

* ``field(t, x)`` (PINN): the state q = ``problem.state_from_field`` and the pointwise
  residual R = ``problem.field_residual`` (autodiff in t and x) at any (t, x);
* ``operator(u0, t)``: the grid state at time t from the initial grid state u0;
* ``step(u)``: one step Δt of an autoregressive emulator, rolled out with ``lax.fori_loop``.

Time derivatives of gridded outputs (formula ids in :mod:`verify._field_certify`):

* operator, central difference (``fd-central-2``) D q = [q(t+δ) − q(t−δ)]/(2δ), error
  δ²/6 ∂ₜ³q; within δ of the window's ends the one-sided second-order stencils
  [∓3q(t) ± 4q(t±δ) ∓ q(t±2δ)]/(2δ) (error δ²/3 ∂ₜ³q) keep every query inside the window;
* step, trapezoidal consistency (``step-trapezoid``) on one step [t_a, t_b = t_a + Δt]:
  R = (q_b − q_a)/Δt − ½[N(q_a) + N(q_b)]; for the exact solution R = −(Δt²/12) ∂ₜ³q + O(Δt⁴)
  (the trapezoidal rule's local truncation error divided by Δt), the *consistency floor*
  that the certificate stores next to the residual (the same formula on the reference).

Every kernel is ``equinox.filter_jit``-ed with the model as an argument and the time as a
traced scalar, and is fed inputs of one fixed shape (points in chunks of ``block``, one
time or one state per call; :func:`chunked`), so it compiles once per run however many
times, slabs and points the run has, with memory O(block).

References
----------
.. [1] M. Raissi, P. Perdikaris, G. E. Karniadakis, "Physics-informed neural networks",
   J. Comput. Phys. 378 (2019) 686–707 (residual at collocation points).
.. [2] B. Fornberg, "Generation of finite difference formulas on arbitrarily spaced grids",
   Math. Comp. 51 (1988) 699–706 (the stencils above).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from solvers import AbstractFieldProblem


def grid_points(problem: AbstractFieldProblem, n: int) -> np.ndarray:
    """``problem.grid(n)`` flattened to points, shape (n^d, d)."""
    return np.asarray(problem.grid(n)).reshape(-1, problem.dim)


def cell_centred_points(problem: AbstractFieldProblem, m: int) -> np.ndarray:
    """x_j = (j + ½)L/m in every direction, flattened, shape (m^d, d) (off the n-grid)."""
    axis = (np.arange(m) + 0.5) * (problem.length / m)
    mesh = np.meshgrid(*([axis] * problem.dim), indexing="ij")
    return np.stack(mesh, axis=-1).reshape(-1, problem.dim)


def chunked(fn: Callable, xs: Any, chunk: int) -> Any:
    """``fn`` (jitted, vmapped over a leading axis of ``chunk``) over all of ``xs``.

    The inputs are padded (with copies of the first) to a multiple of ``chunk`` and fed
    ``chunk`` at a time from Python, so every call has the same shape: one compilation
    whatever the number of points (collocation points, dense grid, boundary points), and
    memory O(chunk). The padding is dropped from the outputs.
    """
    # host arrays: padding and slicing in NumPy compile nothing
    xs = jax.tree_util.tree_map(np.asarray, xs)
    total = jax.tree_util.tree_leaves(xs)[0].shape[0]
    pad = -total % chunk

    def padded(a):
        return np.concatenate([a, np.repeat(a[:1], pad, axis=0)]) if pad else a

    xs = jax.tree_util.tree_map(padded, xs)
    outs = [
        fn(jax.tree_util.tree_map(lambda a, i=i: a[i : i + chunk], xs))
        for i in range(0, total + pad, chunk)
    ]
    return jax.tree_util.tree_map(
        lambda *o: np.concatenate([np.asarray(v) for v in o])[:total], *outs
    )


@eqx.filter_jit
def initial_grid_state(problem: AbstractFieldProblem, n: int) -> Array:
    """q(t_min) on ``grid(n)``, shape ``(n,)*d + (C,)``."""
    values = jax.vmap(problem.initial_state)(problem.grid(n).reshape(-1, problem.dim))
    return values.reshape((n,) * problem.dim + (problem.n_components,))


@eqx.filter_jit
def _rhs(problem: AbstractFieldProblem, t: Array, state: Array) -> Array:
    return problem.rhs(t, state)


def rhs_states(problem: AbstractFieldProblem, times: Any, states: Any) -> np.ndarray:
    """N(q) of a stack of grid states at their times (one compilation per run)."""
    times = np.asarray(times, dtype=np.float64)
    return np.stack(
        [
            np.asarray(_rhs(problem, jnp.asarray(t), jnp.asarray(q)))
            for t, q in zip(times, states, strict=True)
        ]
    )


# --------------------------------------------------------------------------- field role


@eqx.filter_jit
def _field_state(
    field_fn: Callable, problem: AbstractFieldProblem, t: Array, points: Array
) -> Array:
    return jax.vmap(lambda x: problem.state_from_field(field_fn, t, x))(points)


def field_states(
    field_fn: Callable, problem: AbstractFieldProblem, times: Any, n: int, block: int
) -> np.ndarray:
    """q(t_i, x_j) of a field model on ``grid(n)``, shape ``(T,) + (n,)*d + (C,)``."""
    points = grid_points(problem, n)
    shape = (n,) * problem.dim + (problem.n_components,)
    return np.stack(
        [
            chunked(lambda x, t=t: _field_state(field_fn, problem, t, x), points, block).reshape(
                shape
            )
            for t in jnp.asarray(np.asarray(times, dtype=np.float64))
        ]
    )


@eqx.filter_jit
def _residual_squares(
    field_fn: Callable, problem: AbstractFieldProblem, tx: tuple[Array, Array]
) -> Array:
    def one(t, x):
        r = problem.field_residual(field_fn, t, x)
        return jnp.sum(r * r)

    return jax.vmap(one)(*tx)


def field_residual_squares(
    field_fn: Callable, problem: AbstractFieldProblem, t: Array, x: Array, block: int
) -> np.ndarray:
    """|R(t_i, x_i)|² (summed over residual components) at points (t_i, x_i), shape (N,)."""
    return chunked(lambda tx: _residual_squares(field_fn, problem, tx), (t, x), block)


def field_residual_dense(
    field_fn: Callable,
    problem: AbstractFieldProblem,
    times: np.ndarray,
    points: np.ndarray,
    block: int,
) -> np.ndarray:
    """|R| on the product of ``times`` and ``points``, shape (len(times), len(points))."""
    points = np.asarray(points)
    t = np.repeat(np.asarray(times, dtype=np.float64), points.shape[0])
    x = np.tile(points, (len(times), 1))
    squares = field_residual_squares(field_fn, problem, t, x, block)
    return np.sqrt(squares).reshape(len(times), points.shape[0])


@eqx.filter_jit
def _boundary_jumps(
    field_fn: Callable, problem: AbstractFieldProblem, ty: tuple[Array, Array]
) -> tuple[Array, Array]:
    """Per (time, boundary point, axis): |q(x_a = L) − q(x_a = 0)| and the same for ∇q."""
    length = problem.length

    def state(ti, x):
        return problem.state_from_field(field_fn, ti, x)

    def one(ti, yi):
        jumps, grad_jumps = [], []
        for a in range(problem.dim):
            low = yi.at[a].set(0.0)
            high = yi.at[a].set(length)
            jumps.append(jnp.sqrt(jnp.sum((state(ti, high) - state(ti, low)) ** 2)))
            g_high = jax.jacfwd(lambda x: state(ti, x))(high)
            g_low = jax.jacfwd(lambda x: state(ti, x))(low)
            grad_jumps.append(jnp.sqrt(jnp.sum((g_high - g_low) ** 2)))
        return jnp.max(jnp.stack(jumps)), jnp.max(jnp.stack(grad_jumps))

    return jax.vmap(one)(*ty)


def periodicity_jumps(
    field_fn: Callable,
    problem: AbstractFieldProblem,
    times: np.ndarray,
    points: np.ndarray,
    block: int,
) -> tuple[float, float]:
    """max over times, points and axes of |Δq| and |Δ∇q| (Frobenius) across the box.

    For axis a the point's a-th coordinate is set to 0 and to L; the other coordinates
    range over ``points`` (in 1-D a single pair of end points).
    """
    points = np.asarray(points)
    t = np.repeat(np.asarray(times, dtype=np.float64), points.shape[0])
    y = np.tile(points, (len(times), 1))
    jumps, grad_jumps = chunked(lambda ty: _boundary_jumps(field_fn, problem, ty), (t, y), block)
    return float(np.max(jumps)), float(np.max(grad_jumps))


# --------------------------------------------------------------------------- grid roles


@eqx.filter_jit
def _operator_state(operator_fn: Callable, u0: Array, t: Array) -> Array:
    return operator_fn(u0, t)


def operator_states(operator_fn: Callable, u0: Any, times: Any) -> np.ndarray:
    """operator(u0, t_i) for every time, one call at a time (one compilation)."""
    u0 = jnp.asarray(u0)
    return np.stack(
        [
            np.asarray(_operator_state(operator_fn, u0, t))
            for t in jnp.asarray(np.asarray(times, dtype=np.float64))
        ]
    )


@eqx.filter_jit
def advance(step_fn: Callable, u: Array, n_steps: Array) -> Array:
    """step applied ``n_steps`` times (a traced count: one compilation for every count)."""
    return jax.lax.fori_loop(0, n_steps, lambda _, v: step_fn(v), u)


def fd_stencils(
    times: np.ndarray, delta: float, t_min: float, t_max: float
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Query times (T, 3) and weights (T, 3) of ∂ₜ at each time, and each stencil's name.

    Central [t−δ, t, t+δ]·(−1, 0, 1)/(2δ) where it fits in [t_min, t_max], else the
    one-sided second-order stencils (module docstring).
    """
    nodes, weights, names = [], [], []
    for t in np.asarray(times, dtype=np.float64):
        if t - delta >= t_min and t + delta <= t_max:
            nodes.append([t - delta, t, t + delta])
            weights.append([-0.5 / delta, 0.0, 0.5 / delta])
            names.append("central")
        elif t + 2 * delta <= t_max:
            nodes.append([t, t + delta, t + 2 * delta])
            weights.append([-1.5 / delta, 2.0 / delta, -0.5 / delta])
            names.append("forward")
        else:
            nodes.append([t - 2 * delta, t - delta, t])
            weights.append([0.5 / delta, -2.0 / delta, 1.5 / delta])
            names.append("backward")
    return np.asarray(nodes), np.asarray(weights), names


def stencil_derivative(states: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Σ_s w_is q(t_is): ``states`` (T, 3, …) and ``weights`` (T, 3) -> (T, …)."""
    w = weights.reshape(weights.shape + (1,) * (states.ndim - 2))
    return np.sum(w * states, axis=1)
