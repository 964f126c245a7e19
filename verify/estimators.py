"""A posteriori estimators: score gaps, Hyvärinen's identity, Fokker–Planck residuals.

Public API of the estimators (imports JAX). Kept out of ``verify/__init__.py`` so that
the artefact-only commands (``verify show``, ``gate``, ``report``) never import JAX.
"""

from ._divergence import divergence_exact, divergence_hutchinson, rademacher_variance
from ._estimate import Estimate, estimates_to_check, summarise, tail_diagnostics
from ._fp_residual import (
    fp_log_density_residual,
    fp_residuals,
    fp_score_residual,
    log_density_residual,
    score_residual,
)
from ._score_gap import hyvarinen_gap, hyvarinen_loss, relative_to_fisher, score_gap

__all__ = [
    "Estimate",
    "divergence_exact",
    "divergence_hutchinson",
    "estimates_to_check",
    "fp_log_density_residual",
    "fp_residuals",
    "fp_score_residual",
    "hyvarinen_gap",
    "hyvarinen_loss",
    "log_density_residual",
    "rademacher_variance",
    "relative_to_fisher",
    "score_gap",
    "score_residual",
    "summarise",
    "tail_diagnostics",
]
