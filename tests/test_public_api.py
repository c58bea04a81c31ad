"""The public API: what users import exists, every ``__all__`` is true, pure modules stay pure."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

PUBLIC = {
    "fileresponse.http": ["AsyncFileResponse"],
    "fileresponse.views": ["serve", "serve_storage", "error_response"],
    "fileresponse.asgi": ["get_asgi_application"],
    "fileresponse.handlers": ["AsyncFileASGIHandler", "encode_headers"],
    "fileresponse.fastpath": ["FastPathApplication"],
    "fileresponse.staticfiles": ["serve_static", "static_response"],
    "fileresponse.http.negotiation": ["choose_encoding"],
    "fileresponse.workers": ["UvicornWorker"],
    "fileresponse.server": ["HttpToolsProtocol", "DEFAULT_HEADER_TIMEOUT"],
    "fileresponse.server.protocol": ["HttpToolsProtocol", "header_timeout_from_environment"],
    "fileresponse.sources": ["Source", "SourceStat", "as_source"],
    "fileresponse.sources.filesystem": ["FilesystemSource", "FileObjectSource"],
    "fileresponse.sources.storage": ["StorageSource", "storage_source"],
    "fileresponse.sources.minio": ["MinioSource"],
    "fileresponse.storage": ["MinioStorage", "DeliveringStorage", "QueuedStorage"],
    "fileresponse.storage.queued": ["QueuedStorage", "QueuedSource"],
    "fileresponse.uploads": [
        "save_in_background",
        "pending_upload",
        "upload_state",
        "upload_saved",
        "upload_failed",
    ],
    "fileresponse.storage.delivery": ["DeliveringStorage"],
    "fileresponse.storage.minio": [
        "MinioStorage",
        "AsyncClient",
        "SyncClient",
        "aclose_clients",
        "async_client",
        "object_key",
        "sync_client",
    ],
    "fileresponse.checks": [
        "check_settings",
        "check_minio",
        "check_derivatives",
        "check_fast_paths",
    ],
    "fileresponse.exceptions": ["SourceNotFound", "SourceUnavailable", "UnsafePath"],
    "fileresponse.derivatives": [
        "Spec",
        "parse_spec",
        "InvalidSpec",
        "derivative_url",
        "resolve_request",
    ],
}

MODULES_WITH_ALL = sorted(
    {
        *PUBLIC,
        "fileresponse",
        "fileresponse.conf",
        "fileresponse.conf.fastpaths",
        "fileresponse.responses",
        "fileresponse.asgi_types",
        "fileresponse.http.ranges",
        "fileresponse.http.conditional",
        "fileresponse.http.validators",
        "fileresponse.http.headers",
        "fileresponse.http.plan",
        "fileresponse.http.diagnostics",
        "fileresponse.derivatives.diagnostics",
        "fileresponse.server.sendfile",
        "fileresponse.sources.cached",
        "fileresponse.storage.minio.clients",
        "fileresponse.storage.minio.errors",
        "fileresponse.storage.minio.objects",
        "fileresponse.storage.minio.files",
        "fileresponse.storage.minio.storage",
    }
)

PACKAGE = Path(__file__).resolve().parent.parent / "fileresponse"


@pytest.mark.parametrize(("module_name", "names"), sorted(PUBLIC.items()))
def test_documented_names_are_exported(module_name: str, names: list[str]) -> None:
    module = importlib.import_module(module_name)
    for name in names:
        assert name in module.__all__, f"{module_name}.__all__ lacks {name}"
        assert getattr(module, name) is not None


@pytest.mark.parametrize("module_name", MODULES_WITH_ALL)
def test_all_lists_only_what_exists(module_name: str) -> None:
    module = importlib.import_module(module_name)
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []
    assert len(set(module.__all__)) == len(module.__all__)


def test_the_response_is_the_same_class_everywhere() -> None:
    from fileresponse.http import AsyncFileResponse as exported
    from fileresponse.responses import AsyncFileResponse

    assert exported is AsyncFileResponse


def test_pure_http_modules_import_neither_django_nor_sdks() -> None:
    code = (
        "import sys\n"
        "import fileresponse, fileresponse.http.plan, fileresponse.http.headers\n"
        "import fileresponse.http.negotiation, fileresponse.http.diagnostics\n"
        "loaded = [m for m in sys.modules if m.split('.')[0] in "
        "('django', 'minio', 'miniopy_async', 'PIL', 'celery')]\n"
        "print(','.join(sorted(loaded)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_every_export_is_the_same_object() -> None:
    from fileresponse.storage import MinioStorage
    from fileresponse.storage.minio import MinioStorage as from_package
    from fileresponse.storage.minio.storage import MinioStorage as defined

    assert MinioStorage is from_package is defined


def _imports(module: str) -> set[str]:
    """The fileresponse modules that ``module`` imports anywhere (in functions too)."""
    path = PACKAGE.parent.joinpath(*module.split("."))
    is_package = path.is_dir()
    tree = ast.parse((path / "__init__.py" if is_package else path.with_suffix(".py")).read_text())
    base = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parent = base
            for _ in range(node.level - 1):
                parent = parent.rpartition(".")[0]
            target = node.module or ""
            if node.level:
                target = f"{parent}.{target}" if target else parent
            for alias in node.names:  # a module of the package, else a name in ``target``
                submodule = f"{target}.{alias.name}"
                found.add(submodule if _is_module(submodule) else target)
    return {name for name in found if _is_module(name) and name != module}


def _is_module(name: str) -> bool:
    if name.split(".")[0] != "fileresponse":
        return False
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_storage_modules_import_no_cycle() -> None:
    """No module of fileresponse.storage is part of an import cycle, lazy imports included."""
    modules = [
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__")
        for path in PACKAGE.rglob("*.py")
    ]
    graph = {module: _imports(module) for module in modules}
    for start in (module for module in modules if module.startswith("fileresponse.storage")):
        seen: set[str] = set()
        stack = list(graph[start])
        while stack:
            module = stack.pop()
            assert module != start, f"{start} imports itself through {sorted(seen)}"
            if module not in seen:
                seen.add(module)
                stack.extend(graph[module])


#: The modules that run external programs by design: ffmpeg, and the configured commands.
PROGRAM_RUNNERS = {"derivatives/processors/media.py", "derivatives/processors/command.py"}


def test_the_package_ships_no_test_infrastructure() -> None:
    assert importlib.util.find_spec("fileresponse.testing") is None
    launchers = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if "subprocess" in _imported_names(path)
    ]
    assert set(launchers) <= PROGRAM_RUNNERS


def _imported_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names
