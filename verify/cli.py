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

JAX is imported only by commands that compute (``certify``, ``bounds``, ``env``), which
switch on float64 first (``certify --float32`` leaves it off and the certificate records
``x64 = 0``); ``show``, ``gate``, ``report`` and ``audit`` read files alone (numpy) and stay
fast on machines without an accelerator stack.
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
    RegressionMargins,
    ReportFormat,
    Verdict,
    atomic_write_text,
    combine,
    compare_to_baseline,
    format_regression_table,
    format_table,
    gate,
    load_bounds,
    parse_bound_expressions,
    parse_regression_margins,
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


class _InvalidInput(Exception):
    """A model, problem or data file that cannot be used (exit 4)."""


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
    except _InvalidInput as exc:
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


def _cli_margins(texts: list[str], baseline: Path | None) -> RegressionMargins:
    if texts and baseline is None:
        raise _UsageError("--max-regression needs --baseline")
    try:
        return parse_regression_margins(texts)
    except BoundsError as exc:
        raise _UsageError(f"--max-regression: {exc}") from None


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
    baseline: Annotated[
        Path | None,
        typer.Option(
            help="Baseline certificate of the same problem (e.g. committed next to the model "
            "checkpoint): also fail when a bounded check got worse than in it beyond the "
            "noise and the --max-regression margin.",
        ),
    ] = None,
    max_regression: Annotated[
        list[str] | None,
        typer.Option(
            "--max-regression",
            help="Allowed worsening against --baseline, repeatable: '10%' (relative to the "
            "baseline estimate), '1e-3' (absolute), 'score_gap=10%' (one check). "
            "Default 0: any significant worsening fails.",
        ),
    ] = None,
) -> None:
    """Re-gate a stored certificate against (possibly stricter) bounds; exit with its verdict.

    Precedence: --bound/--confidence/--correction > --bounds file > the bounds stored in
    the certificate (the problem defaults it was made with). With --baseline the exit
    code is the worse of the bound verdict and the regression verdict (docs/baselines.md).
    """
    with _exit_codes():
        cli_layer = _cli_bounds(bound or [], confidence, correction)
        margins = _cli_margins(max_regression or [], baseline)
        loaded = read_certificate(certificate)
        reference = read_certificate(baseline) if baseline is not None else None
        file_layer = load_bounds(bounds) if bounds is not None else Bounds()
        result = gate(loaded, cli_layer.over(file_layer))
        regated = loaded.with_gate(result)
        regression = None
        if reference is not None:
            try:
                regression = compare_to_baseline(regated, reference, margins=margins)
            except BoundsError as exc:  # a per-check margin naming an absent check
                raise _UsageError(f"--max-regression: {exc}") from None
        if out is not None:
            try:
                write_certificate(regated, out)
            except OSError as exc:
                raise _UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
        typer.echo(format_table(regated))
        verdict = result.verdict
        if regression is not None:
            typer.echo(format_regression_table(regression, str(baseline)))
            typer.echo(f"bounds: {result.verdict}; regression: {regression.verdict}")
            verdict = combine([result.verdict, regression.verdict])
        code = VERDICT_EXIT_CODES[verdict]
        typer.echo(f"verdict: {verdict} (exit {int(code)})")
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


def _jax(*, x64: bool = True) -> Any:
    """Import JAX with float64 switched on (certification runs in float64).

    ``x64=False`` (``certify --float32``) leaves JAX's default float32 in place.
    """
    import jax

    if x64:
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


class _StageProgress:
    """Progress bar of a certify run on standard error (rich), or nothing.

    Shown only when standard error is a terminal and ``--quiet`` is not given, so logs
    and pipes stay clean.
    """

    def __init__(self, enabled: bool) -> None:
        self._progress = None
        self._task = None
        if enabled:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description:<40}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )

    def __enter__(self) -> _StageProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, description: str, done: int, total: int) -> None:
        if self._progress is None:
            return
        if self._task is None:
            self._task = self._progress.add_task(description, total=total)
        self._progress.update(self._task, description=description, completed=done)


