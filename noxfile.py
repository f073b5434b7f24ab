"""Nox sessions: ``nox -l`` lists them, ``nox -s tests`` runs the tests on every backend.

torch is always pinned on the same ``pip install`` command line as everything
else, so pip resolves the CPU wheel instead of pulling a multi-GB CUDA build.
"""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "venv"
nox.options.sessions = ["lint", "typecheck", "tests"]

TORCH = "torch==2.13.0"
BACKENDS = ["numpy", "array_api_strict", "torch", "jax", "tensorflow"]
# Extras per backend; the root conftest.py skips the doctests of adapter folders
# whose framework a session does not install.
EXTRAS = {"numpy": "numba", "jax": "jax", "tensorflow": "tensorflow,keras"}


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint and format check."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Mypy over geowarp, with every framework installed so its types are checked."""
    session.install(TORCH, "-e", ".[jax,tensorflow,keras,numba,demo,lint]")
    session.run("mypy", *session.posargs)


@nox.session
@nox.parametrize("backend", BACKENDS)
def tests(session: nox.Session, backend: str) -> None:
    """Doctests and tests on one backend (GEOWARP_TEST_BACKENDS=<backend>).

    torch is installed in every session: the sampler tests use its
    ``grid_sample`` as the reference whatever the backend under test.
    """
    extras = ",".join(filter(None, ["test", "demo", EXTRAS.get(backend)]))
    session.install(TORCH, "-e", f".[{extras}]")
    session.run(
        "python",
        "-m",
        "pytest",
        "geowarp",
        "tests",
        *session.posargs,
        env={"GEOWARP_TEST_BACKENDS": backend},
    )


@nox.session
def docs(session: nox.Session) -> None:
    """Build the HTML docs offline, warnings as errors (docs/_build/html).

    Every framework is installed, and dask: the API reference imports
    geowarp.torch, geowarp.keras, geowarp.jax, geowarp.tensorflow and geowarp.dask.
    """
    session.install(TORCH, "-e", ".[jax,tensorflow,keras,dask,demo,docs]")
    session.run("sphinx-build", "-W", "-b", "html", "docs", "docs/_build/html", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """A quick run of the warp benchmark (benchmarks/bench_warp.py --quick)."""
    session.install(TORCH, "-e", ".[jax,numba,bench]")
    session.run("python", "benchmarks/bench_warp.py", "--quick", *session.posargs)
