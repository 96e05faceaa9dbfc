"""Memory a process holds: its peak, the whole process tree's, and handing freed memory back to the system.

Converting or compiling a model allocates gigabytes in many small blocks. When the model is
freed, glibc keeps those blocks in its heaps for reuse, so the process's resident size stays
near its peak; `release_freed_memory` asks glibc to return them (``malloc_trim``). The test
suite calls it after every test, and `utils.convert.convert_sam` after each network.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys
from pathlib import Path


def peak_memory_mib() -> float:
    """This process's own peak resident memory in MiB.

    Linux: ``VmHWM`` from /proc/self/status. Not ``ru_maxrss``: a process started by
    fork and exec keeps its parent's high-water mark there, so a worker spawned from a
    large parent would report the parent's size. Windows: the peak working set (psutil).
    macOS: ``ru_maxrss``, which is in bytes there.
    """
    if sys.platform.startswith("linux"):
        return _proc_status_mib(os.getpid())["VmHWM"]
    if sys.platform == "win32":
        import psutil

        return psutil.Process().memory_info().peak_wset / 2**20
    import resource  # Unix only

    return _maxrss_mib(resource.RUSAGE_SELF)


def finished_children_peak_mib() -> float:
    """The largest peak resident memory among this process's children that have ended and been waited for (their
    own children included), in MiB: a conversion or a kit run in a process of its own, a notebook's kernel once shut
    down. An upper bound: on Linux each child's figure includes its parent's peak so far at the moment it was
    started (fork or vfork, then exec). 0 on Windows, which does not keep it."""
    if sys.platform == "win32":
        return 0.0
    import resource  # Unix only

    return _maxrss_mib(resource.RUSAGE_CHILDREN)


def _maxrss_mib(who: int) -> float:
    """``ru_maxrss`` of ``getrusage(who)`` in MiB: bytes on macOS, KiB elsewhere."""
    import resource  # Unix only

    maxrss = resource.getrusage(who).ru_maxrss
    return maxrss / 2**20 if sys.platform == "darwin" else maxrss / 1024


def process_tree_memory(pid: int | None = None) -> dict[int, tuple[float, float]]:
    """``{pid: (resident MiB, peak resident MiB)}`` for a process (default: this one) and all its descendants, such
    as the test suite's notebook kernels and workers. The peak is Linux's ``VmHWM``; elsewhere it is the resident
    size now. A process that ends while being read is left out."""
    import psutil  # every install has it (Jupyter's kernel needs it); imported where it is used

    root = psutil.Process(pid or os.getpid())
    found = {}
    for process in [root, *root.children(recursive=True)]:
        try:
            found[process.pid] = _resident_and_peak_mib(process)
        except (psutil.Error, OSError, KeyError):  # ended, or a zombie (no memory fields left)
            continue
    return found


def _resident_and_peak_mib(process) -> tuple[float, float]:
    if not sys.platform.startswith("linux"):
        resident = process.memory_info().rss / 2**20
        return resident, resident
    fields = _proc_status_mib(process.pid)
    return fields["VmRSS"], fields["VmHWM"]


def _proc_status_mib(pid: int) -> dict[str, float]:
    """The memory fields (``Vm*``, in kB there) of Linux's /proc/PID/status, in MiB; a zombie has none."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name.startswith("Vm"):
            fields[name] = int(value.split()[0]) / 1024
    return fields


@functools.cache
def _glibc():
    """glibc, or None on another C library (musl, macOS, Windows), which has no ``malloc_trim``."""
    if not sys.platform.startswith("linux"):
        return None
    library = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    return library if hasattr(library, "malloc_trim") else None


def release_freed_memory() -> None:
    """Return the memory freed so far to the system (glibc's ``malloc_trim``); nothing elsewhere."""
    glibc = _glibc()
    if glibc is not None:
        glibc.malloc_trim(0)
