"""Test-session configuration: float64 JAX, Hypothesis profiles, compiled-code release.

x64 is switched on here (and in the CLI entry point), never on library import.
"""

from __future__ import annotations

import gc
import os

import jax
import pytest
from hypothesis import HealthCheck, settings

jax.config.update("jax_enable_x64", True)

# "ci": derandomised and without deadlines (2 shared cores, jit compile times vary);
# "dev": random exploration with more examples. CI=true selects "ci".
settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None, max_examples=100)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_code():
    """Drop JAX's compiled executables after each test module.

    XLA's CPU backend maps three memory regions per compiled executable (code, constants,
    data) and frees them only with the executable. One process running the whole suite
    compiles tens of thousands of programs; the mappings passed the kernel's
    vm.max_map_count (65,530) and the next mmap failed inside the compiler, a segmentation
    fault (measured: 45,071 maps at 70 % of the suite; 19,451 after test_certify and
    test_sample_gap alone). Clearing the caches and collecting per module frees about half
    of them and keeps the count bounded; later modules recompile what they share.
    """
    yield
    jax.clear_caches()
    gc.collect()
