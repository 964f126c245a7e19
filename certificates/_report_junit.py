"""The JUnit XML report: one test case per verdict row, for CI test dashboards.

One ``<testsuite name="solvercert">`` with the certificate's provenance as
``<properties>`` and one ``<testcase>`` per verdict row: ``classname`` is
``solvercert.<problem_id>.<group>`` and ``name`` is ``<check>[t=<time>]`` or
``<check>[aggregate]``. A FAIL row carries a ``<failure type="FAIL">``, an
INCONCLUSIVE row a ``<skipped>`` (nothing was decided), a PASS row nothing. Stored
checks without a bound are not test cases.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from . import _names as n
from ._names import Verdict
from ._report_common import (
    AGGREGATE_LABEL,
    format_bound,
    format_interval,
    format_number,
    format_time,
)

if TYPE_CHECKING:
    from ._certificate import Certificate
    from ._gate import VerdictRow

SUITE_NAME = "solvercert"

# Characters XML 1.0 cannot carry at all (ElementTree would write them unchecked).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

# Rows of a bound on a check the certificate does not hold have an empty group.
_NO_GROUP = "missing"


def _xml_text(text: str) -> str:
    return _NOT_XML.sub("\ufffd", str(text))


def case_name(row: VerdictRow) -> str:
    """``check[t=0.5]`` or ``check[aggregate]``."""
    where = AGGREGATE_LABEL if row.time is None else f"t={format_time(row.time)}"
    return f"{row.check}[{where}]"


def _detail(row: VerdictRow) -> str:
    lines = [
        f"estimate: {format_number(row.estimate)}",
        f"interval: {format_interval(row.lower, row.upper)} "
        f"at confidence {row.confidence:g} ({row.interval_method})",
        f"bound: {format_bound(row.threshold, row.comparison)}",
        f"evidence: {row.evidence}",
        f"n_samples: {row.n_samples}",
    ]
    if row.reason:
        lines.append(f"reason: {row.reason}")
    return "\n".join(lines)


def _summary(row: VerdictRow) -> str:
    bound = format_bound(row.threshold, row.comparison)
    interval = format_interval(row.lower, row.upper)
    because = f": {row.reason}" if row.reason else ""
    return f"{row.verdict}{because} (interval {interval}, bound {bound})"


def render_junit(certificate: Certificate) -> str:
    """The certificate's verdict rows as a JUnit XML test suite.

    Parameters
    ----------
    certificate : Certificate
        The artefact; its stored verdict table is reported as is.

    Returns
    -------
    str
        An XML document (UTF-8 declaration, two-space indentation) ending with a
        newline; ``tests="0"`` when the certificate has no verdict rows.
    """
    rows = certificate.rows
    counts = {verdict: sum(row.verdict is verdict for row in rows) for verdict in Verdict}
    suite = ET.Element(
        "testsuite",
        {
            "name": SUITE_NAME,
            "tests": str(len(rows)),
            "failures": str(counts[Verdict.FAIL]),
            "errors": "0",
            "skipped": str(counts[Verdict.INCONCLUSIVE]),
            "timestamp": _xml_text(certificate.attrs[n.ATTR_CREATED_AT]),
        },
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("problem_id", certificate.problem_id),
        ("model_spec", certificate.model_spec),
        ("verdict", str(certificate.verdict)),
        ("content_sha256", certificate.content_sha256),
        ("schema_version", certificate.schema_version),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": _xml_text(value)})
    for row in rows:
        case = ET.SubElement(
            suite,
            "testcase",
            {
                "classname": _xml_text(
                    f"{SUITE_NAME}.{certificate.problem_id}.{row.group or _NO_GROUP}"
                ),
                "name": _xml_text(case_name(row)),
            },
        )
        if row.verdict is Verdict.FAIL:
            failure = ET.SubElement(
                case, "failure", {"message": _xml_text(_summary(row)), "type": str(Verdict.FAIL)}
            )
            failure.text = _xml_text(_detail(row))
        elif row.verdict is Verdict.INCONCLUSIVE:
            skipped = ET.SubElement(case, "skipped", {"message": _xml_text(_summary(row))})
            skipped.text = _xml_text(_detail(row))
    ET.indent(suite, space="  ")
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
