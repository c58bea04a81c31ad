"""The Python x Django test matrix.

    nox -l                                         # list the sessions
    nox -s "tests(python='3.12', django='5.2')" -- -m "not live"

Needs python3.11, python3.12 and python3.13 on PATH; with pyenv, make them all
callable first, e.g. ``pyenv shell 3.13.0 3.12.1 3.11.7``.
"""

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True

DJANGO_SPECS = {"5.2": "Django>=5.2,<5.3", "6.x": "Django>=6.0,<7"}
PYTHONS = ["3.11", "3.12", "3.13"]
# Django 6.x needs Python 3.12+.
MATRIX = [
    (python, django)
    for python in PYTHONS
    for django in DJANGO_SPECS
    if not (django == "6.x" and python == "3.11")
]


@nox.session
@nox.parametrize(("python", "django"), MATRIX)
def tests(session: nox.Session, django: str) -> None:
    session.install("-e", ".[test,minio,images,celery]", DJANGO_SPECS[django])
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python="3.13")
def lint(session: nox.Session) -> None:
    session.install("-e", ".[all]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    session.run("lint-imports", "--no-logo")
