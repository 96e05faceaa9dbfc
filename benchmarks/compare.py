"""PyTorch against OpenVINO for SAM, every configuration in one run: a markdown table, JSON and a PNG chart.

    .venv/bin/python -m benchmarks.compare                  # vit_b on data/truck.jpg (about 25 min on 2 cores)
    .venv/bin/python -m benchmarks.compare --repeats 1 --prompt-repeats 3 --amg-points-per-side 8 --throughput-images 2

Rows: PyTorch eager f32, PyTorch bf16 autocast, OpenVINO f32 hint, OpenVINO at the
device's default precision with the plain and the fused-attention export, and
OpenVINO with the INT8 encoder. Columns: encoder latency (median after warm-up),
one point prompt end to end (`predict`, upscaling included), automatic mask
generation end to end, encoder throughput over several images (OpenVINO:
`AsyncInferQueue` with the THROUGHPUT hint; PyTorch: one image after another),
the peak resident memory of the process that measured the row, and the model's
size on disk. Ratios are against PyTorch eager f32 measured in the same run.

Every row runs in a fresh process, so its peak memory and its thread pools are its own.
After the rows, the INT8 predictor is compared with the FP one on every image in
data/ (embedding error, mask IoU on fixed prompts). Writes compare.json, compare.md and
compare.png to benchmarks/results/. With SAM_RANDOM_WEIGHTS_SEED set, the timings are
real and the accuracy figures only prove the pipeline.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

from benchmarks.report import F32, median_ms
from utils.accuracy import fixed_prompts

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BASELINE = "PyTorch eager f32"
ROWS = {
    BASELINE: {"backend": "pytorch", "autocast": False},
    "PyTorch bf16 autocast": {"backend": "pytorch", "autocast": True},
    "OpenVINO f32": {"backend": "openvino", "fused": True, "int8": False, "config": F32},
    "OpenVINO default, plain export": {"backend": "openvino", "fused": False, "int8": False, "config": {}},
    "OpenVINO default, fused export": {"backend": "openvino", "fused": True, "int8": False, "config": {}},
    "OpenVINO INT8 encoder": {"backend": "openvino", "fused": True, "int8": True, "config": {}},
}
COLUMNS = {  # key: (heading, unit, higher is better)
    "encoder_ms": ("encoder", "ms", False),
    "prompt_ms": ("one prompt", "ms", False),
    "amg_s": ("AMG end to end", "s", False),
    "throughput_fps": ("throughput", "img/s", True),
}


# ------------------------------------------------------------------ one row, in its own process
def measure_row(name: str, settings: dict) -> dict:
    """Every column for one row. A column that fails holds {"error": ...} and the others still run."""
    from utils.transforms import encoder_input, read_rgb_image

    image = read_rgb_image(settings["image"])
    preprocessed = encoder_input(image)
    spec = ROWS[name]
    build = _pytorch_row if spec["backend"] == "pytorch" else _openvino_row
    predictor, make_generator, throughput, size_mb, context = build(spec, settings)
    one_point = fixed_prompts(image)["one point"]
    result: dict = {"model_size_mb": size_mb}
    with context:
        result["encoder_ms"] = _guarded(lambda: median_ms(lambda: predictor.set_image(image), settings["repeats"], settings["warmup"]))
        result["prompt_ms"] = _guarded(lambda: median_ms(lambda: predictor.predict(**one_point), settings["prompt_repeats"], 3))
        result["amg_s"] = _guarded(lambda: _seconds(lambda: make_generator().generate(image)))
        result["throughput_fps"] = _guarded(lambda: throughput(preprocessed, settings["throughput_images"]))
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _pytorch_row(spec: dict, settings: dict):
    import torch
    from segment_anything import SamAutomaticMaskGenerator, SamPredictor

    from utils.checkpoints import load_sam

    sam = load_sam(settings["model_type"], Path(settings["models_dir"]) / "checkpoints", show_progress=False)
    predictor = SamPredictor(sam)

    def throughput(preprocessed: np.ndarray, images: int) -> float:
        batch = torch.from_numpy(preprocessed)
        with torch.no_grad():
            return images / _seconds(lambda: [sam.image_encoder(batch) for _ in range(images)])

    size_mb = sum(t.numel() * t.element_size() for t in sam.state_dict().values()) / 1e6
    context = torch.autocast("cpu", dtype=torch.bfloat16) if spec["autocast"] else contextlib.nullcontext()
    generator = partial(SamAutomaticMaskGenerator, sam, points_per_side=settings["amg_points_per_side"])
    return predictor, generator, throughput, size_mb, context


def _openvino_row(spec: dict, settings: dict):
    import openvino as ov

    from utils.amg import OVSamAutomaticMaskGenerator
    from utils.convert import ensure_sam_ir
    from utils.predictor import OVSamPredictor
    from utils.quantize import ensure_int8_encoder

    encoder_xml, decoder_xml = ensure_sam_ir(settings["model_type"], settings["models_dir"], show_progress=False, fused_attention=spec["fused"])
    if spec["int8"]:
        encoder_xml = ensure_int8_encoder(settings["model_type"], settings["models_dir"], settings["calibration_dir"], settings["subset_size"])
    predictor = OVSamPredictor(encoder_xml, decoder_xml, config=spec["config"])

    def throughput(preprocessed: np.ndarray, images: int) -> float:
        compiled = ov.Core().compile_model(encoder_xml, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT", **spec["config"]})
        queue = ov.AsyncInferQueue(compiled)  # as many requests as the plugin finds optimal
        for _ in range(len(queue) if settings["warmup"] else 0):
            queue.start_async({0: preprocessed})
        queue.wait_all()

        def run_all() -> None:
            for _ in range(images):
                queue.start_async({0: preprocessed})
            queue.wait_all()

        return images / _seconds(run_all)

    files = [encoder_xml, decoder_xml]
    size_mb = sum(path.stat().st_size + path.with_suffix(".bin").stat().st_size for path in map(Path, files)) / 1e6
    generator = partial(OVSamAutomaticMaskGenerator, predictor, points_per_side=settings["amg_points_per_side"], show_progress=False)
    return predictor, generator, throughput, size_mb, contextlib.nullcontext()


def _seconds(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _guarded(measure):
    """The measurement, or {"error": "..."} so one failing column does not lose the row."""
    try:
        return measure()
    except Exception as error:  # noqa: BLE001 - reported in the table, not hidden
        return {"error": f"{type(error).__name__}: {error}"[:200]}


# ------------------------------------------------------------------ the parent: set-up, rows, report
def prepare_models(settings: dict) -> dict:
    """Convert both exports and quantize the encoder before any timing starts."""
    from utils.convert import ensure_sam_ir
    from utils.quantize import ensure_int8_encoder

    fused = ensure_sam_ir(settings["model_type"], settings["models_dir"])
    plain = ensure_sam_ir(settings["model_type"], settings["models_dir"], fused_attention=False)
    int8 = ensure_int8_encoder(settings["model_type"], settings["models_dir"], settings["calibration_dir"], settings["subset_size"])
    return {"fused": fused, "plain": plain, "int8": int8}


def native_bf16(cpu: dict) -> bool:
    """True when the CPU computes bf16 in hardware; elsewhere PyTorch emulates it, tens of times slower than f32."""
    return cpu["isa"]["avx512_bf16"] or cpu["isa"]["amx_bf16"]


def unmeasured_row(kind: str, message: str) -> dict:
    """A row whose every column holds {kind: message}: kind "not_measured" (skipped) or "error" (failed)."""
    return {column: {kind: message} for column in COLUMNS} | {"peak_rss_mib": None, "model_size_mb": None}


def run_row_in_subprocess(name: str, settings: dict) -> dict:
    command = [sys.executable, "-m", "benchmarks.compare", "--worker", name, "--settings", json.dumps(settings)]
    print(f"measuring: {name} ...", flush=True)
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit code {done.returncode}"
        return unmeasured_row("error", last)
    row = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  {json.dumps(row)}", flush=True)
    return row


def add_ratios(rows: dict) -> None:
    """Speed-up of every row against PyTorch eager f32, per column (>1 means faster)."""
    base = rows[BASELINE]
    for row in rows.values():
        row["ratios"] = {}
        for column, (_, _, higher_is_better) in COLUMNS.items():
            value, reference = row[column], base[column]
            if isinstance(value, dict) or isinstance(reference, dict):
                row["ratios"][column] = None
            else:
                row["ratios"][column] = value / reference if higher_is_better else reference / value


def int8_accuracy(models: dict, data_dir: Path) -> dict:
    """INT8 encoder against the FP encoder, both OpenVINO at default precision, on every image in ``data_dir``."""
    from utils.accuracy import compare_on_images
    from utils.predictor import OVSamPredictor
    from utils.quantize import calibration_images
    from utils.transforms import read_rgb_image

    encoder_xml, decoder_xml = models["fused"]
    images = {path.name: read_rgb_image(path) for path in calibration_images(data_dir)}
    return compare_on_images(OVSamPredictor(models["int8"], decoder_xml), OVSamPredictor(encoder_xml, decoder_xml), images)


def markdown(result: dict) -> str:
    cpu = result["cpu"]
    lines = [
        f"CPU: {cpu['cpu']}; ISA: " + ", ".join(f"{flag} {'yes' if present else 'no'}" for flag, present in cpu["isa"].items()),
        f"OpenVINO {cpu['openvino']}, CPU capabilities: {', '.join(cpu['openvino_capabilities'])}. {result['weights']}",
        *[f"{name}: not run, {row['encoder_ms']['not_measured']}." for name, row in result["rows"].items()
          if isinstance(row["encoder_ms"], dict) and "not_measured" in row["encoder_ms"]],
        "",
        "| configuration | encoder (ms) | x | one prompt (ms) | x | AMG end to end (s) | x | throughput (img/s) | x | peak RSS (MiB) | size (MB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in result["rows"].items():
        cells = []
        for column in COLUMNS:
            value, ratio = row[column], row.get("ratios", {}).get(column)
            cells += [_format(value), "" if ratio is None else f"{ratio:.2f}"]
        cells += [_format(row["peak_rss_mib"], 0), _format(row["model_size_mb"], 0)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    accuracy = result.get("int8_accuracy")
    if accuracy:
        lines += [
            "",
            "| INT8 vs FP encoder (OpenVINO) | mean | worst |",
            "| --- | ---: | ---: |",
            f"| embedding relative error | {accuracy['mean_embedding_relative_error']:.2e} | {accuracy['worst_embedding_relative_error']:.2e} |",
            f"| mask IoU over fixed prompts | {accuracy['mean_mask_iou']:.4f} | {accuracy['worst_mask_iou']:.4f} |",
            f"| images: {', '.join(accuracy['per_image'])} | | |",
        ]
    return "\n".join(lines)


def _format(value, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, dict):
        return "not run" if "not_measured" in value else f"failed: {value['error'][:60]}"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}f}" if value >= 1 else f"{value:.3g}"


def plot(result: dict, path: Path) -> None:
    """One panel per timed column: the speed-up of each configuration over PyTorch eager f32."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["rows"])
    figure, axes = plt.subplots(1, len(COLUMNS), figsize=(4.2 * len(COLUMNS), 0.5 * len(names) + 1.6), sharey=True)
    for axis, (column, (heading, unit, _)) in zip(axes, COLUMNS.items()):
        ratios = [result["rows"][name]["ratios"][column] for name in names]
        bars = axis.barh(names, [ratio or 0 for ratio in ratios], color=["#888" if "PyTorch" in n else "#0068b5" for n in names])
        for bar, ratio in zip(bars, ratios):
            axis.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, " not run" if ratio is None else f" {ratio:.2f}x", va="center")
        axis.axvline(1.0, color="black", linewidth=0.8)
        axis.set_title(f"{heading} ({unit})")
        axis.set_xlabel("x PyTorch eager f32")
        axis.set_xlim(0, max([ratio or 0 for ratio in ratios] + [1]) * 1.35)
    axes[0].invert_yaxis()
    figure.suptitle(f"SAM {result['model_type']} on {result['cpu']['cpu']}")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-type", default="vit_b")
    parser.add_argument("--image", type=Path, default=ROOT / "data" / "truck.jpg")
    parser.add_argument("--models-dir", type=Path, default=ROOT / "models")
    parser.add_argument("--calibration-dir", type=Path, default=ROOT / "data", help="images for INT8 calibration and the accuracy check")
    parser.add_argument("--subset-size", type=int, default=128, help="at most this many calibration images")
    parser.add_argument("--warmup", type=int, default=1, help="untimed encoder runs before timing (0 or more)")
    parser.add_argument("--repeats", type=int, default=3, help="timed encoder runs (median)")
    parser.add_argument("--prompt-repeats", type=int, default=20, help="timed prompts (median)")
    parser.add_argument("--amg-points-per-side", type=int, default=32)
    parser.add_argument("--throughput-images", type=int, default=4)
    parser.add_argument("--force-bf16", action="store_true", help="measure PyTorch bf16 autocast even without native bf16 (very slow)")
    parser.add_argument("--output-dir", type=Path, default=RESULTS)
    parser.add_argument("--worker", choices=list(ROWS), help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(measure_row(args.worker, json.loads(args.settings))))
        return None

    from benchmarks.report import print_header
    from utils.checkpoints import describe_weights

    # absolute paths: the row processes run from the repository root, the caller may not (a notebook)
    settings = {key: str(value.resolve()) if isinstance(value, Path) else value for key, value in vars(args).items()
                if key not in {"worker", "settings", "output_dir"}}
    cpu = print_header(args.model_type)
    models = prepare_models(settings)
    rows = {}
    for name, spec in ROWS.items():
        if spec.get("autocast") and not native_bf16(cpu) and not args.force_bf16:
            rows[name] = unmeasured_row("not_measured", "no native bf16 (AVX-512 BF16 or AMX) on this CPU; --force-bf16 measures it anyway")
            print(f"skipped: {name}: {rows[name]['encoder_ms']['not_measured']}")
        else:
            rows[name] = run_row_in_subprocess(name, settings)
    add_ratios(rows)
    result = {"cpu": cpu, "model_type": args.model_type, "weights": describe_weights(args.model_type),
              "settings": settings, "rows": rows, "int8_accuracy": int8_accuracy(models, args.calibration_dir)}
    table = markdown(result)
    print("\n" + table)
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "compare.md").write_text(table + "\n")
    (args.output_dir / "compare.json").write_text(json.dumps(result, indent=2, default=str))
    plot(result, args.output_dir / "compare.png")
    print(f"\nwritten: {', '.join(str(args.output_dir / name) for name in ('compare.md', 'compare.json', 'compare.png'))}")
    failed = [f"{name}: {column}" for name, row in rows.items() for column in COLUMNS
              if isinstance(row[column], dict) and "error" in row[column]]
    if failed:
        raise RuntimeError(f"{len(failed)} measurement(s) failed, see the table: {'; '.join(failed)}")
    return result


if __name__ == "__main__":
    main()
