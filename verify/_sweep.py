r"""``verify certify`` over many models: one certificate per model, and a combined file.

A sweep certifies each model SPEC (e.g. the checkpoints of one training run) against the
same problem, with the same :class:`~verify._certify.CertifyConfig` and seed, so the
certificates differ only by the model and a check can be plotted against the training step.

Execution
---------
``workers=1`` runs in this process, one model after the other: models of the same structure
share JIT compilation (every estimator is ``eqx.filter_jit``-ed with the model as a traced
argument). ``workers>1`` uses a :class:`concurrent.futures.ProcessPoolExecutor` with the
``spawn`` start method (forking a process that has initialised JAX is unsafe); each worker
switches float64 on once at start (unless ``config.allow_float32``), certifies the models it
is handed, writes each certificate itself and returns one :class:`SweepRow`. The parent
decides every output path and reads nothing but those rows. ``scheduler=ADDRESS`` (the
``dask`` extra) runs the same per-model task on the workers of a Dask cluster instead; each
task switches its worker to float64 first, and the certificates are written by the workers,
so the output folder must be on a file system they share.

A model that cannot be loaded or does not fit the problem (:class:`~verify._model.ModelError`)
does not stop the sweep: its row carries the one-line error and no certificate is written.

Combined file
-------------
:func:`combine_certificates` stacks, for every check present in every certificate, the
estimate and its ``_stderr``, ``_lower`` and ``_upper`` companions along a new ``model``
dimension (``time`` is kept for per-time checks), with each model's overall ``verdict``.
It is a plotting and summary artefact, not a certificate: it is neither gated nor signed,
and the per-model content digests in its attributes point back to the certificates.
"""

from __future__ import annotations

import glob
import json
import multiprocessing
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import xarray as xr

from certificates import (
    Bounds,
    Certificate,
    Verdict,
    atomic_write,
    combine,
    read_certificate,
    write_certificate,
)

if TYPE_CHECKING:
    from ._certify import CertifyConfig

SWEEP_FILE = "sweep.nc"
"""Name of the combined file written next to the certificates of a sweep."""

MODEL_DIM = "model"
COMPANIONS = ("_stderr", "_lower", "_upper")
"""Suffixes of the per-check variables stacked along ``model`` next to the estimate."""

_GLOB_CHARS = re.compile(r"[*?\[]")

SweepProgress = Callable[[str, int, int], None]
"""``progress(description, done, total)`` of the sequential path (see ``certify``)."""


class SweepError(ValueError):
    """The sweep cannot start: a glob that matches nothing, no model (one-line message)."""


@dataclass(frozen=True)
class SweepRow:
    """The outcome for one model.

    Attributes
    ----------
    spec : str
        The model SPEC.
    out : Path
        Where its certificate is (or would have been) written.
    verdict : Verdict or None
        Its overall verdict; ``None`` when it failed.
    digest : str
        The certificate's ``content_sha256``; empty when it failed.
    error : str
        One-line error (load or fit failure); empty on success.
    """

    spec: str
    out: Path
    verdict: Verdict | None
    digest: str
    error: str = ""
    failing: tuple[str, ...] = ()


@dataclass(frozen=True)
class SweepResult:
    """All rows of a sweep, in the order of the specs."""

    rows: tuple[SweepRow, ...]
    combined: Path | None = None

    @property
    def errors(self) -> tuple[SweepRow, ...]:
        return tuple(row for row in self.rows if row.error)

    @property
    def verdict(self) -> Verdict:
        """Worst verdict of the certified models (INCONCLUSIVE if none was certified)."""
        return combine(row.verdict for row in self.rows if row.verdict is not None)

    def format_sweep_table(self) -> str:
        """One line per model: label, verdict (or ERROR), failing checks or the error."""
        labels = [row.out.stem for row in self.rows]
        width = max([len("model"), *map(len, labels)])
        lines = [f"{'model':<{width}}  {'verdict':<12}  details"]
        for label, row in zip(labels, self.rows, strict=True):
            verdict = "ERROR" if row.verdict is None else str(row.verdict)
            details = row.error or ", ".join(row.failing)
            lines.append(f"{label:<{width}}  {verdict:<12}  {details}".rstrip())
        return "\n".join(lines)


# --------------------------------------------------------------------------- specs


def expand_model_specs(specs: Sequence[str]) -> list[str]:
    """Expand glob patterns in model SPECs (sorted matches; other specs kept as given).

    The pattern applies to the path part: ``runs/*.py:score`` expands over the files,
    ``runs/step_*`` over checkpoint directories. A pattern matching nothing raises
    :class:`SweepError`.
    """
    expanded: list[str] = []
    for spec in specs:
        target, sep, attr = spec.rpartition(":")
        if not sep:
            target, attr = spec, ""
        if not _GLOB_CHARS.search(target):
            expanded.append(spec)
            continue
        matches = sorted(glob.glob(target))
        if not matches:
            raise SweepError(f"model pattern {target!r} matches no file or directory")
        expanded += [f"{match}{sep}{attr}" for match in matches]
    if not expanded:
        raise SweepError("no model to certify")
    return expanded


