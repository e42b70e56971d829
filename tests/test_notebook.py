"""notebooks/quickstart.ipynb runs from top to bottom (its cells assert what they show)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow  # this module trains whole programs (its fixtures, or subprocesses)

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "quickstart.ipynb"


@pytest.mark.timeout(280)
def test_quickstart_notebook_executes(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    # execute() raises CellExecutionError on any failing cell (each cell asserts what it shows)
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    text = "".join(out.get("text", "") for out in outputs)
    assert "restored iteration 60" in text
    assert "first action of agent 0:" in text
    assert sum("image/png" in out.get("data", {}) for out in outputs) == 1  # the training curve
