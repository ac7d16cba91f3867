"""notebooks/quickstart.ipynb runs top to bottom in a real kernel (nbclient), offline on CPU.

The kernel is this test's own interpreter (the venv's), through a kernelspec placed first on
JUPYTER_PATH, so a user-level `python3` kernelspec pointing at another Python cannot be picked.
The notebook writes its runs where BGE_STUDIO_RUNS_DIR says (a temporary folder here) and
reads example_data/ from the repository root, where the kernel starts.
"""

from __future__ import annotations

import json
import re
import sys

import nbformat
import pytest
from conftest import ROOT
from test_notebook_widgets import _processes_mentioning

from studio.training import runs

NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"
CELL_TIMEOUT_S = 900


@pytest.fixture
def venv_kernel(tmp_path, monkeypatch):
    """A `python3` kernelspec that runs this interpreter, found before any other."""
    spec_dir = tmp_path / "jupyter" / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (bge-studio test)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "python3"


def test_the_kernel_is_this_venvs_python(venv_kernel):
    from jupyter_client.kernelspec import KernelSpecManager

    assert KernelSpecManager().get_kernel_spec(venv_kernel).argv[0] == sys.executable


def test_the_committed_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    for i, cell in enumerate(code):
        compile(cell.source, f"{NOTEBOOK.name} code cell {i + 1}", "exec")
    assert nb.metadata["kernelspec"]["name"] == "python3"


def _text(nb) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            elif "data" in out and "text/plain" in out.data:
                parts.append(out.data["text/plain"])
    return "\n".join(parts)


@pytest.mark.slow
def test_quickstart_notebook_runs_top_to_bottom(venv_kernel, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    runs_dir = tmp_path / "runs"
    monkeypatch.setenv("BGE_STUDIO_RUNS_DIR", str(runs_dir))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=venv_kernel,
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(ROOT)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    text = _text(nb)
    assert "360 rows in 1 file(s): 0 errors" in text
    assert re.search(r"checkpoint-4 saved; run stopped at step \d+", text), text[-3000:]
    assert "run succeeded (attempt 2, resumed from checkpoint-4)" in text
    assert "trainer started at step 4, logged steps: 5 6 7 8 9 10 11 12" in text
    assert f"steps on the chart: {list(range(1, 13))}" in text
    assert re.search(r"nDCG@10: 0\.\d+ -> 0\.\d+ \([+-]0\.\d+\)", text)
    assert "Running on local URL" in text  # the inline web studio started

    (summary,) = runs.list_runs(runs_dir)
    assert summary.state == "succeeded" and summary.step == 12
    status = json.loads((summary.path / "status.json").read_text())
    assert runs.group_members(status["pgid"]) == []
    assert _processes_mentioning(str(summary.path)) == []
    report = json.loads((summary.path / "eval.json").read_text())
    assert set(report["models"]) == {"base", "final"}
