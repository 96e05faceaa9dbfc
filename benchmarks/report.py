"""What every benchmark prints first and writes last: the machine, the weights, and a JSON file."""

from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import openvino as ov

from utils.checkpoints import describe_weights

F32 = {"INFERENCE_PRECISION_HINT": "f32"}
"""compile_model config for f32: without it, CPUs with AVX-512 BF16 or AMX run bf16."""
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")


def cpu_description() -> dict:
    """CPU model, the ISA flags that decide OpenVINO's precision, and the plugin's capabilities."""
    flags: set[str] = set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    core = ov.Core()
    return {
        "cpu": core.get_property("CPU", "FULL_DEVICE_NAME"),
        "machine": platform.machine(),
        "isa": {flag: flag in flags for flag in ISA_FLAGS},
        "openvino_capabilities": list(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")),
        "openvino": ov.get_version(),
    }


def print_header(model_type: str) -> dict:
    """Print the CPU, its ISA and the weights in use; return the CPU description for the JSON."""
    cpu = cpu_description()
    print(f"CPU: {cpu['cpu']} ({cpu['machine']}), OpenVINO {cpu['openvino']}")
    print("ISA: " + ", ".join(f"{flag} {'yes' if present else 'no'}" for flag, present in cpu["isa"].items()))
    print(f"OpenVINO CPU capabilities: {', '.join(cpu['openvino_capabilities'])}")
    print(describe_weights(model_type))
    return cpu


def write_json(result: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(f"\nwritten: {path}")


def median_ms(function: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``function`` in milliseconds over ``repeats`` calls, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000
