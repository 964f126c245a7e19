"""Reports on a certificate: the format enum, the dispatcher and the plain-text table.

:func:`render_report` renders one certificate as Markdown (job summaries, PR comments),
self-contained HTML, strict JSON or JUnit XML; :func:`format_table` is the fixed-width
text summary the CLI prints. Every format is rendered from the certificate alone and is
deterministic: the same certificate gives the same string.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from . import _names as n
from ._report_common import (
    confidence_label,
    format_bound,
    format_interval,
    format_number,
    format_time,
    one_line,
    unbounded_entries,
)
from ._report_html import render_html
from ._report_json import render_json
from ._report_junit import render_junit
from ._report_markdown import render_markdown

if TYPE_CHECKING:
    from ._certificate import Certificate


class ReportFormat(enum.StrEnum):
    """Output format of :func:`render_report`; the value is the CLI spelling."""

    MARKDOWN = "md"
    HTML = "html"
    JSON = "json"
    JUNIT = "junit"

    @property
    def suffix(self) -> str:
        """Conventional file suffix (``.xml`` for JUnit)."""
        return ".xml" if self is ReportFormat.JUNIT else f".{self.value}"


_RENDERERS: dict[ReportFormat, Callable[[Certificate], str]] = {
    ReportFormat.MARKDOWN: render_markdown,
    ReportFormat.HTML: render_html,
    ReportFormat.JSON: render_json,
    ReportFormat.JUNIT: render_junit,
}


def render_report(certificate: Certificate, fmt: ReportFormat) -> str:
    """Render ``certificate`` in format ``fmt``.

    Parameters
    ----------
    certificate : Certificate
        The artefact; its stored verdict table is reported as is (no re-gating).
    fmt : ReportFormat
        ``md``, ``html``, ``json`` or ``junit`` (a plain string is accepted).

    Returns
    -------
    str
        The report; identical for identical certificates.

    Raises
    ------
    ValueError
        ``fmt`` is not a :class:`ReportFormat` value.
    """
    return _RENDERERS[ReportFormat(fmt)](certificate)


_GAP = "  "


def _fixed_width(header: Sequence[str], lines: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(header, *lines, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return _GAP.join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))

    rule = ["-" * width for width in widths]
    return [line(cells).rstrip() for cells in (header, rule, *lines)]


_ROW_HEADER = (
    "check",
    "time",
    "estimate",
    "interval",
    "bound",
    "verdict",
    "evidence",
    "reason",
)
_UNBOUNDED_HEADER = ("check", "group", "time", "estimate", "interval", "evidence", "reason")


def format_table(certificate: Certificate) -> str:
    """Plain-text, fixed-width summary: provenance header, verdict table, unbounded checks.

    One line per verdict row (``aggregate`` in the time column of aggregate rows), with
    the interval the verdict was decided on and the bound as ``<= τ`` or ``>= τ``.
    Stored checks that no bound applies to follow under "no bound", with their stored
    interval; they do not enter the verdict.

    Parameters
    ----------
    certificate : Certificate
        The artefact.

    Returns
    -------
    str
        Lines joined by newlines, ending with a newline; ASCII apart from the
        certificate's own strings.
    """
    attrs = certificate.attrs
    header = [
        ("problem", certificate.problem_id),
        ("model", certificate.model_spec),
        ("verdict", str(certificate.verdict)),
        ("created_at", str(attrs[n.ATTR_CREATED_AT])),
        ("seed", str(attrs[n.ATTR_SEED])),
        ("confidence", confidence_label(certificate)),
    ]
    width = max(len(label) for label, _ in header)
    lines = [f"{label.ljust(width)}{_GAP}{one_line(value)}" for label, value in header]
    lines.append("")
    rows = certificate.rows
    if rows:
        lines.extend(
            _fixed_width(
                _ROW_HEADER,
                [
                    (
                        one_line(row.check),
                        format_time(row.time),
                        format_number(row.estimate),
                        format_interval(row.lower, row.upper),
                        format_bound(row.threshold, row.comparison),
                        str(row.verdict),
                        str(row.evidence),
                        one_line(row.reason),
                    )
                    for row in rows
                ],
            )
        )
    else:
        lines.append("no bounded checks: nothing was certified")
    unbounded = unbounded_entries(certificate)
    if unbounded:
        lines.extend(["", "no bound (informational, not part of the verdict):"])
        lines.extend(
            _fixed_width(
                _UNBOUNDED_HEADER,
                [
                    (
                        entry.check,
                        entry.group,
                        format_time(entry.time),
                        format_number(entry.estimate),
                        format_interval(entry.lower, entry.upper),
                        str(entry.evidence),
                        one_line(entry.reason),
                    )
                    for entry in unbounded
                ],
            )
        )
    return "\n".join(lines) + "\n"
