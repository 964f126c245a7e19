"""The ``verify`` command line: a thin typer adapter over the library.

Each command parses its options, calls one library function, prints, and maps domain
exceptions to the documented exit codes — here and nowhere else:

====  ==================================================================================
code  meaning
====  ==================================================================================
0     PASS (or, for ``show``/``report``/``env``, success)
1     FAIL: at least one check failed its bound
2     usage error: bad option, bad bound expression, unwritable output path
3     INCONCLUSIVE: no check failed, but some interval straddles its bound
4     invalid input: unreadable or invalid certificate, bounds, model, problem or data file
70    internal error (a bug: please report it; ``SOLVERCERT_DEBUG=1`` shows the traceback)
====  ==================================================================================

JAX is imported only by commands that compute (``env`` now, ``certify`` later), which
switch on float64 first; ``show``, ``gate`` and ``report`` read the artefact alone and
stay fast on machines without an accelerator stack.
"""

from __future__ import annotations

import enum
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from certificates import (
    Bounds,
    BoundsError,
    CertificateError,
    Correction,
    ReportFormat,
    Verdict,
    atomic_write_text,
    format_table,
    gate,
    load_bounds,
    parse_bound_expressions,
    read_certificate,
    render_report,
    write_certificate,
)

from ._version import tool_version


class ExitCode(enum.IntEnum):
    """Documented process exit codes."""

    PASS = 0
    FAIL = 1
    USAGE = 2
    INCONCLUSIVE = 3
    INVALID_INPUT = 4
    INTERNAL = 70


VERDICT_EXIT_CODES = {
    Verdict.PASS: ExitCode.PASS,
    Verdict.FAIL: ExitCode.FAIL,
    Verdict.INCONCLUSIVE: ExitCode.INCONCLUSIVE,
}

_EXIT_CODE_HELP = (
    "Exit codes: 0 PASS; 1 FAIL; 2 usage error; 3 INCONCLUSIVE; "
    "4 invalid input (unreadable or invalid certificate, bounds, model, problem or data file); "
    "70 internal error."
)

app = typer.Typer(
    name="verify",
    help=(
        "Verify and certify learned solvers: a posteriori error estimates with confidence "
        "intervals, written as a NetCDF certificate that can be gated and reported on "
        "without JAX."
    ),
    epilog=_EXIT_CODE_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help texts are plain: "[tool.solvercert]" and bound expressions must not be read as markup.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class _UsageError(Exception):
    """A problem with how the command was called (exit 2)."""


def _fail(message: str, code: ExitCode) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(int(code))


@contextmanager
def _exit_codes() -> Iterator[None]:
    """Map domain exceptions to one-line messages and exit codes; never show a traceback."""
    try:
        yield
    except typer.Exit:
        raise
    except _UsageError as exc:
        _fail(str(exc), ExitCode.USAGE)
    except CertificateError as exc:
        _fail(str(exc), ExitCode.INVALID_INPUT)
    except Exception as exc:
        if os.environ.get("SOLVERCERT_DEBUG"):
            raise
        _fail(
            f"internal error: {type(exc).__name__}: {exc} "
            "(please report this; set SOLVERCERT_DEBUG=1 for the traceback)",
            ExitCode.INTERNAL,
        )


def _write_output(path: Path, text: str) -> None:
    try:
        atomic_write_text(path, text)
    except OSError as exc:
        raise _UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"solvercert {tool_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Show the version."
        ),
    ] = False,
) -> None:
    """Verify and certify learned solvers."""


CertificateArg = Annotated[
    Path, typer.Argument(help="Certificate file (NetCDF-4; see certificates/SCHEMA.md).")
]


@app.command(epilog=_EXIT_CODE_HELP)
def show(
    certificate: CertificateArg,
    no_verify: Annotated[
        bool,
        typer.Option(
            "--no-verify",
            help="Display the certificate even if its content no longer matches its digest.",
        ),
    ] = False,
) -> None:
    """Print a summary table of a certificate (provenance, checks, verdicts)."""
    with _exit_codes():
        loaded = read_certificate(certificate, verify=not no_verify)
        if no_verify:
            typer.echo("warning: digest not verified (--no-verify)", err=True)
        typer.echo(format_table(loaded))


