"""The public API: what users import exists, every ``__all__`` is true, pure modules stay pure."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PUBLIC = {
    "fileresponse.http": ["AsyncFileResponse"],
    "fileresponse.views": ["serve", "serve_storage", "error_response"],
    "fileresponse.asgi": ["get_asgi_application"],
    "fileresponse.handlers": ["AsyncFileASGIHandler", "encode_headers"],
    "fileresponse.sources": ["Source", "SourceStat", "as_source"],
    "fileresponse.sources.filesystem": ["FilesystemSource", "FileObjectSource"],
    "fileresponse.sources.storage": ["StorageSource", "storage_source"],
    "fileresponse.sources.minio": ["MinioSource"],
    "fileresponse.storage": ["MinioStorage"],
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
        "fileresponse.responses",
        "fileresponse.asgi_types",
        "fileresponse.http.ranges",
        "fileresponse.http.conditional",
        "fileresponse.http.validators",
        "fileresponse.http.headers",
        "fileresponse.http.plan",
    }
)


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
        "loaded = [m for m in sys.modules if m.split('.')[0] in "
        "('django', 'minio', 'miniopy_async', 'PIL', 'celery')]\n"
        "print(','.join(sorted(loaded)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
