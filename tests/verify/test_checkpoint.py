"""The checkpoint format: round trip, atomic writes, hashing, one-line errors."""

from __future__ import annotations

import json
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.verify import models_for_tests as m
from verify._checkpoint import (
    FORMAT,
    LEAVES,
    MANIFEST,
    VERSION,
    checkpoint_sha256,
    load_checkpoint,
    read_manifest,
    save_checkpoint,
)
from verify._model import ModelError

BUILDER = "tests.verify.models_for_tests:make_score_mlp"
HP = {"dim": 2, "width": 8, "depth": 2}


@pytest.fixture
def model():
    return m.make_score_mlp(**HP, key=jax.random.key(7))


@pytest.fixture
def ckpt(tmp_path, model):
    return save_checkpoint(tmp_path / "ckpt", model, builder=BUILDER, hyperparameters=HP)


def assert_one_line_error(match, directory):
    with pytest.raises(ModelError, match=match) as info:
        load_checkpoint(directory)
    assert "\n" not in str(info.value)


def test_round_trip_identical_outputs(ckpt, model):
    loaded = load_checkpoint(ckpt)
    xs = jax.random.normal(jax.random.key(0), (16, 2))
    batched = jax.vmap(lambda f, x: f(0.3, x), in_axes=(None, 0))
    # Same leaves, same float64 program: bitwise equal (rtol = atol = 0).
    np.testing.assert_allclose(batched(loaded.score, xs), batched(model.score, xs), rtol=0, atol=0)
    for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(model), strict=True):
        if isinstance(a, jax.Array):
            assert a.dtype == jnp.float64
            np.testing.assert_array_equal(a, b)


def test_manifest_contents(ckpt):
    data = json.loads((ckpt / MANIFEST).read_text())
    assert data == {
        "format": FORMAT,
        "version": VERSION,
        "builder": BUILDER,
        "hyperparameters": HP,
        "leaves": LEAVES,
    }
    assert read_manifest(ckpt).roles is None
    assert sorted(p.name for p in ckpt.iterdir()) == [LEAVES, MANIFEST]
    assert not [p for p in ckpt.parent.iterdir() if p.name.startswith(".")]


def test_sha256_is_stable_and_content_sensitive(ckpt, tmp_path, model):
    first = checkpoint_sha256(ckpt)
    assert checkpoint_sha256(ckpt) == first
    other = save_checkpoint(
        tmp_path / "other", model, builder=BUILDER, hyperparameters=HP, roles=["score"]
    )
    assert checkpoint_sha256(other) != first


def test_builder_from_relative_file(tmp_path, model):
    source = tmp_path / "builder.py"
    source.write_text(
        textwrap.dedent(
            """
            from tests.verify.models_for_tests import make_score_mlp

            def make(**kwargs):
                return make_score_mlp(**kwargs)
            """
        )
    )
    directory = save_checkpoint(
        tmp_path / "ckpt", model, builder="builder.py:make", hyperparameters=HP, files=[source]
    )
    loaded = load_checkpoint(directory)
    x = jnp.array([0.1, -0.2])
    np.testing.assert_allclose(loaded.score(0.0, x), model.score(0.0, x), rtol=0, atol=0)
    digest = checkpoint_sha256(directory)
    load_checkpoint(directory)  # may write __pycache__, which the hash ignores
    assert checkpoint_sha256(directory) == digest


def test_save_refuses_non_empty_target(ckpt, model):
    with pytest.raises(FileExistsError):
        save_checkpoint(ckpt, model, builder=BUILDER, hyperparameters=HP)


def test_save_into_empty_directory(tmp_path, model):
    (tmp_path / "empty").mkdir()
    save_checkpoint(tmp_path / "empty", model, builder=BUILDER, hyperparameters=HP)
    assert (tmp_path / "empty" / MANIFEST).is_file()


