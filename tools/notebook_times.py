"""Each notebook's run time and peak memory on this CPU, measured as a learner runs it; one table feeds every text.

    .venv/bin/python -m tools.notebook_times measure                  # every notebook, in order; merges the results
    .venv/bin/python -m tools.notebook_times measure notebooks/05-automatic-mask-generation.ipynb
    .venv/bin/python -m tools.notebook_times write                    # the README, the headers and the guide
    .venv/bin/python -m tools.notebook_times check                    # exit 1 where one of them differs

`measure` runs each notebook top to bottom in notebooks/ (nbclient, as "Run All" does) with every setting as a
learner has it: the full benchmark in 07, the gradio app built but not served, random weights
(``SAM_RANDOM_WEIGHTS_SEED=0``; the real checkpoints cannot be downloaded on the machines that measure). It records
the time from starting the kernel to the end of its last cell and the larger of the kernel's peak resident memory
and that of the largest process it ran to its end (a conversion in a process of its own), in `TABLE` under the
CPU's class: ``avx2`` where OpenVINO computes in f32 on x86
(an AVX2 laptop, or a newer CPU under DEVELOPERS.md's AVX2 cap), ``bf16`` where it computes
in bf16. Run it with the IR made (the state on the day, from a workshop kit); ``--first-time`` in a clone with an
empty ``models/`` records the runs that convert, and the texts then say what the first run adds.

`write` renders each notebook's figures into one phrase and puts it in the README's table of notebooks, the
notebook's header and docs/teaching.md's plan, with the README's paragraph on how they were measured; `check`
(run by tests/test_notebooks_clean.py) fails where any of them is not the rendering of `TABLE`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
TABLE = ROOT / "docs" / "notebook-times.json"
README = ROOT / "README.md"
GUIDE = ROOT / "docs" / "teaching.md"
CPU_CLASSES = {"avx2": "AVX2", "bf16": "bf16"}
"""The classes of CPU the texts give figures for, in their order, and their names in the texts."""
STATES = ("ir_made", "first_time")
PEAK_PROBE = (
    "import json, resource\n"
    "print(json.dumps([resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]))"
)
"""Run in the kernel after the notebook: its own peak and its finished children's, in KiB (Linux)."""


def cpu_class() -> str:
    """``bf16`` where every compile computes in bf16 here, ``avx2`` where it computes in f32 on x86."""
    import platform

    from utils.precision import choose_precision

    precision = choose_precision()
    if precision == "bf16":
        return "bf16"
    if precision == "f32" and platform.machine().lower() in ("x86_64", "amd64"):
        return "avx2"
    raise SystemExit(f"this machine computes in {precision} on {platform.machine()}: the texts have no column for it")


def use_learner_environment() -> None:
    """Give this process (and so the kernels it starts) the settings of a learner's run, with random weights."""
    for name in ("SAM_OV_BENCHMARK_ROWS", "PYTEST_ADDOPTS"):  # the test suite's shortcuts
        os.environ.pop(name, None)
    os.environ.setdefault("SAM_RANDOM_WEIGHTS_SEED", "0")
    os.environ["SAM_OV_SKIP_GRADIO_LAUNCH"] = "1"  # nothing would ever stop the server; building the app is timed
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"


def run_notebook(path: Path) -> dict:
    """Execute ``path`` as "Run All" does and return its seconds, peak MiB and longest cell; the file is not changed."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(PEAK_PROBE))
    client = NotebookClient(
        notebook, timeout=None, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    saved = dict(os.environ)
    use_learner_environment()  # the kernel inherits this process's environment
    try:
        start = time.perf_counter()
        client.execute()  # the kernel's start, every cell, the probe and the kernel's shutdown: "Run All"
        seconds = time.perf_counter() - start
    finally:
        os.environ.clear()
        os.environ.update(saved)
    probe = notebook.cells.pop()
    peak_kib = max(json.loads(probe.outputs[0]["text"]))
    cell_seconds = [_cell_seconds(cell) for cell in notebook.cells if cell.cell_type == "code"]
    return {
        "seconds": round(seconds, 1),
        "peak_mib": round(peak_kib / 1024),
        "longest_cell_seconds": round(max(cell_seconds), 1),
    }


def _cell_seconds(cell) -> float:
    timing = cell.metadata.get("execution", {})
    begin, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (begin and end):
        return 0.0
    return (
        datetime.datetime.fromisoformat(end.rstrip("Z")) - datetime.datetime.fromisoformat(begin.rstrip("Z"))
    ).total_seconds()


def cpu_label(description: dict) -> str:
    """The CPU in a few words: name, widest vector ISA, cores and any oneDNN cap (`utils.precision.cpu_description`)."""
    from utils.precision import widest_isa

    cap = description["onednn_isa_cap"]
    return f"{description['cpu']} with {widest_isa(description['isa'])}, {os.cpu_count()} cores" + (
        f", under the cap ONEDNN_MAX_CPU_ISA={cap}" if cap else ""
    )


def measure(paths: list[Path], state: str) -> dict:
    """Run ``paths`` in order and merge their figures into `TABLE` under this CPU's class and ``state``."""
    from tqdm import tqdm

    from utils.precision import cpu_description

    table = load_table()
    cpu = cpu_class()
    description = cpu_description()
    label, when = cpu_label(description), f"{datetime.date.today():%B %Y}, at {_commit()}"
    for path in tqdm(paths, desc=f"notebooks on {cpu}", unit="notebook"):
        figures = run_notebook(path)
        entry = table.setdefault(cpu, {"cpu": label})
        if entry["cpu"] == label:
            entry["measured"] = when
        else:  # the class's other figures stay those of the CPU it names: this notebook's name their own
            figures |= {"cpu": label, "measured": when}
        entry.setdefault(state, {})[path.name[:2]] = figures
        tqdm.write(f"{path.name}: {figures}")
        save_table(table)
    return table


