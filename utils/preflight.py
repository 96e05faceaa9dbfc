"""The pre-flight check: is this laptop ready for the workshop? A learner runs it the week before and on the day.

    python -m utils.preflight       # from the repository root, SAM_OV_MIRROR set to the kit as the notebooks have it

It checks, in order: the Python version; that the installed packages are the lock's (``constraints.txt``) for this
platform; the workshop kit (found, its checkpoints' sha256, its IR current for this install and readable); the
CPU's instruction sets and the precision OpenVINO will compute in; free memory against the series' peak; the
widget's JupyterLab extension; and one run of vit_b's image encoder (the smallest SAM, the notebooks' default),
with its time and peak memory. Each problem is printed with the one line that fixes it, and the last line is the
verdict. The exit code is 0 when the laptop is ready, 1 when it is not.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent

SUPPORTED_PYTHONS = ("3.10", "3.11", "3.12", "3.13")
"""The Python versions the README supports; `tests/test_constraints.py` resolves the lock for each of them."""

INSTALLS = {
    "full": ["requirements.txt"],
    "light": ["requirements-light.txt"],
    "benchmarks": ["requirements.txt", "requirements-benchmarks.txt"],
    "ray": ["requirements.txt", "requirements-ray.txt"],
}
"""The README's installs, each a set of requirement files taken with ``-c constraints.txt``."""

PEAK_MEMORY_MIB = {"light": 4610, "full": 7685}
"""The largest notebook kernel's peak in CI, by install (random weights, 2-core EPYC, December 2026): the light
install's is notebook 06's on the kit's IR, the full install's notebook 08 quantizing SAM 2.1's encoder (the
README's *Memory*). The check asks for that much free memory."""

LAB_EXTENSION = Path("share", "jupyter", "labextensions", "anywidget", "package.json")
"""What anywidget's wheel installs for JupyterLab: without it the widget's cell shows no canvas."""


@dataclass
class Finding:
    """One check's outcome: ``ok`` False is a problem, which ``fix`` says how to mend in one line."""

    name: str
    ok: bool
    detail: str
    fix: str = ""


def install_kind() -> str:
    """``full`` where PyTorch is installed (the README's full install), else ``light``."""
    return "full" if importlib.util.find_spec("torch") else "light"


def requirements_file(kind: str) -> str:
    return INSTALLS[kind][0]


def install_command(kind: str) -> str:
    return f"python -m pip install -r {requirements_file(kind)} -c constraints.txt"


def check_python(version: tuple[int, ...] = tuple(sys.version_info[:3])) -> Finding:
    minor = f"{version[0]}.{version[1]}"
    text = ".".join(map(str, version))
    supported = f"{SUPPORTED_PYTHONS[0]} to {SUPPORTED_PYTHONS[-1]}"
    if minor in SUPPORTED_PYTHONS:
        return Finding("python", True, f"Python {text} (supported: {supported})")
    return Finding(
        "python",
        False,
        f"Python {text} is not supported (supported: {supported})",
        f"install Python {SUPPORTED_PYTHONS[-1]} (python.org, or your distribution's python3), then make the venv "
        "again as the README's Set-up says",
    )


