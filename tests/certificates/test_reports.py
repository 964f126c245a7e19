"""Report renderers: shape of each format, escaping, strictness and determinism."""

from __future__ import annotations

import html
import json
import math
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

import certificates as cert
from certificates._report_html import _runs
from certificates._report_markdown import escape_cell
from certificates._reports import ReportFormat, format_table, render_report
from tests.helpers import energy_drift_check, make_certificate, score_gap_check

NAN = float("nan")


def _mixed() -> cert.Certificate:
    """One row of each verdict (PASS, FAIL on NaN, INCONCLUSIVE, FAIL) plus an unbounded check.

    With stderr 1e-4 and three random intervals at 1 - 0.05/3, the half-width is
    about 2.4e-4: 3e-3 against 3.05e-3 straddles the bound (INCONCLUSIVE), 1e-3 is far
    below it (PASS).
    """
    return make_certificate(
        checks={
            "score_gap": [
                score_gap_check(estimate=(1e-3, NAN, 3e-3), reason=("", "model output NaN", "")),
                score_gap_check(name="unbounded_gap", estimate=(4e-3, 5e-3, 6e-3)),
            ],
            "invariants": [energy_drift_check(estimate=1e-6)],
        },
        bounds={"bounds": {"score_gap": {"max": 3.05e-3}, "energy_drift": {"max": 1e-8}}},
    )


SCENARIOS = {
    "pass": make_certificate,
    "mixed": _mixed,
    # No bound applies: zero rows, and the stored checks are all informational.
    "no-rows": lambda: make_certificate(bounds={"bounds": {}}),
    # A bound on a check the certificate does not hold: a FAIL row with no group.
    "missing-check": lambda: make_certificate(
        bounds={"bounds": {"score_gap": {"max": 5e-3}, "ghost": {"min": 1.0}}}
    ),
    "aggregate-only": lambda: make_certificate(
        checks={"invariants": [energy_drift_check()]},
        bounds={"bounds": {"energy_drift": {"max": 1e-8}}},
    ),
}