def test_save_rejects_mismatched_model_and_leaves_no_trace(tmp_path, model):
    with pytest.raises(ModelError, match="do not match"):
        save_checkpoint(
            tmp_path / "ckpt", model, builder=BUILDER, hyperparameters={**HP, "width": 4}
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hyperparameters": {"w": float("nan")}}, "not JSON"),
        ({"hyperparameters": {"w": object()}}, "not JSON"),
        ({"roles": ["density"]}, "roles"),
        ({"builder": "not a spec"}, "malformed"),
        ({"builder": "../up.py:f"}, "inside the directory"),
    ],
)
def test_save_validates_arguments(tmp_path, model, kwargs, match):
    arguments = {"builder": BUILDER, "hyperparameters": HP, **kwargs}
    with pytest.raises(ModelError, match=match):
        save_checkpoint(tmp_path / "ckpt", model, **arguments)


def test_missing_manifest(tmp_path):
    tmp_path.joinpath("d").mkdir()
    assert_one_line_error("has no model.json", tmp_path / "d")


def edit_manifest(ckpt, **changes):
    data = json.loads((ckpt / MANIFEST).read_text())
    data.update(changes)
    data = {k: v for k, v in data.items() if v is not None}
    (ckpt / MANIFEST).write_text(json.dumps(data))


def test_bad_json(ckpt):
    (ckpt / MANIFEST).write_text("{not json")
    assert_one_line_error("not valid JSON", ckpt)


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"format": "other"}, "format"),
        ({"version": 2}, "version 2 is not supported"),
        ({"version": True}, "version"),
        ({"builder": None}, "lacks 'builder'"),
        ({"hyperparameters": [1]}, "must be a JSON object"),
        ({"leaves": "../x.eqx"}, "must be a file name"),
        ({"leaves": "gone.eqx"}, "no leaves file 'gone.eqx'"),
        ({"roles": "score"}, "list of role names"),
        ({"builder": "tests.verify.models_for_tests:nope"}, "no attribute 'nope'"),
        ({"builder": "tests.verify.models_for_tests:not_a_model"}, "not callable"),
        ({"hyperparameters": {"dim": 2}}, "builder .* failed: TypeError"),
    ],
)
def test_bad_manifest(ckpt, changes, match):
    edit_manifest(ckpt, **changes)
    assert_one_line_error(match, ckpt)


def test_manifest_not_an_object(ckpt):
    (ckpt / MANIFEST).write_text("[1, 2]")
    assert_one_line_error("JSON object", ckpt)


def test_missing_leaves(ckpt):
    (ckpt / LEAVES).unlink()
    assert_one_line_error("no leaves file", ckpt)


@pytest.mark.parametrize(
    ("corrupt", "match"),
    [
        (lambda b: b[: len(b) // 2], "do not match"),
        (lambda b: b"garbage" + b[7:], "do not match"),
        (lambda b: b"", "do not match"),
        (lambda b: b + b, "more leaves"),
    ],
)
def test_corrupt_leaves(ckpt, corrupt, match):
    path = ckpt / LEAVES
    path.write_bytes(corrupt(path.read_bytes()))
    assert_one_line_error(match, ckpt)


def test_leaves_from_a_different_shape(tmp_path, ckpt):
    small = m.make_score_mlp(**{**HP, "width": 4}, key=jax.random.key(0))
    other = save_checkpoint(
        tmp_path / "small", small, builder=BUILDER, hyperparameters={**HP, "width": 4}
    )
    (ckpt / LEAVES).write_bytes((other / LEAVES).read_bytes())
    assert_one_line_error("do not match", ckpt)


def test_float32_leaves_do_not_match_float64_skeleton(ckpt, model):
    f32 = jax.tree.map(lambda a: a.astype(jnp.float32) if isinstance(a, jax.Array) else a, model)
    import equinox as eqx

    eqx.tree_serialise_leaves(ckpt / LEAVES, f32)
    assert_one_line_error("float32", ckpt)
