"""The README's set-up resolves on every OS and Python it promises, checked here on Linux.

`constraints.txt` is one universal lock (its first lines give the command that writes it). For each
supported leg, an operating system and machine with a Python version, uv resolves the full, light and
benchmark installs against it, taking only wheels, as pip does on a participant's laptop: a pin without a
wheel for that leg, or one that needs a newer Python, fails here before anyone meets it in a room. The legs
that cannot be supported are checked too, so the README's statement about them stays true.

Needs the package registry (PyPI), as the set-up does.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import pytest
from packaging.utils import canonicalize_name

from tools.wheel_folders import CONSTRAINTS, INSTALLS, ROOT, TARGETS
from tools.wheel_folders import resolve as resolve_files
from utils.preflight import SUPPORTED_PYTHONS

PLATFORMS = {leg: (target.uv_platform, target.environment) for leg, target in TARGETS.items()}
"""Supported operating systems (`tools.wheel_folders.TARGETS`): uv's target platform and the environment that
selects its OS version."""

PYTHONS = [*SUPPORTED_PYTHONS, "3.11.2"]
"""Every supported minor version (`utils.preflight` checks a laptop's against the same list), and 3.11.2: Debian 12's
own, the oldest patch release a common distribution ships."""

LIGHT_ONLY = {"macos13-arm64": ("aarch64-apple-darwin", {"MACOSX_DEPLOYMENT_TARGET": "13.0"})}
"""Legs where the README supports the light install only: leg -> (platform, environment)."""

UNSUPPORTED = {
    # PyTorch 2.14 has macOS wheels for macOS 14 and later only; OpenVINO runs there, so the light install does
    ("macos13-arm64", "full"): ("aarch64-apple-darwin", {"MACOSX_DEPLOYMENT_TARGET": "13.0"}, "torch"),
    # OpenVINO no longer publishes wheels for Intel Macs
    ("macos14-x86_64", "light"): ("x86_64-apple-darwin", {"MACOSX_DEPLOYMENT_TARGET": "14.0"}, "openvino"),
}
"""Legs the README names as unsupported: (leg, install) -> (platform, environment, the package that has no wheel)."""


def resolve(install: str, platform: str, python: str, environment: dict) -> subprocess.CompletedProcess:
    """uv's resolution of one install for one platform and Python (`tools.wheel_folders.resolve`)."""
    return resolve_files([ROOT / name for name in INSTALLS[install]], platform, python, environment)


def resolve_leg(platform: str, python: str, environment: dict) -> dict[str, subprocess.CompletedProcess]:
    """Every install on one leg: the benchmark install first, which fills uv's cache with everything the
    full and light installs (its subsets) need, so that they resolve from the cache."""
    results = {"benchmarks": resolve("benchmarks", platform, python, environment)}
    return results | {name: resolve(name, platform, python, environment) for name in INSTALLS if name not in results}


def resolve_every_leg() -> dict:
    """(leg, python) -> {install: resolution} for every supported leg (all installs) and every light-only leg,
    made side by side: the registry's answers, not the CPU, take the time. `.ci/background-set-up` calls it
    beside the suite, so that the tests here find every answer in uv's cache."""

    def resolve_any(leg: str, python: str) -> dict[str, subprocess.CompletedProcess]:
        if leg in LIGHT_ONLY:
            return {"light": resolve("light", LIGHT_ONLY[leg][0], python, LIGHT_ONLY[leg][1])}
        return resolve_leg(PLATFORMS[leg][0], python, PLATFORMS[leg][1])

    legs = [(leg, python) for leg in (*PLATFORMS, *LIGHT_ONLY) for python in PYTHONS]
    with ThreadPoolExecutor(8) as pool:
        return dict(zip(legs, pool.map(lambda leg: resolve_any(*leg), legs)))


@pytest.fixture(scope="module")
def resolutions() -> dict:
    return resolve_every_leg()


@cache
def pinned_names() -> frozenset[str]:
    """The normalised names of every package constraints.txt pins (on any leg)."""
    return frozenset(names_in(CONSTRAINTS.read_text()))


def names_in(requirements: str) -> set[str]:
    """The normalised names of the ``name==version`` lines in a requirements text."""
    return {canonicalize_name(line.split("==")[0]) for line in requirements.splitlines() if "==" in line}


def test_constraints_file_starts_with_the_command_that_writes_it():
    """The lock is written from every install's files, so that each install resolves against it."""
    command = CONSTRAINTS.read_text().splitlines()[1]
    assert "uv pip compile --universal" in command
    files = {name for names in INSTALLS.values() for name in names} - {"requirements-light.txt"}  # the full's subset
    assert files <= set(command.split()), f"re-lock with {sorted(files - set(command.split()))} in the command"


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("leg", PLATFORMS)
def test_every_install_resolves_with_wheels_only(resolutions, leg, python):
    results = resolutions[(leg, python)]
    failures = {name: done.stderr[-1500:] for name, done in results.items() if done.returncode != 0}
    assert not failures, f"{leg}, Python {python}: {failures}"
    unpinned = {name: names_in(done.stdout) - pinned_names() for name, done in results.items()}
    assert not any(unpinned.values()), f"resolved without a pin in constraints.txt (re-lock): {unpinned}"


@pytest.fixture(scope="module")
def unsupported_resolutions() -> dict:
    """The unsupported legs' resolutions, side by side (a failure is always confirmed by the registry)."""
    with ThreadPoolExecutor(len(UNSUPPORTED)) as pool:
        done = pool.map(lambda key: resolve(key[1], UNSUPPORTED[key][0], "3.13", UNSUPPORTED[key][1]), UNSUPPORTED)
        return dict(zip(UNSUPPORTED, done))


@pytest.mark.parametrize("leg, install", UNSUPPORTED)
def test_the_unsupported_legs_fail_where_the_readme_says(unsupported_resolutions, leg, install):
    package = UNSUPPORTED[(leg, install)][2]
    done = unsupported_resolutions[(leg, install)]
    assert done.returncode != 0, f"{install} install now resolves on {leg}: update the README's list of platforms"
    assert f"{package}==" in done.stderr, done.stderr[-1500:]


@pytest.mark.parametrize("python", PYTHONS)
@pytest.mark.parametrize("leg", LIGHT_ONLY)
def test_the_light_install_resolves_where_only_it_is_supported(resolutions, leg, python):
    done = resolutions[(leg, python)]["light"]
    assert done.returncode == 0, f"{leg}, Python {python}: {done.stderr[-1500:]}"
