"""Problem registry: built-in problems by id, and problem files by path.

Adding a problem is adding its module and one line to :data:`_BUILTINS` (or, for a family
of problem files, one line to :data:`_FAMILIES`). ``get_problem`` accepts either a
registered id or a path to a TOML problem file whose ``family`` key selects the parser.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ._bkw import landau_bkw_2d, landau_bkw_3d
from ._burgers import burgers_1d
from ._heat import heat_1d, heat_2d
from ._landau_coulomb import landau_coulomb_2d
from ._linear_sde_gmm import FAMILY as LINEAR_SDE_GMM
from ._linear_sde_gmm import linear_sde_gmm_from_mapping, ou_gmm_2d, ve_gmm_2d, vp_gmm_2d
from ._navier_stokes import ns_taylor_green_2d
from ._problem import AbstractProblem, ProblemError
from ._sine_gordon import sine_gordon_1d

_BUILTINS: Mapping[str, Callable[[], AbstractProblem]] = {
    "landau-bkw-2d": landau_bkw_2d,
    "landau-bkw-3d": landau_bkw_3d,
    "landau-coulomb-2d": landau_coulomb_2d,
    "vp-gmm-2d": vp_gmm_2d,
    "ve-gmm-2d": ve_gmm_2d,
    "ou-gmm-2d": ou_gmm_2d,
    "burgers-1d": burgers_1d,
    "sine-gordon-1d": sine_gordon_1d,
    "ns-taylor-green-2d": ns_taylor_green_2d,
    "heat-1d": heat_1d,
    "heat-2d": heat_2d,
}

_FAMILIES: Mapping[str, Callable[[Mapping[str, Any], str], AbstractProblem]] = {
    LINEAR_SDE_GMM: linear_sde_gmm_from_mapping,
}


def problem_ids() -> tuple[str, ...]:
    """Ids of the built-in problems, sorted."""
    return tuple(sorted(_BUILTINS))


def problem_families() -> tuple[str, ...]:
    """``family`` values a problem file may declare, sorted."""
    return tuple(sorted(_FAMILIES))


def load_problem_file(path: str | Path) -> AbstractProblem:
    """Build a problem from a TOML problem file.

    The file's ``family`` key selects the parser (``linear-sde-gmm``, …), which validates
    every key and raises :class:`ProblemError` with a one-line message naming the file.
    """
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProblemError(f"problem file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProblemError(f"cannot read problem file {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProblemError(f"{path} is not valid TOML: {exc}") from None
    family = document.get("family")
    if family not in _FAMILIES:
        known = ", ".join(problem_families())
        raise ProblemError(f"{path}: family {family!r} is not one of: {known}")
    return _FAMILIES[family](document, str(path))


def get_problem(id_or_path: str | Path) -> AbstractProblem:
    """The problem named by a registry id (``landau-bkw-2d``) or a ``.toml`` problem file.

    Raises
    ------
    ProblemError
        Unknown id (the message lists the known ones) or an invalid problem file.
    """
    text = str(id_or_path)
    if text in _BUILTINS:
        return _BUILTINS[text]()
    if text.endswith(".toml") or Path(text).is_file():
        return load_problem_file(text)
    known = ", ".join(problem_ids())
    raise ProblemError(
        f"unknown problem {text!r}: not a built-in id ({known}) nor a .toml problem file"
    )
