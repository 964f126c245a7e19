"""Bounds: the documented TOML form, pyproject.toml, JSON, CLI expressions, layering."""

from __future__ import annotations

import textwrap
import tomllib

import pytest

import certificates as cert

AT_MOST, AT_LEAST = cert.Comparison.AT_MOST, cert.Comparison.AT_LEAST

# The form documented in the issue, verbatim. It is not strict TOML (the inline table
# score_gap = {…} is extended by [bounds.score_gap.times]); the loader must accept it.
DOCUMENTED = """\
confidence = 0.95
[bounds]
score_gap = { max = 5e-3 }
fp_residual = { max = 1e-2 }
energy_drift = { max = 1e-8 }
[bounds.score_gap.times]
"0.5" = { max = 2e-3 }
"""

DOCUMENTED_BOUNDS = cert.Bounds(
    confidence=0.95,
    checks={
        "score_gap": cert.CheckBound(
            default=cert.Bound(5e-3, AT_MOST), times=((0.5, cert.Bound(2e-3, AT_MOST)),)
        ),
        "fp_residual": cert.CheckBound(default=cert.Bound(1e-2, AT_MOST)),
        "energy_drift": cert.CheckBound(default=cert.Bound(1e-8, AT_MOST)),
    },
)


def write(folder, name, text):
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_documented_text_is_not_strict_toml():
    # Guards the premise of the next test: the fallback rewrite is really exercised.
    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads(DOCUMENTED)


def test_documented_text_loads_from_a_bounds_file(tmp_path):
    assert cert.load_bounds(write(tmp_path, "bounds.toml", DOCUMENTED)) == DOCUMENTED_BOUNDS


def test_documented_text_loads_from_pyproject_tool_table(tmp_path):
    section = DOCUMENTED.replace("[bounds", "[tool.solvercert.bounds")
    text = (
        "[project]\n"
        'name = "demo"\n'
        'readme = { file = "README.md", content-type = "text/markdown" }\n'
        'authors = [{ name = "A. Author" }]\n'
        "\n[tool.solvercert]\n" + section + "\n[tool.ruff]\nline-length = 100\n"
    )
    assert cert.load_bounds(write(tmp_path, "pyproject.toml", text)) == DOCUMENTED_BOUNDS


def test_schema_md_form_with_comments_and_min_loads(tmp_path):
    text = textwrap.dedent(
        """\
        confidence = 0.9            # overall; split unless correction = "none"
        correction = "none"         # or "bonferroni"
        [bounds]
        score_gap = { max = 5e-3 }   # estimate must be <= max
        coverage = { min = 0.9 }     # estimate must be >= min
        [bounds.score_gap.times]     # optional per-time overrides
        "0.5" = { max = 2e-3 }
        "1" = { max = 4e-3 }
        """
    )
    bounds = cert.load_bounds(write(tmp_path, "bounds.toml", text))
    assert bounds.confidence == 0.9
    assert bounds.correction is cert.Correction.NONE
    assert bounds.checks["coverage"] == cert.CheckBound(default=cert.Bound(0.9, AT_LEAST))
    assert bounds.checks["score_gap"].times == (
        (0.5, cert.Bound(2e-3, AT_MOST)),
        (1.0, cert.Bound(4e-3, AT_MOST)),
    )


def test_strict_dotted_form_is_equivalent(tmp_path):
    text = DOCUMENTED.replace("score_gap = { max = 5e-3 }", "score_gap.max = 5e-3")
    tomllib.loads(text)  # strict TOML
    assert cert.load_bounds(write(tmp_path, "bounds.toml", text)) == DOCUMENTED_BOUNDS


@pytest.mark.parametrize(
    "bounds",
    [
        DOCUMENTED_BOUNDS,
        DOCUMENTED_BOUNDS.resolved(),
        cert.Bounds(),
        cert.Bounds(
            correction=cert.Correction.NONE,
            checks={
                "coverage": cert.CheckBound(
                    times=((0.1, cert.Bound(0.9, AT_LEAST)), (1e-5, cert.Bound(-2.5, AT_MOST)))
                )
            },
        ),
    ],
)
def test_json_round_trip(bounds):
    assert cert.bounds_from_json(bounds.to_json(), "bounds_json") == _sorted_times(bounds)
    assert cert.parse_bounds(bounds.to_mapping(), "mapping") == _sorted_times(bounds)


def _sorted_times(bounds):
    return cert.Bounds(
        confidence=bounds.confidence,
        correction=bounds.correction,
        checks={
            name: cert.CheckBound(check.default, tuple(sorted(check.times, key=lambda tb: tb[0])))
            for name, check in bounds.checks.items()
        },
    )


def test_enum_fields_accept_their_text():
    # "<=" == Comparison.AT_MOST; before normalisation Bound(1, "<=") was written as min.
    assert cert.Bound(1.0, "<=").to_table() == {"max": 1.0}
    assert cert.Bound(1.0, ">=").to_table() == {"min": 1.0}
    assert cert.Bounds(correction="none").correction is cert.Correction.NONE


