"""One owner of "which precision": the f32 compile config and what this CPU computes natively.

OpenVINO's CPU plugin runs bf16 by default on CPUs with AVX-512 BF16 or AMX and f32
elsewhere, so every comparison that must be exact passes ``F32``, and every decision
that depends on the hardware (is bf16 native? will INT8 pay off?) reads it here.
The decision comes from OpenVINO's own ``OPTIMIZATION_CAPABILITIES``, which exists on
every OS; the ISA flags are printed next to it for the reader where the OS lists them.
"""

from __future__ import annotations

import platform
from pathlib import Path

import openvino as ov

F32 = {"INFERENCE_PRECISION_HINT": "f32"}
"""compile_model config for f32: without it, CPUs with AVX-512 BF16 or AMX run bf16."""

ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")


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
    """CPU model, OpenVINO's capabilities (the precisions it runs natively) and, where listed, the ISA flags.

    ``isa`` maps each flag of ``ISA_FLAGS`` to True/False, or to None where the OS gives no flags.
    """
    core = ov.Core()
    flags = cpu_flags()
    return {
        "cpu": core.get_property("CPU", "FULL_DEVICE_NAME"),
        "machine": platform.machine(),
        "isa": {flag: None if flags is None else flag in flags for flag in ISA_FLAGS},
        "openvino_capabilities": list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")),
        "openvino": ov.get_version(),
    }


def native_bf16(cpu: dict) -> bool:
    """True when OpenVINO computes bf16 in hardware here (AVX-512 BF16 or AMX); elsewhere bf16 is emulated and slow."""
    return "BF16" in cpu["openvino_capabilities"]


def isa_line(cpu: dict) -> str:
    """One line for the reader: each ISA flag yes/no (unknown where the OS lists none) and OpenVINO's capabilities."""
    words = {True: "yes", False: "no", None: "unknown"}
    flags = ", ".join(f"{flag} {words[present]}" for flag, present in cpu["isa"].items())
    return f"ISA: {flags}; OpenVINO CPU capabilities: {', '.join(cpu['openvino_capabilities'])}"
