"""A ``STATIC_ROOT`` made by a real ``collectstatic`` (ManifestStaticFilesStorage), with variants.

:func:`collect_static` writes a few source files, runs ``manage.py collectstatic``
with tests/fastpath_site/settings.py into ``base/static-root``, then
precompresses some of the collected files as a site's build would: ``.gz``
(``gzip``) and ``.br`` (``brotli``, when a Brotli module is installed).
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent

SOURCES = {
    "css/site.css": b"".join(
        b'.rule-%03d { background: url("../img/dot.png"); color: #%06x; }\n' % (n, n * 4099)
        for n in range(120)
    ),
    "js/app.js": b"".join(b"console.log('line %04d of the app');\n" % n for n in range(200)),
    "img/dot.png": bytes(range(256)) * 4,
    "plain.txt": b"a static file without variants\n" * 20,
}
#: The codings each file is precompressed in (its hashed name too).
PRECOMPRESSED = {"css/site.css": ("br", "gzip"), "js/app.js": ("gzip",)}


def brotli_module() -> object | None:
    """The installed Brotli module (``brotli`` or ``brotlicffi``), or ``None``."""
    for name in ("brotli", "brotlicffi"):
        try:
            return __import__(name)
        except ImportError:
            continue
    return None


@dataclass(frozen=True)
class StaticTree:
    root: Path
    #: Original name -> hashed name, from the manifest.
    hashed: dict[str, str]
    #: Name -> content, for every file served (originals, hashed copies, variants).
    files: dict[str, bytes]
    has_brotli: bool

    def content(self, name: str) -> bytes:
        return self.files[name]


def collect_static(base: Path) -> StaticTree:
    source, root = base / "static-source", base / "static-root"
    for name, content in SOURCES.items():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes(content)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.fastpath_site.settings",
        "FILERESPONSE_TEST_STATIC_SOURCE": str(source),
        "FILERESPONSE_TEST_STATIC_ROOT": str(root),
        "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO_ROOT), os.environ.get("PYTHONPATH")))),
    }
    subprocess.run(
        [sys.executable, "-m", "django", "collectstatic", "--noinput", "-v", "0"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    manifest = json.loads((root / "staticfiles.json").read_bytes())
    hashed = {name: manifest["paths"][name] for name in SOURCES}
    brotli = brotli_module()
    for original, codings in PRECOMPRESSED.items():
        for name in (original, hashed[original]):
            data = (root / name).read_bytes()
            if "gzip" in codings:
                (root / (name + ".gz")).write_bytes(gzip.compress(data, mtime=0))
            if "br" in codings and brotli is not None:
                (root / (name + ".br")).write_bytes(brotli.compress(data))  # type: ignore[attr-defined]
    files = {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file()
    }
    return StaticTree(root=root, hashed=hashed, files=files, has_brotli=brotli is not None)
