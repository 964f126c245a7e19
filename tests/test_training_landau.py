"""The landau-bkw training script: a quick run writes loadable fixtures of the right shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "fixtures" / "training" / "train_landau_bkw.py"
MAX_FIXTURE_BYTES = 256 * 1024
MODELS = ["landau-bkw-pinn-pm", "landau-bkw-pinn-pm-leaky", "landau-bkw-pinn-pm-undertrained"]


def test_landau_training_quick(tmp_path):
    from certificates import read_trajectories
    from verify._model import load_model

    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out-dir", str(tmp_path), "--no-manifest"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": path},
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == sorted(MODELS)
    for name in MODELS:
        directory = tmp_path / "models" / name
        manifest = json.loads((directory / "model.json").read_text())
        assert manifest["builder"] == "solvers:pinn_pm_model"
        assert manifest["roles"] == ["score", "flow"]
        leak = manifest["hyperparameters"]["leak"]
        assert leak == (0.05 if name.endswith("leaky") else 0.0)
        for file in directory.iterdir():
            assert file.stat().st_size <= MAX_FIXTURE_BYTES, file
        model = load_model(str(directory), role=None, dim=2, probe_time=0.5)
        assert sorted(model.roles) == ["flow", "score"]

    trajectory = tmp_path / "trajectories" / "landau-bkw-sbp.nc"
    assert trajectory.stat().st_size <= MAX_FIXTURE_BYTES
    artefact = read_trajectories(trajectory)
    np.testing.assert_array_equal(artefact.time, [0.0, 0.5, 1.0, 2.0, 5.0])
    assert artefact.problem_id == "landau-bkw-2d"
    assert artefact.stepper == "forward_euler"
    assert artefact.step_size == 0.5
    n_steps = 10  # t = 0 … 5 with the quick run's Δt = 0.5
    assert artefact.second_moment_increment.shape == (n_steps,)
    for name in ("score", "score_divergence", "log_density"):
        assert getattr(artefact, name) is not None, name
    # forward Euler raises Σ w|X|² by exactly the recorded increments (MATH.md §2.4)
    m2 = np.mean(np.sum(artefact.positions**2, axis=-1), axis=-1)
    step_of_frame = np.rint(artefact.time / artefact.step_size).astype(int)
    increments = np.concatenate([[0.0], np.cumsum(artefact.second_moment_increment)])
    np.testing.assert_allclose(m2 - m2[0], increments[step_of_frame], rtol=1e-9, atol=1e-14)
