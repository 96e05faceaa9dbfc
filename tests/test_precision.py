"""The project chooses the inference precision and names it in every compile (utils.precision).

OpenVINO's own default comes from CPUID; under a oneDNN ISA cap (CI's emulated AVX2 laptop) it
still says bf16 while the kernels cannot run it. These tests pin the choice against the CPU's
flags and the cap, run the default path under an AVX2 cap in a fresh process (the cap is read
once, at start-up), and check statically that no compile_model call in the project, its
notebooks or its benchmarks leaves the precision to OpenVINO.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from utils.precision import (
    PRECISION_ENV,
    choose_precision,
    compile_config,
    cpu_flags,
    hardware_precision,
    onednn_isa_cap,
    openvino_capabilities,
)
from utils.predictor import OVSamPredictor

ROOT = Path(__file__).resolve().parent.parent
AVX2_CAP = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def test_bf16_is_chosen_exactly_where_the_kernels_run_it():
    capabilities = openvino_capabilities()
    flags = cpu_flags()
    if flags is not None and "avx2" in flags:  # an x86 Linux machine: OpenVINO's list agrees with the kernel's flags
        assert ("BF16" in capabilities) == bool({"avx512_bf16", "amx_bf16"} & flags)
    uncapped = hardware_precision(capabilities, "x86_64", None)
    assert uncapped == ("bf16" if "BF16" in capabilities else "f32")
    # a cap below AVX512_CORE_BF16 takes the bf16 kernels away, whatever OpenVINO lists
    for cap in ("AVX2", "AVX512_CORE", "AVX512_CORE_VNNI"):
        assert hardware_precision(["FP32", "BF16", "INT8"], "x86_64", cap) == "f32"
    for cap in ("AVX512_CORE_BF16", "AVX512_CORE_AMX", None):
        assert hardware_precision(["FP32", "BF16", "INT8"], "x86_64", cap) == "bf16"
    assert hardware_precision(["FP32", "INT8"], "x86_64", None) == "f32"
    assert hardware_precision(["FP32", "FP16", "INT8"], "aarch64", None) == "f16"
    assert hardware_precision(["FP32", "INT8"], "arm64", None) == "f32"
    assert onednn_isa_cap({"ONEDNN_MAX_CPU_ISA": "avx2"}) == "AVX2"
    assert onednn_isa_cap({"ONEDNN_MAX_CPU_ISA": "ALL"}) is None and onednn_isa_cap({}) is None
    assert choose_precision({"ONEDNN_MAX_CPU_ISA": "AVX2"}) == "f32"
    print(f"capabilities {list(capabilities)}, cap AVX2: {choose_precision({'ONEDNN_MAX_CPU_ISA': 'AVX2'})}")


def test_the_override_wins_and_a_wrong_one_is_named():
    assert choose_precision({PRECISION_ENV: "f32"}) == "f32"
    assert choose_precision({PRECISION_ENV: "BF16", "ONEDNN_MAX_CPU_ISA": "AVX2"}) == "bf16"
    with pytest.raises(ValueError, match=f"{PRECISION_ENV}='fp8'.*f32, bf16, f16"):
        choose_precision({PRECISION_ENV: "fp8"})


def test_compile_config_names_the_choice_and_keeps_a_named_one(monkeypatch):
    monkeypatch.setenv(PRECISION_ENV, "f32")
    assert compile_config() == {"INFERENCE_PRECISION_HINT": "f32"}
    assert compile_config({"PERFORMANCE_HINT": "THROUGHPUT"}) == {
        "INFERENCE_PRECISION_HINT": "f32",
        "PERFORMANCE_HINT": "THROUGHPUT",
    }
    monkeypatch.setenv(PRECISION_ENV, "bf16")
    assert compile_config({"INFERENCE_PRECISION_HINT": "f32"}) == {"INFERENCE_PRECISION_HINT": "f32"}


@pytest.mark.parametrize("override", [None, "f32"])
def test_the_predictor_compiles_at_the_chosen_precision(synthetic_ir, monkeypatch, override):
    if override:
        monkeypatch.setenv(PRECISION_ENV, override)
    else:
        monkeypatch.delenv(PRECISION_ENV, raising=False)
    predictor = OVSamPredictor(*synthetic_ir)
    compiled = [predictor.encoder, predictor.decoder, predictor.decoder_image_side, predictor.decoder_prompt_side]
    chosen = {model.get_property("INFERENCE_PRECISION_HINT").to_string() for model in compiled if model is not None}
    assert chosen == {override or choose_precision()}


UNDER_THE_CAP = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import openvino as ov
    import openvino.opset13 as ops
    from utils.precision import choose_precision, openvino_capabilities
    from utils.predictor import OVSamPredictor

    tokens = ops.parameter([1, 64, 32], np.float32)  # one attention: MatMul, Softmax, MatMul
    keys = ops.matmul(tokens, ops.constant(np.eye(32, dtype=np.float32)), False, False)
    weights = ops.softmax(ops.matmul(keys, keys, False, True), 2)
    attention = ov.Model([ops.matmul(weights, keys, False, False)], [tokens])
    try:  # OpenVINO's own default precision, what the code did before it named one
        ov.Core().compile_model(attention, "CPU")
        openvino_default = "compiled"
    except RuntimeError as error:
        openvino_default = " ".join(str(error).split())[:300]
    predictor = OVSamPredictor(*sys.argv[1:3])
    predictor.set_image(np.full((40, 60, 3), 128, np.uint8))
    masks, scores, _ = predictor.predict(point_coords=np.array([[30, 20]]), point_labels=np.array([1]))
    print(json.dumps({
        "capabilities": list(openvino_capabilities()),
        "chosen": choose_precision(),
        "openvino_default": openvino_default,
        "masks": list(masks.shape),
    }))
    """
)


