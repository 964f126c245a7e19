"""Field roles of PDE surrogates (field, operator, step): probe with the problem's shapes."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from solvers import heat_1d, heat_2d
from tests.verify import models_for_fields as mf
from verify._checkpoint import save_checkpoint
from verify._field_run import field_shapes
from verify._model import (
    FIELD_ROLES,
    ROLES,
    FieldShapes,
    ModelError,
    load_model,
    model_from_object,
    probe_field_roles,
)

MODULE = "tests.verify.models_for_fields"
HEAT1 = heat_1d()
SHAPES1 = field_shapes(HEAT1)


def load(attr: str, role: str | None = None, *, shapes=SHAPES1, problem=HEAT1):
    return load_model(
        f"{MODULE}:{attr}", role=role, dim=problem.dim, probe_time=0.25, shapes=shapes
    )


def assert_one_line(match: str, attr: str, role: str | None = None, **kwargs) -> None:
    with pytest.raises(ModelError, match=match) as info:
        load(attr, role, **kwargs)
    assert "\n" not in str(info.value)


def test_field_roles_are_roles():
    assert set(FIELD_ROLES) <= set(ROLES)
    assert ROLES[:4] == ("score", "log_density", "flow", "velocity")  # reported order kept


@pytest.mark.parametrize("problem", [heat_1d(), heat_2d()], ids=lambda p: p.problem_id)
def test_shapes_come_from_the_problem(problem):
    shapes = field_shapes(problem)
    n = problem.grid_size
    assert shapes == FieldShapes(problem.dim, n, 1, 1, problem.length)
    assert shapes.grid_shape == (n,) * problem.dim + (1,)


@pytest.mark.parametrize("problem", [heat_1d(), heat_2d()], ids=lambda p: p.problem_id)
def test_exact_model_loads_all_three_roles(problem):
    model = model_from_object(
        mf.ExactHeat(problem),
        role=None,
        dim=problem.dim,
        probe_time=0.25,
        shapes=field_shapes(problem),
    )
    assert set(model.roles) == set(FIELD_ROLES)
    assert model.step_size == 0.05
    assert model.field_shapes == field_shapes(problem)


def test_probe_is_deferred_without_shapes_and_done_once_with_them():
    model = load("heat1d_exact", shapes=None)
    assert model.field_shapes is None  # resolved, not yet probed
    probed = probe_field_roles(model, SHAPES1, probe_time=0.25)
    assert probed.field_shapes == SHAPES1
    assert probe_field_roles(probed, SHAPES1, probe_time=0.25) is probed


@pytest.mark.parametrize(
    ("attr", "role", "match"),
    [
        ("heat1d_channels_first", "operator", r"returned shape \(1, 64\), expected \(64, 1\).*"),
        ("heat1d_scalar_field", "field", r"returned shape \(\), expected \(1,\)"),
        ("nan_step", "step", "NaN or Inf"),
        ("step_without_size", "step", "step_size"),
    ],
)
def test_probe_rejects_with_one_line(attr, role, match):
    assert_one_line(match, attr, role)


def test_shape_error_says_channels_last():
    with pytest.raises(ModelError, match="channels last"):
        load("heat1d_channels_first", "operator")


def test_deferred_probe_raises_the_same_error():
    model = load("heat1d_channels_first", "operator", shapes=None)
    with pytest.raises(ModelError, match="channels last"):
        probe_field_roles(model, SHAPES1, probe_time=0.25)


@pytest.mark.parametrize("bad", [0.0, -0.1, float("nan"), True, "0.1", (0.1, 0.2)])
def test_step_size_must_be_a_positive_number(bad):
    class Bad(mf.StepWithoutSize):
        step_size: object = bad

    with pytest.raises(ModelError, match="step_size"):
        model_from_object(Bad(), role="step", dim=1, probe_time=0.25, shapes=SHAPES1)


def test_step_size_on_a_plain_function():
    def step(u):
        return u

    step.step_size = 0.1
    model = model_from_object(step, role="step", dim=1, probe_time=0.25, shapes=SHAPES1)
    assert model.step_size == 0.1


def test_shapes_of_another_dimension_are_refused():
    with pytest.raises(ModelError, match="d = 2"):
        load("heat1d_exact", shapes=field_shapes(heat_2d()))


@pytest.mark.parametrize(
    ("builder", "hyperparameters", "role", "make"),
    [
        ("make_pinn", {"dim": 1, "width": 8}, "field", mf.make_pinn),
        ("make_fno", {"modes": 4}, "operator", mf.make_fno),
    ],
)
def test_networks_load_from_checkpoints_without_special_cases(
    tmp_path, builder, hyperparameters, role, make
):
    network = make(**hyperparameters, key=jax.random.key(3))
    directory = save_checkpoint(
        tmp_path / "ckpt",
        network,
        builder=f"{MODULE}:{builder}",
        hyperparameters=hyperparameters,
        roles=[role],
    )
    model = load_model(str(directory), role=None, dim=1, probe_time=0.25, shapes=SHAPES1)
    assert set(model.roles) == {role}
    u0 = jnp.cos(HEAT1.grid(64))
    args = (jnp.asarray(0.3), jnp.asarray([1.0])) if role == "field" else (u0, jnp.asarray(0.3))
    # the leaves are read back bit for bit (rtol = atol = 0)
    np.testing.assert_allclose(
        model.role(role)(*args), getattr(network, role)(*args), rtol=0, atol=0
    )
