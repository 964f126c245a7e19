"""pytest plugin: certify learned solvers inside a test suite and gate CI on the verdict.

Registered through the ``pytest11`` entry point ``solvercert``, so an installed solvercert
makes it available to every pytest run; it does nothing until a test asks for its fixture
(``-p no:solvercert`` switches it off). Importing it imports neither JAX nor the
certificate stack: both are imported inside the fixture and the helpers, so pytest starts
as fast as without it.

Provides
--------
``certify`` (fixture)
    ``certify(model, problem, *, role=None, **options) -> Certificate``. ``model`` is a SPEC
    string (as for ``verify certify --model``), an in-memory callable or object with role
    methods, or a :class:`verify._model.LoadedModel`; ``problem`` a problem id, a ``.toml``
    problem file or a problem object; ``options`` are fields of
    :class:`verify._certify.CertifyConfig` (``times``, ``n_samples``, ``seed``,
    ``divergence``, ``probes``, ...).
:func:`assert_certificate_passes`
    Fails a test with the verdict table as the message (also in :mod:`verify.testing`).
``certificate`` (marker)
    Tags certification tests, so that ``-m certificate`` runs (or deselects) them.
``--solvercert-bounds FILE``
    User bounds (TOML, or ``[tool.solvercert]`` of a ``pyproject.toml``) over the problem
    defaults, for every ``certify`` call of the session.
``--solvercert-out DIR``
    Write every certificate of the session to DIR, named after the test node id
    (``<sanitised node id>.nc``, then ``-2``, ``-3``, ... for further calls in one test),
    atomically (:func:`certificates.write_certificate`).

Example::

    from verify.testing import assert_certificate_passes

    @pytest.mark.certificate
    def test_score_model(certify):
        cert = certify("mypkg.models:score_net", "vp-gmm-2d", n_samples=4096)
        assert_certificate_passes(cert)
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from certificates import Certificate

CertifyFn = Callable[..., "Certificate"]
"""``certify(model, problem, *, role=None, **options) -> Certificate``."""

MARKER = "certificate: certifies a learned solver (solvercert's `certify` fixture); select with -m"
_MAX_NAME = 150
"""Longest file stem written (file systems allow 255 bytes); longer ids are cut and hashed."""

_BOUNDS = pytest.StashKey[Any]()
"""The session's user bounds (a certificates.Bounds) or None."""
_OUT = pytest.StashKey["Path | None"]()
_WRITTEN = pytest.StashKey[list[Path]]()