def test_defaults_resolve_to_095_bonferroni():
    resolved = cert.Bounds().resolved()
    assert (resolved.confidence, resolved.correction) == (0.95, cert.Correction.BONFERRONI)


# --- errors ------------------------------------------------------------------------------

BOUNDS_HEADER = "[bounds]\n"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("colour = 1\n", "unknown key(s) colour"),
        (BOUNDS_HEADER + "score_gap = { maxx = 1 }\n", "bounds.score_gap: unknown key(s) maxx"),
        (BOUNDS_HEADER + "score_gap = { max = 1, min = 0 }\n", "bounds.score_gap: give either"),
        (BOUNDS_HEADER + 'score_gap = { max = "small" }\n', "bounds.score_gap.max: must be a"),
        (BOUNDS_HEADER + "score_gap = { max = true }\n", "bounds.score_gap.max: must be a"),
        (BOUNDS_HEADER + "score_gap = { max = inf }\n", "bounds.score_gap.max: must be finite"),
        (BOUNDS_HEADER + "score_gap = { max = -inf }\n", "bounds.score_gap.max: must be finite"),
        (BOUNDS_HEADER + "score_gap = { min = nan }\n", "bounds.score_gap.min: must be finite"),
        (BOUNDS_HEADER + "score_gap = {}\n", "bounds.score_gap: give max or min"),
        (BOUNDS_HEADER + "score_gap = 1e-3\n", "bounds.score_gap: expected a table"),
        ("bounds = 3\n", "[bounds] must be a table"),
        ("confidence = 1.0\n", "confidence must lie in (0, 1)"),
        ("confidence = 0\n", "confidence must lie in (0, 1)"),
        ("confidence = 1.5\n", "confidence must lie in (0, 1)"),
        ("confidence = nan\n", "confidence must lie in (0, 1)"),
        ('confidence = "high"\n', "confidence must be a number"),
        ('correction = "holm"\n', "correction must be one of"),
        ("confidence = = 0.9\n", "is not valid TOML"),
        ("[bounds\nscore_gap = 1\n", "is not valid TOML"),
        (BOUNDS_HEADER + '[bounds.score_gap.times]\n"soon" = { max = 1 }\n', "'soon' is not a"),
        (BOUNDS_HEADER + '[bounds.score_gap.times]\n"nan" = { max = 1 }\n', "not a finite time"),
        (BOUNDS_HEADER + '[bounds.score_gap.times]\n"0.5" = {}\n', "times.0.5: give max or min"),
        (
            BOUNDS_HEADER + '[bounds.score_gap.times]\n"0.5" = { max = 1 }\n"0.50" = { max = 2 }\n',
            "time 0.50 is given twice",
        ),
        (
            BOUNDS_HEADER + '[bounds.score_gap.times]\n"0.5" = { max = 1, times = 2 }\n',
            "times.0.5: unknown key(s) times",
        ),
    ],
)
def test_invalid_bounds_file_raises_one_line_naming_file_and_key(tmp_path, text, fragment):
    path = write(tmp_path, "bounds.toml", text)
    with pytest.raises(cert.BoundsError) as excinfo:
        cert.load_bounds(path)
    message = str(excinfo.value)
    assert str(path) in message
    assert fragment in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("pyproject.toml", '[project]\nname = "demo"\n'),
        ("pyproject.toml", "tool = 1\n"),  # used to raise AttributeError
        ("pyproject.toml", "[tool]\nsolvercert = 3\n"),  # used to raise TypeError
        ("settings.toml", "[tool.other]\nx = 1\n"),  # a [tool] table marks a pyproject
    ],
)
def test_pyproject_without_the_tool_table(tmp_path, name, text):
    path = write(tmp_path, name, text)
    with pytest.raises(cert.BoundsError, match=r"has no \[tool\.solvercert\] table") as excinfo:
        cert.load_bounds(path)
    assert str(path) in str(excinfo.value)


def test_error_inside_pyproject_names_the_table(tmp_path):
    path = write(tmp_path, "pyproject.toml", "[tool.solvercert]\nconfidence = 2\n")
    with pytest.raises(cert.BoundsError, match=r"\[tool\.solvercert\]: confidence") as excinfo:
        cert.load_bounds(path)
    assert str(path) in str(excinfo.value)


@pytest.mark.parametrize(("name", "fragment"), [("missing.toml", "does not exist"), ("", "cannot")])
def test_unreadable_bounds_path(tmp_path, name, fragment):
    path = tmp_path / name  # "" is the folder itself
    with pytest.raises(cert.BoundsError, match=fragment) as excinfo:
        cert.load_bounds(path)
    message = str(excinfo.value)
    assert str(path) in message
    assert "\n" not in message


@pytest.mark.parametrize(("text", "fragment"), [("{", "not valid JSON"), ("[1]", "JSON object")])
def test_bounds_json_errors(text, fragment):
    with pytest.raises(cert.BoundsError, match=fragment):
        cert.bounds_from_json(text, "bounds_json")


