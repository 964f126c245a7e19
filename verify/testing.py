"""Helpers for users' test suites: the certificate assertion and Hypothesis strategies.

:func:`assert_certificate_passes` needs only pytest. The strategies of
:mod:`verify.strategies` (``gmm_problems``, ``sde_parameters``, ``bkw_problems``,
``certification_times``) are re-exported lazily, so importing this module never requires
Hypothesis; accessing one of them does (``pip install solvercert[test]``).
"""

from __future__ import annotations

from typing import Any

from .pytest_plugin import assert_certificate_passes

_STRATEGIES = ("bkw_problems", "certification_times", "gmm_problems", "sde_parameters")

__all__ = ["assert_certificate_passes", *_STRATEGIES]


def __getattr__(name: str) -> Any:
    if name in _STRATEGIES:
        from . import strategies

        return getattr(strategies, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
