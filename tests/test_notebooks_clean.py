"""Committed notebooks follow the series' conventions (see the README's last section)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
MARK = "NBVAL_CHECK_OUTPUT"


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_only_on_marked_cells(path):
    cells = json.loads(path.read_text())["cells"]
    marked = 0
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        if MARK in source:
            marked += 1
            assert cell["outputs"], f"cell {index} is marked {MARK} but has no stored output to compare"
        else:
            assert not cell["outputs"], f"cell {index} keeps outputs but is not marked {MARK}"
            assert cell.get("execution_count") is None, f"cell {index} keeps an execution count"
    assert marked, f"{path.name} has no {MARK} cell, so nbval checks no output"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_name_title_and_parameters(path):
    assert re.fullmatch(r"\d\d-[a-z0-9-]+\.ipynb", path.name)
    cells = json.loads(path.read_text())["cells"]
    assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]).startswith("# ")
    sources = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
    assert any(re.search(r"^MODEL_TYPE = ", source, re.M) for source in sources), "no parameters cell"
