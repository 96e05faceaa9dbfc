"""Style cannot drift: ruff (configured in ruff.toml) checks the code and the notebooks as part of the tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_finds_nothing():
    done = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--output-format", "concise", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_notebooks_left_to_the_light_check_run_there_and_alike_on_both_installs():
    """.ci/light-only-notebooks (run by the light check only, where .ci/run says it follows the suite): each one is
    in the light check's list of notebooks, and none has a cell that branches on the install."""
    import json

    listed = [
        line.strip()
        for line in (ROOT / ".ci" / "light-only-notebooks").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    light_check = (ROOT / ".ci" / "light-install-check").read_text()
    assert listed and all(name in light_check for name in listed)
    for name in listed:
        cells = json.loads((ROOT / name).read_text())["cells"]
        code = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
        assert not any(word in code for word in ("missing_full_install", "FULL_INSTALL", "import torch")), name
