"""`OVSamAutomaticMaskGenerator`: segment everything, with the options and outputs of segment_anything's.

The algorithm is upstream's `SamAutomaticMaskGenerator`, step for step: a grid of
single-point prompts per image crop, three masks per point, filtering by predicted
IoU and stability score, removal of masks cut by a crop edge, box NMS inside each
crop and across crops, optional clean-up of small holes and islands. What differs
is how the work is done, which is why it is faster and needs no torch:

- the prompt decoder takes many points per OpenVINO call (16, see `OVSamPredictor._decode`);
- masks are dropped by predicted IoU *before* their logits are upscaled, and the
  survivors are upscaled in small chunks, so memory stays bounded by one chunk;
- masks are kept as COCO RLE (pycocotools, in C) between steps, and NMS, boxes and
  stability scores are vectorised numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import cv2
import numpy as np
from pycocotools import mask as mask_utils
from tqdm.auto import tqdm

from utils.predictor import (
    DECODER_CHUNK,
    MASK_THRESHOLD,
    ImageClaim,
    OVSam2Predictor,
    OVSamPredictor,
    stability_score,
)
from utils.transforms import to_rgb_uint8

OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")
UPSCALE_CHUNK = 16
"""Masks upscaled at once: bounds memory to 16 float32 masks of the crop's size."""
CROP_EDGE_TOLERANCE = 20.0
PRED_IOU_THRESH = 0.88
SAM2_PRED_IOU_THRESH = 0.8
"""The default ``pred_iou_thresh`` of segment_anything's generator, and of sam2's `SAM2AutomaticMaskGenerator`, the
one default where the two differ."""


@dataclass
class _Masks:
    """Column store of candidate masks: parallel arrays plus COCO RLEs (one entry per mask)."""

    rles: list[dict] = field(default_factory=list)
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int64))
    iou_preds: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    stability: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float64))
    crop_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int64))

    def __len__(self) -> int:
        return len(self.rles)

    def take(self, keep: np.ndarray) -> "_Masks":
        keep = np.asarray(keep)
        if keep.dtype == bool:
            keep = np.flatnonzero(keep)
        return _Masks(
            [self.rles[i] for i in keep],
            self.boxes[keep],
            self.iou_preds[keep],
            self.stability[keep],
            self.points[keep],
            self.crop_boxes[keep],
        )

    @staticmethod
    def concat(parts: list["_Masks"]) -> "_Masks":
        parts = [part for part in parts if len(part)]
        if not parts:
            return _Masks()
        return _Masks(
            [rle for part in parts for rle in part.rles],
            *(
                np.concatenate([getattr(part, name) for part in parts])
                for name in ("boxes", "iou_preds", "stability", "points", "crop_boxes")
            ),
        )


STAGES = (
    "decoded",
    "IoU filter",
    "stability filter",
    "crop edge",
    "NMS within each crop",
    "NMS across crops",
    "small-region clean-up",
)
"""The generator's stages in order; `OVSamAutomaticMaskGenerator.stage_counts` has the masks left after each."""


