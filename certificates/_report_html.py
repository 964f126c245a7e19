"""The HTML report: one self-contained page with tables and inline SVG plots.

The page has no external resources (no stylesheets, scripts, fonts or images to
fetch): CSS is inline, and every per-time check is drawn as an inline SVG (text as
paths) of its estimate against time with a confidence band and its bound. Every string
taken from the certificate is HTML-escaped. Plots are drawn with matplotlib's object
API (never ``pyplot``, so no global figure state and no GUI backend), imported only
when a page has something to plot.
"""

from __future__ import annotations

import html
import io
import math
import re
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ._names import Comparison, Verdict
from ._report_common import (
    COMPARISON_SYMBOLS,
    CheckSeries,
    check_series,
    format_bound,
    format_interval,
    format_number,
    format_time,
    per_time_checks,
    provenance_items,
    rows_of,
    same_time,
    unbounded_entries,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._certificate import Certificate
    from ._gate import VerdictRow

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0;
  color: #1f2328; background: #ffffff; }
main { max-width: 72rem; margin: 0 auto; padding: 1.5rem; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #d0d7de; padding: 0.3rem 0.6rem; text-align: left;
  vertical-align: top; }
thead th, tbody th { background: #f6f8fa; }
td.num { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace;
  text-align: right; white-space: nowrap; }
.badge { display: inline-block; padding: 0.1rem 0.5rem; border-radius: 0.8rem;
  font-weight: 600; font-size: 0.85em; color: #ffffff; }
.badge-PASS { background: #1a7f37; }
.badge-FAIL { background: #cf222e; }
.badge-INCONCLUSIVE { background: #9a6700; }
tr.row-FAIL td { background: #ffebe9; }
tr.row-INCONCLUSIVE td { background: #fff8c5; }
figure { margin: 1rem 0; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 0.85rem; color: #59636e; }
""".strip()

_FIGURE_SIZE = (6.4, 3.2)  # inches; the SVG scales to the page width
_ESTIMATE_COLOUR = "#1f77b4"
_BOUND_COLOURS = {Comparison.AT_MOST: "#cf222e", Comparison.AT_LEAST: "#8250df"}
_MISSING_COLOUR = "#9a6700"


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _badge(verdict: Verdict) -> str:
    return f'<span class="badge badge-{verdict}">{verdict}</span>'


def _table(header: Sequence[str], rows: Sequence[str], css_class: str) -> str:
    head = "".join(f'<th scope="col">{cell}</th>' for cell in header)
    body = "\n".join(rows)
    return (
        f'<table class="{css_class}">\n<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{body}\n</tbody>\n</table>"
    )


def _num(value: str) -> str:
    return f'<td class="num">{value}</td>'


def _verdict_table(rows: Sequence[VerdictRow]) -> str:
    lines = [
        f'<tr class="row-{row.verdict}"><td>{_e(row.check)}</td>'
        f"{_num(format_time(row.time))}{_num(format_number(row.estimate))}"
        f"{_num(format_interval(row.lower, row.upper))}"
        f"{_num(_e(format_bound(row.threshold, row.comparison, typeset=True)))}"
        f"<td>{_badge(row.verdict)}</td><td>{row.evidence}</td><td>{_e(row.reason)}</td></tr>"
        for row in rows
    ]
    header = ("check", "time", "estimate", "interval", "bound", "verdict", "evidence", "reason")
    return _table(header, lines, "verdicts")


def _unbounded_table(certificate: Certificate) -> str:
    entries = unbounded_entries(certificate)
    if not entries:
        return ""
    lines = [
        f"<tr><td>{_e(entry.check)}</td><td>{_e(entry.group)}</td>"
        f"{_num(format_time(entry.time))}{_num(format_number(entry.estimate))}"
        f"{_num(format_interval(entry.lower, entry.upper))}"
        f"<td>{entry.evidence}</td><td>{_e(entry.reason)}</td></tr>"
        for entry in entries
    ]
    header = ("check", "group", "time", "estimate", "interval", "evidence", "reason")
    return (
        "<h2>No bound</h2>\n<p>Stored estimates that no bound applies to (informational, "
        "not part of the verdict), with their stored intervals.</p>\n"
        + _table(header, lines, "unbounded")
    )


@dataclass(frozen=True)
class _PlotData:
    """One per-time check at every stored time; non-finite values are not drawn."""

    times: np.ndarray
    estimate: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    bounds: dict[Comparison, tuple[np.ndarray, np.ndarray]]
    band_levels: list[float]
    missing: list[tuple[float, str]]

    @property
    def has_estimate(self) -> np.ndarray:
        return np.isfinite(self.estimate)

    @property
    def has_band(self) -> np.ndarray:
        return np.isfinite(self.lower) & np.isfinite(self.upper)

    @property
    def positive(self) -> bool:
        """Whether a log scale can show every drawn value."""
        values = [
            self.estimate[self.has_estimate],
            self.lower[self.has_band],
            self.upper[self.has_band],
        ]
        values.extend(thresholds for _, thresholds in self.bounds.values())
        drawn = np.concatenate(values)
        return drawn.size > 0 and bool(np.all(drawn > 0))


def _plot_data(series: CheckSeries, rows: Sequence[VerdictRow]) -> _PlotData:
    """Per time: the verdict row's interval and bound where there is one, else the stored one."""
    lower = series.lower.copy()
    upper = series.upper.copy()
    levels = set()
    bounds: dict[Comparison, list[tuple[float, float]]] = {}
    for index, time in enumerate(series.times):
        row = next((r for r in rows if same_time(r.time, time)), None)
        if row is None:
            levels.add(series.confidence)
            continue
        # The verdict was decided on the row's (Bonferroni-level) interval: show that one.
        lower[index], upper[index] = row.lower, row.upper
        levels.add(row.confidence)
        bounds.setdefault(row.comparison, []).append((float(time), row.threshold))
    times = np.asarray(series.times, dtype=np.float64)
    return _PlotData(
        times=times,
        estimate=series.estimate,
        lower=lower,
        upper=upper,
        bounds={
            comparison: (np.array([t for t, _ in pairs]), np.array([b for _, b in pairs]))
            for comparison, pairs in sorted(bounds.items())
        },
        band_levels=sorted(level for level in levels if math.isfinite(level)),
        missing=[
            (float(times[i]), str(series.reason[i]))
            for i in np.flatnonzero(~np.isfinite(series.estimate))
        ],
    )


def _runs(mask: np.ndarray) -> list[slice]:
    """Maximal runs of consecutive ``True`` in ``mask``, as slices.

    Drawing each run separately leaves a visible gap where a value is missing, instead
    of a line that bridges it as if it had been estimated.
    """
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [slice(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


_SVG_START = re.compile(r"^.*?(?=<svg\b)", re.DOTALL)
_SVG_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)
_SVG_ID = re.compile(r'\bid="([^"]+)"')


def _inline_svg(svg: str, prefix: str) -> str:
    """An SVG document as an element to inline in HTML.

    Drops the XML prolog and the RDF metadata, and prefixes every ``id`` (and the
    references to it) so that several plots on one page do not share ids: matplotlib
    names groups ``figure_1``, ``axes_1``… and glyphs ``DejaVuSans-30`` in every file.
    """
    svg = _SVG_METADATA.sub("", _SVG_START.sub("", svg, count=1), count=1)
    ids = set(_SVG_ID.findall(svg))
    if not ids:
        return svg
    pattern = re.compile(
        r'(\bid="|\bhref="#|url\(#)(' + "|".join(map(re.escape, sorted(ids))) + r')(?=["\)])'
    )
    return pattern.sub(lambda m: f"{m[1]}{prefix}{m[2]}", svg)


def _plot_svg(data: _PlotData, ylabel: str) -> str:
    """Estimate against time with its band and bound, as an SVG document."""
    import matplotlib as mpl
    from matplotlib.figure import Figure

    with mpl.rc_context({"svg.hashsalt": "solvercert", "svg.fonttype": "path"}):
        figure = Figure(figsize=_FIGURE_SIZE, layout="constrained")
        axes = figure.subplots()
        for index, run in enumerate(_runs(data.has_band)):
            axes.fill_between(
                data.times[run],
                data.lower[run],
                data.upper[run],
                color=_ESTIMATE_COLOUR,
                alpha=0.2,
                linewidth=0,
                label="confidence interval" if index == 0 else None,
            )
        for index, run in enumerate(_runs(data.has_estimate)):
            axes.plot(
                data.times[run],
                data.estimate[run],
                "o-",
                color=_ESTIMATE_COLOUR,
                label="estimate" if index == 0 else None,
            )
        for comparison, (times, thresholds) in data.bounds.items():
            style = {
                "color": _BOUND_COLOURS[comparison],
                "label": f"bound ({COMPARISON_SYMBOLS[comparison]})",
            }
            if thresholds.size == data.times.size and np.all(thresholds == thresholds[0]):
                axes.axhline(float(thresholds[0]), linestyle="--", **style)
            else:
                axes.plot(
                    times,
                    thresholds,
                    linestyle="none",
                    marker="_",
                    markersize=16,
                    markeredgewidth=2,
                    **style,
                )
        for index, (time, _) in enumerate(data.missing):
            axes.axvline(
                time,
                color=_MISSING_COLOUR,
                linestyle=":",
                label="estimate missing" if index == 0 else None,
            )
        if data.positive:
            axes.set_yscale("log")
        axes.set_xlabel("time")
        # Units are free text from the certificate: never parse them as mathtext.
        axes.set_ylabel(ylabel, parse_math=False)
        axes.grid(visible=True, alpha=0.3)
        if axes.get_legend_handles_labels()[0]:
            axes.legend(loc="best", fontsize="small")
        buffer = io.StringIO()
        with warnings.catch_warnings():
            # A character the font lacks (in free-text units) is drawn as a box; the
            # caption carries the exact text, so the warning adds nothing for the reader.
            warnings.filterwarnings("ignore", "Glyph .* missing from", UserWarning)
            figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def _caption(check: str, group: str, series: CheckSeries, data: _PlotData) -> str:
    levels = ", ".join(f"{level:g}" for level in data.band_levels) or "none"
    parts = [
        f"<strong>{_e(check)}</strong> ({_e(group)}): {_e(series.long_name)}, "
        f"units {_e(series.units or '1')}.",
        f"Shaded: confidence interval at level {_e(levels)} (the verdict's interval where "
        "the check is bounded, the stored one elsewhere).",
    ]
    if data.missing:
        missing = "; ".join(
            f"t = {format_time(time)}: {_e(reason)}" for time, reason in data.missing
        )
        parts.append(f"No estimate at {missing}.")
    return " ".join(parts)


def _figures(certificate: Certificate) -> str:
    figures = []
    rows = certificate.rows
    for index, (check, group) in enumerate(per_time_checks(certificate)):
        series = check_series(certificate.family(group), check)
        data = _plot_data(series, rows_of(rows, check))
        ylabel = "estimate" if series.units in ("", "1") else f"estimate [{series.units}]"
        svg = _inline_svg(_plot_svg(data, ylabel), prefix=f"plot{index}-")
        figures.append(
            f'<figure id="plot-{_e(check)}">\n{svg}\n'
            f"<figcaption>{_caption(check, group, series, data)}</figcaption>\n"
            "</figure>"
        )
    if not figures:
        return ""
    return "<h2>Estimates over time</h2>\n" + "\n".join(figures)


def render_html(certificate: Certificate) -> str:
    """The certificate as one self-contained HTML page.

    Parameters
    ----------
    certificate : Certificate
        The artefact; its stored verdict table is reported as is.

    Returns
    -------
    str
        An HTML5 document (UTF-8) with inline CSS and one inline SVG plot per per-time
        check; identical for identical certificates (fixed SVG hash salt, no date).
    """
    verdict = certificate.verdict
    title = f"solvercert: {verdict} — {certificate.problem_id}"
    provenance = "\n".join(
        f'<tr><th scope="row">{_e(label)}</th><td>{_e(value)}</td></tr>'
        for label, value in provenance_items(certificate)
    )
    rows = certificate.rows
    verdicts = _verdict_table(rows) if rows else "<p>No bounded checks: nothing was certified.</p>"
    sections = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>\n{_CSS}\n</style>",
        "</head>",
        "<body>",
        "<main>",
        f"<h1>solvercert {_badge(verdict)}</h1>",
        f"<p>{_e(certificate.problem_id)} · {_e(certificate.model_spec)}</p>",
        "<h2>Provenance</h2>",
        f'<table class="provenance">\n<tbody>\n{provenance}\n</tbody>\n</table>',
        "<h2>Verdicts</h2>",
        verdicts,
        _unbounded_table(certificate),
        _figures(certificate),
        "</main>",
        "</body>",
        "</html>",
    ]
    return "\n".join(section for section in sections if section) + "\n"
