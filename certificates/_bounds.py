"""Declared bounds: parsing (TOML, JSON, CLI expressions), validation and layering.

A bounds file has the documented form (``SCHEMA.md`` § "Bounds")::

    confidence = 0.95            # overall; split (Bonferroni) unless correction = "none"
    correction = "bonferroni"    # or "none"
    [bounds]
    score_gap = { max = 5e-3 }   # estimate must be <= max
    coverage = { min = 0.9 }     # estimate must be >= min
    [bounds.score_gap.times]     # optional per-time overrides
    "0.5" = { max = 2e-3 }

or the same keys under ``[tool.solvercert]`` of a ``pyproject.toml``. Layers combine
with the precedence CLI > file > problem defaults (the defaults are stored in the
certificate): a check bound given by a higher layer replaces the lower layer's bound for
that check entirely (its default and its per-time overrides).
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ._errors import BoundsError
from ._names import Comparison, Correction

DEFAULT_CONFIDENCE = 0.95
DEFAULT_CORRECTION = Correction.BONFERRONI

# Relative tolerance for matching a per-time override ("0.5") to a stored time: times
# are written as decimal strings in TOML, so only decimal round-off needs absorbing.
_TIME_MATCH_RTOL = 1e-9
_TIME_MATCH_ATOL = 1e-12

_BOUND_KEYS = {"max": Comparison.AT_MOST, "min": Comparison.AT_LEAST}
_TOP_LEVEL_KEYS = {"confidence", "correction", "bounds"}


@dataclass(frozen=True)
class Bound:
    """One-sided bound ``estimate <= threshold`` or ``estimate >= threshold``."""

    threshold: float
    comparison: Comparison

    def __post_init__(self) -> None:
        # Accept "<=" / ">=": to_table and the gate compare by identity with the enum.
        object.__setattr__(self, "comparison", Comparison(self.comparison))

    def to_table(self) -> dict[str, float]:
        key = "max" if self.comparison is Comparison.AT_MOST else "min"
        return {key: self.threshold}


@dataclass(frozen=True)
class CheckBound:
    """Bound of one check: a default and optional per-time overrides."""

    default: Bound | None = None
    times: tuple[tuple[float, Bound], ...] = ()

    def at(self, time: float | None) -> Bound | None:
        """Bound that applies at ``time`` (``None`` for an aggregate row)."""
        if time is not None:
            for t, bound in self.times:
                if math.isclose(t, time, rel_tol=_TIME_MATCH_RTOL, abs_tol=_TIME_MATCH_ATOL):
                    return bound
        return self.default

    def to_table(self) -> dict[str, Any]:
        table: dict[str, Any] = self.default.to_table() if self.default else {}
        if self.times:
            table["times"] = {repr(t): b.to_table() for t, b in self.times}
        return table


@dataclass(frozen=True)
class Bounds:
    """A layer of bounds; ``None`` fields defer to the layer below (see :meth:`over`)."""

    confidence: float | None = None
    correction: Correction | None = None
    checks: Mapping[str, CheckBound] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.correction is not None:
            object.__setattr__(self, "correction", Correction(self.correction))

    def over(self, base: Bounds) -> Bounds:
        """This layer on top of ``base``: set fields and named checks win."""
        return Bounds(
            confidence=self.confidence if self.confidence is not None else base.confidence,
            correction=self.correction if self.correction is not None else base.correction,
            checks={**base.checks, **self.checks},
        )

    @property
    def resolved_confidence(self) -> float:
        return DEFAULT_CONFIDENCE if self.confidence is None else self.confidence

    @property
    def resolved_correction(self) -> Correction:
        return DEFAULT_CORRECTION if self.correction is None else self.correction

    def resolved(self) -> Bounds:
        """The same bounds with confidence and correction defaults filled in."""
        return replace(
            self, confidence=self.resolved_confidence, correction=self.resolved_correction
        )

    def to_mapping(self) -> dict[str, Any]:
        """The documented file form (round-trips through :func:`parse_bounds`)."""
        mapping: dict[str, Any] = {}
        if self.confidence is not None:
            mapping["confidence"] = self.confidence
        if self.correction is not None:
            mapping["correction"] = str(self.correction)
        mapping["bounds"] = {name: self.checks[name].to_table() for name in sorted(self.checks)}
        return mapping

    def to_json(self) -> str:
        return json.dumps(self.to_mapping(), sort_keys=True)


def parse_bounds(mapping: Mapping[str, Any], source: str) -> Bounds:
    """Validate a decoded bounds mapping (file form) and build :class:`Bounds`.

    Raises
    ------
    BoundsError
        Naming ``source`` and the offending key, for unknown keys, non-numeric or
        non-finite thresholds, both ``max`` and ``min`` on one check, or a confidence
        outside (0, 1).
    """
    unknown = set(mapping) - _TOP_LEVEL_KEYS
    if unknown:
        raise BoundsError(
            f"{source}: unknown key(s) {', '.join(sorted(unknown))} "
            f"(expected {', '.join(sorted(_TOP_LEVEL_KEYS))})"
        )
    confidence = mapping.get("confidence")
    if confidence is not None:
        if isinstance(confidence, bool) or not isinstance(confidence, int | float):
            raise BoundsError(f"{source}: confidence must be a number, got {confidence!r}")
        if not 0.0 < float(confidence) < 1.0:
            raise BoundsError(f"{source}: confidence must lie in (0, 1), got {confidence!r}")
        confidence = float(confidence)
    correction = mapping.get("correction")
    if correction is not None:
        try:
            correction = Correction(correction)
        except ValueError:
            choices = ", ".join(repr(str(c)) for c in Correction)
            raise BoundsError(
                f"{source}: correction must be one of {choices}, got {correction!r}"
            ) from None
    table = mapping.get("bounds", {})
    if not isinstance(table, Mapping):
        raise BoundsError(f"{source}: [bounds] must be a table")
    checks = {
        str(name): _parse_check_bound(entry, f"{source}: bounds.{name}")
        for name, entry in table.items()
    }
    return Bounds(confidence=confidence, correction=correction, checks=checks)


def _parse_bound(entry: Any, where: str, *, allow_times: bool) -> tuple[Bound | None, Any]:
    if not isinstance(entry, Mapping):
        raise BoundsError(f"{where}: expected a table like {{ max = 1e-3 }}, got {entry!r}")
    allowed = set(_BOUND_KEYS) | ({"times"} if allow_times else set())
    unknown = set(entry) - allowed
    if unknown:
        raise BoundsError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))} "
            f"(expected {' or '.join(sorted(allowed))})"
        )
    given = [key for key in _BOUND_KEYS if key in entry]
    if len(given) > 1:
        raise BoundsError(f"{where}: give either max or min, not both")
    bound = None
    if given:
        key = given[0]
        value = entry[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise BoundsError(f"{where}.{key}: must be a number, got {value!r}")
        if not math.isfinite(value):
            raise BoundsError(f"{where}.{key}: must be finite, got {value!r}")
        bound = Bound(float(value), _BOUND_KEYS[key])
    return bound, entry.get("times")


def _same_time(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_TIME_MATCH_RTOL, abs_tol=_TIME_MATCH_ATOL)


def _parse_check_bound(entry: Any, where: str) -> CheckBound:
    default, times = _parse_bound(entry, where, allow_times=True)
    overrides: list[tuple[float, Bound]] = []
    if times is not None:
        if not isinstance(times, Mapping):
            raise BoundsError(f"{where}.times: must be a table of time = {{ max = ... }}")
        for key, sub in times.items():
            try:
                time = float(key)
            except ValueError:
                raise BoundsError(f"{where}.times: {key!r} is not a time") from None
            if not math.isfinite(time):
                raise BoundsError(f"{where}.times: {key!r} is not a finite time")
            # "0.5" and "0.50" are different TOML keys but the same time: which one
            # applied would depend on their order.
            if any(_same_time(time, t) for t, _ in overrides):
                raise BoundsError(f"{where}.times: time {key} is given twice")
            bound, _ = _parse_bound(sub, f"{where}.times.{key}", allow_times=False)
            if bound is None:
                raise BoundsError(f"{where}.times.{key}: give max or min")
            overrides.append((time, bound))
    if default is None and not overrides:
        raise BoundsError(f"{where}: give max or min")
    return CheckBound(default=default, times=tuple(sorted(overrides, key=lambda tb: tb[0])))


# A flat inline table ``key = { a = 1, b = 2 }`` on one line, without nested braces or
# quotes inside the braces; see :func:`_expand_inline_bounds`.
_INLINE_TABLE = re.compile(
    r"^(?P<indent>\s*)(?P<key>[A-Za-z0-9_\-]+|\"[^\"]*\")\s*=\s*\{(?P<body>[^{}\"']*)\}\s*(?P<comment>#.*)?$"
)


def _expand_inline_bounds(text: str) -> str:
    """Rewrite ``check = { max = 1 }`` as ``check.max = 1`` (dotted keys).

    The documented bounds form declares a check with an inline table and then extends
    it with ``[bounds.check.times]``. Strict TOML forbids extending an inline table, but
    allows adding a sub-table to a table made with dotted keys, so this rewrite keeps
    the documented meaning. It is applied only when the strict parse fails.
    """
    lines = []
    for line in text.splitlines():
        match = _INLINE_TABLE.match(line)
        if match is None:
            lines.append(line)
            continue
        indent, key = match["indent"], match["key"]
        for item in filter(None, (part.strip() for part in match["body"].split(","))):
            lines.append(f"{indent}{key}.{item}")
    return "\n".join(lines) + "\n"


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BoundsError(f"bounds file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BoundsError(f"cannot read bounds file {path}: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as strict_error:
        try:
            return tomllib.loads(_expand_inline_bounds(text))
        except tomllib.TOMLDecodeError:
            raise BoundsError(f"{path} is not valid TOML: {strict_error}") from None


def load_bounds(path: str | Path) -> Bounds:
    """Read bounds from a TOML file or from ``[tool.solvercert]`` of a ``pyproject.toml``.

    Raises
    ------
    BoundsError
        One line naming the file and the cause.
    """
    path = Path(path)
    document = _load_toml(path)
    if path.name == "pyproject.toml" or "tool" in document:
        tool = document.get("tool", {})
        section = tool.get("solvercert") if isinstance(tool, Mapping) else None
        if not isinstance(section, Mapping):
            raise BoundsError(f"{path} has no [tool.solvercert] table")
        return parse_bounds(section, f"{path} [tool.solvercert]")
    return parse_bounds(document, str(path))


def bounds_from_json(text: str, source: str) -> Bounds:
    """Parse the JSON form stored in a certificate's ``bounds_json`` attribute."""
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BoundsError(f"{source}: not valid JSON ({exc})") from None
    if not isinstance(mapping, Mapping):
        raise BoundsError(f"{source}: expected a JSON object")
    return parse_bounds(mapping, source)


