"""MkDocs hooks of ``make docs``: the pages made from files kept elsewhere in the repository.

- The notebooks of ``nbs/`` run in a kernel of this interpreter, from ``nbs/``, without
  ``DJANGO_SETTINGS_MODULE``, as ``tests/test_notebooks.py`` runs them.
- ``<!-- readme: Heading -->`` in a page is replaced by that section of README.md
  (``opening``: the text above its first section); ``ARCHITECTURE.md`` and each
  ``bench/results/*.md`` (with its plot) become pages; links between them are rewritten.
- One reference page per module whose ``__all__`` names something, made from that list.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import griffe
from markdown.extensions.toc import slugify
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "fileresponse"
RESULTS = REPO / "bench" / "results"
#: The kernel that mkdocs.yml names (``plugins.mkdocs-jupyter.kernel_name``).
KERNEL_NAME = "fileresponse-docs"
README_MARKER = re.compile(r"^<!-- readme: (?P<section>.+?) -->$", re.MULTILINE)
LINK = re.compile(r"(?<!!)\[(?P<text>[^\]]+)\]\((?P<target>[^)\s]+)\)")
#: An image of the README (``docs/images/...``): the same file, from the docs' root.
IMAGE = re.compile(r"!\[(?P<text>[^\]]*)\]\(docs/(?P<target>[^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")

_kernels_dir: str | None = None


# ------------------------------------------------------------------ configuration
def on_config(config: MkDocsConfig) -> MkDocsConfig:
    _install_kernel()
    _extend_nav(config["nav"], "Benchmarks", [f"benchmarks/{name}.md" for name in _results()])
    reference = [{module.path: _reference_uri(module)} for module in public_modules()]
    _extend_nav(config["nav"], "Reference", reference)
    return config


def _install_kernel() -> None:
    """A kernel spec that starts ipykernel with this interpreter, first on JUPYTER_PATH.

    The kernel's channels are encrypted (CurveZMQ keys from the kernel manager), so the
    kernel does not warn that they are not.
    """
    global _kernels_dir
    if _kernels_dir is not None:  # `mkdocs serve` configures again at each rebuild
        return
    _kernels_dir = tempfile.mkdtemp(prefix="fileresponse-docs-")
    spec_dir = Path(_kernels_dir, "kernels", KERNEL_NAME)
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python {sys.version_info.major}.{sys.version_info.minor} (docs)",
        "language": "python",
        "metadata": {"debugger": False, "supported_encryption": ["curve"]},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    nbconvert = {"KernelManager": {"transport_encryption": "auto"}}
    Path(_kernels_dir, "jupyter_nbconvert_config.json").write_text(
        json.dumps(nbconvert), encoding="utf-8"
    )
    for variable in ("JUPYTER_PATH", "JUPYTER_CONFIG_PATH"):
        os.environ[variable] = os.pathsep.join(
            [_kernels_dir, *filter(None, [os.environ.get(variable)])]
        )
    # The notebooks configure Django themselves; the debugger's notice is noise.
    os.environ.pop("DJANGO_SETTINGS_MODULE", None)
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"


def on_shutdown() -> None:
    if _kernels_dir is not None:
        shutil.rmtree(_kernels_dir, ignore_errors=True)


def _extend_nav(nav: list[Any], title: str, uris: list[Any]) -> None:
    for item in nav:
        if isinstance(item, dict) and title in item:
            item[title].extend(uris)
            return
    raise PluginError(f"mkdocs.yml: the nav has no section {title!r} for the generated pages")


def _results() -> list[str]:
    return sorted(path.stem for path in RESULTS.glob("*.md"))


# ------------------------------------------------------------------ generated files
def public_modules() -> list[griffe.Module]:
    """The modules of the package whose ``__all__`` names something, by dotted name."""
    package = griffe.load(PACKAGE, search_paths=[str(REPO)], resolve_aliases=False)
    if not isinstance(package, griffe.Module):
        raise PluginError(f"{PACKAGE} is not a package")
    found = [module for module in _walk(package) if module.exports]
    return sorted(found, key=lambda module: module.path)


def _walk(module: griffe.Module) -> Iterator[griffe.Module]:
    yield module
    for submodule in module.modules.values():
        yield from _walk(submodule)


def _reference_uri(module: griffe.Module) -> str:
    return f"reference/{module.path}.md"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for module in public_modules():
        files.append(File.generated(config, _reference_uri(module), content=_reference(module)))
    for name in _results():
        page = _rewrite_links((RESULTS / f"{name}.md").read_text(encoding="utf-8"))
        plot = RESULTS / f"{name}.png"
        if plot.exists():
            files.append(File.generated(config, f"benchmarks/{name}.png", abs_src_path=str(plot)))
            page += f"\n![The figures of {name}]({name}.png)\n"
        files.append(File.generated(config, f"benchmarks/{name}.md", content=page))
    architecture = _rewrite_links((REPO / "ARCHITECTURE.md").read_text(encoding="utf-8"))
    files.append(File.generated(config, "architecture.md", content=architecture))
    return files


def _reference(module: griffe.Module) -> str:
    names = [str(name) for name in module.exports or ()]
    members = "\n".join(f"        - {name}" for name in names)
    return f"::: {module.path}\n    options:\n      members:\n{members}\n"


# ------------------------------------------------------------------ README sections
def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    return README_MARKER.sub(lambda match: _readme_section(match["section"]), markdown)


def _readme_section(title: str) -> str:
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    headings = dict(_headings(lines))
    if title == "opening":
        start, end = 1, min(index for index, level, _ in _headings_at(lines) if level == 2)
        return _rewrite_links("\n".join(lines[start:end]))
    if title not in headings:
        raise PluginError(f"README.md has no section {title!r}")
    start, level = headings[title]
    end = next(
        (index for index, other, _ in _headings_at(lines) if index > start and other <= level),
        len(lines),
    )
    # The section's headings one level up, as the sections of its page.
    headings = {index for index, _, _ in _headings_at(lines)}
    body = [
        line[level - 1 :] if index in headings else line
        for index, line in enumerate(lines[start + 1 : end], start + 1)
    ]
    return _rewrite_links("\n".join(body))


def _headings_at(lines: list[str]) -> Iterator[tuple[int, int, str]]:
    """(line index, level, title) of the Markdown headings outside code fences."""
    fenced = False
    for index, line in enumerate(lines):
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := re.match(r"^(#+) (.+)$", line)):
            yield index, len(match[1]), match[2].strip()


def _headings(lines: list[str]) -> Iterator[tuple[str, tuple[int, int]]]:
    for index, level, title in _headings_at(lines):
        yield title, (index, level)


# ------------------------------------------------------------------ links
def _readme_anchors() -> dict[str, str]:
    """README's section slugs: the quick start's are a page of the site."""
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    start, level = dict(_headings(lines))["Quick start"]
    anchors = {}
    for index, other, title in _headings_at(lines):
        if index == start:
            anchors[slugify(title, "-")] = "quickstart.md"
        elif index > start and other > level:
            anchors[slugify(title, "-")] = f"quickstart.md#{slugify(title, '-')}"
        elif index > start:
            break
    return anchors


def _rewrite_links(markdown: str) -> str:
    """Links to repository files as links to their pages (from the site's root).

    Targets are absolute (``/notebooks/...``), which MkDocs resolves in the docs
    (``validation.links.absolute_links: relative_to_docs``); a file without a page keeps
    its name, without a link.
    """
    anchors = _readme_anchors()

    def page_of(match: re.Match[str]) -> str:
        text, target = match["text"], match["target"]
        if re.match(r"^[a-z]+:", target):
            return match[0]
        path, _, fragment = target.partition("#")
        path = path.removeprefix("./").removeprefix("../")
        if not path and fragment in anchors:
            return f"[{text}](/{anchors[fragment]})"
        if path.startswith("nbs/") and path.endswith(".ipynb"):
            return f"[{text}](/notebooks/{path.removeprefix('nbs/')})"
        if path.startswith("bench/results/") and path.endswith(".md"):
            return f"[{text}](/benchmarks/{path.removeprefix('bench/results/')})"
        if path == "ARCHITECTURE.md":
            return f"[{text}](/architecture.md)"
        if path.endswith(".md") and "/" not in path and (RESULTS / path).exists():
            return f"[{text}](/benchmarks/{path})"
        return text

    return IMAGE.sub(r"![\g<text>](/\g<target>)", LINK.sub(page_of, markdown))


def on_post_page(output: str, page: Page, config: MkDocsConfig) -> str:
    # mkdocs-jupyter adds a MathJax loader that fetches MathJax from a CDN when a page
    # shows; no notebook here has math, and the site works offline.
    return re.sub(r"<script data-mkdocs-jupyter-mathjax=.*?</script>", "", output, flags=re.DOTALL)