def _label(spec: str) -> str:
    target, sep, attr = spec.rpartition(":")
    if not sep:
        base = Path(spec.rstrip("/\\")).name
    elif target.endswith(".py"):
        base = Path(target).stem
    else:
        base = f"{target}-{attr}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "model"


def certificate_names(specs: Sequence[str]) -> list[str]:
    """File stems for the certificates of ``specs``: sanitised and unique.

    The path stem of a file spec or checkpoint directory, ``module-attr`` of a module spec;
    a repeated name gets ``-2``, ``-3``, … (and never collides with the combined file).
    """
    taken = {Path(SWEEP_FILE).stem}
    names = []
    for spec in specs:
        base = _label(spec)
        name, counter = base, 1
        while name in taken:
            counter += 1
            name = f"{base}-{counter}"
        taken.add(name)
        names.append(name)
    return names


# --------------------------------------------------------------------------- one model


@dataclass(frozen=True)
class _Job:
    problem: str
    spec: str
    out: Path
    config: CertifyConfig
    role: str | None
    user_bounds: Bounds | None
    bounds_source: str


def _worker_init(x64: bool) -> None:
    # The CLI owns the float64 switch; a spawned worker starts from a bare interpreter.
    from verify.cli import _jax

    _jax(x64=x64)


def _certify_one(job: _Job, progress: SweepProgress | None = None) -> SweepRow:
    from solvers import get_problem

    from ._certify import certify
    from ._model import ModelError, load_model

    problem = get_problem(job.problem)
    config = job.config
    try:
        probe_time = (config.times or problem.default_times)[0]
        model = load_model(
            job.spec,
            role=job.role,
            dim=problem.dim,
            probe_time=float(probe_time),
            allow_float32=config.allow_float32,
        )
        result = certify(
            problem,
            model,
            config,
            user_bounds=job.user_bounds,
            bounds_source=job.bounds_source,
            progress=progress,
        )
    except ModelError as exc:
        return SweepRow(job.spec, job.out, None, "", str(exc))
    write_certificate(result, job.out)
    failing = tuple(
        dict.fromkeys(row.check for row in result.rows if row.verdict is not Verdict.PASS)
    )
    return SweepRow(job.spec, job.out, result.verdict, result.content_sha256, "", failing)


def _certify_one_remote(job: _Job, x64: bool) -> SweepRow:
    """A Dask task: switch the worker to float64 (idempotent), then certify one model."""
    _worker_init(x64)
    return _certify_one(job)


def _dask_rows(address: str, jobs: Sequence[_Job], *, x64: bool) -> list[SweepRow]:
    try:
        from dask.distributed import Client
    except ImportError:
        raise SweepError("--scheduler needs Dask: pip install 'solvercert[dask]'") from None
    try:
        client = Client(address, timeout="10s")
    except OSError as exc:
        raise SweepError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    with client:
        futures = client.map(_certify_one_remote, list(jobs), x64=x64, pure=False)
        return list(client.gather(futures))


# --------------------------------------------------------------------------- sweep


def sweep(
    problem_id_or_path: str,
    model_specs: Sequence[str],
    config: CertifyConfig,
    *,
    out_dir: str | Path,
    role: str | None = None,
    user_bounds: Bounds | None = None,
    bounds_source: str = "",
    workers: int = 1,
    progress: SweepProgress | None = None,
    combined: bool = True,
    scheduler: str | None = None,
) -> SweepResult:
    """Certify every model of ``model_specs`` on one problem with one config and seed.

    Parameters
    ----------
    problem_id_or_path : str
        Built-in problem id or ``.toml`` problem file (each worker loads it).
    model_specs : sequence of str
        Model SPECs (already glob-expanded: :func:`expand_model_specs`).
    config : CertifyConfig
        Options shared by every model (same seed: same samples for every model).
    out_dir : path-like
        Existing folder; certificate ``<name>.nc`` per model (:func:`certificate_names`)
        and, with ``combined``, :data:`SWEEP_FILE`.
    role, user_bounds, bounds_source
        As for :func:`verify._certify.certify` and :func:`verify._model.load_model`.
    workers : int, default 1
        1: sequentially in this process (the caller has set x64); more: spawned processes.
    progress : callable, optional
        Stage progress of the sequential path, the description prefixed ``[i/n] name:``.
    combined : bool, default True
        Also write the combined file of the certified models.
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://host:8786``); the models are certified as Dask
        tasks on its workers instead of local processes (needs the ``dask`` extra; each task
        switches its worker to float64 first). ``workers`` is then ignored.

    Raises
    ------
    SweepError
        No model given, or ``workers < 1``.
    CertifyError
        The config does not fit the problem (times outside its window).
    ProblemError
        Unknown problem.
    """
    from solvers import get_problem

    from ._certify import resolve_times

    if not model_specs:
        raise SweepError("no model to certify")
    if workers < 1:
        raise SweepError(f"--workers must be ≥ 1, got {workers}")
    # Fail fast on what every model would fail on, before any work is spread out.
    resolve_times(get_problem(problem_id_or_path), config.times)
    out_dir = Path(out_dir)
    names = certificate_names(model_specs)
    jobs = [
        _Job(
            str(problem_id_or_path),
            spec,
            out_dir / f"{name}.nc",
            config,
            role,
            user_bounds,
            bounds_source,
        )
        for spec, name in zip(model_specs, names, strict=True)
    ]
    if scheduler is not None:
        rows = _dask_rows(scheduler, jobs, x64=not config.allow_float32)
    elif workers == 1:
        rows = []
        for index, (job, name) in enumerate(zip(jobs, names, strict=True)):
            step = None
            if progress is not None:
                prefix = f"[{index + 1}/{len(jobs)}] {name}: "

                def step(description, done, total, prefix=prefix):
                    progress(prefix + description, done, total)

            rows.append(_certify_one(job, step))
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            max_workers=min(workers, len(jobs)),
            mp_context=context,
            initializer=_worker_init,
            initargs=(not config.allow_float32,),
        ) as pool:
            rows = list(pool.map(_certify_one, jobs))
    combined_path = None
    done = [(row.out, name) for row, name in zip(rows, names, strict=True) if not row.error]
    if combined and done:
        paths, labels = zip(*done, strict=True)
        combined_path = write_combined(
            combine_certificates(paths, labels, specs=[r.spec for r in rows if not r.error]),
            out_dir / SWEEP_FILE,
        )
    return SweepResult(tuple(rows), combined_path)