def check_packages(
    kind: str | None = None, lock: Path = ROOT / "constraints.txt", installed: dict[str, str] | None = None
) -> Finding:
    """Every package the install names is there, and every package it brings (those, and what they require, as
    their metadata says) has the version the lock pins for this platform and Python. The venv's own tools (pip, and
    setuptools where the install needs none) are not the install's, and are left as the venv made them."""
    kind = kind or install_kind()
    absent = [str(path) for path in (ROOT / requirements_file(kind), lock) if not path.is_file()]
    if absent:
        return Finding(
            "packages",
            False,
            f"{' and '.join(absent)} not found: this copy of the repository is not whole",
            "copy the whole repository again (git clone, or the workshop's copy) and run this from its root",
        )
    installed = installed if installed is not None else installed_versions()
    wanted = [Requirement(line) for line in _lines(ROOT / requirements_file(kind))]
    missing = sorted(canonicalize_name(r.name) for r in wanted if canonicalize_name(r.name) not in installed)
    brought = required_closure(canonicalize_name(r.name) for r in wanted)
    wrong = sorted(
        f"{name} {installed[name]} (lock: {pin})"
        for name, pin in lock_pins(lock).items()
        if name in installed and name in brought and not pin.contains(installed[name], prereleases=True)
    )
    if not missing and not wrong:
        return Finding("packages", True, f"the {kind} install, every package at the lock's version")
    problems = [f"missing {', '.join(missing)}"] if missing else []
    if wrong:
        more = f" and {len(wrong) - 5} more" if len(wrong) > 5 else ""
        problems.append(f"not the lock's version: {'; '.join(wrong[:5])}{more}")
    return Finding("packages", False, f"the {kind} install: {'; '.join(problems)}", install_command(kind))


def required_closure(names) -> set[str]:
    """``names`` and every installed package they require, transitively (markers evaluated here, no extras)."""
    distributions = _first_distributions()
    found, pending = set(), list(names)
    while pending:
        name = pending.pop()
        if name in found or name not in distributions:
            continue
        found.add(name)
        for line in distributions[name].requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(canonicalize_name(requirement.name))
    return found


def installed_versions() -> dict[str, str]:
    return {name: distribution.version for name, distribution in _first_distributions().items()}


def _first_distributions() -> dict:
    """Each installed package's distribution, the first on ``sys.path`` as an import finds it: a package may also
    sit vendored further on (setuptools puts its ``_vendor`` folder, with platformdirs 4.4, on the path once it is
    imported, as torch.compile does)."""
    distributions = {}
    for distribution in importlib.metadata.distributions():
        distributions.setdefault(canonicalize_name(distribution.metadata["Name"]), distribution)
    return distributions


def lock_pins(lock: Path) -> dict[str, SpecifierSet]:
    """``name -> ==version`` of the lock's lines whose environment marker holds here (the lock is universal). A
    pin matches a build with a local label too (PyTorch's ``2.14.1+cpu`` wheel for ``==2.14.1``)."""
    requirements = [Requirement(line) for line in _lines(lock)]
    return {canonicalize_name(r.name): r.specifier for r in requirements if r.marker is None or r.marker.evaluate()}


def _lines(path: Path) -> list[str]:
    return [line.split("#")[0].strip() for line in path.read_text().splitlines() if line.split("#")[0].strip()]


def check_kit(
    kind: str | None = None, environ: dict | os._Environ = os.environ, models_dir: Path = Path("models")
) -> Finding:
    """The kit in ``$SAM_OV_MIRROR``: there, its SAM checkpoints' sha256 right, its IR current for this install
    (the stamp `ensure_sam_ir` would take it with) and readable by OpenVINO. The light install needs it."""
    from utils.download import MIRROR_ENV
    from utils.ir_store import KIT_IR_FOLDER

    kind = kind or install_kind()
    kit = environ.get(MIRROR_ENV)
    if not kit:
        if kind == "light" and not _encoder_ir(models_dir, None):
            return Finding(
                "kit",
                False,
                f"no kit: {MIRROR_ENV} is not set, and the light install converts nothing",
                f"export {MIRROR_ENV}=/path/to/workshop-kit (Windows: set {MIRROR_ENV}=C:\\path\\to\\kit)",
            )
        return Finding("kit", True, f"no kit ({MIRROR_ENV} unset): the notebooks download and convert, with network")
    kit = Path(kit)
    if not kit.is_dir():
        return Finding(
            "kit",
            False,
            f"{MIRROR_ENV} names {kit}, which is not there",
            f"copy the kit to {kit}, or point {MIRROR_ENV} at the folder that holds it",
        )
    folders = sorted(path.name for path in (kit / KIT_IR_FOLDER).glob("*") if path.is_dir())
    problems = [*_checkpoint_problems(kit), *_kit_ir_problems(kit)]
    if kind == "light" and not folders:
        problems.append("it holds no IR, which the light install needs (it was made without --with-ir)")
    if problems:
        return Finding(
            "kit",
            False,
            f"the kit {kit}: {'; '.join(problems)}",
            f"copy the kit again, or remake it with the full install: python -m utils.prefetch {kit} --with-ir",
        )
    return Finding("kit", True, f"the kit {kit}: checkpoints intact, IR current for {', '.join(folders) or 'no model'}")


