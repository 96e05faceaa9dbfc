"""Images per second for labelling a folder: the plain loop over generate() against utils.label_folder's runner.

    .venv/bin/python -m benchmarks.label_throughput                        # data/'s photos, twice over, vit_b
    .venv/bin/python -m benchmarks.label_throughput --copies 4 --points-per-side 16 --workers 1 2 4

Every row labels the same images with the same options on this CPU, in one run, each in a fresh process and a fresh
output folder, time measured from the first image to the last (the IR is made once, before any row). Rows:
- *plain loop*: one process, the compiled model on every core, ``Labeller.label`` (read, ``generate()``, write the
  JSON) on one image after the other, which is what a notebook's loop over ``generate()`` does;
- *one process, async encoder*: the plain loop, with the image encoder compiled a second time under OpenVINO's
  THROUGHPUT hint and fed through an ``AsyncInferQueue`` that encodes the next images while this one's prompts are
  decoded and post-processed (the in-process pipeline: one copy of the model's weights, one Python);
- *runner, N workers*: ``label_folder(workers=N)``, N processes each with cores / N inference threads, so that one
  image's encoder overlaps another's post-processing;
- *Ray, N workers*: ``label_folder(workers=N, ray=True)`` on a local Ray, the same function in N actors.
Prints a markdown table with each row's speed against the plain loop and writes JSON to
benchmarks/results/label_throughput.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.report import ROOT, benchmark_parser, cpu_times, print_header, publish, run_worker, stolen_percent

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
    start = time.perf_counter()  # for every row, before its model is compiled: start-up is part of each way
    if row in ("profile", "plain", "async"):  # one process
        job = lf.LabelJob(images_dir, out_dir, settings["model_type"], Path(settings["models_dir"]), **options)
        lf.claim_output(job)
        xmls = lf.prepare_ir(job.model_type, job.models_dir)
        labeller = lf.Labeller(job, *xmls)
        tasks, _, _ = lf.plan_tasks(job, lf.list_images(images_dir))
        if row == "profile":
            labeller.label(tasks[0])  # the first call pays one-off costs (memory, caches): not this image's
            return profile_one_image(labeller, tasks[0])
        if row == "plain":
            first = labeller.label(tasks[0])["masks"]
            first_image_seconds = time.perf_counter() - start
            masks = first + sum(labeller.label(task)["masks"] for task in tasks[1:])
        else:
            masks, first_image_seconds = label_with_async_encoder(labeller, tasks, xmls[0], start)
        return {
            "seconds": time.perf_counter() - start,
            "first_image_seconds": first_image_seconds,
            "workers": 1,
            "images": len(tasks),
            "masks": masks,
        }
    kind, workers = row.split("-")
    summary = lf.label_folder(
        images_dir,
        out_dir,
        settings["model_type"],
        settings["models_dir"],
        workers=int(workers),
        ray=kind == "ray",
        show_progress=False,
        **options,
    )
    return {
        "seconds": summary.seconds,
        "first_image_seconds": summary.first_image_seconds,
        "workers": int(workers),
        "images": summary.labelled,
        "masks": summary.masks,
    }


def profile_one_image(labeller, task) -> dict:
    """Where one image's time goes in the plain loop, and how many cores each part keeps busy: wall and CPU seconds
    (this process's, every thread's) of the encoder (``set_image``), the decoder's inference calls, and the rest
    (reading, the generator's post-processing in NumPy, pycocotools and OpenCV, writing the JSON)."""
    parts = {"encoder": [0.0, 0.0], "decoder": [0.0, 0.0]}

    def timed(name, function):
        def wrapper(*args, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return function(*args, **kwargs)
            finally:
                parts[name][0] += time.perf_counter() - wall
                parts[name][1] += time.process_time() - cpu

        return wrapper

    predictor = labeller.predictor
    predictor.set_image = timed("encoder", predictor.set_image)
    predictor._run_decoder = timed("decoder", predictor._run_decoder)
    wall, cpu = time.perf_counter(), time.process_time()
    labeller.label(task)
    total = [time.perf_counter() - wall, time.process_time() - cpu]
    parts["rest"] = [
        total[0] - parts["encoder"][0] - parts["decoder"][0],
        total[1] - parts["encoder"][1] - parts["decoder"][1],
    ]
    parts["whole image"] = total
    return {name: {"seconds": wall, "cpu_seconds": cpu} for name, (wall, cpu) in parts.items()}


def profile_markdown(profile: dict, cores: int, stolen_percent: float | None = None) -> str:
    """The profile as a table, and the most that overlapping the parts could gain here: with every core busy all the
    time, an image would take its CPU seconds / cores, against its wall seconds now. Time the host stole from this
    virtual machine counts as idle here, so the bound holds only where little was stolen (said beside it)."""
    if "error" in profile:
        return f"The profile failed: {profile['error']}"
    lines = ["| part of one image | s | cores busy on average |", "| --- | ---: | ---: |"]
    for name, part in profile.items():
        lines.append(f"| {name} | {part['seconds']:.2f} | {part['cpu_seconds'] / max(part['seconds'], 1e-9):.2f} |")
    whole = profile["whole image"]
    busy = whole["cpu_seconds"] / whole["seconds"]
    bound = whole["seconds"] / (whole["cpu_seconds"] / cores)
    lines += [
        "",
        f"The plain loop keeps {busy:.2f} of {cores} cores busy: overlapping its parts alone can make it at most "
        f"{bound:.2f}x faster here, if every core were busy all the time and the work itself unchanged. The rows "
        "above can beat that: CPU time can also count a thread pool's threads spinning while they wait for work, so "
        "'busy' overstates the work, and one thread per process wastes less of it"
        + ("." if stolen_percent is None else f"; the host stole {stolen_percent:.0f}% of the CPU time meanwhile."),
    ]
    return "\n".join(lines)


def label_with_async_encoder(labeller, tasks: list, encoder_xml: Path, start: float) -> tuple[int, float]:
    """Label ``tasks`` in this process with the encoder running ahead: a THROUGHPUT-compiled encoder in an
    ``AsyncInferQueue`` holds the next images while ``labeller.label`` decodes the current one, whose encoder call
    takes the queue's finished result. Returns the number of masks and the seconds from ``start`` to the first
    image done."""
    import threading

    import openvino as ov

    from utils.precision import compile_config
    from utils.transforms import read_rgb_image

    encoder = ov.Core().compile_model(encoder_xml, "CPU", compile_config({"PERFORMANCE_HINT": "THROUGHPUT"}))
    queue = ov.AsyncInferQueue(encoder, encoder.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    finished = {index: threading.Event() for index in range(len(tasks))}
    outputs = {}

    def keep(request, index):
        outputs[index] = [np.array(value) for value in request.results.values()]
        finished[index].set()

    queue.set_callback(keep)

    def submit(index):
        if index < len(tasks):
            encoder_input, _ = labeller.predictor._encoder_input(read_rgb_image(tasks[index].path))
            queue.start_async(encoder_input, userdata=index)

    for index in range(len(queue)):
        submit(index)
    masks, first_image_seconds = 0, 0.0
    for index, task in enumerate(tasks):
        finished[index].wait()
        ready = outputs.pop(index)
        labeller.predictor.encoder = lambda _, ready=ready: ready  # set_image takes the queue's result
        submit(index + len(queue))
        masks += labeller.label(task)["masks"]
        first_image_seconds = first_image_seconds or time.perf_counter() - start
    queue.wait_all()
    return masks, first_image_seconds


ROW_LABELS = {"plain": "plain loop over generate()", "async": "one process, async encoder (THROUGHPUT hint)"}


def markdown(result: dict) -> str:
    rows = result["rows"]
    plain = None if "error" in rows["plain"] else steady_rate(rows["plain"])
    lines = [
        "| way | start-up and first image, s | images/s after it | images/s in all | masks per image | against the "
        "plain loop (after start-up) | CPU time stolen by the host |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in rows.items():
        label = (
            ROW_LABELS.get(name) or f"{'Ray' if name.startswith('ray') else 'runner'}, {name.split('-')[1]} worker(s)"
        )
        stolen = row.get("stolen_percent")
        stolen = "-" if stolen is None else f"{stolen:.0f}%"
        if "error" in row:
            lines.append(f"| {label} | failed: {row['error']} | | | | | {stolen} |")
            continue
        steady, in_all = steady_rate(row), row["images"] / row["seconds"]
        figures = f"{row['first_image_seconds']:.1f} | {steady:.3f} | {in_all:.3f} | {row['masks'] / row['images']:.1f}"
        against = "-" if plain is None else f"{steady / plain:.2f}x"
        lines.append(f"| {label} | {figures} | {against} | {stolen} |")
    return "\n".join(lines)


CLUSTERS = ((1, 2), (1, 16), (10, 16), (100, 16))
"""(machines, cores each) for the cost on paper: this laptop-sized CPU, one server, a rack, a large cluster."""


def cost_on_paper(result: dict, images: int = 1_000_000) -> str:
    """Machine hours for ``images`` on the `CLUSTERS`, from the fastest one-machine runner's rate per core here: the
    rate per core times the cores (Ray's few per cent aside, and assuming more cores scale as these did)."""
    runners = [row for name, row in result["rows"].items() if name.startswith("runner") and "error" not in row]
    if not runners:
        return "No runner row finished: nothing to extrapolate from."
    per_core = max(steady_rate(row) for row in runners) / result["cores"]
    lines = [
        f"At {per_core:.4f} images/s per core (the runner's rate after start-up, over {result['cores']} cores), "
        f"{images:,} images take:",
        "",
        "| machines | cores each | hours | machine hours |",
        "| ---: | ---: | ---: | ---: |",
    ]
    for machines, cores in CLUSTERS:
        hours = images / (per_core * cores * machines) / 3600
        lines.append(f"| {machines} | {cores} | {hours:,.1f} | {hours * machines:,.0f} |")
    return "\n".join(lines)


def readme_markdown(result: dict) -> str:
    """The README's section: what was measured, the table, the profile, and the cluster case on paper."""
    profile = profile_markdown(result["profile"], result["cores"], result.get("profile_stolen_percent"))
    return f"{describe(result)}.\n\n{markdown(result)}\n\n{profile}\n\n{cost_on_paper(result)}"


def describe(result: dict) -> str:
    """What a result was measured on and with, in one line: the CPU (and its oneDNN cap), cores, model, images."""
    from utils.precision import widest_isa

    cap = result["cpu"]["onednn_isa_cap"]
    return (
        f"{result['cpu']['cpu']} with {widest_isa(result['cpu']['isa'])}"
        + (f" under the cap ONEDNN_MAX_CPU_ISA={cap}" if cap else "")
        + f", {result['cores']} cores; {result['model_type']}, {result['images']} images, "
        + f"{result['points_per_side']} points per side"
    )


def steady_rate(row: dict) -> float:
    """Images per second once the first image is done: the rate a long job runs at, whatever its start-up costs
    (a pool's processes or Ray's actors starting, each compiling the IR). The other workers' first images, done
    about then, are not counted: the rate errs low for N workers, never high."""
    counted = row["images"] - min(row["workers"], row["images"] - 1)
    return counted / max(row["seconds"] - row["first_image_seconds"], 1e-9)


def main(argv: list[str] | None = None) -> dict | None:
    parser = benchmark_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=2, help="how many times each photo is in the folder")
    parser.add_argument("--points-per-side", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=sorted({2, os.cpu_count() or 1}))
    parser.add_argument(
        "--no-ray",
        action="store_true",
        default=importlib.util.find_spec("ray") is None,
        help="leave out the Ray rows (the default where Ray, an optional install, is missing)",
    )
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
        runners = ["runner"] if args.no_ray else ["runner", "ray"]
        for row in [
            "profile",
            "plain",
            "async",
            *(f"{kind}-{workers}" for workers in args.workers for kind in runners),
        ]:
            before = cpu_times()
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
            rows[row]["stolen_percent"] = stolen_percent(before, cpu_times())
            print(f"{row}: {rows[row]}")
    profile = rows.pop("profile")
    result = {
        "cpu": cpu,
        "profile_stolen_percent": profile.pop("stolen_percent", None),
        "profile": profile,
        "cores": os.cpu_count(),
        "model_type": args.model_type,
        "points_per_side": args.points_per_side,
        "images": len(DEFAULT_IMAGES) * args.copies,
        "rows": rows,
    }
    return publish(result, readme_markdown(result), args.output)


if __name__ == "__main__":
    main()
