"""Images per second for labelling a folder: the plain loop over generate() against utils.label_folder's runner.

    .venv/bin/python -m benchmarks.label_throughput                        # data/'s photos, twice over, vit_b
    .venv/bin/python -m benchmarks.label_throughput --copies 4 --points-per-side 16 --workers 1 2 4

Every row labels the same images with the same options on this CPU, in one run, each in a fresh process and a fresh
output folder, time measured from the first image to the last (the IR is made once, before any row). Rows:
- *plain loop*: one process, the compiled model on every core, ``Labeller.label`` (read, ``generate()``, write the
  JSON) on one image after the other, which is what a notebook's loop over ``generate()`` does;
- *runner, N workers*: ``label_folder(workers=N)``, N processes each with cores / N inference threads, so that one
  image's encoder overlaps another's post-processing.
Prints a markdown table with each row's speed against the plain loop and writes JSON to
benchmarks/results/label_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.report import ROOT, benchmark_parser, print_header, publish, run_worker

DEFAULT_IMAGES = [
    ROOT / "data" / "truck.jpg",
    ROOT / "data" / "coffee.png",
    *sorted((ROOT / "data" / "calibration").iterdir()),
]


def worker(row: str, images_dir: Path, out_dir: Path, args_json: str) -> dict:
    """Label ``images_dir`` as ``row`` says, in this process; return the time and counts."""
    from utils import label_folder as lf

    settings = json.loads(args_json)
    options = {"points_per_side": settings["points_per_side"]}
    if row == "plain":
        job = lf.LabelJob(images_dir, out_dir, settings["model_type"], Path(settings["models_dir"]), **options)
        lf.claim_output(job)
        labeller = lf.Labeller(job, *lf.prepare_ir(job.model_type, job.models_dir))
        tasks, _, _ = lf.plan_tasks(job, lf.list_images(images_dir))
        start = time.perf_counter()
        masks = sum(labeller.label(task)["masks"] for task in tasks)
        return {"seconds": time.perf_counter() - start, "images": len(tasks), "masks": masks}
    summary = lf.label_folder(
        images_dir,
        out_dir,
        settings["model_type"],
        settings["models_dir"],
        workers=int(row),
        show_progress=False,
        **options,
    )
    return {"seconds": summary.seconds, "images": summary.labelled, "masks": summary.masks}


def markdown(result: dict) -> str:
    rows = result["rows"]
    plain = rows["plain"]["images"] / rows["plain"]["seconds"]
    lines = ["| way | images/s | masks per image | against the plain loop |", "| --- | ---: | ---: | ---: |"]
    for name, row in rows.items():
        rate = row["images"] / row["seconds"]
        label = "plain loop over generate()" if name == "plain" else f"runner, {name} worker(s)"
        lines.append(f"| {label} | {rate:.3f} | {row['masks'] / row['images']:.1f} | {rate / plain:.2f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict | None:
    parser = benchmark_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=2, help="how many times each photo is in the folder")
    parser.add_argument("--points-per-side", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=sorted({2, os.cpu_count() or 1}))
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "label_throughput.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--images-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.images_dir, args.out_dir, args.settings)))
        return None
    cpu = print_header(args.model_type)
    from utils import label_folder as lf

    lf.prepare_ir(args.model_type, args.models_dir)
    settings = json.dumps(
        {"model_type": args.model_type, "models_dir": str(args.models_dir), "points_per_side": args.points_per_side}
    )
    rows = {}
    with tempfile.TemporaryDirectory(prefix="label-throughput-") as tmp:
        images_dir = Path(tmp) / "images"
        images_dir.mkdir()
        for copy in range(args.copies):
            for image in DEFAULT_IMAGES:
                shutil.copy(image, images_dir / f"{image.stem}-{copy}{image.suffix}")
        for row in ["plain", *map(str, args.workers)]:
            rows[row] = run_worker(
                "benchmarks.label_throughput",
                [
                    "--worker",
                    row,
                    "--images-dir",
                    str(images_dir),
                    "--out-dir",
                    str(Path(tmp) / f"out-{row}"),
                    "--settings",
                    settings,
                ],
            )
            print(f"{row}: {rows[row]}")
    result = {
        "cpu": cpu,
        "model_type": args.model_type,
        "points_per_side": args.points_per_side,
        "images": len(DEFAULT_IMAGES) * args.copies,
        "rows": rows,
    }
    return publish(result, markdown(result), args.output)


if __name__ == "__main__":
    main()
