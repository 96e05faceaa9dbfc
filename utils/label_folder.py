"""Label a folder of images: SA-1B JSON per image and one COCO file, resumable, on every core of one machine or on
a Ray cluster.

    python -m utils.label_folder IMAGES_DIR OUT_DIR [--model-type T] [--models-dir D] [--workers N] [--ray [ADDRESS]]
        [--boxes COCO_JSON] [--polygons] [--int8] [--points-per-side 32] [--pred-iou-thresh X]
        [--stability-score-thresh 0.95] [--crop-n-layers 0] [--min-mask-region-area 0]

Two modes. By default every image is segmented by the series' mask generator (`utils.amg`, upstream's options under
upstream's names). With ``--boxes``, a COCO detection file gives boxes per image, and each box becomes one mask
that keeps its ``category_id`` (the boxes of an image go through the decoder in batches).

What it writes in OUT_DIR, each file atomically (written beside, then renamed), so nothing is ever half-written:
- ``<image stem>.json`` per image, in SA-1B's per-image format: ``image`` {image_id, file_name, width, height} and
  ``annotations`` [{id, segmentation (COCO RLE), bbox (XYWH), area, predicted_iou, stability_score, point_coords,
  crop_box}], with ``polygons`` besides the RLE under ``--polygons``, and ``category_id`` with ``--boxes``;
- ``coco.json``, every image merged, which pycocotools' ``COCO()`` loads (``coco_polygons.json`` with polygons as
  the segmentation too, under ``--polygons``, for tools that import only polygons);
- ``failures.jsonl``, one line per image (or box) that could not be read or labelled, with the reason; the job
  goes on without it;
- ``job.json``, the job's model and options: a second run with other ones refuses the folder, naming the
  difference, and a second run with the same ones skips every image whose JSON is there (resume: a killed job
  loses only the images in flight).

The per-image work is one function, `Labeller.label`; the runner here spreads it over worker processes, each
compiling the IR once with its share of the cores, and a worker that dies is replaced and its images tried again.
``--ray`` runs the same function on a Ray Data actor pool instead, on a local Ray or a cluster (`run_ray`).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import socket
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from utils.atomic import write_text_atomically

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
JOB_FILE, COCO_FILE, POLYGON_COCO_FILE, FAILURES_FILE = "job.json", "coco.json", "coco_polygons.json", "failures.jsonl"
RESERVED = {JOB_FILE, COCO_FILE, POLYGON_COCO_FILE}
DEFAULT_CATEGORIES = [{"id": 1, "name": "object"}]
"""The one category of "segment everything", and of a boxes file that lists none."""
FORMAT_VERSION = 1
"""Bumped when the per-image JSON changes: a folder written by another version is another job's."""
BOX_CHUNK = 16
"""Boxes decoded and upscaled at once: bounds memory to 16 float32 masks of the image's size."""
WORKER_DEATHS_ALLOWED = 2
"""An image in flight when its worker died this many times is given up as a failure (it may be the cause)."""


class JobError(ValueError):
    """The job cannot start: a missing or empty folder, a folder of another job's files, a bad boxes file."""


@dataclass(frozen=True)
class LabelJob:
    """One labelling job: where, with which model, in which mode, with which generator options."""

    images_dir: Path
    out_dir: Path
    model_type: str = "vit_b"
    models_dir: Path = Path("models")
    int8: bool = False
    boxes: Path | None = None
    polygons: bool = False
    points_per_side: int = 32
    pred_iou_thresh: float | None = None
    stability_score_thresh: float = 0.95
    crop_n_layers: int = 0
    min_mask_region_area: int = 0

    def generator_options(self) -> dict[str, Any]:
        """The mask generator's options, under upstream's names."""
        names = (
            "points_per_side",
            "pred_iou_thresh",
            "stability_score_thresh",
            "crop_n_layers",
            "min_mask_region_area",
        )
        return {name: getattr(self, name) for name in names}

    def signature(self) -> dict[str, Any]:
        """What makes two runs' files the same job's: the model, the mode and its options (not the folders)."""
        signature = {
            "format": FORMAT_VERSION,
            "model_type": self.model_type,
            "int8": self.int8,
            "polygons": self.polygons,
        }
        if self.boxes is None:
            return signature | {"mode": "everything", **self.generator_options()}
        return signature | {"mode": "boxes", "boxes_sha256": hashlib.sha256(Path(self.boxes).read_bytes()).hexdigest()}