def _cli_bounds(
    expressions: list[str], confidence: float | None, correction: Correction | None
) -> Bounds:
    try:
        parsed = parse_bound_expressions(expressions)
    except BoundsError as exc:
        raise _UsageError(str(exc)) from None
    if confidence is not None and not 0.0 < confidence < 1.0:
        raise _UsageError(f"--confidence must lie in (0, 1), got {confidence}")
    return Bounds(confidence=confidence, correction=correction, checks=parsed.checks)


# The function is not called `gate`: that name is the library's gating function.
@app.command("gate", epilog=_EXIT_CODE_HELP)
def gate_command(
    certificate: CertificateArg,
    bounds: Annotated[
        Path | None,
        typer.Option(
            "--bounds",
            "-b",
            help="Bounds file (TOML, or a pyproject.toml with [tool.solvercert]).",
        ),
    ] = None,
    bound: Annotated[
        list[str] | None,
        typer.Option(
            "--bound",
            help="Bound expression, repeatable: 'score_gap<=1e-3', 'coverage>=0.9', "
            "'score_gap@0.5<=2e-3'. Overrides the bounds file; a check (or check and "
            "time) may be bounded once.",
        ),
    ] = None,
    confidence: Annotated[
        float | None,
        typer.Option(help="Overall confidence level 1-δ (default: the certificate's)."),
    ] = None,
    correction: Annotated[
        Correction | None,
        typer.Option(help="Multiple-comparison correction (default: the certificate's)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Also write the re-gated certificate here."),
    ] = None,
) -> None:
    """Re-gate a stored certificate against (possibly stricter) bounds; exit with its verdict.

    Precedence: --bound/--confidence/--correction > --bounds file > the bounds stored in
    the certificate (the problem defaults it was made with).
    """
    with _exit_codes():
        cli_layer = _cli_bounds(bound or [], confidence, correction)
        loaded = read_certificate(certificate)
        file_layer = load_bounds(bounds) if bounds is not None else Bounds()
        result = gate(loaded, cli_layer.over(file_layer))
        regated = loaded.with_gate(result)
        if out is not None:
            try:
                write_certificate(regated, out)
            except OSError as exc:
                raise _UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
        typer.echo(format_table(regated))
        code = VERDICT_EXIT_CODES[result.verdict]
        typer.echo(f"verdict: {result.verdict} (exit {int(code)})")
    raise typer.Exit(int(code))


@app.command(epilog=_EXIT_CODE_HELP)
def report(
    certificate: CertificateArg,
    fmt: Annotated[
        ReportFormat,
        typer.Option("--format", "-f", help="md (CI summary), html, json or junit."),
    ] = ReportFormat.MARKDOWN,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the report here (default: standard output)."),
    ] = None,
) -> None:
    """Export a certificate as Markdown, self-contained HTML, JSON or JUnit XML."""
    with _exit_codes():
        text = render_report(read_certificate(certificate), fmt)
        if out is None:
            typer.echo(text, nl=not text.endswith("\n"))
        else:
            _write_output(out, text)
            typer.echo(f"wrote {out}", err=True)


def _jax() -> Any:
    """Import JAX with float64 switched on (certification runs in float64)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


@app.command(epilog=_EXIT_CODE_HELP)
def env() -> None:
    """Print the versions, JAX backend and devices this tool would certify with."""
    with _exit_codes():
        jax = _jax()
        import jax.numpy as jnp

        lines = {
            "solvercert": tool_version(),
            "python": sys.version.split()[0],
            "jax": jax.__version__,
            "backend": jax.default_backend(),
            "devices": ", ".join(str(device) for device in jax.devices()),
            "x64": str(jnp.zeros(()).dtype == jnp.float64).lower(),
        }
        for key, value in lines.items():
            typer.echo(f"{key:<11}{value}")


def main() -> None:
    """Console-script entry point (``verify``) and ``python -m verify``."""
    app(prog_name="verify")