def _parse_times(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise _UsageError(f"--times must be comma-separated numbers, got {text!r}") from None


def _model_specs(models: list[str]) -> list[str]:
    """The --model options with globs expanded (a pattern matching nothing: exit 2)."""
    from ._sweep import SweepError, expand_model_specs

    try:
        return expand_model_specs(models)
    except SweepError as exc:
        raise _UsageError(str(exc)) from None


def _certify_sweep(
    problem: str,
    specs: list[str],
    config: Any,
    *,
    out: Path,
    role: str | None,
    user_bounds: Bounds,
    bounds_source: str,
    workers: int | None,
    show_bar: bool,
    scheduler: str | None = None,
) -> ExitCode:
    """``certify`` with several models: certificates and sweep.nc in the folder ``out``."""
    from solvers import ProblemError

    from ._certify import CertifyError
    from ._sweep import SweepError, sweep

    if workers is None:
        workers = min(len(specs), os.cpu_count() or 1)
    if out.exists() and not out.is_dir():
        raise _UsageError(f"--out {out} must be a folder when certifying several models")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _UsageError(f"cannot create {out}: {exc.strerror or exc}") from None
    try:
        with _StageProgress(show_bar and workers == 1 and scheduler is None) as progress:
            result = sweep(
                problem,
                specs,
                config,
                out_dir=out,
                role=role,
                user_bounds=user_bounds,
                bounds_source=bounds_source,
                workers=workers,
                progress=progress,
                scheduler=scheduler,
            )
    except (CertifyError, SweepError) as exc:
        raise _UsageError(str(exc)) from None
    except ProblemError as exc:
        raise _InvalidInput(str(exc)) from None
    except OSError as exc:
        raise _UsageError(f"cannot write into {out}: {exc.strerror or exc}") from None
    typer.echo(result.format_sweep_table())
    if result.errors:
        code = ExitCode.INVALID_INPUT
        summary = f"{len(result.errors)} of {len(specs)} models could not be certified"
    else:
        code = VERDICT_EXIT_CODES[result.verdict]
        summary = f"verdict: {result.verdict}"
    where = f"; wrote {out}" + (f" and {result.combined.name}" if result.combined else "")
    typer.echo(f"{summary} (exit {int(code)}){where}")
    return code


def _certify_trajectories(
    problem: str,
    path: Path,
    *,
    out: Path,
    user_bounds: Bounds,
    bounds_source: str,
    options: dict[str, Any],
    show_bar: bool,
) -> ExitCode:
    """``certify --trajectories``: certify a trajectory artefact; write and print the result."""
    from certificates import read_trajectories
    from solvers import ProblemError, get_problem

    from ._audit import file_sha256
    from ._certify import CertifyConfig, CertifyError
    from ._trajectory_certify import TrajectoryInputError, certify_trajectories

    _jax(x64=not options["allow_float32"])
    try:
        config = CertifyConfig(**options)
    except CertifyError as exc:
        raise _UsageError(str(exc)) from None
    try:
        reference = get_problem(problem)
    except ProblemError as exc:
        raise _InvalidInput(str(exc)) from None
    artefact = read_trajectories(path)  # TrajectoryError is a CertificateError: exit 4
    try:
        with _StageProgress(show_bar) as progress:
            result = certify_trajectories(
                reference,
                artefact,
                config,
                spec=str(path),
                sha256=file_sha256(path),
                user_bounds=user_bounds,
                bounds_source=bounds_source,
                progress=progress,
            )
    except CertifyError as exc:
        raise _UsageError(str(exc)) from None
    except TrajectoryInputError as exc:
        raise _InvalidInput(f"{path}: {exc}") from None
    try:
        write_certificate(result, out)
    except OSError as exc:
        raise _UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
    typer.echo(format_table(result))
    code = VERDICT_EXIT_CODES[result.verdict]
    typer.echo(f"verdict: {result.verdict} (exit {int(code)}); wrote {out}")
    return code


@app.command(epilog=_EXIT_CODE_HELP)
def certify(
    problem: Annotated[
        str,
        typer.Option(
            "--problem",
            "-p",
            help="Built-in problem id (vp-gmm-2d, landau-bkw-2d, ...) or a .toml problem file.",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Certificate to write (NetCDF-4); with several models, a folder for one "
            "certificate per model and the combined sweep.nc.",
        ),
    ],
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="path/to/file.py:attr, package.module:attr, or a checkpoint directory. "
            "Repeatable; the path part may be a glob ('runs/step_*', 'runs/*.py:score').",
        ),
    ] = None,
    role: Annotated[
        str | None,
        typer.Option(
            help="Role of a plain callable: score, log_density, flow, velocity, or for PDE "
            "problems field, operator, step (an object with role methods needs none)."
        ),
    ] = None,
    bounds: Annotated[
        Path | None,
        typer.Option(
            "--bounds",
            "-b",
            help="Bounds file (TOML or pyproject.toml [tool.solvercert]) over the problem "
            "defaults (see `verify bounds PROBLEM`).",
        ),
    ] = None,
    bound: Annotated[
        list[str] | None,
        typer.Option("--bound", help="Bound expression, repeatable: 'score_gap_relative<=0.01'."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Root seed; the same seed gives the same digest.")] = 0,
    samples: Annotated[
        int, typer.Option("--samples", "-n", help="Exact samples / particles per time.")
    ] = 10_000,
    times: Annotated[
        str | None,
        typer.Option(help="Comma-separated certification times (default: the problem's)."),
    ] = None,
    confidence: Annotated[
        float | None, typer.Option(help="Overall confidence level 1-δ (default 0.95).")
    ] = None,
    correction: Annotated[
        Correction | None,
        typer.Option(help="Multiple-comparison correction (default bonferroni)."),
    ] = None,
    divergence: Annotated[
        str,
        typer.Option(help="Divergence of the score: exact (Jacobian trace) or hutchinson."),
    ] = "exact",
    probes: Annotated[int, typer.Option(help="Rademacher probes per sample (hutchinson).")] = 4,
    float32: Annotated[
        bool,
        typer.Option(
            "--float32", help="Certify in float32 (recorded as x64 = 0 in the certificate)."
        ),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar on standard error.")
    ] = False,
    trajectories: Annotated[
        Path | None,
        typer.Option(
            "--trajectories",
            "-t",
            help="Certify a trajectory/sample artefact (NetCDF, certificates/SCHEMA.md) "
            "instead of a model: its particles, and its scores where stored. Excludes --model; "
            "--samples caps the particles per time of the KDE and two-sample checks.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Processes for several models (default: min(#models, CPU count)); "
            "1 certifies them one after the other in this process."
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            help="Dask scheduler address (tcp://host:8786) to run several models on "
            "(needs pip install 'solvercert[dask]'; --out must be on a shared file system)."
        ),
    ] = None,
) -> None:
    """Certify a learned model on a reference problem and write the certificate.

    Loads the model, probes its roles, computes every check that applies (score gap,
    Hyvärinen gap, Fokker-Planck and flow-map residuals, invariants, KDE density error,
    ODE/SDE sample gap, errors against the exact solution) with confidence intervals,
    gates them against the bounds (--bound > --bounds file > problem defaults), writes the
    certificate atomically, prints the verdict table and exits with the verdict.

    With several models (repeated --model, or a glob) --out is a folder: one certificate
    per model, the combined sweep.nc, and a table with one line per model; the exit code
    is 4 if any model could not be loaded, else the worst verdict.

    With --trajectories FILE.nc instead of --model, certifies a solver's stored particles
    (any framework; docs/trajectories.md): invariants, KDE density error, sample gap and,
    where scores are stored, the score gap.
    """
    with _exit_codes():
        if (trajectories is None) == (not model):
            raise _UsageError("give exactly one of --model and --trajectories")
        cli_layer = _cli_bounds(bound or [], confidence, correction)
        file_layer = load_bounds(bounds) if bounds is not None else Bounds()
        if trajectories is not None:
            model_only = {
                "--role": role is not None,
                "--divergence": divergence != "exact",
                "--probes": probes != 4,
                "--workers": workers is not None,
                "--scheduler": scheduler is not None,
            }
            if any(model_only.values()):
                given = ", ".join(name for name, set_ in model_only.items() if set_)
                raise _UsageError(f"{given}: only with --model, not with --trajectories")
            code = _certify_trajectories(
                problem,
                trajectories,
                out=out,
                user_bounds=cli_layer.over(file_layer),
                bounds_source=str(bounds) if bounds is not None else "",
                options={
                    "times": _parse_times(times),
                    "n_samples": samples,
                    "seed": seed,
                    "allow_float32": float32,
                },
                show_bar=not quiet and sys.stderr.isatty(),
            )
            raise typer.Exit(int(code))
        specs = _model_specs(model or [])
        _jax(x64=not float32)
        from solvers import ProblemError, get_problem

        from ._certify import CertifyConfig, CertifyError, certify, resolve_times
        from ._model import ModelError, load_model

        try:
            config = CertifyConfig(
                times=_parse_times(times),
                n_samples=samples,
                seed=seed,
                divergence=divergence,  # type: ignore[arg-type]
                probes=probes,
                allow_float32=float32,
            )
        except CertifyError as exc:
            raise _UsageError(str(exc)) from None
        if len(specs) > 1:
            code = _certify_sweep(
                problem,
                specs,
                config,
                out=out,
                role=role,
                user_bounds=cli_layer.over(file_layer),
                bounds_source=str(bounds) if bounds is not None else "",
                workers=workers,
                show_bar=not quiet and sys.stderr.isatty(),
                scheduler=scheduler,
            )
            raise typer.Exit(int(code))
        try:
            reference = get_problem(problem)
        except ProblemError as exc:
            raise _InvalidInput(str(exc)) from None
        try:
            # Validate the times before the model is probed at the first of them.
            probe_time = resolve_times(reference, config.times)[0]
        except CertifyError as exc:
            raise _UsageError(str(exc)) from None
        try:
            loaded = load_model(
                specs[0],
                role=role,
                dim=reference.dim,
                probe_time=float(probe_time),
                allow_float32=float32,
            )
        except (ProblemError, ModelError) as exc:
            raise _InvalidInput(str(exc)) from None
        show_bar = not quiet and sys.stderr.isatty()
        try:
            with _StageProgress(show_bar) as progress:
                result = certify(
                    reference,
                    loaded,
                    config,
                    user_bounds=cli_layer.over(file_layer),
                    bounds_source=str(bounds) if bounds is not None else "",
                    progress=progress,
                )
        except CertifyError as exc:
            raise _UsageError(str(exc)) from None
        except ModelError as exc:
            raise _InvalidInput(str(exc)) from None
        try:
            write_certificate(result, out)
        except OSError as exc:
            raise _UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
        typer.echo(format_table(result))
        code = VERDICT_EXIT_CODES[result.verdict]
        typer.echo(f"verdict: {result.verdict} (exit {int(code)}); wrote {out}")
    raise typer.Exit(int(code))


@app.command("bounds", epilog=_EXIT_CODE_HELP)
def bounds_command(
    problem: Annotated[str, typer.Argument(help="Built-in problem id or .toml problem file.")],
) -> None:
    """Print the default bounds `verify certify` applies to a problem (TOML)."""
    with _exit_codes():
        _jax()
        from solvers import ProblemError, get_problem

        from ._certify import CertifyError, default_bounds_text

        try:
            text = default_bounds_text(get_problem(problem))
        except (ProblemError, CertifyError) as exc:
            raise _InvalidInput(str(exc)) from None
        typer.echo(text, nl=not text.endswith("\n"))


@app.command(epilog=_EXIT_CODE_HELP)
def audit(
    artefact: Annotated[
        Path,
        typer.Argument(help="Trajectory artefact (NetCDF-4; certificates/SCHEMA.md)."),
    ],
    invariants: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated subset of mass,momentum,energy,entropy "
            "(default: every one the artefact allows)."
        ),
    ] = None,
    tolerance: Annotated[
        str | None,
        typer.Option(
            help="'1e-6' for every invariant, or 'energy=1e-4,momentum=1e-9' "
            "(default: docs/trajectories.md)."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write the certificate here (NetCDF-4)."),
    ] = None,
    confidence: Annotated[
        float | None,
        typer.Option(help="Overall confidence level 1-δ (default 0.95; the checks are exact)."),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the verdict line.")
    ] = False,
) -> None:
    """Check invariant preservation of a trajectory artefact, with no reference solution.

    Mass, momentum and energy drift of the stored particles from the first frame, and the
    largest increase of the entropy Σ w log f (with stored log_density). With stepper =
    forward_euler and stored per-step increments, the energy is judged by its excess over
    the drift forward Euler adds (a round-off tolerance). Exits with the verdict.
    """
    with _exit_codes():
        from certificates import read_trajectories

        from ._audit import (
            AuditConfig,
            AuditError,
            AuditInputError,
            file_sha256,
            parse_invariants,
            parse_tolerances,
        )
        from ._audit import audit as run_audit

        try:
            config = AuditConfig(
                invariants=parse_invariants(invariants),
                tolerances=parse_tolerances(tolerance),
                confidence=confidence,
            )
        except AuditError as exc:
            raise _UsageError(str(exc)) from None
        if confidence is not None and not 0.0 < confidence < 1.0:
            raise _UsageError(f"--confidence must lie in (0, 1), got {confidence}")
        loaded = read_trajectories(artefact)
        try:
            result = run_audit(loaded, config, spec=str(artefact), sha256=file_sha256(artefact))
        except AuditInputError as exc:
            raise _InvalidInput(f"{artefact}: {exc}") from None
        if out is not None:
            try:
                write_certificate(result, out)
            except OSError as exc:
                raise _UsageError(f"cannot write {out}: {exc.strerror or exc}") from None
        if not quiet:
            typer.echo(format_table(result))
        code = VERDICT_EXIT_CODES[result.verdict]
        where = f"; wrote {out}" if out is not None else ""
        typer.echo(f"verdict: {result.verdict} (exit {int(code)}){where}")
    raise typer.Exit(int(code))


def main() -> None:
    """Console-script entry point (``verify``) and ``python -m verify``."""
    app(prog_name="verify")