@dataclass
class ImageTask:
    """One image to label: its file, its id in the outputs and, in box mode, its boxes."""

    path: Path
    image_id: int
    boxes: list[dict] | None = None  # {"bbox": XYWH, "category_id": int, "id": the box's annotation id}


@dataclass
class Summary:
    """What a run did, for the closing line and for callers."""

    labelled: int = 0
    skipped: int = 0
    failed: int = 0
    masks: int = 0
    seconds: float = 0.0
    first_image_seconds: float = 0.0  # from the start to the first image done: the workers' start-up, and one image
    failures: list[dict] = field(default_factory=list)

    def line(self) -> str:
        rate = self.labelled / self.seconds if self.seconds else 0.0
        per_image = self.masks / self.labelled if self.labelled else 0.0
        return (
            f"{self.labelled} images labelled in {self.seconds:.1f} s ({rate:.2f} images/s, {per_image:.1f} masks per "
            f"image), {self.skipped} skipped as already done, {self.failed} failed"
            + (f" (see {FAILURES_FILE})" if self.failed else "")
        )


# ------------------------------------------------------------------ the job's inputs
def list_images(images_dir: Path) -> list[Path]:
    """The folder's files, sorted, hidden ones left out; raises JobError for a missing or empty folder."""
    if not images_dir.is_dir():
        raise JobError(f"No folder of images at {images_dir.resolve()}.")
    files = sorted(path for path in images_dir.iterdir() if path.is_file() and not path.name.startswith("."))
    if not files:
        raise JobError(f"{images_dir.resolve()} is empty: there is nothing to label.")
    stems: dict[str, Path] = {}
    for path in files:
        if path.suffix.lower() in IMAGE_SUFFIXES and f"{path.stem}.json" in RESERVED:
            raise JobError(f"{path.name} would be written to {path.stem}.json, the job's own file: rename it.")
        if path.suffix.lower() in IMAGE_SUFFIXES and path.stem in stems:
            raise JobError(f"{stems[path.stem].name} and {path.name} would both be written to {path.stem}.json.")
        stems[path.stem] = path
    return files


def image_id_of(file_name: str) -> int:
    """A stable id from the file name alone: the same on every run and every worker, whatever else is in the folder."""
    return int.from_bytes(hashlib.blake2b(file_name.encode(), digest_size=6).digest(), "big")


def plan_tasks(job: LabelJob, files: list[Path]) -> tuple[list[ImageTask], list[dict], list[dict]]:
    """The tasks for ``files``, the failures known before any image is read (boxes naming no file in the folder) and
    the COCO categories of the outputs (the boxes file's, read here once)."""
    if job.boxes is None:
        return [ImageTask(path, image_id_of(path.name)) for path in files], [], DEFAULT_CATEGORIES
    detections = _read_boxes_file(Path(job.boxes))
    by_name = {path.name: path for path in files}
    boxes_of: dict[int, list[dict]] = {}
    for annotation in detections["annotations"]:
        boxes_of.setdefault(annotation["image_id"], []).append(annotation)
    tasks, failures = [], []
    for image in detections["images"]:
        if image["file_name"] not in by_name:
            failures.append(
                {"file_name": image["file_name"], "reason": f"named in {job.boxes.name} but not in the folder"}
            )
        elif boxes_of.get(image["id"]):
            tasks.append(ImageTask(by_name[image["file_name"]], image["id"], boxes_of[image["id"]]))
    return tasks, failures, detections.get("categories") or DEFAULT_CATEGORIES


