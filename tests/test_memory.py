"""utils.memory: freed memory goes back to the system, and the process tree's memory includes the children."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from utils.memory import process_tree_memory

ROOT = Path(__file__).resolve().parent.parent
FREE_THEN_RELEASE = """
import numpy as np
from utils.memory import process_tree_memory, release_freed_memory

def resident():
    return next(iter(process_tree_memory().values()))[0]

blocks = [np.ones(8000) for _ in range(16000)]  # 1 GB in 64 kB blocks, each from malloc's heap
fence = np.ones(8000)  # a live block above them, so free() cannot simply shrink the heap
del blocks
held = resident()
release_freed_memory()
print(held, resident())
"""

BEFORE_AND_AFTER_A_CHILD = """
import subprocess, sys
from utils.memory import finished_children_peak_mib

before = finished_children_peak_mib()
subprocess.run([sys.executable, "-c", "import numpy as np; np.ones(800 * 2**20 // 8)"], check=True)
print(before, finished_children_peak_mib())
"""


@pytest.mark.skipif(sys.platform == "win32", reason="Windows keeps no peak of finished children")
def test_a_finished_childs_peak_is_counted():
    """A child that allocated 800 MiB and ended raises the bound, counted in MiB; before it, nothing near that had
    run. (In a small process of its own: in the suite's, the bound starts near pytest's own peak.)"""
    done = subprocess.run([sys.executable, "-c", BEFORE_AND_AFTER_A_CHILD], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    before, after = map(float, done.stdout.split())
    assert before < 300 and 800 < after < 1500, (before, after)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's: Linux only")
def test_freed_memory_goes_back_to_the_system():
    """Freed but held, a gigabyte stays resident; release_freed_memory hands it back. (Run in its own process, so
    the suite's own memory is not raised by the test.)"""
    done = subprocess.run([sys.executable, "-c", FREE_THEN_RELEASE], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    held, released = map(float, done.stdout.split())
    assert held > 900 and released < held - 800, (held, released)


def test_the_tree_includes_a_child_and_its_peak():
    child = subprocess.Popen(
        [sys.executable, "-c", "import numpy as np, time; a = np.ones(200 * 2**20 // 8); time.sleep(60)"]
    )
    try:
        deadline = time.monotonic() + 30
        while (seen := process_tree_memory().get(child.pid, (0.0, 0.0)))[0] < 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        resident, peak = seen
        assert resident > 200 and peak >= resident
        assert os.getpid() in process_tree_memory()
    finally:
        child.kill()
        child.wait()
