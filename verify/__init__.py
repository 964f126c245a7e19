"""Verification layer: a posteriori estimators joined with reference solvers, and the CLI.

``verify`` is the only package that imports both ``solvers`` (JAX) and ``certificates``
(the artefact). The typer application lives in :mod:`verify.cli`; the estimators in
:mod:`verify.estimators` (imported on demand, so artefact-only commands stay JAX-free).
"""

from ._version import tool_version

__all__ = ["tool_version"]