def _read_boxes_file(path: Path) -> dict:
    """A COCO detection file, checked for what box mode needs."""
    if not path.is_file():
        raise JobError(f"No boxes file at {path.resolve()}.")
    try:
        detections = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise JobError(f"{path} is not JSON: {error}.") from None
    for key in ("images", "annotations"):
        if not isinstance(detections, dict) or not isinstance(detections.get(key), list):
            raise JobError(f"{path} is not a COCO detection file: it has no '{key}' list.")
    for annotation in detections["annotations"]:
        if not {"image_id", "bbox"} <= annotation.keys() or len(annotation["bbox"]) != 4:
            raise JobError(f"{path}: annotation {annotation.get('id')} needs an image_id and a bbox [x, y, w, h].")
    return detections


def claim_output(job: LabelJob) -> None:
    """Make OUT_DIR this job's: refuse one that holds another job's files, naming what differs."""
    job.out_dir.mkdir(parents=True, exist_ok=True)
    signature = job.signature()
    recorded_file = job.out_dir / JOB_FILE
    if recorded_file.exists():
        try:
            recorded = json.loads(recorded_file.read_text())
        except json.JSONDecodeError:
            raise JobError(f"{recorded_file} is not JSON: this folder was not written by this command.") from None
        differences = [
            f"{key}: {recorded.get(key)!r} there, {signature.get(key)!r} now"
            for key in sorted(recorded.keys() | signature.keys())
            if recorded.get(key) != signature.get(key)
        ]
        if differences:
            raise JobError(
                f"{job.out_dir} holds another job's labels ({'; '.join(differences)}): choose another output folder, "
                "or run with the same options to resume."
            )
        return
    if any(path.suffix == ".json" for path in job.out_dir.iterdir()):
        raise JobError(
            f"{job.out_dir} holds JSON files but no {JOB_FILE}: they are not this job's; choose another folder."
        )
    write_text_atomically(recorded_file, json.dumps(signature, indent=2) + "\n")


