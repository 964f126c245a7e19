"""Test-session configuration: float64 JAX and Hypothesis profiles.

x64 is switched on here (and in the CLI entry point), never on library import.
"""

from __future__ import annotations

import os

import jax
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