@pytest.fixture(params=sorted(SCENARIOS))
def scenario(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def certificate(scenario: str) -> cert.Certificate:
    return SCENARIOS[scenario]()


def _strict_json(text: str) -> dict:
    def refuse(constant: str) -> None:
        raise AssertionError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def test_mixed_scenario_has_every_verdict():
    # The scenarios below rely on this mix; if the gate changes, fix the scenario first.
    verdicts = [row.verdict for row in _mixed().rows]
    assert verdicts == [
        cert.Verdict.PASS,
        cert.Verdict.FAIL,
        cert.Verdict.INCONCLUSIVE,
        cert.Verdict.FAIL,
    ], [row.reason for row in _mixed().rows]


# --- dispatch and determinism ---------------------------------------------------------


@pytest.mark.parametrize("fmt", [*ReportFormat, "table"])
def test_rendering_is_deterministic(scenario: str, fmt: str):
    def render(c: cert.Certificate) -> str:
        return format_table(c) if fmt == "table" else render_report(c, ReportFormat(fmt))

    certificate = SCENARIOS[scenario]()
    first = render(certificate)
    assert render(certificate) == first
    # A second, independently assembled certificate with the same content.
    assert render(SCENARIOS[scenario]()) == first


@pytest.mark.parametrize("fmt", list(ReportFormat))
def test_written_and_read_certificate_renders_the_same(tmp_path, fmt: ReportFormat):
    certificate = _mixed()
    path = cert.write_certificate(certificate, tmp_path / "c.nc")
    assert render_report(cert.read_certificate(path), fmt) == render_report(certificate, fmt)


def test_render_report_accepts_the_cli_spelling_and_refuses_others():
    certificate = make_certificate()
    assert render_report(certificate, "json") == render_report(certificate, ReportFormat.JSON)
    with pytest.raises(ValueError, match="pdf"):
        render_report(certificate, "pdf")


@pytest.mark.parametrize(
    ("fmt", "suffix"),
    [(ReportFormat.MARKDOWN, ".md"), (ReportFormat.HTML, ".html"), (ReportFormat.JUNIT, ".xml")],
)
def test_report_format_suffix(fmt: ReportFormat, suffix: str):
    assert fmt.suffix == suffix


# --- JSON -----------------------------------------------------------------------------

TOP_KEYS = {
    "schema_version",
    "problem_id",
    "model_spec",
    "verdict",
    "created_at",
    "content_sha256",
    "confidence",
    "correction",
    "checks",
}
CHECK_KEYS = {
    "name",
    "group",
    "time",
    "estimate",
    "stderr",
    "lower",
    "upper",
    "threshold",
    "comparison",
    "verdict",
    "evidence",
    "confidence",
    "interval_method",
    "n_samples",
    "reason",
}
# NaN or Infinity as a JSON value (not inside a string such as a reason).
_BARE_CONSTANT = re.compile(r"[:\[,]\s*-?(?:NaN|Infinity)\b")
NULLABLE_FLOATS = ("time", "estimate", "stderr", "lower", "upper", "threshold", "confidence")


def test_json_has_the_documented_shape(certificate: cert.Certificate):
    report = _strict_json(render_report(certificate, ReportFormat.JSON))
    assert set(report) == TOP_KEYS
    assert report["verdict"] == str(certificate.verdict)
    assert report["problem_id"] == certificate.problem_id
    assert report["schema_version"] == cert.SCHEMA_VERSION
    assert len(report["checks"]) == len(certificate.rows)
    for entry, row in zip(report["checks"], certificate.rows, strict=True):
        assert set(entry) == CHECK_KEYS
        assert entry["name"] == row.check
        assert entry["verdict"] == str(row.verdict)
        assert entry["comparison"] in {"<=", ">="}
        assert entry["evidence"] in set(map(str, cert.Evidence))
        assert isinstance(entry["n_samples"], int)
        assert isinstance(entry["reason"], str)
        for key in NULLABLE_FLOATS:
            assert entry[key] is None or isinstance(entry[key], float), (key, entry[key])
        # Aggregate rows (and only they) have a null time.
        assert (entry["time"] is None) == (row.time is None)


def test_json_writes_a_nan_estimate_as_null_with_a_reason():
    text = render_report(_mixed(), ReportFormat.JSON)
    assert _BARE_CONSTANT.search(text) is None
    nan_entry = _strict_json(text)["checks"][1]
    assert nan_entry["time"] == 0.5
    assert nan_entry["estimate"] is None
    assert nan_entry["lower"] is None
    assert nan_entry["verdict"] == "FAIL"
    assert "model output NaN" in nan_entry["reason"]


def test_json_explains_an_infinite_value_on_a_row_without_a_reason():
    # A one-sided FIXED interval (lower = -inf) at a level above the one required
    # passes with no reason of its own; the null it becomes must still be explained.
    inf = math.inf
    certificate = make_certificate(
        checks={
            "score_gap": [
                score_gap_check(
                    interval_method=cert.IntervalMethod.FIXED,
                    confidence=0.999,
                    lower=(-inf, -inf, -inf),
                    upper=(2e-3, 3e-3, 4e-3),
                )
            ]
        },
        bounds={"bounds": {"score_gap": {"max": 5e-3}}},
    )
    assert {row.reason for row in certificate.rows} == {""}
    text = render_report(certificate, ReportFormat.JSON)
    assert _BARE_CONSTANT.search(text) is None
    for entry in _strict_json(text)["checks"]:
        assert entry["lower"] is None
        assert entry["verdict"] == "PASS"
        assert entry["reason"] == "lower is -inf"


def test_json_aggregate_time_is_null():
    entries = _strict_json(render_report(make_certificate(), ReportFormat.JSON))["checks"]
    by_name = {(e["name"], e["time"]) for e in entries}
    assert ("energy_drift", None) in by_name
    assert {e["time"] for e in entries if e["name"] == "score_gap"} == {0.1, 0.5, 1.0}


# --- Markdown -------------------------------------------------------------------------


def _unescaped_pipes(line: str) -> int:
    """Pipes that separate cells: those after an even number of backslashes."""
    count, backslashes = 0, 0
    for char in line:
        if char == "|" and backslashes % 2 == 0:
            count += 1
        backslashes = backslashes + 1 if char == "\\" else 0
    return count


def test_markdown_has_the_verdict_and_one_line_per_row(certificate: cert.Certificate):
    text = render_report(certificate, ReportFormat.MARKDOWN)
    title = text.splitlines()[0]
    assert title.startswith("## ")
    assert str(certificate.verdict) in title
    table = text.split("### Verdicts", 1)[1].split("###", 1)[0]
    row_lines = [line for line in table.splitlines() if line.startswith("| ")][2:]
    assert len(row_lines) == len(certificate.rows)
    for line, row in zip(row_lines, certificate.rows, strict=True):
        assert line.startswith(f"| {row.check} |")
        assert str(row.verdict) in line
    if not certificate.rows:
        assert "nothing was certified" in table


def test_markdown_escapes_pipes_and_markup_in_cells():
    certificate = make_certificate(model_spec="model|v2\n<b>x</b>")
    text = render_report(certificate, ReportFormat.MARKDOWN)
    assert "model\\|v2 &lt;b&gt;x&lt;/b&gt;" in text
    assert "<b>" not in text
    provenance = [line for line in text.splitlines() if line.startswith("| ")][:14]
    assert len({_unescaped_pipes(line) for line in provenance}) == 1


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [("a|b", "a\\|b"), ("a\\|b", "a\\\\\\|b"), ("x\ny", "x y"), ("<i>", "&lt;i&gt;")],
)
def test_escape_cell(raw: str, escaped: str):
    assert escape_cell(raw) == escaped
    assert _unescaped_pipes(escape_cell(raw)) == 0


