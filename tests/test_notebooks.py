"""Execute every notebook in nbs/: the docs must run against the current code.

Each notebook runs with its working directory set to nbs/, in a kernel started from
this interpreter (``sys.executable``), so it imports the same ``fileresponse`` and
Django as the test suite. Notebooks configure Django themselves; the test suite's
``DJANGO_SETTINGS_MODULE`` is not passed on to the kernel.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from jupyter_client.kernelspec import KernelSpecManager  # noqa: E402
from jupyter_client.manager import AsyncKernelManager  # noqa: E402

NBS_DIR = Path(__file__).resolve().parent.parent / "nbs"
NOTEBOOKS = sorted(NBS_DIR.glob("*.ipynb"))
KERNEL_NAME = "fileresponse-tests"
CELL_TIMEOUT = 600

pytestmark = [pytest.mark.notebooks, pytest.mark.slow]


@pytest.fixture(scope="session")
def kernel_spec_manager(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    """A kernel spec that starts ipykernel with this very interpreter, and no other spec."""
    kernels_dir = tmp_path_factory.mktemp("kernels")
    spec_dir = kernels_dir / KERNEL_NAME
    spec_dir.mkdir()
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python {sys.version_info.major}.{sys.version_info.minor} (tests)",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return KernelSpecManager(kernel_dirs=[str(kernels_dir)], ensure_native_kernel=False)


def kernel_environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    # The debugger's frozen-modules notice is noise in a test log.
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    return env


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, f"no notebooks found in {NBS_DIR}"


@pytest.mark.parametrize("notebook_path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_notebook_runs(notebook_path: Path, kernel_spec_manager: KernelSpecManager) -> None:
    notebook = nbformat.read(notebook_path, as_version=4)
    kernel_manager = AsyncKernelManager(
        kernel_name=KERNEL_NAME, kernel_spec_manager=kernel_spec_manager
    )
    client = nbclient.NotebookClient(
        notebook,
        km=kernel_manager,
        timeout=CELL_TIMEOUT,
        kernel_name=KERNEL_NAME,
        resources={"metadata": {"path": str(NBS_DIR)}},
    )
    # cleanup_kc: shut the kernel down and close its channels, although we own the manager.
    client.execute(cleanup_kc=True, env=kernel_environment())
