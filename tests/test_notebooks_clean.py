"""Committed notebooks follow the series' conventions (see the README's last section)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tools.refresh_notebook_outputs import CHECK_MARK, KEEP_TAG, is_kept

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_outputs_exactly_on_kept_cells(path):
    """Kept cells (tag keep-output, or # NBVAL_CHECK_OUTPUT) carry their output; no other cell carries any."""
    cells = json.loads(path.read_text())["cells"]
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        if is_kept(cell):
            assert cell["outputs"], f"cell {index} is kept ({KEEP_TAG} or {CHECK_MARK}) but has no stored output"
            assert cell.get("execution_count"), f"cell {index}: nbval calls a kept cell without a count 'unrun'"
            assert not any(output["output_type"] == "error" for output in cell["outputs"]), (
                f"cell {index} keeps an error"
            )
        else:
            assert not cell["outputs"], f"cell {index} has outputs but is not tagged {KEEP_TAG} or marked {CHECK_MARK}"
            assert cell.get("execution_count") is None, f"cell {index} keeps an execution count"
    assert any(CHECK_MARK in "".join(cell["source"]) for cell in cells), f"{path.name} has no {CHECK_MARK} cell"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_saved_widget_state(path):
    """Saved widget state would commit the last mask a widget showed (from random weights, in CI) and stale code."""
    assert "widgets" not in json.loads(path.read_text())["metadata"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_kept_pictures_are_pictures(path):
    """A cell tagged keep-output that draws keeps a PNG, so the notebook shows it on GitHub without running."""
    for index, cell in enumerate(json.loads(path.read_text())["cells"]):
        source = "".join(cell["source"])
        if KEEP_TAG in cell.get("metadata", {}).get("tags", []) and "plt.show()" in source:
            assert any("image/png" in output.get("data", {}) for output in cell["outputs"]), f"cell {index}: no picture"


MARKDOWN_PICTURE = re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_pictures_in_the_text_are_committed(path):
    """A picture a markdown cell links (notebook 04's widget screenshot) is a file in the repository, described."""
    for index, cell in enumerate(json.loads(path.read_text())["cells"]):
        if cell["cell_type"] != "markdown":
            continue
        for description, link in MARKDOWN_PICTURE.findall("".join(cell["source"])):
            assert "://" not in link, f"cell {index}: {link} would need the network"
            assert (path.parent / link).is_file(), f"cell {index}: {link} is not in the repository"
            assert len(description.split()) >= 5, f"cell {index}: {link} needs a description for who cannot see it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_code_cell_follows_a_sentence(path):
    cells = json.loads(path.read_text())["cells"]
    for index, cell in enumerate(cells[1:], start=1):
        if cell["cell_type"] == "code":
            assert cells[index - 1]["cell_type"] == "markdown", f"cell {index} has no sentence of its own before it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_name_title_and_parameters(path):
    assert re.fullmatch(r"\d\d-[a-z0-9-]+\.ipynb", path.name)
    cells = json.loads(path.read_text())["cells"]
    assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]).startswith("# ")
    sources = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
    assert any(re.search(r"^MODEL_TYPE = ", source, re.M) for source in sources), "no parameters cell"


def test_run_times_are_the_measured_tables():
    """The README's table, each header and the guide give each notebook's run time and peak memory as
    tools.notebook_times renders docs/notebook-times.json, which has every notebook on the laptop case (AVX2)."""
    from tools.notebook_times import load_table, stale_files

    table = load_table()
    assert sorted(table["avx2"]["ir_made"]) == [path.name[:2] for path in NOTEBOOKS]
    assert not stale_files(table), "run: python -m tools.notebook_times write"


def test_a_changed_figure_makes_every_text_stale():
    from tools.notebook_times import GUIDE, README, load_table, run_time_phrase, stale_files

    table = load_table()
    table["avx2"]["ir_made"]["02"] = {"seconds": 4321.0, "peak_mib": 9999}
    assert "72.0 min on AVX2 (peak 9.8 GiB)" in run_time_phrase(table, "02")
    stale = stale_files(table)
    assert {README, GUIDE, ROOT / "notebooks" / NOTEBOOKS[1].name} == set(stale)


def test_a_notebook_measured_on_another_cpu_names_it():
    from tools.notebook_times import measured_how

    figures = {"seconds": 1.0, "peak_mib": 1}
    elsewhere = figures | {"cpu": "CPU B", "measured": "June"}
    table = {"avx2": {"cpu": "CPU A", "measured": "May", "ir_made": {"01": figures, "10": elsewhere}}}
    assert "**AVX2**: CPU A (May), but 10 on CPU B (June)." in measured_how(table)


