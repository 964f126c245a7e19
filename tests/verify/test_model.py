"""Loading the model under test: SPEC forms, roles, probe checks, one-line errors."""

from __future__ import annotations

import hashlib
import sys
import textwrap
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.verify import models_for_tests as m
from verify._checkpoint import save_checkpoint
from verify._model import ROLES, LoadedModel, ModelError, load_model

MODULE = "tests.verify.models_for_tests"
HERE = Path(__file__).parent
DIM = 3


def load(spec: str, role: str | None = None, **kwargs) -> LoadedModel:
    return load_model(spec, role=role, dim=DIM, probe_time=0.5, **kwargs)


def assert_model_error(match: str, spec: str, role: str | None = None, **kwargs) -> str:
    with pytest.raises(ModelError, match=match) as info:
        load(spec, role, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


x = jnp.linspace(-1.0, 1.0, DIM)
t = jnp.asarray(0.25)


# ----------------------------------------------------------------------------- spec forms


def test_module_spec_callable_with_role():
    model = load(f"{MODULE}:gaussian_score", "score")
    assert set(model.roles) == {"score"}
    # Exact: the loaded function is the module's (rtol/atol 0).
    np.testing.assert_allclose(model.role("score")(t, x), m.gaussian_score(t, x), rtol=0, atol=0)
    assert model.model_sha256 == ""
    assert model.spec == f"{MODULE}:gaussian_score"


def test_file_spec_hashes_the_file_and_uses_a_unique_module_name():
    path = HERE / "models_for_tests.py"
    before = set(sys.modules)
    model = load(f"{path}:gaussian_score", "score")
    assert model.model_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    added = set(sys.modules) - before
    assert all(name.startswith("_solvercert_model_") for name in added)
    assert "models_for_tests" not in sys.modules
    # Loading twice gives two distinct module names (no collision).
    load(f"{path}:gaussian_score", "score")
    assert len(set(sys.modules) - before) == 2


def test_file_spec_with_dotted_attr(tmp_path):
    path = tmp_path / "user.py"
    path.write_text(
        textwrap.dedent(
            """
            import jax.numpy as jnp

            class Holder:
                @staticmethod
                def velocity(t, x):
                    return -x * t

            holder = Holder()
            """
        )
    )
    model = load(f"{path}:holder", None)
    assert set(model.roles) == {"velocity"}


def test_object_exposes_several_roles_and_declares_normalised():
    model = load(f"{MODULE}:pinn")
    assert set(model.roles) == {"score", "flow", "log_density"}
    assert model.unnormalised is False
    np.testing.assert_allclose(model.role("flow")(t, x), jnp.sqrt(1.25) * x, rtol=1e-15, atol=0)
    with pytest.raises(ModelError, match="no role 'velocity'"):
        model.role("velocity")


def test_object_with_role_loads_only_that_role():
    model = load(f"{MODULE}:pinn", "flow")
    assert set(model.roles) == {"flow"}


def test_log_density_is_unnormalised_by_default():
    model = load(f"{MODULE}:gaussian_log_density", "log_density")
    assert model.unnormalised is True


def test_roles_are_read_only_and_vmappable():
    model = load(f"{MODULE}:pinn")
    with pytest.raises(TypeError):
        model.roles["velocity"] = m.gaussian_score  # type: ignore[index]
    xs = jnp.ones((5, DIM))
    out = jax.vmap(model.role("score"), in_axes=(None, 0))(t, xs)
    assert out.shape == (5, DIM)


def test_checkpoint_directory_spec(tmp_path):
    model = m.make_score_mlp(dim=DIM, width=8, depth=2, key=jax.random.key(3))
    hp = {"dim": DIM, "width": 8, "depth": 2}
    save_checkpoint(
        tmp_path / "ckpt", model, builder=f"{MODULE}:make_score_mlp", hyperparameters=hp
    )
    loaded = load(str(tmp_path / "ckpt"))
    assert set(loaded.roles) == {"score"}
    # Identical leaves, identical float64 arithmetic: exact equality.
    np.testing.assert_allclose(loaded.role("score")(t, x), model.score(t, x), rtol=0, atol=0)
    assert len(loaded.model_sha256) == 64
    assert load(str(tmp_path / "ckpt")).model_sha256 == loaded.model_sha256


def test_checkpoint_of_plain_callable_uses_declared_role(tmp_path):
    model = m.make_time_mlp(dim=DIM, width=4, depth=1, key=jax.random.key(1))
    hp = {"dim": DIM, "width": 4, "depth": 1}
    directory = tmp_path / "ckpt"
    save_checkpoint(
        directory, model, builder=f"{MODULE}:make_time_mlp", hyperparameters=hp, roles=["velocity"]
    )
    assert set(load(str(directory)).roles) == {"velocity"}


# ----------------------------------------------------------------------------- spec errors


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("", "malformed"),
        ("no_colon_module", "malformed"),
        (f"{MODULE}:", "malformed"),
        (":attr", "malformed"),
        ("not a module:attr", "malformed"),
        (f"{MODULE}:bad-name", "malformed"),
        ("missing/dir", "checkpoint directory not found"),
    ],
)
def test_malformed_spec(spec, match):
    assert_model_error(match, spec, "score")


