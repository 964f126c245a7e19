"""The installed tool version, recorded in every certificate as ``tool_version``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def tool_version() -> str:
    """Version of the ``solvercert`` distribution (``0+unknown`` when run from a bare tree)."""
    try:
        return version("solvercert")
    except PackageNotFoundError:
        return "0+unknown"
