"""The Markdown report: a GitHub job summary or pull-request comment.

A title with the overall verdict, a provenance table, the verdict table (one line per
row) and the stored checks no bound applies to. Cell text is escaped so that a pipe,
a line break or an HTML tag in a certificate string cannot break the table or inject
markup (GitHub renders inline HTML in Markdown).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from ._names import Verdict
from ._report_common import (
    format_bound,
    format_interval,
    format_number,
    format_time,
    one_line,
    provenance_items,
    unbounded_entries,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._certificate import Certificate

_ICONS = {Verdict.PASS: "✅", Verdict.FAIL: "❌", Verdict.INCONCLUSIVE: "⚠️"}


def escape_cell(text: str) -> str:
    """``text`` safe inside a Markdown table cell: one line, HTML-escaped, pipes escaped."""
    # Backslashes first, so that the backslash added before a pipe is not itself escaped.
    escaped = html.escape(one_line(text), quote=False).replace("\\", "\\\\")
    return escaped.replace("|", "\\|")


def _table(header: Sequence[str], lines: Sequence[Sequence[str]]) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cells) + " |"

    return [line(header), line(["---"] * len(header)), *map(line, lines)]


def _verdict_label(verdict: Verdict) -> str:
    return f"{_ICONS[verdict]} {verdict}"


def render_markdown(certificate: Certificate) -> str:
    """The certificate as GitHub-flavoured Markdown.

    Parameters
    ----------
    certificate : Certificate
        The artefact; its stored verdict table is reported as is.

    Returns
    -------
    str
        Markdown ending with a newline; bounds are typeset as ``≤ τ`` / ``≥ τ``.
    """
    verdict = certificate.verdict
    lines = [
        f"## solvercert: {_verdict_label(verdict)} — {escape_cell(certificate.problem_id)}",
        "",
        *_table(
            ("provenance", ""),
            [(label, escape_cell(value)) for label, value in provenance_items(certificate)],
        ),
        "",
        "### Verdicts",
        "",
    ]
    rows = certificate.rows
    if rows:
        lines.extend(
            _table(
                ("check", "time", "estimate", "interval", "bound", "verdict", "evidence", "reason"),
                [
                    (
                        escape_cell(row.check),
                        format_time(row.time),
                        format_number(row.estimate),
                        format_interval(row.lower, row.upper),
                        format_bound(row.threshold, row.comparison, typeset=True),
                        _verdict_label(row.verdict),
                        str(row.evidence),
                        escape_cell(row.reason),
                    )
                    for row in rows
                ],
            )
        )
    else:
        lines.append("No bounded checks: nothing was certified.")
    unbounded = unbounded_entries(certificate)
    if unbounded:
        lines.extend(["", "### No bound (informational, not part of the verdict)", ""])
        lines.extend(
            _table(
                ("check", "group", "time", "estimate", "interval", "evidence", "reason"),
                [
                    (
                        escape_cell(entry.check),
                        escape_cell(entry.group),
                        format_time(entry.time),
                        format_number(entry.estimate),
                        format_interval(entry.lower, entry.upper),
                        str(entry.evidence),
                        escape_cell(entry.reason),
                    )
                    for entry in unbounded
                ],
            )
        )
    return "\n".join(lines) + "\n"