# --------------------------------------------------------------------------- combined


def combine_certificates(
    certificates: Sequence[str | Path | Certificate],
    model_labels: Sequence[str],
    *,
    specs: Sequence[str] | None = None,
) -> xr.Dataset:
    """Stack the checks of several certificates of one problem along ``model``.

    Parameters
    ----------
    certificates : sequence of path or Certificate
        Certificates of the same problem (paths are read and their digests verified).
    model_labels : sequence of str
        The ``model`` coordinate (e.g. checkpoint names or training steps), one per
        certificate.
    specs : sequence of str, optional
        Model SPECs for the ``model_spec`` coordinate (default: those recorded).

    Returns
    -------
    xarray.Dataset
        For each check present in every certificate: ``<check>`` and its ``_stderr``,
        ``_lower``, ``_upper`` companions with dims ``(model[, time])`` and the check's
        attributes plus ``family``; ``verdict`` and ``content_sha256`` per model. Root
        attributes: ``problem_id``, ``model_digests`` (JSON label → digest), ``seed``.
    """
    loaded = [c if isinstance(c, Certificate) else read_certificate(c) for c in certificates]
    labels = [str(label) for label in model_labels]
    if len(labels) != len(loaded) or not loaded:
        raise ValueError(f"{len(loaded)} certificates but {len(labels)} model labels")
    if len(set(labels)) != len(labels):
        raise ValueError(f"model labels must be unique, got {labels}")
    problems = {c.problem_id for c in loaded}
    if len(problems) != 1:
        raise ValueError(f"certificates of different problems cannot be combined: {problems}")
    locations = [c.check_locations() for c in loaded]
    common = [name for name in locations[0] if all(name in where for where in locations[1:])]
    variables: dict[str, xr.DataArray] = {}
    for check in common:
        for suffix in ("", *COMPANIONS):
            parts = []
            for cert, where in zip(loaded, locations, strict=True):
                family = cert.family(where[check])
                if check + suffix in family:
                    parts.append(family[check + suffix].reset_coords(drop=True))
            if len(parts) != len(loaded):
                continue
            stacked = xr.concat(
                parts,
                dim=MODEL_DIM,
                join="outer",
                coords="minimal",
                compat="override",
                combine_attrs="override",
            )
            if suffix == "":
                stacked.attrs["family"] = locations[0][check]
            variables[check + suffix] = stacked
    coords = {
        MODEL_DIM: labels,
        "model_spec": (
            MODEL_DIM,
            list(specs) if specs is not None else [c.model_spec for c in loaded],
        ),
    }
    data = xr.Dataset(variables).assign_coords(coords)
    data["verdict"] = (MODEL_DIM, [str(c.verdict) for c in loaded])
    data["content_sha256"] = (MODEL_DIM, [c.content_sha256 for c in loaded])
    data.attrs.update(
        {
            "title": "solvercert sweep: checks stacked along model (not a certificate)",
            "problem_id": next(iter(problems)),
            "seed": int(loaded[0].attrs.get("seed", -1)),
            "model_digests": json.dumps(
                {label: c.content_sha256 for label, c in zip(labels, loaded, strict=True)}
            ),
        }
    )
    return data


def write_combined(data: xr.Dataset, path: str | Path) -> Path:
    """Write the combined dataset atomically (temp file, fsync, rename) as NetCDF-4."""
    return atomic_write(path, lambda tmp: data.to_netcdf(tmp, engine="netcdf4", mode="w"))


__all__ = [
    "SWEEP_FILE",
    "SweepError",
    "SweepResult",
    "SweepRow",
    "certificate_names",
    "combine_certificates",
    "expand_model_specs",
    "sweep",
    "write_combined",
]