def test_run_time_phrase_adds_what_the_first_run_converts():
    from tools.notebook_times import run_time_phrase

    table = {
        "avx2": {"ir_made": {"01": {"seconds": 50, "peak_mib": 2048}}, "first_time": {"01": {"seconds": 140}}},
        "bf16": {"ir_made": {}},
    }
    assert run_time_phrase(table, "01") == (
        "50 s on AVX2 (peak 2.0 GiB), not measured on bf16; the first run, which makes the IR, adds 1.5 min on AVX2"
    )


def exercise_section(path: Path) -> list[dict]:
    """The cells from "## Exercises" to the summary."""
    cells = json.loads(path.read_text())["cells"]
    sources = ["".join(cell["source"]) for cell in cells]
    start = next(index for index, source in enumerate(sources) if source.startswith("## Exercises"))
    end = next(index for index, source in enumerate(sources) if source.startswith("## Summary"))
    return cells[start:end]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercises_keep_their_answers_folded(path):
    """Each exercise's answer is under its solution, folded in a <details> block, and nowhere in the list."""
    section = exercise_section(path)
    listing = "".join(section[0]["source"])
    numbers = re.findall(r"^(\d+)\. \*\*", listing, re.M)
    assert numbers, "no numbered exercises"
    assert "should see:" not in listing.lower(), "the exercise list gives an answer away"
    folded = [
        "".join(cell["source"])
        for cell in section[1:]
        if cell["cell_type"] == "markdown" and "<details>" in "".join(cell["source"])
    ]
    answered = set()
    for text in folded:
        label = re.match(r"\*\*Exercises? ([\d a-z]+)\.\*\*", text)
        assert label and "<summary>What you should see</summary>" in text and "</details>" in text, text[:80]
        first, *rest = re.findall(r"\d+", label.group(1))
        last = rest[-1] if rest else first
        answered |= {str(number) for number in range(int(first), int(last) + 1)}
    assert answered == set(numbers), f"exercises without a folded answer: {sorted(set(numbers) - answered)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_write_code_exercises_have_hidden_solutions_that_pass_their_self_check(path):
    """A (code) exercise names its self-check; its solution cell is collapsed and asserts that check (CI runs it)."""
    section = exercise_section(path)
    listing = "".join(section[0]["source"])
    items = re.split(r"^(?=\d+\. \*\*)", listing, flags=re.M)
    code_items = {item.split(".")[0]: item for item in items if re.match(r"\d+\. \*\*[^*]+\*\* \(code\)", item)}
    assert code_items, "no exercise writes code"
    for number, item in code_items.items():
        label = next(
            index for index, cell in enumerate(section) if "".join(cell["source"]).startswith(f"**Exercise {number}.**")
        )
        solution = section[label + 1]
        assert solution["cell_type"] == "code", f"exercise {number} has no solution cell"
        assert solution["metadata"].get("jupyter", {}).get("source_hidden"), (
            f"exercise {number}'s solution is not collapsed"
        )
        assert "solution" in solution["metadata"].get("tags", [])
        checks = re.findall(r"`(check_\w+)\(", item)
        assert checks, f"exercise {number} names no self-check"
        assert f"assert {checks[0]}(" in "".join(solution["source"]), f"exercise {number}'s solution skips {checks[0]}"


def test_every_self_check_is_used_by_a_notebook():
    from utils import exercises

    text = "".join(path.read_text() for path in NOTEBOOKS)
    unused = [name for name in dir(exercises) if name.startswith("check_") and f"assert {name}(" not in text]
    assert not unused, f"self-checks no notebook calls: {unused}"


def test_run_notebook_gives_the_time_and_the_kernels_peak(tmp_path):
    """What `measure` records for one notebook: its time and its kernel's peak memory (here 400 MB of ones)."""
    import nbformat

    from tools.notebook_times import run_notebook

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("import numpy as np\nones = np.ones(50_000_000)\nones.sum()")]
    path = tmp_path / "big.ipynb"
    nbformat.write(notebook, path)
    before = path.read_text()
    figures = run_notebook(path)
    assert figures["peak_mib"] >= 380 and 0 < figures["longest_cell_seconds"] <= figures["seconds"]
    assert path.read_text() == before, "measuring changed the notebook"