def _commit() -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return result.stdout.strip() or "an unknown commit"


def load_table() -> dict:
    return json.loads(TABLE.read_text()) if TABLE.exists() else {}


def save_table(table: dict) -> None:
    from utils.atomic import write_text_atomically

    write_text_atomically(TABLE, json.dumps(table, indent=2, sort_keys=True) + "\n")


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def run_time_phrase(table: dict, number: str) -> str:
    """One notebook's figures in words: time and peak per CPU class, then what the first run adds."""
    parts, first_time = [], []
    for cpu, name in CPU_CLASSES.items():
        figures = table.get(cpu, {}).get("ir_made", {}).get(number)
        if figures is None:
            parts.append(f"not measured on {name}")
            continue
        parts.append(f"{_minutes(figures['seconds'])} on {name} (peak {figures['peak_mib'] / 1024:.1f} GiB)")
        first = table[cpu].get("first_time", {}).get(number)
        if first and first["seconds"] - figures["seconds"] >= 10:
            first_time.append(f"{_minutes(first['seconds'] - figures['seconds'])} on {name}")
    phrase = ", ".join(parts)
    return phrase + (f"; the first run, which makes the IR, adds {' and '.join(first_time)}" if first_time else "")


def measured_how(table: dict) -> str:
    """The README's paragraph under its table: which CPUs, how, and what random weights change."""
    cpus = "; ".join(
        f"**{name}**: {table[cpu]['cpu']} ({table[cpu]['measured']}){_measured_elsewhere(table[cpu])}"
        for cpu, name in CPU_CLASSES.items()
        if cpu in table
    )
    return (
        "A run time is how long the notebook takes from starting its kernel to its last cell with the IR already "
        "converted (from a workshop kit, or an earlier run), as a learner runs it (07 with every benchmark row), and "
        "the peak is the larger of its kernel's peak resident memory and that of the largest process the kernel ran "
        "to its end (a conversion). Both were measured by "
        f"`python -m tools.notebook_times measure`, which writes them to `docs/notebook-times.json`: {cpus}. "
        "They are random-weight figures: the same graphs run, so the times and memory of every model hold, but with "
        "real weights the mask generator (05, and the generator cells of 08) keeps many more masks, and its "
        "post-processing and drawing take longer."
    )


def _measured_elsewhere(entry: dict) -> str:
    """The notebooks of a CPU class measured on another CPU than the class's, with that CPU, in words."""
    others = {
        number: figures
        for state in ("ir_made", "first_time")
        for number, figures in sorted(entry.get(state, {}).items())
        if "cpu" in figures
    }
    return "".join(f", but {number} on {figures['cpu']} ({figures['measured']})" for number, figures in others.items())


def _replace(text: str, pattern: str, replacement: str, where: str) -> str:
    new, count = re.subn(pattern, lambda match: match.group(1) + replacement + match.group(2), text, flags=re.M)
    if count != 1:
        raise SystemExit(f"{where}: expected one place for the figures, found {count}")
    return new


def rendered_files(table: dict) -> dict[Path, str]:
    """Each file that gives run times, as `write` leaves it."""
    import nbformat

    files = {README: README.read_text(), GUIDE: GUIDE.read_text()}
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        number, phrase = path.name[:2], run_time_phrase(table, path.name[:2])
        files[README] = _replace(files[README], rf"^(\| \[{number}-[^|]*\|[^|]*\| )[^|]*?( \|)$", phrase, "README.md")
        files[GUIDE] = _replace(
            files[GUIDE], rf"^(\|[^|]*\| \[{number}\]\([^|]*\|[^|]*\| )[^|]*?( \|)$", phrase, "teaching.md"
        )
        notebook = nbformat.reads(path.read_text(), as_version=4)
        header = notebook.cells[0].source
        notebook.cells[0].source = _replace(header, r"^(\*\*Run time:\*\* ).*?(; measured)", phrase, path.name)
        files[path] = nbformat.writes(notebook) + "\n"
    files[README] = _replace_block(files[README], measured_how(table))
    return files


def _replace_block(text: str, body: str) -> str:
    start, end = "<!-- generated: notebook_times -->\n", "\n<!-- end: notebook_times -->"
    if text.count(start) != 1 or text.count(end) != 1:
        raise SystemExit(f"README.md: expected one {start.strip()} ... {end.strip()} block")
    head, rest = text.split(start)
    return head + start + body + end + rest.split(end, 1)[1]


def stale_files(table: dict) -> list[Path]:
    return [path for path, text in rendered_files(table).items() if path.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("measure", help="run notebooks and merge their figures into docs/notebook-times.json")
    run.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook in notebooks/, in order")
    run.add_argument("--first-time", action="store_true", help="the runs convert (a clone with an empty models/)")
    commands.add_parser("write", help="put the table's figures in the README, the headers and the guide")
    commands.add_parser("check", help="exit 1 where a text is not the table's rendering")
    args = parser.parse_args(argv)
    if args.command == "measure":
        paths = [path.resolve() for path in args.notebooks] or sorted(NOTEBOOKS.glob("*.ipynb"))
        measure(paths, "first_time" if args.first_time else "ir_made")
        return 0
    table = load_table()
    if args.command == "write":
        for path, text in rendered_files(table).items():
            if path.read_text() != text:
                path.write_text(text)
                print(f"wrote {path.relative_to(ROOT)}")
        return 0
    stale = stale_files(table)
    for path in stale:
        print(
            f"{path.relative_to(ROOT)} differs from {TABLE.relative_to(ROOT)}: run python -m tools.notebook_times write"
        )
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