def test_markdown_lists_unbounded_checks_apart():
    text = render_report(_mixed(), ReportFormat.MARKDOWN)
    verdicts, informational = text.split("### No bound", 1)
    assert "unbounded_gap" not in verdicts
    assert informational.count("| unbounded_gap |") == 3


# --- HTML -----------------------------------------------------------------------------


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: Counter[str] = Counter()
        self.attrs: list[tuple[str, str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        self.attrs.extend((tag, name, value) for name, value in attrs)


def _parse_html(text: str) -> _Collector:
    parser = _Collector()
    parser.feed(text)
    parser.close()
    return parser


def _per_time_checks(certificate: cert.Certificate) -> int:
    return sum(
        "time" in certificate.family(group)[check].dims
        for check, group in certificate.check_locations().items()
    )


def test_html_has_one_svg_per_per_time_check(certificate: cert.Certificate):
    text = render_report(certificate, ReportFormat.HTML)
    parsed = _parse_html(text)
    assert parsed.tags["svg"] == _per_time_checks(certificate)
    assert text.count("<svg") == _per_time_checks(certificate)
    assert parsed.tags["table"] >= 2
    assert str(certificate.verdict) in text


def test_html_is_self_contained(certificate: cert.Certificate):
    parsed = _parse_html(render_report(certificate, ReportFormat.HTML))
    for tag in ("link", "script", "img", "iframe", "object", "embed"):
        assert parsed.tags[tag] == 0, tag
    for tag, name, value in parsed.attrs:
        assert name != "src", (tag, value)
        if name.endswith("href"):
            # Only references to elements of the page itself (SVG glyphs and clips).
            assert value is not None, (tag, name)
            assert value.startswith("#"), (tag, name, value)


def test_html_ids_are_unique_across_plots():
    certificate = _mixed()
    parsed = _parse_html(render_report(certificate, ReportFormat.HTML))
    assert parsed.tags["svg"] == 2
    ids = [value for _, name, value in parsed.attrs if name == "id"]
    assert len(ids) == len(set(ids))
    hrefs = {value[1:] for _, name, value in parsed.attrs if name.endswith("href") and value}
    assert hrefs <= set(ids)


def test_html_escapes_certificate_strings():
    payload = '<script>alert("x")</script>'
    certificate = make_certificate(model_spec=payload, problem_id="p&<q>")
    text = render_report(certificate, ReportFormat.HTML)
    assert "<script" not in text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    assert "p&amp;&lt;q&gt;" in text
    assert _parse_html(text).tags["script"] == 0


def test_html_reports_missing_estimates_instead_of_dropping_them():
    text = render_report(_mixed(), ReportFormat.HTML)
    caption = text.split('<figure id="plot-score_gap">', 1)[1].split("</figure>", 1)[0]
    assert "No estimate at t = 0.5: model output NaN" in caption


@pytest.mark.parametrize(
    ("units", "long_name"),
    [("m$^2$/s", "gap $ with one dollar"), ("水", "<b>bold</b>"), ("\\frac{", "x_{1")],
)
def test_html_plots_free_text_units_verbatim(units: str, long_name: str):
    # Units and long names are free text: not mathtext, escaped in the caption, and a
    # glyph the font lacks must not turn into an error (warnings are errors here).
    certificate = make_certificate(
        checks={"score_gap": [score_gap_check(units=units, long_name=long_name)]}
    )
    text = render_report(certificate, ReportFormat.HTML)
    assert html.escape(long_name) in text
    assert html.escape(units) in text


@pytest.mark.parametrize(
    ("mask", "runs"),
    [
        ([True, True, True], [(0, 3)]),
        ([True, False, True], [(0, 1), (2, 3)]),
        ([False, True, True, False], [(1, 3)]),
        ([False, False], []),
        ([], []),
    ],
)
def test_missing_values_split_the_plotted_line(mask: list[bool], runs: list[tuple[int, int]]):
    slices = _runs(np.array(mask, dtype=bool))
    assert [(s.start, s.stop) for s in slices] == runs


# --- JUnit ----------------------------------------------------------------------------


def test_junit_counts_match_the_verdicts(certificate: cert.Certificate):
    suite = ET.fromstring(render_report(certificate, ReportFormat.JUNIT))
    rows = certificate.rows
    counts = Counter(row.verdict for row in rows)
    assert suite.tag == "testsuite"
    assert suite.get("name") == "solvercert"
    assert int(suite.get("tests")) == len(rows)
    assert int(suite.get("failures")) == counts[cert.Verdict.FAIL]
    assert int(suite.get("skipped")) == counts[cert.Verdict.INCONCLUSIVE]
    cases = suite.findall("testcase")
    assert len(cases) == len(rows)
    assert len(suite.findall("testcase/failure")) == counts[cert.Verdict.FAIL]
    assert len(suite.findall("testcase/skipped")) == counts[cert.Verdict.INCONCLUSIVE]
    properties = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    assert properties["problem_id"] == certificate.problem_id
    assert properties["verdict"] == str(certificate.verdict)
    assert properties["content_sha256"] == certificate.content_sha256


def test_junit_names_cases_by_check_and_time():
    suite = ET.fromstring(render_report(_mixed(), ReportFormat.JUNIT))
    cases = [(c.get("classname"), c.get("name")) for c in suite.findall("testcase")]
    assert cases == [
        ("solvercert.vp-gmm-2d.score_gap", "score_gap[t=0.1]"),
        ("solvercert.vp-gmm-2d.score_gap", "score_gap[t=0.5]"),
        ("solvercert.vp-gmm-2d.score_gap", "score_gap[t=1]"),
        ("solvercert.vp-gmm-2d.invariants", "energy_drift[aggregate]"),
    ]
    nan_case, inconclusive_case = suite.findall("testcase")[1:3]
    failure = nan_case.find("failure")
    assert failure is not None
    assert failure.get("type") == "FAIL"
    assert "model output NaN" in failure.get("message")
    assert "estimate: nan" in failure.text
    skipped = inconclusive_case.find("skipped")
    assert skipped is not None
    assert skipped.get("message").startswith("INCONCLUSIVE: ")


def test_junit_without_rows_is_a_valid_empty_suite():
    suite = ET.fromstring(render_report(make_certificate(bounds={"bounds": {}}), "junit"))
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("0", "0", "0")
    assert suite.findall("testcase") == []


# --- text table -----------------------------------------------------------------------


def test_table_shows_every_check_and_the_verdict(certificate: cert.Certificate):
    text = format_table(certificate)
    header = dict(line.split(None, 1) for line in text.split("\n\n", 1)[0].splitlines())
    assert header["verdict"] == str(certificate.verdict)
    assert header["problem"] == certificate.problem_id
    for row in certificate.rows:
        assert row.check in text
    for check in certificate.check_locations():
        assert check in text


def test_table_has_one_line_per_row_and_lists_unbounded_checks():
    certificate = _mixed()
    text = format_table(certificate)
    verdicts, informational = text.split("no bound", 1)
    lines = verdicts.split("\n\n", 1)[1].strip().splitlines()
    assert lines[0].split() == [
        "check",
        "time",
        "estimate",
        "interval",
        "bound",
        "verdict",
        "evidence",
        "reason",
    ]
    body = lines[2:]
    assert len(body) == len(certificate.rows)
    for line, row in zip(body, certificate.rows, strict=True):
        assert line.split()[0] == row.check
        assert f"<= {row.threshold:.3e}" in line
        assert str(row.verdict) in line.split()
    assert body[-1].split()[1] == "aggregate"
    assert "nan" in body[1]
    assert "unbounded_gap" not in verdicts
    assert informational.count("unbounded_gap") == 3


# --- layering -------------------------------------------------------------------------


def test_reports_render_without_jax():
    code = (
        "import sys\n"
        "from tests.helpers import make_certificate\n"
        "from certificates._reports import ReportFormat, render_report, format_table\n"
        "c = make_certificate()\n"
        "[render_report(c, f) for f in ReportFormat]; format_table(c)\n"
        "assert 'jax' not in sys.modules, 'jax imported'\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        check=False,
        cwd=root,
    )
    assert result.returncode == 0, result.stderr
