"""Developer sessions: ``nox`` runs lint and the fast tests; the rest are named explicitly.

* ``nox -s tests``       fast unit and property tests (what CI runs)
* ``nox -s lint``        ruff check and ruff format --check
* ``nox -s validation``  slow analytic validation and convergence studies (``-m slow``)
* ``nox -s gpu``         GPU tests on a CUDA machine (``-m gpu``, installs the ``gpu`` extra)
* ``nox -s fixtures``    rebuild the hand-made certificate fixtures and their manifest
* ``nox -s train``       retrain the fixture models (``fixtures/training/*.py``)
* ``nox -s fixtures-report``  certify every fixture model; rewrite README.md's table
* ``nox -s benchmarks``  pair-interaction throughput of the Landau kernel (numbers for notes)
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs, env={"CI": "true"})


@nox.session
def validation(session: nox.Session) -> None:
    session.install("-e", ".[test]")
    session.run("pytest", "-m", "slow", *session.posargs)


@nox.session
def gpu(session: nox.Session) -> None:
    session.install("-e", ".[gpu,test]")
    session.run("pytest", "-m", "gpu", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def fixtures(session: nox.Session) -> None:
    session.install("-e", ".")
    session.run("python", "fixtures/make_certificates.py")


@nox.session
def train(session: nox.Session) -> None:
    session.install("-e", ".[train]")
    for script in sorted(Path("fixtures/training").glob("train_*.py")):
        session.run("python", str(script), *session.posargs)


@nox.session(name="fixtures-report")
def fixtures_report(session: nox.Session) -> None:
    session.install("-e", ".")
    session.run("python", "fixtures/report.py", "--readme", "README.md", *session.posargs)


@nox.session
def benchmarks(session: nox.Session) -> None:
    session.install("-e", ".")
    session.run("python", "benchmarks/landau_pairwise.py", *session.posargs)
    session.run("python", "benchmarks/certify.py")