def is_done(out_dir: Path, path: Path) -> bool:
    """True when the image's JSON is there and whole (it is written atomically; a torn copy would not parse)."""
    result = out_dir / f"{path.stem}.json"
    try:
        return "annotations" in json.loads(result.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return False


# ------------------------------------------------------------------ the per-image work
class Labeller:
    """What a worker holds: one compiled predictor and, in "everything" mode, the mask generator over it."""

    def __init__(self, job: LabelJob, encoder_xml: Path, decoder_xml: Path, threads: int | None = None) -> None:
        from utils.amg import OVSamAutomaticMaskGenerator
        from utils.model_spec import model_spec, resolve

        # unpinned: OpenVINO pins a process's threads to cores from the first one on, so workers would share core 0
        config = {"INFERENCE_NUM_THREADS": threads, "ENABLE_CPU_PINNING": False} if threads else None
        self.job = job
        self.predictor = resolve(model_spec(job.model_type).family.predictor)(encoder_xml, decoder_xml, config=config)
        self.generator = (
            OVSamAutomaticMaskGenerator(
                self.predictor, output_mode="coco_rle", show_progress=False, **job.generator_options()
            )
            if job.boxes is None
            else None
        )

    def label(self, task: ImageTask) -> dict:
        """Read, segment and write one image's JSON; return ``{"file_name", "masks"}`` and, for boxes it could not
        use, ``"box_failures"``. Raises on an image that cannot be read or labelled."""
        from utils.transforms import read_rgb_image

        image = read_rgb_image(task.path)
        height, width = image.shape[:2]
        box_failures: list[dict] = []
        if task.boxes is None:
            annotations = self.generator.generate(image)
        else:
            annotations, box_failures = self._segment_boxes(image, task)
        for index, annotation in enumerate(annotations, start=1):
            annotation["id"] = index
            if self.job.polygons:
                annotation["polygons"] = mask_to_polygons(_decode(annotation["segmentation"]))
        record = {
            "image": {"image_id": task.image_id, "file_name": task.path.name, "width": width, "height": height},
            "annotations": annotations,
        }
        write_text_atomically(self.job.out_dir / f"{task.path.stem}.json", json.dumps(record))
        return {"file_name": task.path.name, "masks": len(annotations), "box_failures": box_failures}

    def _segment_boxes(self, image: np.ndarray, task: ImageTask) -> tuple[list[dict], list[dict]]:
        """One mask per box, in batched decoder calls; boxes outside the image are reported, partly outside clipped."""
        height, width = image.shape[:2]
        usable, failures = [], []
        for box in task.boxes:
            x, y, w, h = box["bbox"]
            clipped = np.clip([x, y, x + w, y + h], 0, [width, height, width, height]).astype(np.float32)
            if clipped[2] - clipped[0] < 1 or clipped[3] - clipped[1] < 1:
                failures.append(
                    {
                        "file_name": task.path.name,
                        "box_id": box.get("id"),
                        "reason": f"box {box['bbox']} is outside the {width}x{height} image or empty",
                    }
                )
            else:
                usable.append((box, clipped))
        if not usable:
            return [], failures
        self.predictor.set_image(image)
        annotations = []
        for start in range(0, len(usable), BOX_CHUNK):  # full-size logits for a chunk of boxes at a time
            chunk = usable[start : start + BOX_CHUNK]
            logits, scores, _ = self.predictor.predict_boxes(np.stack([c for _, c in chunk]), return_logits=True)
            annotations += [
                _box_annotation(box, clipped, mask_logits, score, (width, height))
                for (box, clipped), mask_logits, score in zip(chunk, logits[:, 0], scores[:, 0])
            ]
        return annotations, failures


def _box_annotation(box: dict, clipped: np.ndarray, logits: np.ndarray, score: float, size: tuple[int, int]) -> dict:
    """One box's mask as an SA-1B annotation that keeps the box's category and id."""
    from pycocotools import mask as mask_utils

    from utils.amg import masks_to_boxes, xyxy_to_xywh
    from utils.predictor import MASK_THRESHOLD, stability_score

    mask = logits > MASK_THRESHOLD
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {
        "segmentation": {"size": list(rle["size"]), "counts": rle["counts"].decode()},
        "bbox": xyxy_to_xywh(masks_to_boxes(mask[None])[0]),
        "area": int(mask_utils.area(rle)),
        "predicted_iou": float(score),
        "stability_score": float(stability_score(logits[None], MASK_THRESHOLD, 1.0)[0]),
        "point_coords": [],
        "crop_box": [0, 0, *size],
        "category_id": box.get("category_id", 1),
        "box_prompt": xyxy_to_xywh(clipped.round(2).tolist()),
        "source_annotation_id": box.get("id"),
    }


def _decode(segmentation: dict) -> np.ndarray:
    from pycocotools import mask as mask_utils

    return mask_utils.decode({"size": segmentation["size"], "counts": segmentation["counts"].encode()}).astype(bool)


def mask_to_polygons(mask: np.ndarray) -> list[list[float]]:
    """The mask's outer contours as COCO polygons ``[x0, y0, x1, y1, ...]``; holes are not representable there."""
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    return [contour.reshape(-1).astype(float).tolist() for contour in contours if len(contour) >= 3]


# ------------------------------------------------------------------ the runner
_WORKER: Labeller | None = None
_START_ERROR: str | None = None


def _start_worker(job: LabelJob, encoder_xml: Path, decoder_xml: Path, threads: int) -> None:
    """Compile the IR once per worker process (`start_labeller`)."""
    global _WORKER, _START_ERROR
    _WORKER, _START_ERROR = start_labeller(job, (encoder_xml, decoder_xml), threads)


def start_labeller(job: LabelJob, xmls: tuple[Path, Path], threads: int) -> tuple[Labeller | None, str | None]:
    """A worker's Labeller, or why it could not compile the IR: kept, and told to the driver, which stops the job."""
    try:
        return Labeller(job, *xmls, threads), None
    except Exception as error:  # noqa: BLE001 - said in the job's error, with its type
        return None, f"{type(error).__name__}: {error}"


def _label_in_worker(task: ImageTask) -> dict:
    """The worker process's side: `label_safely` with the Labeller it compiled on start."""
    return label_safely(_WORKER, _START_ERROR, task)


def label_safely(labeller: Labeller | None, start_error: str | None, task: ImageTask) -> dict:
    """What every worker (process or Ray actor) does with a task: label it, turning its errors into a failure record
    (the job goes on); a worker that could not start says why instead."""
    if start_error is not None:
        return {"file_name": task.path.name, "worker_error": start_error}
    try:
        return labeller.label(task)
    except Exception as error:  # noqa: BLE001 - any image may fail in its own way; the reason is recorded
        return {"file_name": task.path.name, "error": f"{type(error).__name__}: {error}"}


def run_local(job: LabelJob, tasks: list[ImageTask], xmls: tuple[Path, Path], workers: int | None, report) -> None:
    """Label ``tasks`` on ``workers`` processes (default: one per core), each with its share of the cores;
    ``report(task, result)`` per image.

    A worker that dies (killed, out of memory) breaks the pool: the results already back are reported, the pool is
    started again, and the images that were in flight are tried again, up to `WORKER_DEATHS_ALLOWED` deaths each (one
    of them may be the cause). A worker that cannot compile the IR stops the job with a JobError."""
    workers = workers or os.cpu_count() or 1
    threads = max(1, (os.cpu_count() or 1) // workers)
    pending, deaths = list(reversed(tasks)), {}
    while pending:
        with ProcessPoolExecutor(workers, get_context("spawn"), _start_worker, (job, *xmls, threads)) as pool:
            in_flight = {}
            try:
                while pending or in_flight:
                    while pending and len(in_flight) < 2 * workers:  # a queue of one image each keeps workers busy
                        task = pending.pop()
                        in_flight[pool.submit(_label_in_worker, task)] = task
                    done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    for future in done:
                        _report_done(future, in_flight, report)
            except BrokenProcessPool:
                for future in [future for future in in_flight if future.done() and not future.exception()]:
                    _report_done(future, in_flight, report)
                for task in in_flight.values():
                    deaths[id(task)] = deaths.get(id(task), 0) + 1
                    if deaths[id(task)] >= WORKER_DEATHS_ALLOWED:
                        report(task, {"file_name": task.path.name, "error": "its worker process died on it twice"})
                    else:
                        pending.append(task)


def _report_done(future, in_flight: dict, report) -> None:
    result = future.result()  # before the task leaves in_flight: a broken pool raises here
    report(in_flight.pop(future), started(result))


def started(result: dict) -> dict:
    """A worker's result, or the JobError that stops the job where the worker could not compile the IR."""
    if "worker_error" in result:
        raise JobError(f"a worker could not load the model: {result['worker_error']}")
    return result


def label_folder(
    images_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    model_type: str = "vit_b",
    models_dir: str | os.PathLike = "models",
    workers: int | None = None,
    boxes: str | os.PathLike | None = None,
    polygons: bool = False,
    int8: bool = False,
    ray: str | bool | None = None,
    show_progress: bool = True,
    **generator_options: Any,
) -> Summary:
    """Label every image of ``images_dir`` into ``out_dir`` (see the module's docstring); return what was done.

    ``workers``: processes (default: one per core), or Ray actors; ``ray``: run on Ray (`run_ray`): True or
    "" for a local Ray (or the cluster ``RAY_ADDRESS`` names), an address to join a cluster; ``generator_options``:
    the mask generator's, under upstream's names (points_per_side, pred_iou_thresh, stability_score_thresh,
    crop_n_layers, min_mask_region_area)."""
    from tqdm.auto import tqdm

    job = LabelJob(
        Path(images_dir),
        Path(out_dir),
        model_type,
        Path(models_dir),
        int8,
        Path(boxes) if boxes else None,
        polygons,
        **generator_options,
    )
    check_options(job)
    run = run_local if ray in (None, False) else _ray_runner(ray if isinstance(ray, str) and ray else None)
    files = list_images(job.images_dir)
    tasks, early_failures, categories = plan_tasks(job, files)
    claim_output(job)
    to_do = [task for task in tasks if not is_done(job.out_dir, task.path)]
    summary = Summary(skipped=len(tasks) - len(to_do))
    tasks = to_do
    failures_file = job.out_dir / FAILURES_FILE
    keep_failures_of_finished_images(job.out_dir, failures_file)  # the others are tried again
    for failure in early_failures:
        _record_failure(summary, failures_file, failure)
    if tasks:
        xmls = prepare_ir(job.model_type, job.models_dir, job.int8)
        start = time.perf_counter()
        with tqdm(total=len(tasks), desc="labelling", unit="image", disable=not show_progress) as bar:

            def report(task: ImageTask, result: dict) -> None:
                summary.first_image_seconds = summary.first_image_seconds or time.perf_counter() - start
                if "error" in result:
                    _record_failure(
                        summary, failures_file, {"file_name": result["file_name"], "reason": result["error"]}
                    )
                else:
                    summary.labelled += 1
                    summary.masks += result["masks"]
                    for failure in result["box_failures"]:
                        _record_failure(summary, failures_file, failure)
                bar.update()
                bar.set_postfix(
                    masks_per_image=f"{summary.masks / max(summary.labelled, 1):.1f}", failed=summary.failed
                )

            run(job, tasks, xmls, workers, report)
        summary.seconds = time.perf_counter() - start
    write_coco(job, categories)
    print(summary.line())
    return summary


def _ray_runner(address: str | None):
    """`run_ray` joined to ``address`` (None: a local Ray, or RAY_ADDRESS), or a clear error where Ray is not
    installed."""
    try:
        import ray.data  # noqa: F401 - only asked whether it is there
    except ImportError:
        raise JobError(
            "--ray needs Ray Data, which is not in this install: "
            "pip install -r requirements.txt -r requirements-ray.txt -c constraints.txt"
        ) from None
    return lambda job, tasks, xmls, workers, report: run_ray(job, tasks, xmls, workers, report, address)


def keep_failures_of_finished_images(out_dir: Path, failures_file: Path) -> None:
    """Keep the lines about images that are done (their boxes that could not be used); drop the rest, which this
    run tries again."""
    if not failures_file.exists():
        return
    kept = [
        line
        for line in failures_file.read_text().splitlines()
        if line.strip() and is_done(out_dir, Path(json.loads(line)["file_name"]))
    ]
    write_text_atomically(failures_file, "".join(f"{line}\n" for line in kept))


def check_options(job: LabelJob) -> None:
    """Raise ValueError for an unknown model type or a bad generator option here, not once per image in a worker;
    the generator's own checks are the ones run (they need no model)."""
    from utils.amg import OVSamAutomaticMaskGenerator
    from utils.model_spec import model_spec

    model_spec(job.model_type)
    OVSamAutomaticMaskGenerator(None, show_progress=False, **job.generator_options())


def prepare_ir(model_type: str, models_dir: str | os.PathLike, int8: bool = False) -> tuple[Path, Path]:
    """The IR every worker compiles, made (or taken from the kit) here, once, before any worker starts."""
    from utils.convert import ensure_sam_ir

    encoder_xml, decoder_xml = ensure_sam_ir(model_type, models_dir)
    if int8:
        from utils.quantize import ensure_int8_encoder

        encoder_xml = ensure_int8_encoder(model_type, models_dir)
    return encoder_xml, decoder_xml


def _record_failure(summary: Summary, failures_file: Path, failure: dict) -> None:
    """Append one line: a single short write to a file opened for appending, so a kill leaves whole lines only."""
    summary.failed += 1
    summary.failures.append(failure)
    with failures_file.open("a") as stream:
        stream.write(json.dumps(failure) + "\n")


def write_coco(job: LabelJob, categories: list[dict]) -> None:
    """Merge every per-image JSON of OUT_DIR into coco.json (and coco_polygons.json under --polygons)."""
    records = [json.loads(path.read_text()) for path in sorted(job.out_dir.glob("*.json")) if path.name not in RESERVED]
    records = [record for record in records if isinstance(record, dict) and {"image", "annotations"} <= record.keys()]
    images, annotations, polygon_annotations = [], [], []
    for record in records:
        image = record["image"]
        images.append(
            {
                "id": image["image_id"],
                "file_name": image["file_name"],
                "width": image["width"],
                "height": image["height"],
            }
        )
        for annotation in record["annotations"]:
            merged = {key: value for key, value in annotation.items() if key not in ("id", "polygons")}
            merged |= {"id": len(annotations) + 1, "image_id": image["image_id"], "iscrowd": 0}
            merged.setdefault("category_id", 1)
            annotations.append(merged)
            if job.polygons and annotation["polygons"]:  # a mask under 3 pixels has no polygon: left out there
                polygon_annotations.append(merged | {"segmentation": annotation["polygons"]})
    coco = {"images": images, "annotations": annotations, "categories": categories}
    write_text_atomically(job.out_dir / COCO_FILE, json.dumps(coco))
    if job.polygons:
        write_text_atomically(job.out_dir / POLYGON_COCO_FILE, json.dumps(coco | {"annotations": polygon_annotations}))


# ------------------------------------------------------------------ the Ray runner (--ray)
# The dataset is the job's tasks (paths and boxes, made on the driver with ``from_items``); a pool of actors maps it,
# one actor per worker, each compiling the IR once and labelling with `_label_in_worker`, the function the worker
# processes run, so the files are the same byte for byte. What comes back to the driver is a line per image (its
# mask count or failure), never a mask: the actors write the per-image JSON, so OUT_DIR, the images and the IR must
# be on a path every node sees (a shared file system), which each actor checks on start. Two traps of small machines
# are handled: no read task can starve while the actors hold every CPU (there are none: the actors read the images
# and the dataset is built on the driver), and a container's small /dev/shm (`local_ray_options`). A worker that
# dies is restarted by Ray and its image tried again (`ACTOR_RESTARTS`, `TASK_RETRIES`).
OBJECT_STORE_BYTES = 256 * 2**20
"""The local Ray's object store: the task and result lines take kilobytes; Ray's default takes 30% of the memory."""
ACTOR_RESTARTS = 4
"""How often each actor may be restarted after its process died."""
TASK_RETRIES = WORKER_DEATHS_ALLOWED - 1
"""How often an image whose actor died is tried again: as often as the one-machine runner does."""


def local_ray_options(cpus: int) -> dict:
    """``ray.init`` options for a local Ray on ``cpus`` cores: no dashboard, and a small object store. Ray's default
    store takes 30% of the memory, and where ``/dev/shm`` is smaller (a container's is often 64 MB) Ray refuses to
    start with a store over 10 GB; a small one goes in ``/dev/shm`` or, where that cannot hold it, in the temporary
    directory, which is slower but holds a line per image with ease."""
    return {"num_cpus": cpus, "include_dashboard": False, "object_store_memory": OBJECT_STORE_BYTES}


def task_row(task: ImageTask) -> dict:
    """A task as a dataset row (strings and numbers only, which every Ray Data block format holds)."""
    return {"path": str(task.path), "image_id": task.image_id, "boxes": json.dumps(task.boxes)}


def row_task(row: dict) -> ImageTask:
    return ImageTask(Path(row["path"]), int(row["image_id"]), json.loads(row["boxes"]))


class RayWorker:
    """One actor: checks that this node sees the job's folders and IR, then compiles the IR once (as a local
    worker does) and labels one task per call."""

    def __init__(self, job: LabelJob, xmls: tuple[Path, Path], threads: int) -> None:
        self.labeller = None
        missing = unseen_paths(job, xmls)
        if missing:
            self.start_error = (
                f"node {socket.gethostname()} does not see {', '.join(missing)}: the images, OUT_DIR and the IR "
                "(--models-dir) must be on a path every node of the cluster sees"
            )
            return
        self.labeller, self.start_error = start_labeller(job, xmls, threads)

    def __call__(self, row: dict) -> dict:
        result = label_safely(self.labeller, self.start_error, row_task(row))
        return {"path": row["path"], "result": json.dumps(result)}


def unseen_paths(job: LabelJob, xmls: tuple[Path, Path]) -> list[str]:
    """What this node cannot see of the job: its images folder, OUT_DIR (the driver wrote job.json there) or the IR.
    Nothing is converted on a worker: the IR comes from the driver's models folder or the kit, on a shared path."""
    wanted = [job.images_dir, job.out_dir / JOB_FILE, *xmls, *(Path(xml).with_suffix(".bin") for xml in xmls)]
    return [str(path) for path in wanted if not path.exists()]


def run_ray(
    job: LabelJob,
    tasks: list[ImageTask],
    xmls: tuple[Path, Path],
    workers: int | None,
    report,
    address: str | None = None,
) -> None:
    """Label ``tasks`` on a Ray Data actor pool; ``report(task, result)`` per image, as `run_local` does.

    ``address``: a cluster to join; None joins ``RAY_ADDRESS`` when it is set, else starts a local Ray on this
    machine's cores (and stops it at the end). A Ray this process started already is used as it is: its workers
    must import ``utils`` (``ray.init(runtime_env=code_for_workers())`` ships it). ``workers``: actors (default:
    one per CPU of the cluster), each with the cluster's CPUs / workers inference threads."""
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        if address or os.environ.get("RAY_ADDRESS"):
            ray.init(address=address, runtime_env=code_for_workers(), log_to_driver=False)
        else:
            ray.init(runtime_env=code_for_workers(), log_to_driver=False, **local_ray_options(os.cpu_count() or 1))
    # another node's worker runs in another directory: every path it gets is absolute
    job = dataclasses.replace(
        job, images_dir=job.images_dir.resolve(), out_dir=job.out_dir.resolve(), models_dir=job.models_dir.resolve()
    )
    xmls = tuple(Path(xml).resolve() for xml in xmls)
    by_path = {str(task.path.resolve()): task for task in tasks}
    context = ray.data.DataContext.get_current()
    saved = context.enable_progress_bars, context.max_errored_blocks
    context.enable_progress_bars = False  # the job's own bar counts images
    context.max_errored_blocks = -1  # an image whose worker died on every try is a failure; the others go on
    try:
        cpus = int(ray.cluster_resources().get("CPU", 1))
        workers = min(workers or cpus, len(tasks))
        threads = max(1, cpus // workers)
        rows = [task_row(task) | {"path": path} for path, task in by_path.items()]
        results = ray.data.from_items(rows, override_num_blocks=len(rows)).map(
            RayWorker,
            fn_constructor_args=(job, xmls, threads),
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=threads,
            ray_remote_args_fn=retry_limits,
        )
        for row in results.iter_rows():
            report(by_path.pop(row["path"]), started(json.loads(row["result"])))
        for task in by_path.values():  # their blocks errored: the worker died on them every time it was tried
            report(task, {"file_name": task.path.name, "error": "Ray could not label it: its worker died on every try"})
    finally:
        context.enable_progress_bars, context.max_errored_blocks = saved
        if started_here:
            ray.shutdown()


def retry_limits() -> dict:
    """The actors' fault tolerance: Ray Data's default retries an image forever, even one that kills its worker.
    (Ray 2.60 deprecates passing these, which 2.64 removes: requirements-ray.txt stays below it.)"""
    return {"max_restarts": ACTOR_RESTARTS, "max_task_retries": TASK_RETRIES}


def code_for_workers() -> dict:
    """The runtime environment that ships this package (`utils`) to every worker, wherever it runs."""
    return {"py_modules": [str(Path(__file__).resolve().parent)]}


# ------------------------------------------------------------------ command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("images_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--model-type", default="vit_b")
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--workers", type=int, help="worker processes, or Ray actors (default: one per core)")
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run on Ray Data: a local Ray, or the cluster at ADDRESS (or RAY_ADDRESS); needs requirements-ray.txt",
    )
    parser.add_argument("--boxes", type=Path, help="a COCO detection file: one mask per box, keeping its category")
    parser.add_argument("--polygons", action="store_true", help="polygons besides the RLE, and coco_polygons.json")
    parser.add_argument("--int8", action="store_true", help="the INT8 image encoder (utils.quantize)")
    defaults = {field.name: field.default for field in dataclasses.fields(LabelJob)}
    for name, kind in (
        ("points_per_side", int),
        ("pred_iou_thresh", float),
        ("stability_score_thresh", float),
        ("crop_n_layers", int),
        ("min_mask_region_area", int),
    ):
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=defaults[name])
    args = vars(parser.parse_args(argv))
    try:
        summary = label_folder(**args)
    except (JobError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 1 if summary.failed and not summary.labelled else 0


if __name__ == "__main__":
    sys.exit(main())
