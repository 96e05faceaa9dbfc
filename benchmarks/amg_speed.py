"""Automatic mask generation end to end: OVSamAutomaticMaskGenerator against SamAutomaticMaskGenerator.

    .venv/bin/python -m benchmarks.amg_speed                      # truck.jpg, defaults and crop_n_layers=1
    .venv/bin/python -m benchmarks.amg_speed --points-per-side 16 --batches 16 64

Every measurement runs in its own process, so its peak resident memory (models included)
is its own. Time is one `generate` call, image encoder(s) included. Prints a
markdown table with the speed-up against upstream measured in the same run, and writes JSON to
benchmarks/results/amg_speed.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmarks.report import ROOT, benchmark_parser, run_worker, seconds
from utils.memory import peak_memory_mib


def worker(implementation: str, options: dict, image_path: Path, models_dir: Path, model_type: str) -> dict:
    """Run one generate() in this process and return its time, mask count and peak memory."""
    from utils.transforms import read_rgb_image

    image = read_rgb_image(image_path)
    if implementation == "openvino":
        from utils.amg import OVSamAutomaticMaskGenerator
        from utils.convert import ensure_sam_ir
        from utils.predictor import OVSamPredictor

        predictor = OVSamPredictor(*ensure_sam_ir(model_type, models_dir, show_progress=False))
        generator = OVSamAutomaticMaskGenerator(predictor, show_progress=False, **options)
    else:
        from segment_anything import SamAutomaticMaskGenerator

        from utils.checkpoints import load_sam

        generator = SamAutomaticMaskGenerator(
            load_sam(model_type, models_dir / "checkpoints", show_progress=False), **options
        )
    anns = []
    elapsed = seconds(lambda: anns.extend(generator.generate(image)))
    return {"seconds": elapsed, "masks": len(anns), "peak_rss_mib": peak_memory_mib()}


def measure(implementation: str, options: dict, args: argparse.Namespace) -> dict:
    """Run `worker` in a fresh interpreter and parse its JSON line."""
    measured = run_worker(
        "benchmarks.amg_speed",
        [
            "--worker",
            implementation,
            "--options",
            json.dumps(options),
            "--image",
            str(args.image),
            "--models-dir",
            str(args.models_dir),
            "--model-type",
            args.model_type,
        ],
    )
    print(f"{implementation} {options}: {measured}")
    return measured


def main(argv: list[str] | None = None) -> dict | None:
    parser = benchmark_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--points-per-side", type=int, default=32)
    parser.add_argument(
        "--batches", type=int, nargs="+", default=[16, 64, 256], help="points_per_batch values for the memory check"
    )
    parser.add_argument("--skip-crops", action="store_true", help="only the crop_n_layers=0 comparison")
    parser.add_argument(
        "--extra-options", default="{}", help="JSON merged into every configuration, e.g. '{\"pred_iou_thresh\": 0}'"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "amg_speed.json")
    parser.add_argument("--worker", choices=["openvino", "pytorch"], help=argparse.SUPPRESS)
    parser.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(worker(args.worker, json.loads(args.options), args.image, args.models_dir, args.model_type)))
        return None

    from benchmarks.report import print_header, write_json
    from utils.checkpoints import describe_weights
    from utils.convert import ensure_sam_ir

    cpu = print_header(args.model_type)
    ensure_sam_ir(args.model_type, args.models_dir)  # convert outside the timed processes
    extra = json.loads(args.extra_options)
    configurations = {"default options": {"points_per_side": args.points_per_side, **extra}}
    if not args.skip_crops:
        configurations["crop_n_layers=1"] = {"points_per_side": args.points_per_side, "crop_n_layers": 1, **extra}
    rows = {}
    for name, options in configurations.items():
        upstream = measure("pytorch", options, args)
        ours = measure("openvino", options, args)
        both = "error" not in upstream and "error" not in ours
        rows[name] = {
            "pytorch": upstream,
            "openvino": ours,
            "speedup": upstream["seconds"] / ours["seconds"] if both else None,
        }
    memory = {
        batch: measure("openvino", {"points_per_side": args.points_per_side, "points_per_batch": batch, **extra}, args)
        for batch in args.batches
    }
    lines = [
        "| configuration | SamAutomaticMaskGenerator (s) | masks | peak memory (MiB) "
        "| OVSamAutomaticMaskGenerator (s) | masks | peak memory (MiB) | speed-up |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in rows.items():
        cells = [_cells(row["pytorch"]), _cells(row["openvino"])]
        speedup = "n/a" if row["speedup"] is None else f"{row['speedup']:.2f}x"
        lines.append(f"| {name} | {' | '.join(cells)} | {speedup} |")
    lines += [
        "",
        "| points_per_batch (OpenVINO) | time (s) | masks | peak memory (MiB) |",
        "| ---: | ---: | ---: | ---: |",
    ]
    lines += [f"| {batch} | {_cells(measured)} |" for batch, measured in memory.items()]
    print("\n" + "\n".join(lines))
    result = {
        "cpu": cpu,
        "weights": describe_weights(args.model_type),
        "image": str(args.image),
        "comparison": rows,
        "extra_options": extra,
        "memory_by_points_per_batch": memory,
    }
    write_json(result, args.output)
    return result


def _cells(measured: dict) -> str:
    """Three table cells: seconds, mask count, peak memory; or the error across them."""
    if "error" in measured:
        return f"failed: {measured['error'][:60]} | | "
    return f"{measured['seconds']:.1f} | {measured['masks']} | {measured['peak_rss_mib']:.0f}"


if __name__ == "__main__":
    main()
