"""notebooks/quickstart.ipynb runs from top to bottom (its cells assert what they show)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "quickstart.ipynb"


@pytest.mark.timeout(280)
def test_quickstart_notebook_executes(tmp_path):
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = {
        index: "".join(out.get("text", "") for out in cell.outputs)
        for index, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
    }
    errors = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs if out.output_type == "error"]
    assert not errors
    text = "\n".join(outputs.values())
    assert "restored iteration 40" in text
    assert "first action of agent 0:" in text
    images = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs if "image/png" in out.get("data", {})]
    assert len(images) == 1  # the training curve
