"""``make docs``: the site builds offline with no warning, and shows what it must.

The build is the one of ``make docs`` (``mkdocs build --strict``, mkdocs.yml), into a
temporary directory, once for the module; it executes every notebook of ``nbs/``. Then:
one page per notebook, with outputs of that run; every relative link and anchor of every
page leads somewhere; nothing is loaded from another host; the reference shows every
name of every ``__all__`` of the package (read here by importing each module, apart from
the hook that writes the reference pages).
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest

pytest.importorskip("mkdocs", reason="the docs extra is not installed")
pytest.importorskip("mkdocs_jupyter", reason="the docs extra is not installed")

import fileresponse

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "nbs").glob("*.ipynb"))
BUILD_TIMEOUT = 1200

pytestmark = [pytest.mark.docs, pytest.mark.slow]


@dataclass
class Site:
    root: Path
    log: str
    seconds: float
    pages: dict[str, Page] = field(default_factory=dict)

    def page(self, relative: str) -> Page:
        if relative not in self.pages:
            self.pages[relative] = Page.parse(self.root / relative)
        return self.pages[relative]


@dataclass
class Page:
    ids: set[str]
    #: (tag, attribute, value) of every href and src.
    references: list[tuple[str, str, str]]
    #: (rel, href) of every <link>.
    links: list[tuple[str, str]]
    text: str

    @classmethod
    def parse(cls, path: Path) -> Page:
        parser = _PageParser()
        text = path.read_text(encoding="utf-8")
        parser.feed(text)
        return cls(parser.ids, parser.references, parser.links, text)


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.references: list[tuple[str, str, str]] = []
        self.links: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if "id" in values:
            self.ids.add(values["id"])
        if tag == "a" and "name" in values:
            self.ids.add(values["name"])
        for name in ("href", "src"):
            if name in values:
                self.references.append((tag, name, values[name]))
        if tag == "link":
            self.links.append((values.get("rel", ""), values.get("href", "")))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    root = tmp_path_factory.mktemp("site")
    environment = {
        key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"
    }
    # Material's banner about MkDocs 2.0, as `make docs` silences it.
    environment["NO_MKDOCS_2_WARNING"] = "1"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(root)],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    seconds = time.monotonic() - started
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"mkdocs build failed:\n{log}"
    print(f"mkdocs build: {seconds:.1f} s")
    return Site(root, log, seconds)


def test_the_build_warns_of_nothing(site: Site) -> None:
    warnings = [line for line in site.log.splitlines() if re.search(r"WARNING|Warning", line)]
    assert warnings == []


def test_every_notebook_is_executed_into_a_page_with_its_outputs(site: Site) -> None:
    assert NOTEBOOKS
    home = site.page("index.html")
    linked = {urljoin("/", value) for _, _, value in home.references}
    for notebook in NOTEBOOKS:
        assert f"Converting notebook (execute=True): {notebook}" in site.log
        page = site.page(f"notebooks/{notebook.stem}.html")
        cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
        code = [cell for cell in cells if cell["cell_type"] == "code"]
        assert page.text.count("jp-CodeCell") >= len(code), notebook.name
        if code:
            assert "jp-OutputArea-output" in page.text, f"{notebook.name} shows no output"
        assert "Traceback (most recent call last)" not in page.text, notebook.name
        assert f"/notebooks/{notebook.stem}.html" in linked, f"{notebook.name} is not in the nav"


def test_every_relative_link_and_anchor_resolves(site: Site) -> None:
    broken = []
    pages = sorted(str(path.relative_to(site.root)) for path in site.root.rglob("*.html"))
    for relative in pages:
        base = "/" + relative
        for tag, attribute, value in site.page(relative).references:
            url = urlsplit(value)
            if url.scheme or url.netloc or value.startswith(("mailto:", "javascript:")):
                continue
            target = urlsplit(urljoin(base, value))
            path = unquote(target.path).lstrip("/")
            if not path or path.endswith("/"):
                path += "index.html"
            if not (site.root / path).is_file():
                broken.append(f"{relative}: <{tag} {attribute}={value!r}> (no {path})")
            elif (
                target.fragment
                and path.endswith(".html")
                and unquote(target.fragment) not in site.page(path).ids
            ):
                broken.append(f"{relative}: <{tag} {attribute}={value!r}> (no anchor)")
    assert broken == []


def test_nothing_is_loaded_from_another_host(site: Site) -> None:
    external = []
    for path in site.root.rglob("*.html"):
        page = site.page(str(path.relative_to(site.root)))
        for tag, attribute, value in page.references:
            if attribute == "src" and urlsplit(value).netloc:
                external.append(f"{path.name}: <{tag} src={value!r}>")
        for rel, href in page.links:
            if urlsplit(href).netloc:
                external.append(f"{path.name}: <link rel={rel!r} href={href!r}>")
        for url in re.findall(r"https?://[^\"'\s<>)]+\.(?:js|css|woff2?)\b", page.text):
            external.append(f"{path.name}: {url}")
    assert external == []


def _public_api() -> dict[str, list[str]]:
    """Every module of the package with a non-empty ``__all__``, imported."""
    api = {}
    modules = pkgutil.walk_packages(fileresponse.__path__, prefix="fileresponse.")
    for name in ["fileresponse", *(info.name for info in modules)]:
        if name.endswith("__main__"):
            continue
        exported = list(getattr(importlib.import_module(name), "__all__", []))
        if exported:
            api[name] = exported
    return api


def test_the_reference_shows_every_public_name(site: Site) -> None:
    api = _public_api()
    assert "fileresponse.http" in api
    missing = []
    for module, names in sorted(api.items()):
        page_path = site.root / "reference" / f"{module}.html"
        if not page_path.is_file():
            missing.append(f"{module}: no page")
            continue
        page = site.page(str(page_path.relative_to(site.root)))
        missing += [f"{module}.{name}" for name in names if f"{module}.{name}" not in page.ids]
    assert missing == []
