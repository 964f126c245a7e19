"""solvers.networks: shapes, dtypes, transformations, exact Gaussian limit, checkpoints."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from solvers import get_problem
from solvers.networks import (
    PotentialMLP,
    ScoreMLP,
    potential_mlp,
    score_mlp,
    sde_from_parameters,
    time_features,
)

VP = {"kind": "vp", "beta_min": 0.1, "beta_max": 20.0}
HP = {"dim": 2, "width": 16, "depth": 2, "sde": VP, "data_variance": 0.3, "n_fourier": 2}
BUILDERS = {"score": score_mlp, "log_density": potential_mlp}
ROLE_SHAPES = {"score": (2,), "log_density": ()}
# Two float64 evaluations of the same algebra in a different order: a few ulps of the
# largest term (|x|/τ² ≲ 10 here), so 1e-13 relative and absolute leaves a wide margin.
ROUNDOFF = {"rtol": 1e-13, "atol": 1e-13}


def build(role, key=0, **overrides):
    return BUILDERS[role](**{**HP, **overrides}, key=jax.random.key(key))


def role_fn(model, role):
    return getattr(model, role)


@pytest.fixture(params=list(BUILDERS))
def role(request):
    return request.param


def test_output_shapes_and_float64(role):
    model = build(role)
    out = role_fn(model, role)(jnp.asarray(0.3), jnp.array([0.2, -0.4]))
    assert out.shape == ROLE_SHAPES[role]
    assert out.dtype == jnp.float64
    arrays = jax.tree.leaves(eqx.filter(model, eqx.is_array))
    assert arrays
    assert all(a.dtype == jnp.float64 for a in arrays)


def test_models_are_the_documented_classes():
    assert isinstance(build("score"), ScoreMLP)
    potential = build("log_density")
    assert isinstance(potential, PotentialMLP)
    assert potential.unnormalised is True


def test_jit_and_vmap_match_single_calls(role):
    model = build(role)
    fn = role_fn(model, role)
    xs = jax.random.normal(jax.random.key(1), (5, 2))
    ts = jnp.linspace(0.01, 1.0, 5)
    looped = jnp.stack([fn(t, x) for t, x in zip(ts, xs, strict=True)])
    vmapped = jax.vmap(fn)(ts, xs)
    jitted = jax.vmap(eqx.filter_jit(fn))(ts, xs)
    np.testing.assert_allclose(vmapped, looped, **ROUNDOFF)
    np.testing.assert_allclose(jitted, looped, **ROUNDOFF)


def test_no_retrace_across_times_and_models(role):
    @eqx.filter_jit
    @eqx.debug.assert_max_traces(max_traces=1)
    def evaluate(model, t, x):
        return role_fn(model, role)(t, x)

    x = jnp.array([0.1, 0.2])
    for seed, t in enumerate((0.05, 0.5, 1.0)):
        evaluate(build(role, key=seed), jnp.asarray(t), x)


def test_gradients_in_t_and_x(role):
    model = build(role)
    fn = eqx.filter_jit(role_fn(model, role))
    # Autodiff against central differences, float64 (check_grads' default step and
    # tolerances for float64). Second derivatives (the FP residual's) are autodiff of the
    # same smooth primitives; order 1 keeps the test fast.
    check_grads(fn, (jnp.asarray(0.4), jnp.array([0.3, -0.7])), order=1, modes=["fwd", "rev"])


def test_potential_score_is_its_gradient_form():
    # u = (−½|x|² + α c·x + α² H)/τ² − …: at H = 0 (zeroed output layer) ∇u is the score
    # form (−x + α c)/τ²; checked against a ScoreMLP with the same c and G = 0.
    potential = zero_output(build("log_density"))
    score = zero_output(build("score"))
    c = jnp.array([0.5, -1.0])
    potential = eqx.tree_at(lambda m: m.mean, potential, c)
    score = eqx.tree_at(lambda m: m.mean, score, c)
    for t in (0.01, 0.3, 1.0):
        x = jnp.array([1.0, 2.0])
        np.testing.assert_allclose(
            jax.grad(potential.log_density, argnums=1)(t, x), score.score(t, x), **ROUNDOFF
        )


def zero_output(model):
    last = model.net.mlp.layers[-1]
    model = eqx.tree_at(lambda m: m.net.mlp.layers[-1].weight, model, jnp.zeros_like(last.weight))
    return eqx.tree_at(lambda m: m.net.mlp.layers[-1].bias, model, jnp.zeros_like(last.bias))


@pytest.mark.parametrize("t", [1e-3, 0.05, 0.5, 1.0])
def test_gaussian_data_is_exact_with_a_zero_network(t):
    # For data N(m, vI) under VP, p_t = N(α_t m, (α_t² v + σ_t²) I): the models are exact
    # with c = m and G = H = 0 (module docstring).
    problem = get_problem("vp-gmm-2d")
    v, m = HP["data_variance"], jnp.array([-0.4, 0.8])
    alpha, sigma2 = problem.sde.alpha(t), problem.sde.sigma2(t)
    tau2 = alpha**2 * v + sigma2
    x = jnp.array([0.7, -1.3])
    score = eqx.tree_at(lambda s: s.mean, zero_output(build("score")), m)
    np.testing.assert_allclose(score.score(t, x), -(x - alpha * m) / tau2, **ROUNDOFF)
    potential = eqx.tree_at(lambda s: s.mean, zero_output(build("log_density")), m)
    exact = -0.5 * jnp.sum((x - alpha * m) ** 2) / tau2 - jnp.log(2 * jnp.pi * tau2)
    # u drops the x-independent α²|m|²/(2τ²) of the exact log-density.
    shift = -0.5 * alpha**2 * jnp.sum(m**2) / tau2
    np.testing.assert_allclose(potential.log_density(t, x), exact - shift, **ROUNDOFF)


def test_time_scale_evaluates_the_model_at_scaled_time(role):
    base = build(role)
    scaled = build(role, time_scale=2.0)
    # Same leaves in the time_scale = 2 skeleton.
    scaled = jax.tree.unflatten(jax.tree.structure(scaled), jax.tree.leaves(base))
    x = jnp.array([0.4, 1.1])
    for t in (0.05, 0.2, 0.45):
        # The same float64 program on 2t (2.0 * t is exact): equal up to fusion order.
        np.testing.assert_allclose(
            role_fn(scaled, role)(t, x), role_fn(base, role)(2.0 * t, x), rtol=1e-14, atol=0
        )
    assert not np.allclose(role_fn(scaled, role)(0.3, x), role_fn(base, role)(0.3, x))


def test_time_features():
    features = time_features(jnp.asarray(0.25), jnp.asarray(0.5), jnp.asarray(0.75), 2)
    expected = [0.25, np.log(0.5) - 0.5 * np.log(0.75)]
    expected += [np.sin(np.pi * 0.25), np.sin(2 * np.pi * 0.25)]
    expected += [np.cos(np.pi * 0.25), np.cos(2 * np.pi * 0.25)]
    np.testing.assert_allclose(features, expected, **ROUNDOFF)


@pytest.mark.parametrize("problem_id", ["vp-gmm-2d", "ve-gmm-2d", "ou-gmm-2d"])
def test_sde_from_problem_parameters(problem_id):
    problem = get_problem(problem_id)
    assert sde_from_parameters(problem.parameters()["sde"]) == problem.sde


def test_one_sample_shape_errors_mention_vmap(role):
    model = build(role)
    with pytest.raises(ValueError, match="vmap"):
        role_fn(model, role)(0.5, jnp.zeros((3, 2)))
    with pytest.raises(ValueError, match="vmap"):
        role_fn(model, role)(jnp.zeros(3), jnp.zeros(2))


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"data_variance": 0.0}, "data_variance"),
        ({"time_scale": -1.0}, "time_scale"),
        ({"n_fourier": -1}, "n_fourier"),
        ({"sde": {"kind": "heat"}}, "kind"),
        ({"sde": {"kind": "vp", "beta_min": 0.1}}, "beta_max"),
    ],
)
def test_invalid_hyperparameters(role, overrides, match):
    with pytest.raises(ValueError, match=match):
        build(role, **overrides)


def test_checkpoint_round_trip_and_load_model(tmp_path, role):
    from verify._checkpoint import load_checkpoint, save_checkpoint
    from verify._model import load_model

    builder = "score_mlp" if role == "score" else "potential_mlp"
    model = build(role, key=3)
    directory = save_checkpoint(
        tmp_path / "ckpt",
        model,
        builder=f"solvers.networks:{builder}",
        hyperparameters=HP,
        roles=[role],
    )
    loaded = load_checkpoint(directory)
    xs = jax.random.normal(jax.random.key(0), (8, 2))
    ts = jnp.linspace(0.01, 1.0, 8)
    # Same leaves, same float64 program: bitwise equal.
    np.testing.assert_allclose(
        jax.vmap(role_fn(loaded, role))(ts, xs),
        jax.vmap(role_fn(model, role))(ts, xs),
        rtol=0,
        atol=0,
    )
    loaded_model = load_model(str(directory), role=None, dim=2, probe_time=0.5)
    assert list(loaded_model.roles) == [role]
    assert loaded_model.unnormalised is True