# --------------------------------------------------------------------------- hooks


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("solvercert", "certification of learned solvers (solvercert)")
    group.addoption(
        "--solvercert-bounds",
        metavar="FILE",
        default=None,
        help="Bounds file (TOML or pyproject.toml [tool.solvercert]) applied over the problem "
        "defaults by every `certify` fixture call.",
    )
    group.addoption(
        "--solvercert-out",
        metavar="DIR",
        default=None,
        help="Write every certificate of the session to DIR (one .nc file per certify call, "
        "named after the test node id).",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    config.stash[_WRITTEN] = []
    bounds_file = config.getoption("--solvercert-bounds", default=None)
    config.stash[_BOUNDS] = None
    if bounds_file is not None:
        # Read once, now: a bad file is a usage error before any test runs.
        from certificates import BoundsError, load_bounds

        try:
            config.stash[_BOUNDS] = load_bounds(bounds_file)
        except BoundsError as exc:
            raise pytest.UsageError(f"--solvercert-bounds: {exc}") from None
    out = config.getoption("--solvercert-out", default=None)
    config.stash[_OUT] = None
    if out is not None:
        out_dir = Path(out)
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise pytest.UsageError(f"--solvercert-out: cannot create {out}: {exc}") from None
        config.stash[_OUT] = out_dir


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    written = config.stash.get(_WRITTEN, [])
    out = config.stash.get(_OUT, None)
    if out is not None and written:
        terminalreporter.write_line(f"solvercert: wrote {len(written)} certificate(s) to {out}")


# --------------------------------------------------------------------------- fixture


def certificate_file_stem(nodeid: str) -> str:
    """File stem for a test node id: ``[A-Za-z0-9._-]`` only, other runs become ``_``.

    Stems longer than ``_MAX_NAME`` are cut and end with 12 hex digits of the id's
    SHA-256, so distinct ids keep distinct names.
    """
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", nodeid).strip("._") or "certificate"
    if len(stem) > _MAX_NAME:
        digest = hashlib.sha256(nodeid.encode()).hexdigest()[:12]
        stem = f"{stem[: _MAX_NAME - 13]}-{digest}"
    return stem


def _model_spec(obj: Any) -> str:
    """What the certificate records as ``model_spec`` for an in-memory model."""
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    module = getattr(obj, "__module__", None) or type(obj).__module__
    kind = "function" if hasattr(obj, "__qualname__") else "object"
    return f"<{kind} {module}.{name}>"


def _resolve_problem(problem: Any) -> Any:
    from solvers import AbstractProblem, get_problem

    if isinstance(problem, AbstractProblem):
        return problem
    if isinstance(problem, str | Path):
        return get_problem(problem)
    raise TypeError(
        "problem must be a problem id, a .toml problem file or a solvers.AbstractProblem, "
        f"got {type(problem).__name__}"
    )


def _config(options: Mapping[str, Any]) -> Any:
    import dataclasses

    from verify._certify import CertifyConfig

    fields = {f.name for f in dataclasses.fields(CertifyConfig)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise TypeError(
            f"certify() got unknown option(s) {unknown}; options are the fields of "
            f"verify._certify.CertifyConfig: {', '.join(sorted(fields))}"
        )
    options = dict(options)
    if options.get("times") is not None:
        options["times"] = tuple(float(t) for t in options["times"])
    return CertifyConfig(**options)


def _certify_one(
    model: Any, problem: Any, role: str | None, options: Mapping[str, Any], bounds: Any, source: str
) -> Certificate:
    """Resolve the inputs, switch float64 on and run :func:`verify._certify.certify`."""
    config = _config(options)
    # The fixture is a test-session entry point, like tests/conftest.py and the CLI: the
    # one place allowed to switch JAX to float64 (library code never does). The CLI's
    # helper does it, so that the switch stays in one function.
    from verify.cli import _jax

    _jax(x64=not config.allow_float32)

    from verify._certify import certify
    from verify._model import LoadedModel, load_model, model_from_object

    reference = _resolve_problem(problem)
    probe_time = float((config.times or reference.default_times)[0])
    if isinstance(model, LoadedModel):
        loaded = model
    elif isinstance(model, str):
        loaded = load_model(
            model,
            role=role,
            dim=reference.dim,
            probe_time=probe_time,
            allow_float32=config.allow_float32,
        )
    else:
        loaded = model_from_object(
            model,
            role=role,
            dim=reference.dim,
            probe_time=probe_time,
            spec=_model_spec(model),
            allow_float32=config.allow_float32,
        )
    return certify(reference, loaded, config, user_bounds=bounds, bounds_source=source)


@pytest.fixture
def certify(request: pytest.FixtureRequest) -> CertifyFn:
    """``certify(model, problem, *, role=None, **options) -> Certificate``.

    Applies ``--solvercert-bounds`` and, with ``--solvercert-out``, writes each certificate
    (module docstring). Model, problem and option errors propagate (``ModelError``,
    ``ProblemError``, ``CertifyError``, ``TypeError`` for an unknown option).
    """
    config = request.config
    bounds = config.stash.get(_BOUNDS, None)
    source = str(config.getoption("--solvercert-bounds", default=None) or "")
    out = config.stash.get(_OUT, None)
    stem = certificate_file_stem(request.node.nodeid)
    calls = 0

    def run(model: Any, problem: Any, *, role: str | None = None, **options: Any) -> Certificate:
        nonlocal calls
        certificate = _certify_one(model, problem, role, options, bounds, source)
        calls += 1
        if out is not None:
            from certificates import write_certificate

            name = stem if calls == 1 else f"{stem}-{calls}"
            config.stash[_WRITTEN].append(write_certificate(certificate, out / f"{name}.nc"))
        return certificate

    return run


# --------------------------------------------------------------------------- assertion


def assert_certificate_passes(
    certificate: Certificate, *, allow_inconclusive: bool = False
) -> None:
    """Fail unless the verdict is PASS (or INCONCLUSIVE with ``allow_inconclusive``).

    Raises
    ------
    AssertionError
        Its message names the verdict and the checks that did not pass, followed by the
        verdict table of :func:`certificates.format_table` (check, time, estimate,
        interval, bound, verdict, reason).
    """
    __tracebackhide__ = True
    from certificates import Verdict, format_table

    accepted = {Verdict.PASS, Verdict.INCONCLUSIVE} if allow_inconclusive else {Verdict.PASS}
    verdict = certificate.verdict
    if verdict in accepted:
        return
    failing = [
        row.check if row.time is None else f"{row.check} at t = {row.time:g}"
        for row in certificate.rows
        if row.verdict not in accepted
    ]
    expected = " or ".join(sorted(str(v) for v in accepted))
    raise AssertionError(
        f"certificate verdict is {verdict}, expected {expected}; "
        f"not passing: {', '.join(failing) or 'none'}\n\n{format_table(certificate)}"
    )
