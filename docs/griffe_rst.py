"""A griffe extension of ``make docs``: the package's reST docstrings read as Markdown.

The docstrings use Sphinx roles (``:class:`~fileresponse.http.AsyncFileResponse```) and
``::`` before literal blocks. A role becomes a cross-reference when its target has a
place in the reference (a module with an ``__all__``, a name of one, a member of such a
class), else code; ``::`` becomes ``:``, the indented block after it stays a code block.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|command):`(?P<target>[^`]+)`")
LITERAL = re.compile(r"(?<=\S)::$|^::$", re.MULTILINE)


class SphinxRoles(griffe.Extension):
    def on_package(self, *, pkg: griffe.Module, **kwargs: object) -> None:
        for obj in _objects(pkg):
            if obj.docstring is not None:
                obj.docstring.value = _markdown(obj.docstring.value, obj, pkg)


def _objects(obj: griffe.Object) -> Iterator[griffe.Object]:
    yield obj
    for member in obj.members.values():
        if not member.is_alias and isinstance(member, griffe.Object):
            yield from _objects(member)


def _markdown(text: str, obj: griffe.Object, pkg: griffe.Module) -> str:
    def replace(match: re.Match[str]) -> str:
        written = match["target"].strip()
        target = written.removeprefix("~")
        shown = target.rsplit(".", 1)[-1] if written.startswith("~") else target.lstrip(".")
        found = _resolve(target, obj, pkg)
        return f"[`{shown}`][{found}]" if found else f"`{shown}`"

    return LITERAL.sub(":", ROLE.sub(replace, text))


def _resolve(target: str, obj: griffe.Object, pkg: griffe.Module) -> str | None:
    """The reference's identifier of ``target`` as written in ``obj``'s docstring, if any."""
    module = obj if isinstance(obj, griffe.Module) else obj.module
    package = module if module.is_package else module.parent
    scopes = [obj, *(() if obj.parent is None else [obj.parent]), module]
    if package is not None:
        scopes.append(package)
    name = target.lstrip(".")
    candidates = [f"{scope.path}.{name}" for scope in scopes]
    if not target.startswith("."):
        candidates.insert(0, target)
    for candidate in candidates:
        if _documented(candidate, pkg):
            return candidate
    return None


def _documented(path: str, pkg: griffe.Module) -> bool:
    """Whether the reference has a heading for ``path`` (see docs/hooks.py)."""
    if path != pkg.path and not path.startswith(pkg.path + "."):
        return False
    try:
        found = pkg.modules_collection[path]
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return False
    parent_path, _, name = path.rpartition(".")
    if isinstance(found, griffe.Module) and not found.is_alias:
        return bool(found.exports)
    try:
        parent = pkg.modules_collection[parent_path]
    except (KeyError, griffe.AliasResolutionError, griffe.CyclicAliasError):
        return False
    if isinstance(parent, griffe.Module):
        return name in [str(export) for export in parent.exports or ()]
    if parent.is_class and not name.startswith("_") and name in parent.members:
        return _documented(parent_path, pkg) and not parent.members[name].is_alias
    return False
