"""The periodic PINN and the 1-D Fourier neural operator of :mod:`solvers.field_networks`.

Untrained networks (random weights) suffice: the properties tested hold for every weight.
Tolerances: ``ROUNDOFF`` for identities that hold exactly in real arithmetic and differ only
by float64 round-off through a few layers; ``check_grads`` compares autodiff with central
differences at its own default tolerances for float64.
"""

from __future__ import annotations

import io
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from solvers.field_networks import (
    FourierNeuralOperator1d,
    PeriodicPINN,
    fourier_neural_operator_1d,
    periodic_pinn,
)
from verify._checkpoint import load_checkpoint, save_checkpoint

L = 2 * math.pi
N = 64
ROUNDOFF = 1e-12
"""Round-off of an exact identity through a few float64 layers: ~1e3 ε (ε = 2.2e−16) for
phases up to 4·2π·2 and O(10) Lipschitz constants of the layers, with a 5× margin."""

PINN_HYPERPARAMETERS = {
    "width": 16,
    "depth": 2,
    "n_harmonics": 3,
    "length": L,
    "t_min": 0.0,
    "t_max": 3.0,
}
FNO_HYPERPARAMETERS = {"n": N, "width": 8, "modes": 6, "layers": 2, "t_min": 0.0, "t_max": 3.0}


@pytest.fixture(scope="module")
def pinn() -> PeriodicPINN:
    return periodic_pinn(**PINN_HYPERPARAMETERS, key=jax.random.key(1))


@pytest.fixture(scope="module")
def fno() -> FourierNeuralOperator1d:
    return fourier_neural_operator_1d(**FNO_HYPERPARAMETERS, key=jax.random.key(2))


@eqx.filter_jit
def _field(model, t, x):
    return model.field(t, x)


@eqx.filter_jit
def _operator(model, u0, t):
    return model.operator(u0, t)


def _u0(n: int = N) -> jax.Array:
    x = jnp.arange(n) * L / n
    return (jnp.sin(x) + 0.3 * jnp.cos(3 * x))[:, None]


# --------------------------------------------------------------------------- PINN


def test_pinn_shape_dtype_and_jit(pinn):
    x = jnp.array([1.3])
    out = pinn.field(0.7, x)
    assert out.shape == (1,)
    assert out.dtype == jnp.float64
    assert all(
        leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(eqx.filter(pinn, eqx.is_array))
    )
    np.testing.assert_allclose(
        eqx.filter_jit(pinn.field)(0.7, x), out, rtol=ROUNDOFF, atol=ROUNDOFF
    )


def test_pinn_vmap_matches_loop(pinn):
    t = jnp.linspace(0.0, 3.0, 5)
    x = jnp.linspace(0.0, L, 5)[:, None]
    batched = jax.vmap(pinn.field)(t, x)
    looped = jnp.stack([_field(pinn, ti, xi) for ti, xi in zip(t, x, strict=True)])
    assert batched.shape == (5, 1)
    np.testing.assert_allclose(batched, looped, rtol=ROUNDOFF, atol=ROUNDOFF)


def test_pinn_grad(pinn):
    @jax.jit
    def f(t, x):
        return pinn.field(t, x)[0]

    args = (jnp.asarray(0.4), jnp.array([2.1]))
    # forward mode to order 2: the PDE residual takes second derivatives of the field;
    # reverse mode: training back-propagates through it
    check_grads(f, args, order=2, modes=["fwd"])
    check_grads(f, args, order=1, modes=["rev"])


@pytest.mark.parametrize("shift", [1, -2])
def test_pinn_periodic_to_roundoff(pinn, shift):
    """Periodicity is built in: u, u_x and u_xx agree at x and x + shift·L."""

    def u(x, t=0.9):
        return pinn.field(t, jnp.atleast_1d(x))[0]

    x = jnp.linspace(0.0, L, 7)
    for derivative in (u, jax.grad(u), jax.grad(jax.grad(u))):
        batched = jax.jit(jax.vmap(derivative))
        a, b = batched(x), batched(x + shift * L)
        np.testing.assert_allclose(a, b, rtol=ROUNDOFF, atol=ROUNDOFF)


def test_pinn_shape_errors_mention_vmap(pinn):
    with pytest.raises(ValueError, match="vmap"):
        pinn.field(0.5, jnp.ones((3, 1)))
    with pytest.raises(ValueError, match="vmap"):
        pinn.field(jnp.ones(2), jnp.ones(1))


@pytest.mark.parametrize(
    ("name", "value"),
    [("n_harmonics", 0), ("length", -1.0), ("t_max", 0.0), ("activation", "relu")],
)
def test_pinn_builder_rejects(name, value):
    with pytest.raises(ValueError, match=name if name != "t_max" else "t_min"):
        periodic_pinn(**{**PINN_HYPERPARAMETERS, name: value}, key=jax.random.key(0))


# --------------------------------------------------------------------------- FNO