def _checkpoint_problems(kit: Path) -> list[str]:
    """SAM 1's checkpoints in the kit whose sha256 is not the published one."""
    from utils.download import sha256_of
    from utils.model_spec import CHECKPOINTS

    return [
        f"{path.name} is corrupt (sha256 differs)"
        for path, checkpoint in ((kit / Path(c.url).name, c) for c in CHECKPOINTS.values())
        if path.is_file() and sha256_of(path) != checkpoint.sha256
    ]


def _kit_ir_problems(kit: Path) -> list[str]:
    """Each IR folder in the kit: stale for this install (its stamp differs), or a file OpenVINO cannot read."""
    import openvino as ov

    from utils.checkpoints import weights_id
    from utils.ir_store import KIT_IR_FOLDER, STAMP_FILE, conversion_stamp, model_type_of_folder, read_stamp
    from utils.model_spec import model_spec

    problems = []
    for folder in sorted(path for path in (kit / KIT_IR_FOLDER).glob("*") if path.is_dir()):
        found = read_stamp(folder / STAMP_FILE) or {}
        wanted = conversion_stamp(weights_id(model_spec(model_type_of_folder(folder))), True, True)
        stale = [key for key, value in wanted.items() if found.get(key) != value]
        if stale:
            problems.append(f"{folder.name} is stale or unstamped ({', '.join(stale)} differ from this install's)")
            continue
        for xml in sorted(folder.glob("*.xml")):
            try:
                ov.Core().read_model(xml)
            except RuntimeError as error:
                problems.append(f"{folder.name}/{xml.name} is unreadable ({str(error).strip().splitlines()[-1]})")
    return problems


def check_cpu(environ: dict | os._Environ = os.environ) -> Finding:
    from utils.precision import PRECISION_ENV, choose_precision, cpu_description, isa_line

    cpu = cpu_description()
    try:
        precision = choose_precision(environ)
    except ValueError as error:
        return Finding("cpu", False, str(error), f"unset {PRECISION_ENV}")
    return Finding("cpu", True, f"{cpu['cpu']}; {isa_line(cpu)}; OpenVINO will compute in {precision}")


def check_memory(kind: str | None = None, available_mib: float | None = None) -> Finding:
    kind = kind or install_kind()
    available = available_memory_mib() if available_mib is None else available_mib
    need = PEAK_MEMORY_MIB[kind]
    if available is None:
        return Finding("memory", True, f"free memory unknown here; the {kind} install's notebooks peak at {need} MiB")
    if available >= need:
        return Finding("memory", True, f"{available:.0f} MiB free; the {kind} install's notebooks peak at {need} MiB")
    return Finding(
        "memory",
        False,
        f"{available:.0f} MiB free, and the {kind} install's notebooks peak at {need} MiB",
        "close other programs (a browser with many tabs holds gigabytes) and run this again",
    )


def available_memory_mib() -> float | None:
    """Memory available to a new process (Linux: MemAvailable; elsewhere psutil where installed), or None."""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        fields = dict(line.split(":", 1) for line in meminfo.read_text().splitlines())
        return int(fields["MemAvailable"].split()[0]) / 1024
    try:
        import psutil
    except ImportError:
        return None
    return psutil.virtual_memory().available / 2**20


def check_widget(prefix: Path = Path(sys.prefix)) -> Finding:
    if importlib.util.find_spec("jupyterlab") and (prefix / LAB_EXTENSION).is_file():
        return Finding("widget", True, "JupyterLab with the widget's extension (anywidget)")
    return Finding(
        "widget",
        False,
        f"JupyterLab or the widget's extension is missing ({prefix / LAB_EXTENSION})",
        install_command(install_kind()),
    )