def test_file_spec_without_attr_is_malformed():
    assert_model_error("needs ':attr'", str(HERE / "models_for_tests.py"), "score")


def test_missing_file(tmp_path):
    assert_model_error("model file not found", f"{tmp_path / 'nope.py'}:f", "score")


def test_missing_module():
    assert_model_error("not found", "no_such_package_xyz.mod:f", "score")


@pytest.mark.parametrize(
    ("source", "cause"),
    [
        ("raise RuntimeError('bad\\nthing')", "RuntimeError: bad"),
        ("def f(:\n    pass", "SyntaxError"),
        ("import no_such_package_xyz", "ModuleNotFoundError"),
    ],
)
def test_import_error_inside_user_file(tmp_path, source, cause):
    path = tmp_path / "broken_model.py"
    path.write_text(source)
    before = set(sys.modules)
    message = assert_model_error(cause, f"{path}:f", "score")
    assert "broken_model.py" in message
    assert set(sys.modules) == before


def test_missing_attr():
    assert_model_error("has no attribute 'nope'", f"{MODULE}:nope", "score")


def test_callable_without_role():
    assert_model_error("pass --role", f"{MODULE}:gaussian_score")


def test_object_without_role_method():
    assert_model_error("neither callable nor exposes a role method", f"{MODULE}:not_a_model")


def test_class_instead_of_instance():
    assert_model_error("is a class", f"{MODULE}:ScoreAndFlow")


def test_unknown_role():
    assert_model_error("unknown role 'density'", f"{MODULE}:gaussian_score", "density")


def test_object_lacking_requested_role():
    assert_model_error("has no method 'velocity'", f"{MODULE}:pinn", "velocity")


@pytest.mark.parametrize("dim", [0, -1, 2.0, True])
def test_bad_dimension(dim):
    with pytest.raises(ModelError, match="positive integer"):
        load_model(f"{MODULE}:gaussian_score", role="score", dim=dim, probe_time=0.5)


# ----------------------------------------------------------------------------- probe


@pytest.mark.parametrize(
    ("attr", "role", "match"),
    [
        ("wrong_shape", "score", r"shape \(1, 3\), expected \(3,\).*vmap"),
        ("gaussian_score", "log_density", r"shape \(3,\), expected \(\)"),
        ("float32_score", "score", "dtype float32, expected float64"),
        ("nan_score", "score", "NaN or Inf"),
        ("numpy_score", "score", "not traceable.*TracerArrayConversionError"),
        ("raising_score", "score", "RuntimeError: boom"),
        ("tuple_score", "score", "must return one array"),
    ],
)
def test_probe_rejects(attr, role, match):
    assert_model_error(match, f"{MODULE}:{attr}", role)


def test_probe_accepts_float32_when_allowed():
    model = load(f"{MODULE}:float32_score", "score", allow_float32=True)
    assert set(model.roles) == {"score"}


def test_roles_constant():
    assert ROLES == ("score", "log_density", "flow", "velocity", "field", "operator", "step")


def test_module_spec_resolves_from_the_current_directory(tmp_path, monkeypatch):
    # A console script does not put the current directory on sys.path; load_model does,
    # as `python -m` would, so a project's own package resolves without installing it.
    package = tmp_path / "cwd_only_pkg_3f9a"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text("def score(t, x):\n    return -x / (1.0 + t)\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    loaded = load_model("cwd_only_pkg_3f9a.models:score", role="score", dim=2, probe_time=0.5)
    assert set(loaded.roles) == {"score"}
