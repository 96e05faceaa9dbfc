"""Re-run notebooks and keep exactly the outputs the series commits.

    .venv/bin/python -m tools.refresh_notebook_outputs                       # every notebook
    .venv/bin/python -m tools.refresh_notebook_outputs notebooks/01-convert-sam-to-openvino.ipynb

A code cell keeps its output when it is *kept*: tagged ``keep-output`` in its metadata (a
picture or text that does not depend on the model's weights: diagrams, pre-processing, the
prompt grid, crop boxes) or marked ``# NBVAL_CHECK_OUTPUT`` in its source (text that nbval
compares on every run: shapes, names). Every other cell is written back without outputs,
so no mask made with random weights is ever committed. `tests/test_notebooks_clean.py`
checks the same rule.

The notebooks run in notebooks/ with ``SAM_RANDOM_WEIGHTS_SEED=0`` unless the variable is
already set: the kept outputs do not depend on the weights, and no checkpoint download is needed.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEEP_TAG = "keep-output"
CHECK_MARK = "NBVAL_CHECK_OUTPUT"


def is_kept(cell: dict) -> bool:
    """True for a code cell whose output is committed (tagged keep-output or marked NBVAL_CHECK_OUTPUT)."""
    source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    return cell["cell_type"] == "code" and (
        KEEP_TAG in cell.get("metadata", {}).get("tags", []) or CHECK_MARK in source
    )


def strip_unkept(notebook) -> None:
    """Clear outputs and execution counts of every code cell that is not kept; number the kept ones 1, 2, ...

    nbval treats a cell with outputs but no execution count as an error ("unrun reference
    cell has outputs"), so kept cells carry a count; numbering them in order keeps diffs small.
    The saved state of the notebook's widgets goes too: it holds the last mask a widget showed.
    """
    notebook.metadata.pop("widgets", None)
    kept = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        if is_kept(cell):
            kept += 1
            cell.execution_count = kept
        else:
            cell.execution_count = None
            cell.outputs = []
        for output in cell.outputs:
            if "execution_count" in output:
                output["execution_count"] = cell.execution_count


def refresh(path: Path, timeout: int | None = None) -> None:
    """Execute ``path`` in its own folder and write it back with only the kept outputs."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    strip_unkept(notebook)
    nbformat.write(notebook, path)
    kept = sum(is_kept(cell) for cell in notebook.cells)
    print(f"{path.name}: {kept} kept cell(s) written")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook in notebooks/")
    args = parser.parse_args(argv)
    os.environ.setdefault("SAM_RANDOM_WEIGHTS_SEED", "0")
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    for path in args.notebooks or sorted((ROOT / "notebooks").glob("*.ipynb")):
        refresh(path.resolve())


if __name__ == "__main__":
    sys.exit(main())
