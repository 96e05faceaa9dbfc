"""What every benchmark shares: the machine header, timing, peak memory, the worker processes and JSON output."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from utils.checkpoints import describe_weights
from utils.precision import cpu_description, isa_line

ROOT = Path(__file__).resolve().parent.parent


def benchmark_parser(description: str) -> argparse.ArgumentParser:
    """The arguments every benchmark script shares: --model-type, --image, --models-dir."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model-type", default="vit_b")
    parser.add_argument("--image", type=Path, default=ROOT / "data" / "truck.jpg")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    return parser


def print_header(model_type: str) -> dict:
    """Print the CPU, its ISA and the weights in use; return the CPU description for the JSON."""
    cpu = cpu_description()
    print(f"CPU: {cpu['cpu']} ({cpu['machine']}), OpenVINO {cpu['openvino']}")
    print(isa_line(cpu))
    print(describe_weights(model_type))
    return cpu


def write_json(result: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str))
    print(f"\nwritten: {path}")


def publish(result: dict, table: str, path: Path) -> dict:
    """Print a benchmark's markdown ``table`` and write its ``result`` to ``path`` as JSON; return the result."""
    print()
    print(table)
    write_json(result, path)
    return result


def model_and_ir(args: argparse.Namespace) -> tuple:
    """The PyTorch model of ``--model-type`` and its IR (encoder_xml, decoder_xml) in ``--models-dir``, converted
    first where missing: what the benchmarks that time PyTorch against OpenVINO start from."""
    from utils.checkpoints import load_sam
    from utils.convert import ensure_sam_ir
    from utils.model_spec import model_spec

    spec = model_spec(args.model_type)
    encoder_xml, decoder_xml = ensure_sam_ir(spec, args.models_dir)
    return load_sam(spec, args.models_dir / "checkpoints"), encoder_xml, decoder_xml


def count_gmac(module, *args, **kwargs) -> float:
    """Multiply-adds of one forward pass ``module(*args, **kwargs)`` (tensors), in billions: torch's FLOP
    counter, halved (a multiply-add is two FLOPs). Attention runs on PyTorch's math backend while counting:
    the counter sees nothing inside the CPU's fused `scaled_dot_product_attention` kernel.

    The pass runs on fake tensors (shapes without data, `FakeTensorMode`): counting vit_b takes half a second
    instead of a real forward pass of tens of seconds on 2 cores. A module whose shapes depend on its values
    (a decoder that drops the padding points, say) cannot run on them; it is counted on a real pass."""
    from torch._subclasses.fake_tensor import DataDependentOutputException, DynamicOutputShapeException, FakeTensorMode

    try:
        with FakeTensorMode(allow_non_fake_inputs=True):
            return _counted_gmac(module, *args, **kwargs)
    except (DataDependentOutputException, DynamicOutputShapeException):
        return _counted_gmac(module, *args, **kwargs)


def _counted_gmac(module, *args, **kwargs) -> float:
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        module(*args, **kwargs)
    return counter.get_total_flops() / 2e9


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


def seconds(function: Callable[[], object]) -> float:
    """Wall time of one call of ``function`` in seconds."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def cpu_times() -> list[int] | None:
    """The whole machine's CPU time counters from /proc/stat (user, nice, system, idle, iowait, irq, softirq,
    steal), or None where the OS has none."""
    stat = Path("/proc/stat")
    if not stat.exists():
        return None
    return [int(value) for value in stat.read_text().splitlines()[0].split()[1:9]]


def stolen_percent(before: list[int] | None, after: list[int] | None) -> float | None:
    """The share of the CPU time between two `cpu_times` readings that the hypervisor gave to other machines
    (*steal*): on a shared virtual machine a run that lost much of it ran slower than the code does."""
    if before is None or after is None:
        return None
    spent = [end - start for start, end in zip(before, after)]
    return 100 * spent[7] / max(sum(spent), 1)


def run_worker(module: str, arguments: list[str]) -> dict:
    """Run ``python -m module --worker ...`` in a fresh interpreter and parse the JSON on its last stdout line.

    A fresh process gives each measurement its own peak memory and thread pools. A worker that
    fails returns ``{"error": <its last line of stderr>}`` instead of raising, so one failure
    does not lose the others.
    """
    done = subprocess.run(
        [sys.executable, "-m", module, *arguments], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        stderr = done.stderr.strip()
        return {"error": stderr.splitlines()[-1] if stderr else f"exit code {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])
