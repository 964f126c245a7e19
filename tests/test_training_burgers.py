"""``fixtures/training/train_burgers.py``: a ``--quick`` run end to end, and its loss pieces.

The quick run (a few Adam steps, no L-BFGS) is a smoke test of the script's plumbing:
checkpoints written, loadable, with the roles and hyper-parameters of the full run, and the
manifest left alone under ``--no-manifest``. The in-process tests check the pieces whose
errors training would hide: the PINN residual vanishes on the exact solution, and the mode
cut of the FNO defect is the same model with its higher modes zeroed.
"""

from __future__ import annotations

import functools
import hashlib
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

from solvers import get_problem
from solvers.field_networks import SpectralConv1d, fourier_neural_operator_1d
from verify._checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "fixtures" / "training" / "train_burgers.py"
NAMES = ("burgers-pinn", "burgers-pinn-defect", "burgers-fno", "burgers-fno-defect")


@functools.cache
def _script_module():
    name = "_train_burgers_under_test"
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_quick_run_writes_loadable_checkpoints(tmp_path):
    manifest = ROOT / "fixtures" / "manifest.json"
    before = hashlib.sha256(manifest.read_bytes()).hexdigest()
    stale = tmp_path / "burgers-fno-defect"
    stale.mkdir()
    (stale / "stale.txt").write_text("from an older run")
    # XLA's backend optimisations would take most of this test's time compiling training
    # steps that run three times; the quick models are not meant to be good.
    env = {**os.environ, "XLA_FLAGS": "--xla_backend_optimization_level=0"}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out-dir", str(tmp_path), "--no-manifest"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert hashlib.sha256(manifest.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(NAMES)
    assert not (stale / "stale.txt").exists()  # old outputs are removed first

    problem = get_problem("burgers-1d")
    x = problem.grid(problem.grid_size)
    u0 = jax.vmap(problem.initial_state)(x)
    for name in NAMES:
        directory = tmp_path / name
        spec = json.loads((directory / "model.json").read_text())
        assert (directory / "leaves.eqx").stat().st_size <= 256 * 1024, name
        model = load_checkpoint(directory)
        if "pinn" in name:
            assert spec["roles"] == ["field"]
            assert spec["builder"] == "solvers.field_networks:periodic_pinn"
            assert model.field(0.5, x[3]).shape == (1,)
        else:
            assert spec["roles"] == ["operator"]
            assert spec["hyperparameters"]["modes"] == (4 if "defect" in name else 16)
            out = model.operator(u0, 0.5)
            assert out.shape == (problem.grid_size, 1)
            assert out.dtype == jnp.float64


def test_pinn_residual_vanishes_on_the_exact_solution():
    """r = u_t + u u_x − ν u_xx of the Cole–Hopf solution, by the script's nested jvps."""
    train = _script_module()
    problem = get_problem("burgers-1d")

    class Exact(eqx.Module):
        def field(self, t, x):
            return problem.exact_state(t, x)

    t = jnp.array([0.0, 0.4, 1.6, 3.0])
    x = jnp.linspace(0.0, problem.length, 9)[:-1]
    residual, rhs = jax.vmap(
        lambda s: jax.vmap(lambda y: train.pinn_terms(Exact(), problem.nu, s, y))(x)
    )(t)
    # N = ν u_xx − u u_x is O(1) (|u_x| ≤ 3.1 at the steepest front); the series is
    # accurate to ~2e−12 relative (solvers._burgers: conditioning e^{2a}, a = 5), and
    # each derivative multiplies that by at most the front's inverse width ~30.
    assert float(jnp.max(jnp.abs(rhs))) > 0.1
    np.testing.assert_allclose(residual, 0.0, rtol=0, atol=1e-8)


@pytest.mark.parametrize("modes", [1, 3])
def test_truncate_modes_equals_zeroing_the_higher_modes(modes):
    train = _script_module()
    model = fourier_neural_operator_1d(
        n=32, width=4, modes=6, layers=2, t_min=0.0, t_max=3.0, key=jax.random.key(0)
    )
    cut = train.truncate_modes(model, modes)
    zeroed = eqx.tree_at(
        lambda m: m.spectral,
        model,
        tuple(
            SpectralConv1d(c.weight_real.at[modes:].set(0), c.weight_imag.at[modes:].set(0))
            for c in model.spectral
        ),
    )
    assert all(conv.modes == modes for conv in cut.spectral)
    u0 = jnp.sin(jnp.arange(32) * 2 * np.pi / 32)[:, None] ** 3
    # identical arithmetic but for the einsum's length: round-off only (ε × width × modes)
    np.testing.assert_allclose(
        cut.operator(u0, 1.3), zeroed.operator(u0, 1.3), rtol=1e-13, atol=1e-13
    )


def test_random_initial_conditions():
    train = _script_module()
    x = jnp.arange(64) * 2 * np.pi / 64
    u0 = train.random_initial_conditions(16, x, key=jax.random.key(3))
    assert u0.shape == (16, 64)
    # zero mean to round-off: sums of whole periods of cos kx, sin kx on the grid
    np.testing.assert_allclose(jnp.mean(u0, axis=1), 0.0, rtol=0, atol=1e-14)
    peak = jnp.max(jnp.abs(u0), axis=1)
    # a quarter are waves A sin(x − φ), A ∈ [0.7, 1.3]; the rest scaled to max |u₀| ∈ [0.5, 1.3]
    # (grid maxima of a sine fall short of A by at most 1 − cos(π/64) < 1.3e−3)
    assert bool(jnp.all(peak[:4] >= 0.7 * (1 - 1.3e-3)))
    assert bool(jnp.all((peak >= 0.5 * (1 - 1.3e-3)) & (peak <= 1.3)))