def test_fno_shape_dtype_and_initial_condition(fno):
    u0 = _u0()
    out = _operator(fno, u0, 1.2)
    assert out.shape == (N, 1)
    assert out.dtype == jnp.float64
    assert all(leaf.dtype == jnp.float64 for leaf in jax.tree.leaves(eqx.filter(fno, eqx.is_array)))
    # G(u0, t_min) = u0 + 0 · Q(...): the hard initial condition is exact
    np.testing.assert_array_equal(_operator(fno, u0, 0.0), u0)


def test_fno_jit_and_vmap(fno):
    u0 = jnp.stack([_u0(), 2 * _u0()])
    t = jnp.array([0.5, 2.5])
    batched = jax.vmap(fno.operator)(u0, t)
    looped = jnp.stack([_operator(fno, u, s) for u, s in zip(u0, t, strict=True)])
    assert batched.shape == (2, N, 1)
    np.testing.assert_allclose(batched, looped, rtol=ROUNDOFF, atol=ROUNDOFF)


def test_fno_grad_in_time_and_input(fno):
    @jax.jit
    def f(t, u):
        return jnp.sum(jnp.sin(fno.operator(u, t)))

    check_grads(f, (jnp.asarray(1.1), _u0()), order=1, modes=["fwd", "rev"])


def test_fno_grad_in_parameters(fno):
    params, static = eqx.partition(fno, eqx.is_inexact_array)

    def loss(p):
        return jnp.sum(eqx.combine(p, static).operator(_u0(), 0.8) ** 2)

    grads = jax.jit(jax.grad(loss))(params)
    norms = [float(jnp.linalg.norm(g)) for g in jax.tree.leaves(grads)]
    assert np.all(np.isfinite(norms)), norms
    assert min(norms) > 0, norms


@pytest.mark.parametrize("shift", [1, 5, 17])
def test_fno_commutes_with_grid_shifts(fno, shift):
    """No grid coordinate among the inputs: G(roll u0) = roll G(u0) (up to FFT round-off)."""
    u0 = _u0()
    a = _operator(fno, jnp.roll(u0, shift, axis=0), 1.7)
    b = jnp.roll(_operator(fno, u0, 1.7), shift, axis=0)
    np.testing.assert_allclose(a, b, rtol=ROUNDOFF, atol=ROUNDOFF)


def test_fno_resolution(fno):
    """``operator`` insists on the training grid; ``apply`` takes any grid with enough modes."""
    with pytest.raises(ValueError, match="vmap"):
        fno.operator(_u0(2 * N), 1.0)
    with pytest.raises(ValueError, match="vmap"):
        fno.operator(_u0()[:, 0], 1.0)
    apply = eqx.filter_jit(lambda m, u, t: m.apply(u, t))
    np.testing.assert_array_equal(apply(fno, _u0(), 1.0), _operator(fno, _u0(), 1.0))
    assert apply(fno, _u0(2 * N), 1.0).shape == (2 * N, 1)
    with pytest.raises(ValueError, match="modes"):
        fno.apply(_u0(8), 1.0)  # 8 points: 5 rfft modes < 6


@pytest.mark.parametrize(("name", "value"), [("modes", 0), ("modes", N // 2 + 2), ("layers", 0)])
def test_fno_builder_rejects(name, value):
    with pytest.raises(ValueError, match=name):
        fourier_neural_operator_1d(**{**FNO_HYPERPARAMETERS, name: value}, key=jax.random.key(0))


# --------------------------------------------------------------------------- checkpoints


@pytest.mark.parametrize(
    ("builder", "hyperparameters", "role"),
    [
        ("periodic_pinn", PINN_HYPERPARAMETERS, "field"),
        ("fourier_neural_operator_1d", FNO_HYPERPARAMETERS, "operator"),
    ],
)
def test_checkpoint_round_trip(tmp_path, builder, hyperparameters, role):
    from solvers import field_networks

    model = getattr(field_networks, builder)(**hyperparameters, key=jax.random.key(7))
    directory = save_checkpoint(
        tmp_path / builder,
        model,
        builder=f"solvers.field_networks:{builder}",
        hyperparameters=hyperparameters,
        roles=[role],
    )
    loaded = load_checkpoint(directory)
    for got, want in zip(jax.tree.leaves(loaded), jax.tree.leaves(model), strict=True):
        np.testing.assert_array_equal(got, want)
    args = (0.6, jnp.array([0.3])) if role == "field" else (_u0(), 0.6)
    np.testing.assert_array_equal(getattr(loaded, role)(*args), getattr(model, role)(*args))


def test_fixture_sized_fno_checkpoint_fits():
    """The burgers-fno architecture (n 256, width 16, 16 modes, 3 layers): leaves ≤ 256 KiB."""
    hyperparameters = {"n": 256, "width": 16, "modes": 16, "layers": 3, "t_min": 0.0, "t_max": 3.0}
    shapes = eqx.filter_eval_shape(
        fourier_neural_operator_1d, **hyperparameters, key=jax.random.key(0)
    )
    model = jax.tree.map(lambda leaf: jnp.zeros(leaf.shape, leaf.dtype), shapes)
    buffer = io.BytesIO()
    eqx.tree_serialise_leaves(buffer, model)  # what save_checkpoint writes to leaves.eqx
    assert len(buffer.getvalue()) <= 256 * 1024