_EXPRESSION = re.compile(
    r"^\s*(?P<check>[A-Za-z_][A-Za-z0-9_]*)\s*(?:@\s*(?P<time>[^<>=\s]+)\s*)?"
    r"(?P<op><=|>=)\s*(?P<value>\S+)\s*$"
)


def parse_bound_expressions(expressions: list[str]) -> Bounds:
    """Bounds from CLI expressions ``check<=value``, ``check>=value``, ``check@t<=value``.

    Expressions for the same check accumulate (a default and per-time overrides);
    bounding the same check (or check and time) twice is an error.
    """
    defaults: dict[str, Bound] = {}
    times: dict[str, list[tuple[float, Bound]]] = {}
    for expression in expressions:
        match = _EXPRESSION.match(expression)
        if match is None:
            raise BoundsError(
                f"bound {expression!r} is not of the form check<=value, check>=value "
                "or check@time<=value"
            )
        try:
            value = float(match["value"])
            time = None if match["time"] is None else float(match["time"])
        except ValueError:
            raise BoundsError(f"bound {expression!r}: not a number") from None
        if not math.isfinite(value):
            raise BoundsError(f"bound {expression!r}: threshold must be finite")
        if time is not None and not math.isfinite(time):
            raise BoundsError(f"bound {expression!r}: time must be finite")
        bound = Bound(value, Comparison(match["op"]))
        # A repeated check (or check@time) would make the result depend on the order of
        # the expressions; refuse it rather than pick one silently.
        check_times = times.setdefault(match["check"], [])
        if (time is None and match["check"] in defaults) or (
            time is not None and any(_same_time(time, t) for t, _ in check_times)
        ):
            raise BoundsError(f"bound {expression!r}: this check and time is bounded twice")
        if time is None:
            defaults[match["check"]] = bound
        else:
            check_times.append((time, bound))
    names = set(defaults) | set(times)
    return Bounds(
        checks={
            name: CheckBound(
                default=defaults.get(name),
                times=tuple(sorted(times.get(name, []), key=lambda tb: tb[0])),
            )
            for name in names
        }
    )