# --- CLI expressions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "name", "expected"),
    [
        ("score_gap<=1e-3", "score_gap", cert.CheckBound(default=cert.Bound(1e-3, AT_MOST))),
        ("coverage>=0.9", "coverage", cert.CheckBound(default=cert.Bound(0.9, AT_LEAST))),
        (
            "score_gap@0.5<=2e-3",
            "score_gap",
            cert.CheckBound(times=((0.5, cert.Bound(2e-3, AT_MOST)),)),
        ),
        (" drift <= -1.5 ", "drift", cert.CheckBound(default=cert.Bound(-1.5, AT_MOST))),
        ("w2 @ 1 >= 0", "w2", cert.CheckBound(times=((1.0, cert.Bound(0.0, AT_LEAST)),))),
    ],
)
def test_cli_expression(expression, name, expected):
    assert cert.parse_bound_expressions([expression]) == cert.Bounds(checks={name: expected})


def test_cli_expressions_for_one_check_accumulate():
    bounds = cert.parse_bound_expressions(
        ["score_gap@1.0<=4e-3", "score_gap<=5e-3", "score_gap@0.5<=2e-3"]
    )
    assert bounds.checks["score_gap"] == cert.CheckBound(
        default=cert.Bound(5e-3, AT_MOST),
        times=((0.5, cert.Bound(2e-3, AT_MOST)), (1.0, cert.Bound(4e-3, AT_MOST))),
    )
    assert (bounds.confidence, bounds.correction) == (None, None)  # defer to lower layers


@pytest.mark.parametrize(
    ("expressions", "fragment"),
    [
        (["score_gap<1e-3"], "is not of the form"),
        (["score_gap=1e-3"], "is not of the form"),
        (["score_gap<="], "is not of the form"),
        (["1gap<=1"], "is not of the form"),
        (["score_gap<=small"], "not a number"),
        (["score_gap@soon<=1"], "not a number"),
        (["score_gap<=inf"], "threshold must be finite"),
        (["score_gap<=nan"], "threshold must be finite"),
        (["score_gap@nan<=1"], "time must be finite"),
        (["score_gap<=1", "score_gap<=2"], "bounded twice"),
        (["score_gap@0.5<=1", "score_gap@0.50<=2"], "bounded twice"),
    ],
)
def test_invalid_cli_expression(expressions, fragment):
    with pytest.raises(cert.BoundsError, match=fragment) as excinfo:
        cert.parse_bound_expressions(expressions)
    assert repr(expressions[-1]) in str(excinfo.value)  # names the offending expression


# --- layering ----------------------------------------------------------------------------


def test_precedence_cli_over_file_over_stored(tmp_path):
    stored = DOCUMENTED_BOUNDS.resolved()  # problem defaults, as kept in bounds_json
    file = cert.load_bounds(
        write(
            tmp_path,
            "bounds.toml",
            'confidence = 0.9\ncorrection = "none"\n[bounds]\nscore_gap = { max = 4e-3 }\n'
            "fp_residual = { max = 3e-2 }\n",
        )
    )
    cli = cert.parse_bound_expressions(["score_gap<=1e-3", "coverage>=0.9"])
    effective = cli.over(file.over(stored))
    assert effective.confidence == 0.9  # file over stored; the CLI set none
    assert effective.correction is cert.Correction.NONE
    # The CLI bound replaces the file's and the stored bound, per-time overrides included.
    assert effective.checks["score_gap"] == cert.CheckBound(default=cert.Bound(1e-3, AT_MOST))
    assert effective.checks["fp_residual"] == cert.CheckBound(default=cert.Bound(3e-2, AT_MOST))
    assert effective.checks["energy_drift"] == stored.checks["energy_drift"]
    assert effective.checks["coverage"] == cert.CheckBound(default=cert.Bound(0.9, AT_LEAST))
    assert cert.Bounds(confidence=0.99).over(effective).confidence == 0.99


def test_file_bound_without_times_drops_the_stored_per_time_overrides():
    file = cert.parse_bounds({"bounds": {"score_gap": {"max": 4e-3}}}, "file")
    effective = file.over(DOCUMENTED_BOUNDS)
    assert effective.checks["score_gap"].times == ()
    assert effective.checks["score_gap"].at(0.5) == cert.Bound(4e-3, AT_MOST)


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        (0.5, cert.Bound(2e-3, AT_MOST)),
        (0.5 * (1 + 1e-12), cert.Bound(2e-3, AT_MOST)),  # within the 1e-9 match tolerance
        (0.5 + 1e-6, cert.Bound(5e-3, AT_MOST)),  # a different time
        (None, cert.Bound(5e-3, AT_MOST)),  # aggregate row
    ],
)
def test_check_bound_at(time, expected):
    assert DOCUMENTED_BOUNDS.checks["score_gap"].at(time) == expected
