"""Folders of wheels for an offline room, one per platform and Python, each complete for its target.

    .venv/bin/python -m tools.wheel_folders wheels                       # the light install, every target and Python
    .venv/bin/python -m tools.wheel_folders wheels --install full --targets windows-x86_64 --pythons 3.12

`pip download --platform` evaluates environment markers for the machine it runs on, not the target: a folder
made on Linux for Windows lacks ``colorama`` and ``pywinpty``, one for macOS lacks ``appnope``, and those
learners' offline installs fail. Here uv resolves each install for the target (``uv pip compile
--python-platform --python-version``, markers evaluated for it, against ``constraints.txt``), pip downloads
exactly that list (``--no-deps``, wheels only, the target's platform tags), and uv resolves the install again
from the folder alone (``--offline --no-index``), which fails on any missing wheel. A folder appears only once it
is complete and checked. Each is ``OUT/<install>-<target>-py<python>``; a learner installs with
``pip install --no-index --find-links OUT/light-windows-x86_64-py3.12 -r requirements-light.txt -c constraints.txt``.
Needs the package registry; `tests/test_constraints.py` resolves the same targets, `tests/test_wheel_folders.py`
makes folders.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm
from uv import find_uv_bin

from utils.preflight import INSTALLS, SUPPORTED_PYTHONS

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "constraints.txt"
UV = find_uv_bin()
"""Looked up once, at import: sysconfig's first read of its variables is not thread-safe, and callers resolve in
threads."""


def manylinux_tags(machine: str, newest_glibc_minor: int) -> tuple[str, ...]:
    """pip's platform tags for a glibc-2.N Linux: every manylinux_2_M up to N, and the legacy names (pip does not
    widen a ``--platform`` tag to the older ones by itself)."""
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(newest_glibc_minor, 16, -1)]
    legacy = ("2014", "2010", "1") if machine == "x86_64" else ("2014",)
    return (*tags, *(f"manylinux{name}_{machine}" for name in legacy))


@dataclass(frozen=True)
class Target:
    """An operating system and machine: uv's platform, the environment that selects its OS version, pip's tags."""

    uv_platform: str
    pip_platforms: tuple[str, ...]
    environment: dict = field(default_factory=dict)


TARGETS = {
    "linux-x86_64": Target("x86_64-manylinux_2_28", manylinux_tags("x86_64", 28)),
    # OpenVINO's aarch64 wheels need glibc 2.35 (Ubuntu 22.04)
    "linux-aarch64": Target("aarch64-manylinux_2_35", manylinux_tags("aarch64", 35)),
    "windows-x86_64": Target("x86_64-pc-windows-msvc", ("win_amd64",)),
    "macos14-arm64": Target("aarch64-apple-darwin", ("macosx_14_0_arm64",), {"MACOSX_DEPLOYMENT_TARGET": "14.0"}),
}
"""The supported operating systems (README, *Set up*)."""

ROOM_TARGETS = ("linux-x86_64", "windows-x86_64", "macos14-arm64")
"""The laptops a room has; the default targets."""


def resolve(
    files: list[Path], platform: str, python: str, environment: dict, *options: str
) -> subprocess.CompletedProcess:
    """uv's resolution of ``files`` for one platform and Python, wheels only, against constraints.txt.

    It first tries from uv's cache alone (``--offline``): asking the registry again whether each of some 230
    pinned packages changed takes many seconds, and a pinned version's files do not change. Whatever the cache
    cannot answer, or answers with a failure, is resolved again against the registry, so only a failure the
    registry confirms counts. ``options`` go to uv as they are (``--no-index --find-links FOLDER`` resolves from a
    folder alone)."""
    command = [UV, "pip", "compile", "--quiet", "--no-header", "--no-annotate", "--only-binary", ":all:"]
    command += ["--python-platform", platform, "--python-version", python, "-c", str(CONSTRAINTS), *options]
    command += [str(path) for path in files]
    environment = {**os.environ, **environment}
    done = subprocess.run([*command, "--offline"], cwd=ROOT, env=environment, capture_output=True, text=True)
    if done.returncode != 0 and "--no-index" not in options:
        done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True)
    return done


def make_folder(files: list[Path], target: Target, python: str, folder: Path) -> list[str]:
    """Resolve ``files`` for ``target`` and ``python``, download exactly those wheels into ``folder`` and check that
    the install resolves from it alone; return the pinned lines. Raises RuntimeError, with uv's or pip's last
    lines, on any failure, and leaves no folder behind."""
    resolved = resolve(files, target.uv_platform, python, target.environment)
    if resolved.returncode != 0:
        raise RuntimeError(f"{folder.name}: uv cannot resolve it: {resolved.stderr.strip()[-1500:]}")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        (staging / "requirements.txt").write_text(resolved.stdout)
        download(staging / "requirements.txt", target, python, staging)
        check = check_folder(files, target, python, staging)
        if check.returncode != 0:
            raise RuntimeError(f"{folder.name}: a wheel is missing: {check.stderr.strip()[-1500:]}")
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [line for line in resolved.stdout.splitlines() if line.strip()]


def download(pinned: Path, target: Target, python: str, folder: Path) -> None:
    """pip downloads the pinned list's wheels for the target, nothing else (``--no-deps``: the list is complete)."""
    platforms = [argument for tag in target.pip_platforms for argument in ("--platform", tag)]
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", *platforms]
    command += ["--python-version", python, "--implementation", "cp", "-r", str(pinned), "-d", str(folder)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if not line.startswith("WARNING: Location")]
        raise RuntimeError(f"{folder.name}: pip download failed: {' '.join(errors)[-1500:]}")


def check_folder(files: list[Path], target: Target, python: str, folder: Path) -> subprocess.CompletedProcess:
    """uv resolves ``files`` for the target from ``folder`` alone: a non-zero return code names a missing wheel."""
    return resolve(files, target.uv_platform, python, target.environment, "--no-index", "--find-links", str(folder))


def folder_name(install: str, target: str, python: str) -> str:
    return f"{install}-{target}-py{python}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="the folder that gets one folder of wheels per target and Python")
    parser.add_argument("--install", choices=["light", "full"], default="light")
    parser.add_argument("--targets", nargs="+", choices=list(TARGETS), default=list(ROOM_TARGETS))
    parser.add_argument("--pythons", nargs="+", choices=SUPPORTED_PYTHONS, default=list(SUPPORTED_PYTHONS))
    args = parser.parse_args(argv)
    files = [ROOT / name for name in INSTALLS[args.install]]
    pairs = [(target, python) for target in args.targets for python in args.pythons]
    failed = []
    for target, python in tqdm(pairs, desc="wheel folders", unit="folder"):
        folder = args.out / folder_name(args.install, target, python)
        try:
            wheels = make_folder(files, TARGETS[target], python, folder)
        except RuntimeError as error:
            failed.append(str(error))
            continue
        size = sum(path.stat().st_size for path in folder.iterdir()) / 2**20
        tqdm.write(f"{folder}: {len(wheels)} wheels, {size:.0f} MiB, resolves offline for {target}, Python {python}")
    for error in failed:
        print(f"FAILED {error}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