class OVSamAutomaticMaskGenerator:
    """Generate masks for a whole image; the same options and output records as upstream.

    Args:
        predictor: an `OVSamPredictor`; its image is replaced while generating (by each crop in turn). It may
            be shared with the widget or the gradio app, even one serving requests in another thread: the
            generator holds its crop through an `ImageClaim` and encodes it again if one of them has set
            another image between two of its decoder calls.
        points_per_side: grid points along one side of the image (``points_per_side**2``
            prompts); exclusive with ``point_grids``.
        points_per_batch: points per step of the progress bar. Kept for upstream's interface: points are
            decoded, filtered and upscaled 16 at a time whatever it is, so memory does not depend on it.
        pred_iou_thresh: keep masks whose predicted IoU is above this (0 keeps all). Default: upstream's,
            0.88 for SAM 1 and 0.8 for a SAM 2 predictor (`OVSam2Predictor`), as sam2's generator has it.
        stability_score_thresh: keep masks at least this stable under a +-offset
            change of the logit threshold (0 keeps all).
        stability_score_offset: that offset.
        box_nms_thresh: box IoU above which the lower-scored mask of a crop is dropped.
        crop_n_layers: extra layers of crops; layer i has (2**i)**2 crops.
        crop_nms_thresh: box IoU for removing duplicates between crops.
        crop_overlap_ratio: overlap of neighbouring crops, as a fraction of the short side.
        crop_n_points_downscale_factor: layer i uses points_per_side / factor**i points.
        point_grids: explicit grids, one [N, 2] array in [0, 1] per crop layer.
        min_mask_region_area: remove holes and islands smaller than this many pixels.
        output_mode: "binary_mask", "uncompressed_rle" or "coco_rle".
        show_progress: show a progress bar over decoder batches and crops.

    After `generate`, ``stage_counts`` says how many masks were left after each stage
    (decoded, IoU filter, stability filter, crop edge, NMS in each crop, NMS across
    crops, small-region clean-up), so the effect of every option can be seen.
    """

    def __init__(
        self,
        predictor: OVSamPredictor,
        points_per_side: int | None = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float | None = None,
        stability_score_thresh: float = 0.95,
        stability_score_offset: float = 1.0,
        box_nms_thresh: float = 0.7,
        crop_n_layers: int = 0,
        crop_nms_thresh: float = 0.7,
        crop_overlap_ratio: float = 512 / 1500,
        crop_n_points_downscale_factor: int = 1,
        point_grids: list[np.ndarray] | None = None,
        min_mask_region_area: int = 0,
        output_mode: str = "binary_mask",
        show_progress: bool = True,
    ) -> None:
        if pred_iou_thresh is None:
            pred_iou_thresh = SAM2_PRED_IOU_THRESH if isinstance(predictor, OVSam2Predictor) else PRED_IOU_THRESH
        if (points_per_side is None) == (point_grids is None):
            raise ValueError("Give exactly one of points_per_side and point_grids (set the other to None).")
        if output_mode not in OUTPUT_MODES:
            raise ValueError(f"Unknown output_mode {output_mode!r}; choose one of {', '.join(OUTPUT_MODES)}.")
        positive = [
            ("points_per_batch", points_per_batch),
            ("crop_n_points_downscale_factor", crop_n_points_downscale_factor),
        ]
        if points_per_side is not None:
            positive.append(("points_per_side", points_per_side))
        for name, value in positive:
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        for name, value in (("crop_n_layers", crop_n_layers), ("min_mask_region_area", min_mask_region_area)):
            if value < 0:
                raise ValueError(f"{name} must be zero or positive, got {value!r}.")
        for name, value in (
            ("pred_iou_thresh", pred_iou_thresh),
            ("stability_score_thresh", stability_score_thresh),
            ("box_nms_thresh", box_nms_thresh),
            ("crop_nms_thresh", crop_nms_thresh),
            ("crop_overlap_ratio", crop_overlap_ratio),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {value!r}.")
        if point_grids is not None and len(point_grids) < crop_n_layers + 1:
            raise ValueError(f"point_grids needs one grid per crop layer: {crop_n_layers + 1}, got {len(point_grids)}.")
        self._image = ImageClaim(predictor)
        self.point_grids = point_grids or [
            build_point_grid(int(points_per_side / crop_n_points_downscale_factor**layer))
            for layer in range(crop_n_layers + 1)
        ]
        self.points_per_batch = points_per_batch
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_score_thresh = stability_score_thresh
        self.stability_score_offset = stability_score_offset
        self.box_nms_thresh = box_nms_thresh
        self.crop_n_layers = crop_n_layers
        self.crop_nms_thresh = crop_nms_thresh
        self.crop_overlap_ratio = crop_overlap_ratio
        self.min_mask_region_area = min_mask_region_area
        self.output_mode = output_mode
        self.show_progress = show_progress
        self.stage_counts: dict[str, int] = {}

    @property
    def predictor(self) -> OVSamPredictor:
        """The predictor the generator decodes with (possibly shared)."""
        return self._image.predictor

    def generate(self, image: np.ndarray) -> list[dict[str, Any]]:
        """Return one record per mask, like `SamAutomaticMaskGenerator.generate` (empty list if none pass)."""
        image = to_rgb_uint8(image)
        self.stage_counts = dict.fromkeys(STAGES, 0)
        data = self._generate_masks(image)
        if self.min_mask_region_area > 0 and len(data):
            data = _remove_small_regions(
                data, self.min_mask_region_area, max(self.box_nms_thresh, self.crop_nms_thresh)
            )
        self.stage_counts["small-region clean-up"] = len(data)
        return [self._record(data, index) for index in range(len(data))]

    def _generate_masks(self, image: np.ndarray) -> _Masks:
        crop_boxes, layers = generate_crop_boxes(image.shape[:2], self.crop_n_layers, self.crop_overlap_ratio)
        total = sum(math.ceil(len(self.point_grids[layer]) / self.points_per_batch) for layer in layers)
        with tqdm(total=total, desc="decoder batches", unit="batch", disable=not self.show_progress) as bar:
            parts = []
            for index, (crop_box, layer) in enumerate(zip(crop_boxes, layers)):
                bar.set_postfix_str(f"crop {index + 1}/{len(crop_boxes)}")
                parts.append(self._process_crop(image, crop_box, layer, bar))
        data = _Masks.concat(parts)
        if len(crop_boxes) > 1 and len(data):
            # Prefer masks from smaller crops.
            data = data.take(nms(data.boxes, 1.0 / box_area(data.crop_boxes), self.crop_nms_thresh))
        self.stage_counts["NMS across crops"] = len(data)
        return data

    def _process_crop(self, image: np.ndarray, crop_box: list[int], layer: int, bar: tqdm) -> _Masks:
        x0, y0, x1, y1 = crop_box
        crop = image[y0:y1, x0:x1]
        self._image.set_image(crop)
        points = self.point_grids[layer] * np.array(crop.shape[:2])[None, ::-1]
        parts = []
        for start in range(0, len(points), self.points_per_batch):
            parts.append(self._process_batch(points[start : start + self.points_per_batch], crop_box, image.shape[:2]))
            bar.update()
        self._image.release()
        data = _Masks.concat(parts)
        if not len(data):
            return data
        data = data.take(nms(data.boxes.astype(np.float64), data.iou_preds, self.box_nms_thresh))
        self.stage_counts["NMS within each crop"] += len(data)
        offset = np.array([x0, y0, x0, y0])
        data.boxes = data.boxes + offset
        data.points = data.points + offset[:2]
        data.crop_boxes = np.tile(np.array(crop_box), (len(data), 1))
        return data

    def _process_batch(self, points: np.ndarray, crop_box: list[int], image_size: tuple[int, int]) -> _Masks:
        """One batch of ``points_per_batch`` points, decoded `DECODER_CHUNK` points at a time.

        Each chunk's masks are filtered and upscaled before the next chunk is decoded, so the
        generator's memory does not grow with ``points_per_batch`` (upstream's does: it keeps
        every mask of the batch at full size); the batch only sets the progress bar's step.
        """
        parts = [
            self._process_points(points[start : start + DECODER_CHUNK], crop_box, image_size)
            for start in range(0, len(points), DECODER_CHUNK)
        ]
        return _Masks.concat(parts)

    def _process_points(self, points: np.ndarray, crop_box: list[int], image_size: tuple[int, int]) -> _Masks:
        """Decode a few points, drop masks by predicted IoU, upscale and filter the rest (`_upscale_and_filter`)."""
        with self._image.use() as predictor:
            low_res, iou_preds = predictor.predict_low_res(points[:, None, :], np.ones((len(points), 1)))
            sizes = predictor.input_size, predictor.original_size
        per_point = low_res.shape[1]
        low_res = low_res.reshape(-1, *low_res.shape[2:])
        iou_preds = iou_preds.reshape(-1)
        mask_points = np.repeat(points, per_point, axis=0)
        keep = iou_preds > self.pred_iou_thresh if self.pred_iou_thresh > 0.0 else np.ones(len(iou_preds), bool)
        keep = np.flatnonzero(keep)
        self.stage_counts["decoded"] += len(iou_preds)
        self.stage_counts["IoU filter"] += len(keep)
        parts = [
            self._upscale_and_filter(low_res[chunk], iou_preds[chunk], mask_points[chunk], sizes, crop_box, image_size)
            for chunk in np.array_split(keep, max(1, math.ceil(len(keep) / UPSCALE_CHUNK)))
            if len(chunk)
        ]
        return _Masks.concat(parts)

    def _upscale_and_filter(
        self,
        low_res: np.ndarray,
        iou_preds: np.ndarray,
        points: np.ndarray,
        sizes: tuple[tuple[int, int], tuple[int, int]],
        crop_box: list[int],
        image_size: tuple[int, int],
    ) -> _Masks:
        """Upscale a few surviving logits to the crop, filter by stability and crop edge, encode as RLE.

        ``sizes``: the crop's (input_size, original_size) as the predictor had them when it decoded the logits.
        """
        logits = self._image.predictor.upscale_masks(low_res[:, None], *sizes)[:, 0]
        stability = stability_score(logits, MASK_THRESHOLD, self.stability_score_offset)
        keep = (
            stability >= self.stability_score_thresh
            if self.stability_score_thresh > 0.0
            else np.ones(len(logits), bool)
        )
        masks = logits[keep] > MASK_THRESHOLD
        boxes = masks_to_boxes(masks)
        not_at_edge = ~is_box_near_crop_edge(boxes, crop_box, [0, 0, image_size[1], image_size[0]])
        self.stage_counts["stability filter"] += len(masks)
        self.stage_counts["crop edge"] += int(not_at_edge.sum())
        masks, boxes = masks[not_at_edge], boxes[not_at_edge]
        return _Masks(
            encode_rles(masks, crop_box, image_size),
            boxes,
            iou_preds[keep][not_at_edge],
            stability[keep][not_at_edge],
            points[keep][not_at_edge],
            np.zeros((len(masks), 4), np.int64),
        )

    def _record(self, data: _Masks, index: int) -> dict[str, Any]:
        rle = data.rles[index]
        if self.output_mode == "binary_mask":
            segmentation = mask_utils.decode(rle).astype(bool)
        elif self.output_mode == "uncompressed_rle":
            segmentation = mask_to_uncompressed_rle(mask_utils.decode(rle).astype(bool))
        else:
            segmentation = {"size": list(rle["size"]), "counts": rle["counts"].decode("utf-8")}
        return {
            "segmentation": segmentation,
            "area": int(mask_utils.area(rle)),
            "bbox": xyxy_to_xywh(data.boxes[index]),
            "predicted_iou": float(data.iou_preds[index]),
            "point_coords": [data.points[index].tolist()],
            "stability_score": float(data.stability[index]),
            "crop_box": xyxy_to_xywh(data.crop_boxes[index]),
        }


# ------------------------------------------------------------------ grid and crops
def build_point_grid(n_per_side: int) -> np.ndarray:
    """An n x n grid of points in [0, 1]^2, cell centres, x varying fastest (upstream's order)."""
    offset = 1 / (2 * n_per_side)
    side = np.linspace(offset, 1 - offset, n_per_side)
    return np.stack(np.meshgrid(side, side), axis=-1).reshape(-1, 2)


def generate_crop_boxes(
    image_size: tuple[int, int], n_layers: int, overlap_ratio: float
) -> tuple[list[list[int]], list[int]]:
    """The whole image, then per layer i a (2**(i+1))^2 grid of overlapping XYXY crops."""
    height, width = image_size
    crop_boxes, layers = [[0, 0, width, height]], [0]
    for layer in range(n_layers):
        per_side = 2 ** (layer + 1)
        overlap = int(overlap_ratio * min(height, width) * (2 / per_side))
        crop_w = int(math.ceil((overlap * (per_side - 1) + width) / per_side))
        crop_h = int(math.ceil((overlap * (per_side - 1) + height) / per_side))
        xs = [int((crop_w - overlap) * i) for i in range(per_side)]
        ys = [int((crop_h - overlap) * i) for i in range(per_side)]
        for x0, y0 in product(xs, ys):
            crop_boxes.append([x0, y0, min(x0 + crop_w, width), min(y0 + crop_h, height)])
            layers.append(layer + 1)
    return crop_boxes, layers


# ------------------------------------------------------------------ mask arithmetic
def masks_to_boxes(masks: np.ndarray) -> np.ndarray:
    """Inclusive XYXY pixel boxes [N, 4] around boolean masks [N, H, W]; [0, 0, 0, 0] for an empty mask."""
    if len(masks) == 0:
        return np.zeros((0, 4), np.int64)
    rows, cols = masks.any(axis=2), masks.any(axis=1)
    height, width = masks.shape[1:]
    top, left = rows.argmax(axis=1), cols.argmax(axis=1)
    bottom = height - 1 - rows[:, ::-1].argmax(axis=1)
    right = width - 1 - cols[:, ::-1].argmax(axis=1)
    boxes = np.stack([left, top, right, bottom], axis=1).astype(np.int64)
    boxes[~rows.any(axis=1)] = 0
    return boxes


def box_area(boxes: np.ndarray) -> np.ndarray:
    boxes = np.asarray(boxes, dtype=np.float64)
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS like `torchvision.ops.nms`: indices kept, highest score first."""
    boxes = np.asarray(boxes, dtype=np.float64)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    areas = box_area(boxes)
    suppressed = np.zeros(len(boxes), bool)
    keep = []
    for position, index in enumerate(order):
        if suppressed[index]:
            continue
        keep.append(index)
        rest = order[position + 1 :]
        rest = rest[~suppressed[rest]]
        top_left = np.maximum(boxes[index, :2], boxes[rest, :2])
        bottom_right = np.minimum(boxes[index, 2:], boxes[rest, 2:])
        inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = inter / (areas[index] + areas[rest] - inter)
        suppressed[rest[iou > iou_threshold]] = True
    return np.array(keep, dtype=np.int64)


def is_box_near_crop_edge(boxes: np.ndarray, crop_box: list[int], image_box: list[int]) -> np.ndarray:
    """True for boxes that touch a crop edge (within 20 px) which is not also an image edge."""
    x0, y0 = crop_box[:2]
    boxes = boxes.astype(np.float64) + np.array([x0, y0, x0, y0])
    near_crop = np.abs(boxes - np.array(crop_box, dtype=np.float64)) <= CROP_EDGE_TOLERANCE
    near_image = np.abs(boxes - np.array(image_box, dtype=np.float64)) <= CROP_EDGE_TOLERANCE
    return np.any(near_crop & ~near_image, axis=1)


def encode_rles(masks: np.ndarray, crop_box: list[int], image_size: tuple[int, int]) -> list[dict]:
    """COCO RLEs of crop masks [N, h, w] placed into the full image (pycocotools does the encoding)."""
    if len(masks) == 0:
        return []
    x0, y0, x1, y1 = crop_box
    full = np.zeros((image_size[0], image_size[1], len(masks)), dtype=np.uint8, order="F")
    full[y0:y1, x0:x1] = masks.transpose(1, 2, 0)
    return mask_utils.encode(full)


def mask_to_uncompressed_rle(mask: np.ndarray) -> dict:
    """Uncompressed COCO RLE (column-major run lengths, starting with a run of zeros) of one mask."""
    flat = mask.transpose().reshape(-1)
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {"size": list(mask.shape), "counts": counts}


def xyxy_to_xywh(box: np.ndarray) -> list:
    x0, y0, x1, y1 = (value.item() if hasattr(value, "item") else value for value in box)
    return [x0, y0, x1 - x0, y1 - y0]


def remove_small_regions(mask: np.ndarray, area_thresh: float, mode: str) -> tuple[np.ndarray, bool]:
    """Fill holes (mode "holes") or drop islands ("islands") smaller than ``area_thresh``; say if changed."""
    correct_holes = mode == "holes"
    working = (correct_holes ^ mask).astype(np.uint8)
    n_labels, regions, stats, _ = cv2.connectedComponentsWithStats(working, 8)
    sizes = stats[1:, -1]
    small = np.flatnonzero(sizes < area_thresh) + 1
    if len(small) == 0:
        return mask, False
    fill = np.concatenate([[0], small])
    if not correct_holes:
        fill = np.setdiff1d(np.arange(n_labels), fill)
        if len(fill) == 0:
            fill = np.array([int(np.argmax(sizes)) + 1])
    return np.isin(regions, fill), True


def _remove_small_regions(data: _Masks, min_area: int, nms_thresh: float) -> _Masks:
    """Clean every mask, then NMS again preferring masks that needed no cleaning (upstream's rule)."""
    cleaned, unchanged = [], []
    for rle in data.rles:
        mask = mask_utils.decode(rle).astype(bool)
        mask, holes_changed = remove_small_regions(mask, min_area, "holes")
        mask, islands_changed = remove_small_regions(mask, min_area, "islands")
        cleaned.append(mask)
        unchanged.append(not (holes_changed or islands_changed))
    boxes = masks_to_boxes(np.stack(cleaned))
    keep = nms(boxes, np.array(unchanged, dtype=np.float64), nms_thresh)
    for index in keep:
        if not unchanged[index]:
            data.rles[index] = mask_utils.encode(np.asfortranarray(cleaned[index].astype(np.uint8)))
            data.boxes[index] = boxes[index]
    return data.take(keep)


# ------------------------------------------------------------------ export
def anns_to_coco(
    anns: list[dict], image_size: tuple[int, int], file_name: str = "image.jpg", image_id: int = 1
) -> dict:
    """A COCO-style results dict (one image, category "object") with masks as compressed RLE."""
    height, width = image_size
    annotations = []
    for index, ann in enumerate(anns, start=1):
        annotations.append(
            {
                "id": index,
                "image_id": image_id,
                "category_id": 1,
                "iscrowd": 0,
                "segmentation": _as_coco_rle(ann["segmentation"], image_size),
                **{
                    key: ann[key]
                    for key in ("area", "bbox", "predicted_iou", "point_coords", "stability_score", "crop_box")
                },
            }
        )
    return {
        "images": [{"id": image_id, "width": width, "height": height, "file_name": file_name}],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "object"}],
    }


def coco_to_masks(coco: dict) -> list[np.ndarray]:
    """Decode the masks of a dict from `anns_to_coco` (or its JSON) back to boolean arrays."""
    return [
        mask_utils.decode(
            {"size": ann["segmentation"]["size"], "counts": ann["segmentation"]["counts"].encode()}
        ).astype(bool)
        for ann in coco["annotations"]
    ]


def _as_coco_rle(segmentation: Any, image_size: tuple[int, int]) -> dict:
    if isinstance(segmentation, np.ndarray):
        rle = mask_utils.encode(np.asfortranarray(segmentation.astype(np.uint8)))
    elif isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, *image_size)
    else:
        return dict(segmentation)
    return {"size": list(rle["size"]), "counts": rle["counts"].decode("utf-8")}
