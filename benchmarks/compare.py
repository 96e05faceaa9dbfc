"""PyTorch against OpenVINO for SAM, every configuration in one run: a markdown table, JSON and a PNG chart.

    .venv/bin/python -m benchmarks.compare                  # vit_b on data/truck.jpg, every row: the long run
    .venv/bin/python -m benchmarks.compare --repeats 1 --prompt-repeats 3 --amg-points-per-side 8 --throughput-images 2
    .venv/bin/python -m benchmarks.compare --rows "PyTorch eager f32" "OpenVINO INT8 encoder"   # some rows only
    .venv/bin/python -m benchmarks.compare --model-type sam2.1_hiera_tiny    # a SAM 2.1 size or edgetam

From Python (notebook 07): ``compare.run(compare.settings(repeats=1, ...))`` returns the result.

Rows: PyTorch eager f32, PyTorch bf16 autocast, PyTorch with torch.compile (f32), ONNX
Runtime (f32, on segment_anything's ONNX export, see `benchmarks.peers`), OpenVINO f32 hint,
OpenVINO at the device's default precision with the plain and the fused-attention export, and
OpenVINO with the INT8 encoder. Columns: encoder latency (median after warm-up),
one point prompt end to end (`predict`, upscaling included), automatic mask
generation end to end, encoder throughput over several images (OpenVINO:
`AsyncInferQueue` with the THROUGHPUT hint; PyTorch: one image after another),
the peak memory of the process that measured the row (an OpenVINO row releases
its latency predictor before the throughput phase, see `measure`), and the model's size on
disk. Ratios are against PyTorch eager f32 measured in the same run. Above the table, the encoder's
work per image in GMAC (`benchmarks.report.count_gmac`, attention included, counted in a worker
process); the GMAC/s column is that work over each row's encoder latency.

For a SAM 2.1 size or EdgeTAM, four rows run: PyTorch eager f32 (transformers' model through
`benchmarks.torch_reference.TorchSam2Predictor`, with this series' mask generator, since sam2's own is not
installable), OpenVINO f32, OpenVINO at the default precision (the SAM 2 export keeps transformers' fused
attention, so it is the fused-export row) and the INT8 encoder; the other rows are SAM 1's and say so.

Every row runs in a fresh process, so its peak memory and its thread pools are its own.
What a row compiles on its first calls (torch.compile) is compiled before any timing, and
the time it took is printed beside the table. A row whose runtime is not installed here
(ONNX Runtime: requirements-benchmarks.txt; torch.compile: a C++ compiler), or that ``rows``
leaves out, is shown as not run, and only the IR the chosen rows use is made.
A measurement that fails is shown as failed in the table, and the command then exits
non-zero. After the rows, when the INT8 row is among them, the INT8 predictor (calibrated on
data/calibration/) is compared with the FP one on the other images, those directly in data/
(embedding error, mask IoU on fixed prompts). Writes compare.json, compare.md and compare.png.
With SAM_RANDOM_WEIGHTS_SEED set, the timings are real and the accuracy figures only prove the pipeline.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import sys
from functools import partial
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np

from benchmarks.compare_table import BASELINE, COLUMNS, add_ratios, failed_measurements, markdown, plot
from benchmarks.report import ROOT, median_ms, print_header, run_worker, seconds, write_json
from utils.accuracy import fixed_prompts
from utils.memory import peak_memory_mib
from utils.model_spec import SAM_2, model_spec, resolve
from utils.precision import F32, compile_config, native_bf16

ROWS = {
    BASELINE: {"backend": "pytorch", "autocast": False, "sam2": True},
    "PyTorch bf16 autocast": {"backend": "pytorch", "autocast": True},
    "PyTorch torch.compile f32": {"backend": "pytorch", "autocast": False, "compile": True},
    "ONNX Runtime f32": {"backend": "onnxruntime"},
    "OpenVINO f32": {"backend": "openvino", "fused": True, "int8": False, "config": F32, "sam2": True},
    "OpenVINO default, plain export": {"backend": "openvino", "fused": False, "int8": False, "config": {}},
    "OpenVINO default, fused export": {"backend": "openvino", "fused": True, "int8": False, "config": {}, "sam2": True},
    "OpenVINO INT8 encoder": {"backend": "openvino", "fused": True, "int8": True, "config": {}, "sam2": True},
}
"""Each row's configuration; ``sam2``: the row also runs for the SAM 2 family (its one export, which keeps
transformers' fused attention, counts as the fused export; the other rows are SAM 1's peers and exports)."""
SAM2_ROW_REASON = "SAM 1 only (the SAM 2 family has one export and no ONNX or compiled peer here)"
DEFAULTS = {
    "model_type": "vit_b",
    "image": ROOT / "data" / "truck.jpg",
    "models_dir": ROOT / "models",
    "calibration_dir": ROOT / "data" / "calibration",
    "accuracy_dir": ROOT / "data",
    "subset_size": 128,
    "device": "CPU",
    "warmup": 1,
    "repeats": 3,
    "prompt_repeats": 20,
    "amg_points_per_side": 32,
    "throughput_images": 4,
    "force_bf16": False,
    "output_dir": ROOT / "benchmarks" / "results",
    "rows": list(ROWS),
}
HELP = {
    "calibration_dir": "images for INT8 calibration",
    "accuracy_dir": "images for the INT8 accuracy check: other images than the calibration ones",
    "subset_size": "at most this many calibration images",
    "device": "OpenVINO device for the OpenVINO rows",
    "warmup": "untimed encoder runs before timing (0 or more)",
    "repeats": "timed encoder runs (median)",
    "prompt_repeats": "timed prompts (median)",
    "force_bf16": "measure PyTorch bf16 autocast even without native bf16 (very slow)",
    "rows": "the rows to measure (default: every row); the others are shown as not run",
}
WORK_WORKER = "count work"
"""The worker that counts the encoder's GMAC (`count_encoder_work`), beside the rows' workers."""


def settings(**overrides) -> dict:
    """The defaults with ``overrides``, paths made absolute (the row processes run from the repository root)."""
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown benchmark setting(s): {', '.join(sorted(unknown))}; known: {', '.join(DEFAULTS)}")
    merged = DEFAULTS | overrides
    unknown_rows = [name for name in merged["rows"] if name not in ROWS]
    if unknown_rows or not merged["rows"]:
        raise ValueError(f"unknown or no benchmark rows {unknown_rows}; choose among: {'; '.join(ROWS)}")
    return {
        key: str(Path(value).resolve()) if isinstance(DEFAULTS[key], Path) else value for key, value in merged.items()
    } | {"rows": [name for name in ROWS if name in merged["rows"]]}


# ------------------------------------------------------------------ one row, in its own process
class RowParts(NamedTuple):
    """What one configuration brings to the measurement."""

    predictor: object  # set_image / predict like SamPredictor
    make_generator: Callable[[], object]  # a fresh mask generator with .generate(image)
    throughput: Callable[[np.ndarray, int], float]  # (preprocessed image, count) -> images per second
    size_mb: float
    context: contextlib.AbstractContextManager  # entered around every measurement
    warm_up: Callable[[np.ndarray], object] = lambda image: None  # untimed first calls (compilation), on the image


def measure(make_parts: Callable[[], RowParts], image: np.ndarray, setup: dict) -> dict:
    """Every column for one configuration. A column that fails holds {"error": ...} and the others still run.

    The throughput column runs last, after the parts are dropped: an OpenVINO row compiles a second
    encoder for it (the THROUGHPUT hint), which a deployment would hold instead of the latency
    predictor, not beside it, so that predictor is released first. The PyTorch and ONNX Runtime rows
    run throughput on their one model, which their throughput function keeps alive.
    """
    parts = make_parts()
    with parts.context:
        result = latency_columns(parts, image, setup)
        throughput = parts.throughput
        del parts  # the last reference when make_parts built them (measure_row); a caller that kept them keeps them
        gc.collect()
        preprocessed = resolve(model_spec(setup["model_type"]).family.preprocess)(image)
        result["throughput_fps"] = _guarded(lambda: throughput(preprocessed, setup["throughput_images"]))
    result["peak_memory_mib"] = peak_memory_mib()
    return result


def _family(setup: dict):
    """The family of the model type the run measures (`utils.model_spec.Family`)."""
    return model_spec(setup["model_type"]).family


def latency_columns(parts: RowParts, image: np.ndarray, setup: dict) -> dict:
    """The size and the columns that use the predictor: encoder, one prompt, the mask generator."""
    one_point = fixed_prompts(image)["one point"]
    result: dict = {"model_size_mb": parts.size_mb}
    result["warm_up_s"] = _guarded(lambda: seconds(lambda: parts.warm_up(image)))
    result["encoder_ms"] = _guarded(
        lambda: median_ms(lambda: parts.predictor.set_image(image), setup["repeats"], setup["warmup"])
    )
    result["prompt_ms"] = _guarded(
        lambda: median_ms(lambda: parts.predictor.predict(**one_point), setup["prompt_repeats"], 3)
    )
    result["amg_s"] = _guarded(lambda: seconds(lambda: parts.make_generator().generate(image)))
    return result


def measure_row(name: str, setup: dict) -> dict:
    from utils.checkpoints import load_sam
    from utils.transforms import read_rgb_image

    spec = ROWS[name]

    def make_parts() -> RowParts:
        if spec["backend"] == "pytorch":
            sam = load_sam(setup["model_type"], Path(setup["models_dir"]) / "checkpoints", show_progress=False)
            if _family(setup) is SAM_2:
                return sam2_pytorch_parts(sam, setup["amg_points_per_side"])
            return pytorch_parts(sam, spec["autocast"], setup["amg_points_per_side"], spec.get("compile", False))
        if spec["backend"] == "onnxruntime":
            return onnxruntime_parts(setup)
        return openvino_parts(spec, setup)

    return measure(make_parts, read_rgb_image(setup["image"]), setup)


def pytorch_parts(sam, autocast: bool, amg_points_per_side: int, compiled: bool = False) -> RowParts:
    """`segment_anything` on ``sam``, in f32 or under bf16 autocast (outputs widened to f32 for NumPy).

    With ``compiled``, the image encoder and mask decoder go through torch.compile first
    (`benchmarks.peers.compile_sam`); the warm-up then compiles them for one prompt and for
    the mask generator's batches, before anything is timed.
    """
    import torch

    from benchmarks.peers import compile_sam
    from benchmarks.torch_reference import Float32OutputPredictor, bf16_autocast, mask_generator

    def throughput(preprocessed: np.ndarray, images: int) -> float:
        batch = torch.from_numpy(preprocessed)
        with torch.no_grad():
            return images / seconds(lambda: [sam.image_encoder(batch) for _ in range(images)])

    size_mb = sum(t.numel() * t.element_size() for t in sam.state_dict().values()) / 1e6
    context = bf16_autocast() if autocast else contextlib.nullcontext()
    if compiled:
        sam = compile_sam(sam)
    predictor = Float32OutputPredictor(sam)
    generator = partial(mask_generator, sam, points_per_side=amg_points_per_side)

    def warm_up(image: np.ndarray) -> None:
        if compiled:  # one prompt (batch 1), then a generator batch of 4 (the dynamic-batch graph)
            predictor.set_image(image)
            predictor.predict(**fixed_prompts(image)["one point"])
            mask_generator(sam, points_per_side=2).generate(image)

    return RowParts(predictor, generator, throughput, size_mb, context, warm_up)


def sam2_pytorch_parts(model, amg_points_per_side: int) -> RowParts:
    """transformers' SAM 2.1 or EdgeTAM model in eager PyTorch at f32 (`benchmarks.torch_reference.TorchSam2Predictor`),
    with this series' mask generator on it: sam2's own generator is not installable, and the same generator on
    both runtimes compares the runtimes alone."""
    import torch

    from benchmarks.torch_reference import TorchSam2Predictor
    from utils.amg import OVSamAutomaticMaskGenerator

    predictor = TorchSam2Predictor(model)

    def throughput(preprocessed: np.ndarray, images: int) -> float:
        batch = torch.from_numpy(preprocessed)
        with torch.no_grad():
            return images / seconds(lambda: [predictor.encoder_module(batch) for _ in range(images)])

    size_mb = sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 1e6
    generator = partial(
        OVSamAutomaticMaskGenerator, predictor, points_per_side=amg_points_per_side, show_progress=False
    )
    return RowParts(predictor, generator, throughput, size_mb, contextlib.nullcontext())


def onnxruntime_parts(setup: dict) -> RowParts:
    """ONNX Runtime on the ONNX files `export_onnx_in_subprocess` wrote (`benchmarks.peers.OrtSamPredictor`)."""
    from benchmarks.peers import ONNX_ENCODER_WEIGHTS, OrtSamPredictor
    from utils.amg import OVSamAutomaticMaskGenerator

    paths = onnx_paths(setup)
    predictor = OrtSamPredictor(*paths)

    def throughput(preprocessed: np.ndarray, images: int) -> float:  # one image after another, as PyTorch
        return images / seconds(lambda: [predictor._encode(preprocessed) for _ in range(images)])

    files = (*paths, paths[0].with_name(ONNX_ENCODER_WEIGHTS))  # the encoder's weights are external data
    size_mb = sum(path.stat().st_size for path in files) / 1e6
    generator = partial(
        OVSamAutomaticMaskGenerator, predictor, points_per_side=setup["amg_points_per_side"], show_progress=False
    )
    return RowParts(predictor, generator, throughput, size_mb, contextlib.nullcontext())


def onnx_paths(setup: dict) -> tuple[Path, Path]:
    from benchmarks.peers import ONNX_DECODER, ONNX_ENCODER

    folder = Path(setup["models_dir"]) / "onnx" / setup["model_type"]
    return folder / ONNX_ENCODER, folder / ONNX_DECODER


def openvino_parts(spec: dict, setup: dict) -> RowParts:
    import openvino as ov

    from utils.amg import OVSamAutomaticMaskGenerator
    from utils.convert import ensure_sam_ir
    from utils.predictor import open_predictor
    from utils.quantize import ensure_int8_encoder

    encoder_xml, decoder_xml = ensure_sam_ir(
        setup["model_type"], setup["models_dir"], show_progress=False, fused_attention=spec["fused"]
    )
    if spec["int8"]:
        encoder_xml = ensure_int8_encoder(
            setup["model_type"], setup["models_dir"], setup["calibration_dir"], setup["subset_size"]
        )
    predictor = open_predictor(encoder_xml, decoder_xml, device=setup["device"], config=spec["config"])

    def throughput(preprocessed: np.ndarray, images: int) -> float:
        compiled = ov.Core().compile_model(
            encoder_xml, setup["device"], compile_config({"PERFORMANCE_HINT": "THROUGHPUT", **spec["config"]})
        )
        queue = ov.AsyncInferQueue(compiled)  # as many requests as the plugin finds optimal
        for _ in range(len(queue) if setup["warmup"] else 0):
            queue.start_async({0: preprocessed})
        queue.wait_all()

        def run_all() -> None:
            for _ in range(images):
                queue.start_async({0: preprocessed})
            queue.wait_all()

        return images / seconds(run_all)

    size_mb = (
        sum(
            Path(xml).stat().st_size + Path(xml).with_suffix(".bin").stat().st_size
            for xml in (encoder_xml, decoder_xml)
        )
        / 1e6
    )
    generator = partial(
        OVSamAutomaticMaskGenerator, predictor, points_per_side=setup["amg_points_per_side"], show_progress=False
    )
    return RowParts(predictor, generator, throughput, size_mb, contextlib.nullcontext())


def _guarded(measurement):
    """The measurement, or {"error": "..."} so one failing column does not lose the row."""
    try:
        return measurement()
    except Exception as error:  # noqa: BLE001 - reported in the table, not hidden
        return {"error": f"{type(error).__name__}: {error}"[:200]}


# ------------------------------------------------------------------ the parent: set-up, rows, report
def prepare_models(setup: dict) -> dict:
    """Make the IR the chosen rows use (the fused and plain exports, the INT8 encoder) before any timing starts."""
    from utils.convert import ensure_sam_ir
    from utils.quantize import ensure_int8_encoder

    chosen = [
        ROWS[name]
        for name in setup["rows"]
        if ROWS[name]["backend"] == "openvino" and (ROWS[name].get("sam2") or _family(setup) is not SAM_2)
    ]
    models = {}
    if any(spec["fused"] for spec in chosen):
        models["fused"] = ensure_sam_ir(setup["model_type"], setup["models_dir"])
    if any(not spec["fused"] for spec in chosen):
        models["plain"] = ensure_sam_ir(setup["model_type"], setup["models_dir"], fused_attention=False)
    if any(spec["int8"] for spec in chosen):
        models["int8"] = ensure_int8_encoder(
            setup["model_type"], setup["models_dir"], setup["calibration_dir"], setup["subset_size"]
        )
    return models


def export_onnx_in_subprocess(setup: dict) -> str | None:
    """Export the model to ONNX for the ONNX Runtime row (`benchmarks.peers`); the error if that failed, else None.

    Anew on every run (tens of seconds), so the files never lag the weights; in a worker
    process, so the parent (a notebook's kernel) does not hold SAM or the tracer's memory.
    """
    print("exporting to ONNX for the ONNX Runtime row ...", flush=True)
    folder = onnx_paths(setup)[0].parent
    arguments = [str(folder), "--model-type", setup["model_type"], "--models-dir", setup["models_dir"]]
    error = run_worker("benchmarks.peers", arguments).get("error")
    return f"ONNX export failed: {error}" if error else None


def not_run_reason(name: str, cpu: dict, setup: dict) -> str | None:
    """Why a row is not measured (not chosen, no native bf16 here, a peer's runtime missing), or None."""
    from benchmarks.peers import onnxruntime_missing, torch_compile_missing

    spec = ROWS[name]
    if name not in setup["rows"]:
        return "not among the chosen rows (--rows)"
    if _family(setup) is SAM_2 and not spec.get("sam2"):
        return SAM2_ROW_REASON
    if spec.get("autocast") and not native_bf16(cpu) and not setup["force_bf16"]:
        return "no native bf16 (AVX-512 BF16 or AMX) on this CPU; --force-bf16 measures it anyway"
    if spec.get("compile"):
        return torch_compile_missing()
    if spec["backend"] == "onnxruntime":
        return onnxruntime_missing()
    return None


def unmeasured_row(kind: str, message: str) -> dict:
    """A row whose every column holds {kind: message}: kind "not_measured" (skipped) or "error" (failed)."""
    return {column: {kind: message} for column in COLUMNS} | {"peak_memory_mib": None, "model_size_mb": None}


def count_encoder_work(setup: dict) -> float:
    """The image encoder's GMAC per image for ``setup["model_type"]``, on the same module the IR is exported from."""
    import torch

    from benchmarks.report import count_gmac
    from benchmarks.sam2_encoders import encoder_module
    from utils.checkpoints import load_sam

    model = load_sam(setup["model_type"], Path(setup["models_dir"]) / "checkpoints", show_progress=False)
    return count_gmac(encoder_module(setup["model_type"], model), torch.zeros(1, 3, 1024, 1024))


def run_row_in_subprocess(name: str, setup: dict) -> dict:
    print(f"measuring: {name} ...", flush=True)
    row = run_worker("benchmarks.compare", ["--worker", name, "--settings", json.dumps(setup)])
    if "error" in row:
        return unmeasured_row("error", row["error"])
    print(f"  {json.dumps(row)}", flush=True)
    return row


def int8_accuracy(models: dict, setup: dict) -> dict:
    """INT8 encoder against the FP encoder, both OpenVINO at default precision, on each image in the accuracy folder."""
    from utils.accuracy import compare_on_images
    from utils.predictor import open_predictor
    from utils.quantize import image_files
    from utils.transforms import read_rgb_image

    encoder_xml, decoder_xml = models["fused"]
    images = {path.name: read_rgb_image(path) for path in image_files(setup["accuracy_dir"])}
    device = setup["device"]
    return compare_on_images(
        open_predictor(models["int8"], decoder_xml, device=device),
        open_predictor(encoder_xml, decoder_xml, device=device),
        images,
    )


def run(settings: dict) -> dict:
    """Measure every row, write compare.md / .json / .png to ``settings["output_dir"]`` and return the result.

    Failed measurements do not raise: they are in the table and in ``result["failed"]``.
    """
    from utils.checkpoints import describe_weights

    cpu = print_header(settings["model_type"])
    models = prepare_models(settings)
    work = run_worker("benchmarks.compare", ["--worker", WORK_WORKER, "--settings", json.dumps(settings)])
    rows = {}
    for name, spec in ROWS.items():
        reason = not_run_reason(name, cpu, settings)
        failure = export_onnx_in_subprocess(settings) if spec["backend"] == "onnxruntime" and not reason else None
        if reason:
            rows[name] = unmeasured_row("not_measured", reason)
            print(f"skipped: {name}: {reason}")
        elif failure:
            rows[name] = unmeasured_row("error", failure)
            print(f"failed: {name}: {failure}")
        else:
            rows[name] = run_row_in_subprocess(name, settings)
    add_ratios(rows)
    result = {
        "cpu": cpu,
        "model_type": settings["model_type"],
        "weights": describe_weights(settings["model_type"]),
        "encoder_gmac": work.get("encoder_gmac", work),  # or {"error": ...}
        "settings": settings,
        "rows": rows,
        "int8_accuracy": int8_accuracy(models, settings) if "int8" in models else None,
        "failed": failed_measurements(rows) + (["encoder work (GMAC)"] if "encoder_gmac" not in work else []),
    }
    table = markdown(result)
    print("\n" + table)
    output_dir = Path(settings["output_dir"])
    write_json(result, output_dir / "compare.json")
    (output_dir / "compare.md").write_text(table + "\n")
    plot(result, output_dir / "compare.png")
    print(f"written: {output_dir / 'compare.md'}, {output_dir / 'compare.png'}")
    return result


def parse_settings(argv: list[str] | None) -> tuple[dict, argparse.Namespace]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for key, default in DEFAULTS.items():
        flag = "--" + key.replace("_", "-")
        if key == "rows":
            parser.add_argument(flag, nargs="+", choices=list(ROWS), default=default, metavar="ROW", help=HELP[key])
        elif isinstance(default, bool):
            parser.add_argument(flag, action="store_true", help=HELP.get(key))
        else:
            parser.add_argument(flag, type=type(default), default=default, help=HELP.get(key))
    parser.add_argument("--worker", choices=[*ROWS, WORK_WORKER], help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    chosen = {key: getattr(args, key) for key in DEFAULTS}
    return settings(**chosen), args


def main(argv: list[str] | None = None) -> int:
    """The command line: measure (or, with --worker, one row) and return 1 if any measurement failed."""
    run_settings, args = parse_settings(argv)
    if args.worker == WORK_WORKER:
        print(json.dumps({"encoder_gmac": count_encoder_work(json.loads(args.settings))}))
        return 0
    if args.worker:
        print(json.dumps(measure_row(args.worker, json.loads(args.settings))))
        return 0
    failed = run(run_settings)["failed"]
    if failed:
        print(f"\n{len(failed)} measurement(s) failed, see the table: {'; '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
