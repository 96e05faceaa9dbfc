"""One owner of "which precision": the project chooses it and names it in every compile.

OpenVINO's CPU plugin picks bf16 by default where CPUID lists AVX-512 BF16 or AMX, f16 on
ARM (such as Apple silicon) and f32 elsewhere. That guess is not always what the kernels can run: under a oneDNN ISA cap
(``ONEDNN_MAX_CPU_ISA=AVX2``, how CI emulates an AVX2 laptop on a newer CPU) OpenVINO
still lists ``BF16`` and defaults to it, yet oneDNN has no bf16 kernels, and a Softmax
node fails to compile ("Supported primitive descriptors list is empty"). So nothing here
relies on the default: `choose_precision` decides from what the CPU can really run, and
`compile_config` puts that choice into every ``compile_model`` config as
``INFERENCE_PRECISION_HINT``. Comparisons that must be exact pass ``F32`` instead.
"""

from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

import openvino as ov

F32 = {"INFERENCE_PRECISION_HINT": "f32"}
"""compile_model config for f32: for exact parity with PyTorch, whatever the CPU."""

PRECISION_ENV = "SAM_OV_PRECISION"
"""Environment variable that overrides the chosen precision: f32, bf16 or f16."""

PRECISIONS = ("f32", "bf16", "f16")

ONEDNN_ISA_ORDER = (
    "SSE41",
    "AVX",
    "AVX2",
    "AVX2_VNNI",
    "AVX2_VNNI_2",
    "AVX512_CORE",
    "AVX512_CORE_VNNI",
    "AVX512_CORE_BF16",
    "AVX512_CORE_FP16",
    "AVX512_CORE_AMX",
    "AVX512_CORE_AMX_FP16",
)
"""oneDNN's ISA levels, lowest first, as ``ONEDNN_MAX_CPU_ISA`` names them; ``ALL`` or ``DEFAULT`` means no cap."""

BF16_ISA = "AVX512_CORE_BF16"
"""The lowest oneDNN level with bf16 kernels: a lower cap leaves OpenVINO no bf16 kernel to run."""

ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")


@functools.cache
def openvino_capabilities() -> tuple[str, ...]:
    """OpenVINO's CPU ``OPTIMIZATION_CAPABILITIES`` (e.g. FP32, BF16, INT8): read from CPUID, blind to an ISA cap."""
    return tuple(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def onednn_isa_cap(environ: os._Environ | dict | None = None) -> str | None:
    """The oneDNN ISA cap in force (``ONEDNN_MAX_CPU_ISA``, upper-cased), or None without one: unset, ``ALL``,
    ``DEFAULT`` or a name oneDNN does not know (it ignores those too)."""
    value = (os.environ if environ is None else environ).get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    return value if value in ONEDNN_ISA_ORDER else None


def hardware_precision(
    capabilities: tuple[str, ...] | list[str] | None = None,
    machine: str | None = None,
    isa_cap: str | None = None,
) -> str:
    """The fastest precision this CPU's kernels really run: f16 on ARM where OpenVINO lists FP16, bf16 on x86
    where OpenVINO lists BF16 and no oneDNN cap below `BF16_ISA` takes its kernels away, f32 elsewhere.

    The arguments default to this machine (`openvino_capabilities`, ``platform.machine()``, `onednn_isa_cap`);
    tests pass others to cover CPUs they do not run on."""
    capabilities = openvino_capabilities() if capabilities is None else capabilities
    machine = (platform.machine() if machine is None else machine).lower()
    if machine in ("arm64", "aarch64") or machine.startswith("arm"):
        return "f16" if "FP16" in capabilities else "f32"
    capped_below_bf16 = isa_cap is not None and ONEDNN_ISA_ORDER.index(isa_cap) < ONEDNN_ISA_ORDER.index(BF16_ISA)
    return "bf16" if "BF16" in capabilities and not capped_below_bf16 else "f32"


def choose_precision(environ: os._Environ | dict | None = None) -> str:
    """The precision every compile in the project names: ``$SAM_OV_PRECISION`` when set, else `hardware_precision`
    under the oneDNN cap in ``environ`` (default: this process's environment)."""
    environ = os.environ if environ is None else environ
    override = environ.get(PRECISION_ENV, "").strip().lower()
    if override:
        if override not in PRECISIONS:
            raise ValueError(f"{PRECISION_ENV}={override!r}: choose one of {', '.join(PRECISIONS)}, or unset it.")
        return override
    return hardware_precision(isa_cap=onednn_isa_cap(environ))


def compile_config(config: dict | None = None) -> dict:
    """``config`` for ``compile_model`` with ``INFERENCE_PRECISION_HINT`` set to `choose_precision` unless it
    names one already: no compile is left to OpenVINO's guess."""
    return {"INFERENCE_PRECISION_HINT": choose_precision(), **(config or {})}


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags as Linux lists them in /proc/cpuinfo; None where the OS does not."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return None
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return None


def cpu_description() -> dict:
    """CPU model, OpenVINO's capabilities, the oneDNN ISA cap, the precision the kernels run natively
    (``hardware_precision``) and, where listed, the ISA flags.

    ``isa`` maps each flag of ``ISA_FLAGS`` to True/False, or to None where the OS gives no flags.
    """
    flags = cpu_flags()
    isa_cap = onednn_isa_cap()
    return {
        "cpu": ov.Core().get_property("CPU", "FULL_DEVICE_NAME"),
        "machine": platform.machine(),
        "isa": {flag: None if flags is None else flag in flags for flag in ISA_FLAGS},
        "openvino_capabilities": list(openvino_capabilities()),
        "onednn_isa_cap": isa_cap,
        "hardware_precision": hardware_precision(isa_cap=isa_cap),
        "openvino": ov.get_version(),
    }


def widest_isa(isa: dict) -> str:
    """The widest vector or matrix ISA in a `cpu_description` ``isa`` map, in words: AMX, AVX-512 BF16, AVX-512 or
    AVX2."""
    names = (("amx_bf16", "AMX"), ("avx512_bf16", "AVX-512 BF16"), ("avx512f", "AVX-512"))
    return next((name for flag, name in names if isa.get(flag)), "AVX2")


def native_bf16(cpu: dict) -> bool:
    """True when the kernels compute bf16 in hardware here (AVX-512 BF16 or AMX, not capped away); elsewhere
    bf16 is emulated and slow, or does not compile at all."""
    return cpu["hardware_precision"] == "bf16"


def isa_line(cpu: dict) -> str:
    """One line for the reader: each ISA flag yes/no (unknown where the OS lists none), OpenVINO's capabilities
    and, under a oneDNN cap, the cap."""
    words = {True: "yes", False: "no", None: "unknown"}
    flags = ", ".join(f"{flag} {words[present]}" for flag, present in cpu["isa"].items())
    cap = f"; oneDNN capped at {cpu['onednn_isa_cap']}" if cpu.get("onednn_isa_cap") else ""
    return f"ISA: {flags}; OpenVINO CPU capabilities: {', '.join(cpu['openvino_capabilities'])}{cap}"