def check_encoder(models_dir: Path = Path("models"), environ: dict | os._Environ = os.environ) -> Finding:
    """vit_b's encoder IR (in ``models_dir``, else in the kit) run once after a warm-up, in a process of its own."""
    from utils.download import MIRROR_ENV

    xml = _encoder_ir(models_dir, environ.get(MIRROR_ENV))
    if xml is None:
        return Finding("encoder", True, "no vit_b IR yet to time: notebook 01 (or the kit) makes it")
    done = subprocess.run(
        [sys.executable, "-m", "utils.preflight", "--time-encoder", str(xml)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**environ},
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return Finding(
            "encoder",
            False,
            f"vit_b's encoder failed to run from {xml}: {last}",
            "run it again; if it fails again, make the venv again (README's Set-up) and bring this line",
        )
    timing = json.loads(done.stdout.strip().splitlines()[-1])
    return Finding(
        "encoder",
        True,
        f"vit_b's encoder: {timing['seconds']:.1f} s per image, peak {timing['peak_mib']:.0f} MiB ({xml})",
    )


def _encoder_ir(models_dir: Path, kit: str | None) -> Path | None:
    from utils.ir_store import ENCODER_XML, KIT_IR_FOLDER, ir_directory

    folder = ir_directory("vit_b", models_dir)
    candidates = [folder / ENCODER_XML] + ([Path(kit) / KIT_IR_FOLDER / folder.name / ENCODER_XML] if kit else [])
    return next((xml for xml in candidates if xml.is_file()), None)


def time_encoder(xml: Path) -> dict:
    """One warm-up and one timed run of the encoder at ``xml`` on the truck photo, at the project's precision."""
    import time

    import openvino as ov

    from utils.memory import peak_memory_mib
    from utils.precision import compile_config
    from utils.transforms import encoder_input, read_rgb_image

    encoder = ov.Core().compile_model(xml, "CPU", compile_config())
    pixels = encoder_input(read_rgb_image(ROOT / "data" / "truck.jpg"))
    encoder(pixels)
    start = time.perf_counter()
    encoder(pixels)
    return {"seconds": time.perf_counter() - start, "peak_mib": peak_memory_mib()}


def run_checks(models_dir: Path = Path("models"), time_the_encoder: bool = True) -> list[Finding]:
    findings = [
        check_python(),
        check_packages(),
        check_kit(models_dir=models_dir),
        check_cpu(),
        check_memory(),
        check_widget(),
    ]
    return findings + ([check_encoder(models_dir)] if time_the_encoder else [])


def report(findings: list[Finding]) -> str:
    """A line per check, the fix under each problem, and the verdict last."""
    lines = []
    for finding in findings:
        lines.append(f"{'ok  ' if finding.ok else 'FAIL'} {finding.name}: {finding.detail}")
        if not finding.ok:
            lines.append(f"     fix: {finding.fix}")
    problems = [finding.name for finding in findings if not finding.ok]
    verdict = "ready for the workshop" if not problems else f"NOT ready: fix {', '.join(problems)} (above)"
    lines.append(f"verdict: {verdict} ({platform.node() or 'this machine'}, Python {platform.python_version()})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models-dir", type=Path, default=Path("models"), help="where the notebooks keep IR")
    parser.add_argument("--no-encoder", action="store_true", help="skip the encoder run (tens of seconds)")
    parser.add_argument("--time-encoder", type=Path, help=argparse.SUPPRESS)  # the encoder run's own process
    args = parser.parse_args(argv)
    if args.time_encoder:
        print(json.dumps(time_encoder(args.time_encoder)))
        return 0
    findings = run_checks(args.models_dir, not args.no_encoder)
    print(report(findings))
    return 0 if all(finding.ok for finding in findings) else 1


if __name__ == "__main__":
    sys.exit(main())
