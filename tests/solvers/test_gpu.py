"""GPU path (``nox -s gpu`` on a CUDA machine; never collected by the default run)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from solvers import LandauKernel, landau_bkw_2d, landau_velocity

pytestmark = pytest.mark.gpu


def test_landau_velocity_on_gpu_matches_cpu():
    gpu = jax.devices("gpu")[0]  # raises when no GPU backend: this session needs one
    cpu = jax.devices("cpu")[0]
    problem = landau_bkw_2d()
    v = problem.sample(1.0, 4096, key=jax.random.key(0))
    s = jax.vmap(lambda x: problem.score(1.0, x))(v)
    w = jnp.full(v.shape[0], 1.0 / v.shape[0])
    results = {}
    for device in (cpu, gpu):
        args = jax.device_put((v, w, s), device)
        for gamma in (0.0, -3.0):
            kernel = LandauKernel(gamma=gamma, C_gamma=1 / 16, block_size=1024)
            out = landau_velocity(kernel, *args)
            assert out.devices() == {device}
            results[device.platform, gamma] = np.asarray(out)
    for gamma in (0.0, -3.0):
        # Same float64 arithmetic in another summation order: round-off only. The
        # expansion's absolute round-off for the closest Coulomb pairs is ~1e-7 at
        # N = 65,536 (solvers/_landau_kernel.py) and below 1e-8 at N = 4,096.
        np.testing.assert_allclose(
            results["gpu", gamma], results["cpu", gamma], rtol=1e-9, atol=1e-8
        )
