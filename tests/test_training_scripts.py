"""Training scripts of the fixture models: a quick run of each, and their loss terms."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TRAINING = ROOT / "fixtures" / "training"
MAX_FIXTURE_BYTES = 256 * 1024


def _script_module(name: str):
    spec = importlib.util.spec_from_file_location(f"_training_{name}", TRAINING / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their defining module up in sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def vp_gmm():
    return _script_module("train_vp_gmm")


def _run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    # The repository root first on the path, as in a development checkout.
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run(
        [sys.executable, str(TRAINING / f"{name}.py"), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=300,
    )


def test_vp_gmm_training_quick(tmp_path):
    from verify._model import load_model

    # One score and one potential recipe (the FP-penalised recipes compile a third-order
    # derivative, ~30 s on 2 cores; their penalty is tested below without training).
    names = ["vp-gmm-undertrained-score", "vp-gmm-potential-fp0"]
    done = _run_script(
        "train_vp_gmm", "--quick", "--only", *names, "--out-dir", str(tmp_path), "--no-manifest"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names)
    for name, role in zip(names, ["score", "log_density"], strict=True):
        directory = tmp_path / name
        manifest = json.loads((directory / "model.json").read_text())
        assert manifest["builder"].startswith("solvers.networks:")
        assert manifest["roles"] == [role]
        assert manifest["hyperparameters"]["sde"] == {
            "kind": "vp",
            "beta_min": 0.1,
            "beta_max": 20.0,
        }
        for file in directory.iterdir():
            assert file.stat().st_size <= MAX_FIXTURE_BYTES, file
        model = load_model(str(directory), role=None, dim=2, probe_time=0.5)
        assert list(model.roles) == [role]


def _exact_gaussian(vp_gmm, kind, problem):
    """The network with a zero output layer and c = m: exact for data N(m, vI)."""
    model = vp_gmm.build(kind, vp_gmm._hyperparameters(problem), key=jax.random.key(0))
    last = model.net.mlp.layers[-1]
    model = eqx.tree_at(lambda m: m.net.mlp.layers[-1].weight, model, jnp.zeros_like(last.weight))
    model = eqx.tree_at(lambda m: m.net.mlp.layers[-1].bias, model, jnp.zeros_like(last.bias))
    return eqx.tree_at(lambda m: m.mean, model, jnp.array([-0.4, 0.8]))


@pytest.mark.parametrize("kind", ["score", "potential"])
def test_vp_gmm_fp_penalty_vanishes_on_an_exact_solution(vp_gmm, kind):
    from solvers import get_problem

    problem = get_problem("vp-gmm-2d")
    keys = jax.random.split(jax.random.key(1), 3)
    x0 = jax.random.normal(keys[0], (3, 16, 2))
    eps = jax.random.normal(keys[1], (3, 16, 2))
    t = jnp.array([0.01, 0.3, 0.9])
    exact = _exact_gaussian(vp_gmm, kind, problem)
    # A Gaussian diffused by the VP SDE solves the Fokker–Planck equation at every x, so R
    # is round-off: ~1e-14 of terms of size ≤ 1e2, squared over their squared size ≤ 1e-24.
    penalty = eqx.filter_jit(vp_gmm.fp_penalty)
    assert float(penalty(exact, problem, x0, t, eps)) < 1e-20
    random = vp_gmm.build(kind, vp_gmm._hyperparameters(problem), key=jax.random.key(2))
    # A random network is no solution: measured 0.02-0.2 over four initialisations.
    assert float(penalty(random, problem, x0, t, eps)) > 1e-3


def test_vp_gmm_dsm_loss_is_minimised_by_the_exact_score(vp_gmm):
    # E ℓ = τ²(E|s − ∇log p_t|² − I(t)) (Tweedie): the exact score of Gaussian data has a
    # lower loss than the same model with a perturbed c, on the same noise.
    from solvers import get_problem

    problem = get_problem("vp-gmm-2d")
    exact = _exact_gaussian(vp_gmm, "score", problem)
    wrong = eqx.tree_at(lambda m: m.mean, exact, exact.mean + 0.5)
    keys = jax.random.split(jax.random.key(3), 3)
    n = 4096
    # Data N(m, vI) with v = data_variance: the exact model's own data.
    v = vp_gmm.ARCHITECTURE["data_variance"]
    x0 = exact.mean + np.sqrt(v) * jax.random.normal(keys[0], (n, 2))
    t = vp_gmm.sample_times(n, problem.t_min, problem.t_max, key=keys[1])
    eps = jax.random.normal(keys[2], (n, 2))
    loss = eqx.filter_jit(vp_gmm.dsm_loss)
    assert loss(exact, problem, x0, t, eps) < loss(wrong, problem, x0, t, eps)


def test_vp_gmm_wrong_time_variant_keeps_the_leaves(vp_gmm):
    from solvers import get_problem

    problem = get_problem("vp-gmm-2d")
    model = vp_gmm.build("score", vp_gmm._hyperparameters(problem), key=jax.random.key(4))
    scaled = vp_gmm.with_time_scale(model, "score", problem, 2.0)
    x = jnp.array([0.3, -0.2])
    # The same float64 program at 2t (2.0 * t is exact): equal up to fusion order.
    np.testing.assert_allclose(scaled.score(0.2, x), model.score(0.4, x), rtol=1e-14, atol=0)