def test_the_default_path_runs_under_an_avx2_cap(tiny_ir_f32):
    """In a process started under the AVX2 cap, the predictor's defaults compile and predict; where OpenVINO lists
    BF16, its own default (no hint, as the code had before) fails to compile there: the trap this module closes."""
    env = {key: value for key, value in os.environ.items() if key != PRECISION_ENV} | AVX2_CAP
    run = subprocess.run(
        [sys.executable, "-c", UNDER_THE_CAP, *map(str, tiny_ir_f32)],
        cwd=ROOT,
        env=env | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    print(result)
    assert result["chosen"] == "f32" and result["masks"][0] >= 1
    if "BF16" in result["capabilities"]:
        assert result["openvino_default"] != "compiled", "OpenVINO's bf16 default compiled under the AVX2 cap"


def code_sources() -> dict[str, str]:
    """Every Python source of the project and every notebook's code (IPython's magics and shell lines dropped)."""
    sources = {}
    for folder in ("utils", "benchmarks", "tools", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            sources[str(path.relative_to(ROOT))] = path.read_text()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        for number, cell in enumerate(cells):
            if cell["cell_type"] == "code":
                lines = "".join(cell["source"]).splitlines()
                code = "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))
                sources[f"{path.relative_to(ROOT)} cell {number}"] = code
    return sources


def compiles_without_a_precision(source: str) -> list[int]:
    """Lines of ``compile_model`` calls whose config is missing, empty, or a dict literal without the hint; a name
    or a call (``F32``, ``compile_config(...)``, a variable that holds one) counts as named."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "compile_model"):
            continue
        keyword = next((keyword.value for keyword in node.keywords if keyword.arg == "config"), None)
        config = node.args[2] if len(node.args) > 2 else keyword
        literal_without_hint = isinstance(config, ast.Dict) and not any(
            isinstance(key, ast.Constant) and key.value == "INFERENCE_PRECISION_HINT" for key in config.keys
        )
        if config is None or literal_without_hint:
            lines.append(node.lineno)
    return lines


def test_every_compile_names_a_precision():
    sources = code_sources()
    assert any("notebooks/07" in name for name in sources) and "utils/predictor.py" in sources
    unnamed = {name: lines for name, source in sources.items() if (lines := compiles_without_a_precision(source))}
    assert unnamed == {}, f"compile_model without a precision (use utils.precision.compile_config): {unnamed}"


def test_the_static_check_catches_an_unnamed_compile():
    assert compiles_without_a_precision("core.compile_model(xml, 'CPU')") == [1]
    assert compiles_without_a_precision("core.compile_model(xml, 'CPU', {'PERFORMANCE_HINT': 'LATENCY'})") == [1]
    assert compiles_without_a_precision("\ncore.compile_model(xml, 'CPU', config={})") == [2]
    assert compiles_without_a_precision("core.compile_model(xml, 'CPU', compile_config())") == []
