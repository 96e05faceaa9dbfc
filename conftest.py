"""Repository-wide pytest set-up: random SAM weights for every test and notebook run.

The real checkpoints cannot be downloaded on test machines, so the suite (and
every notebook nbval runs, whose kernels inherit this environment) builds SAM
with seeded random weights. Parity with `segment_anything` on the same weights
is what proves the OpenVINO path correct.
"""

import gc
import getpass
import json
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from utils.memory import (  # noqa: E402 - after the path
    finished_children_peak_mib,
    peak_memory_mib,
    process_tree_memory,
    release_freed_memory,
)

RANDOM_SEED = "0"
MEMORY_REPORT = ROOT / ".cache" / "memory-report.json"
"""Written at the end of every run: the suite's peak memory (.ci/run prints it and checks it)."""


def pytest_configure(config):
    os.environ["SAM_RANDOM_WEIGHTS_SEED"] = RANDOM_SEED
    os.environ["SAM_OV_SKIP_GRADIO_LAUNCH"] = "1"  # notebook 04 builds its gradio app but must not serve it
    # notebook 07's benchmark runs one row on vit_b (tests/test_benchmarks.py runs every row on vit_tiny)
    os.environ["SAM_OV_BENCHMARK_ROWS"] = "OpenVINO default, fused export"
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("TQDM_MININTERVAL", "5")
    os.environ["SAM_OV_PLAIN_PROGRESS"] = "1"  # NNCF's bars printed once, not redrawn (utils.quantize)
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(inductor_cache_dir()))


LIGHT_CHECK_FOLLOWS_ENV = "SAM_OV_LIGHT_CHECK_FOLLOWS"
LIGHT_ONLY_NOTEBOOKS = ROOT / ".ci" / "light-only-notebooks"
"""The notebooks whose every cell runs the same on the light install as on the full one (no install-specific cell):
where the light install's check runs them later (``SAM_OV_LIGHT_CHECK_FOLLOWS=1``, set by .ci/run), the full suite
leaves them to it instead of running them twice."""


def pytest_collection_modifyitems(config, items):
    if os.environ.get(LIGHT_CHECK_FOLLOWS_ENV) != "1":
        return
    later = {line.strip() for line in LIGHT_ONLY_NOTEBOOKS.read_text().splitlines() if line.strip()[:1] not in "#"}
    left = [item for item in items if str(item.path.relative_to(ROOT)) in later]
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = [item for item in items if item not in left]


def inductor_cache_dir() -> Path:
    """torch.compile's kernel cache, one per ISA setting. Its key leaves out oneDNN's and ATen's caps: a run without
    the cap that loaded kernels compiled under it (the emulated AVX2 laptop of .ci/run) aborted in
    tests/test_peers.py ("Fatal Python error: Aborted"), and passed with a cache of its own."""
    caps = [os.environ.get(name, "").lower() or "native" for name in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")]
    return Path(tempfile.gettempdir()) / f"torchinductor_{getpass.getuser()}_{'_'.join(caps)}"


class SuiteMemory:
    """The suite's memory, sampled after every test: pytest's own peak, each live child's (notebook kernels,
    workers), a bound on every finished child's (conversions and kits run in a process of their own) and the whole
    process tree's resident total, with the tests and files that make them large."""

    def __init__(self) -> None:
        self.tree_mib = 0.0
        self.largest_child = (0.0, "")  # (peak MiB, the test it was seen after)
        self.peak_raisers: list[tuple[float, str]] = []  # (MiB the test added to pytest's peak, test)
        self.after_file: dict[str, float] = {}  # file -> pytest's resident MiB once the file's fixtures are gone

    def sample(self, item, peak_before: float, file_done: bool) -> None:
        tree = process_tree_memory()
        own_resident = tree.get(os.getpid(), (0.0, 0.0))[0]
        self.tree_mib = max(self.tree_mib, sum(resident for resident, _ in tree.values()))
        for pid, (_, peak) in tree.items():
            if pid != os.getpid() and peak > self.largest_child[0]:
                self.largest_child = (peak, item.nodeid)
        if (raised := peak_memory_mib() - peak_before) > 0:
            self.peak_raisers.append((raised, item.nodeid))
        if file_done:
            self.after_file[str(item.path.relative_to(ROOT))] = own_resident

    def report(self) -> dict:
        return {
            "pytest_peak_mib": round(peak_memory_mib()),
            "largest_child_peak_mib": round(self.largest_child[0]),
            "largest_child_seen_after": self.largest_child[1],
            "finished_children_peak_mib_at_most": round(finished_children_peak_mib()),
            "tree_sampled_peak_mib": round(self.tree_mib),
            "tests_that_raised_pytest_peak_mib": {test: round(mib) for mib, test in sorted(self.peak_raisers)[-8:]},
            "pytest_resident_after_file_mib": {
                path: round(mib) for path, mib in sorted(self.after_file.items(), key=lambda kv: -kv[1])[:8]
            },
        }


SUITE_MEMORY = SuiteMemory()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    peak_before = peak_memory_mib()
    yield
    file_done = nextitem is None or nextitem.path != item.path
    if file_done:
        gc.collect()  # the file's module fixtures are torn down: free what they held in reference cycles too
    release_freed_memory()
    SUITE_MEMORY.sample(item, peak_before, file_done)


def pytest_terminal_summary(terminalreporter):
    report = SUITE_MEMORY.report()
    MEMORY_REPORT.parent.mkdir(exist_ok=True)
    MEMORY_REPORT.write_text(json.dumps(report, indent=2))
    terminalreporter.write_line(
        f"memory: pytest process peak {report['pytest_peak_mib']} MiB, largest child peak "
        f"{report['largest_child_peak_mib']} MiB (seen after {report['largest_child_seen_after'] or 'none'}), "
        f"finished children at most {report['finished_children_peak_mib_at_most']} MiB, "
        f"whole tree sampled after each test at most {report['tree_sampled_peak_mib']} MiB; see {MEMORY_REPORT}"
    )
