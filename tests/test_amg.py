"""OVSamAutomaticMaskGenerator against segment_anything's SamAutomaticMaskGenerator, in two layers.

a. Neural path: the real (random-weight) vit_b networks with every filter off, so each of the
   points_per_side^2 x 3 masks must appear on both sides with the same score.
b. Post-processing: a synthetic disc decoder (tests/synthetic_sam.py) gives both sides
   structured masks, with thresholds set so that IoU and stability filtering, NMS, crop
   handling and small-region clean-up all remove something.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from tests.helpers import F32, make_test_images
from utils.accuracy import mask_iou
from utils.amg import OVSamAutomaticMaskGenerator, anns_to_coco, coco_to_masks, mask_to_uncompressed_rle
from utils.predictor import OVSamPredictor
from utils.viz import draw_anns

ROOT = Path(__file__).resolve().parent.parent
NO_FILTERS = dict(pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=1.0)


def small_images() -> dict[str, np.ndarray]:
    images = make_test_images()
    return {
        "landscape": cv2.resize(images["landscape"], (450, 300), interpolation=cv2.INTER_AREA),
        "portrait": cv2.resize(images["portrait"], (300, 502), interpolation=cv2.INTER_AREA),
    }


def match_one_to_one(ours: list[dict], theirs: list[dict]) -> list[tuple[dict, dict, float]]:
    """Pair each upstream mask with the best unused mask of ours (greedy by IoU)."""
    unused = list(range(len(ours)))
    pairs = []
    for ann in theirs:
        ious = [mask_iou(ours[i]["segmentation"], ann["segmentation"]) for i in unused]
        best = int(np.argmax(ious))
        pairs.append((ours[unused.pop(best)], ann, ious[best]))
    return pairs


def assert_same_masks(ours: list[dict], theirs: list[dict], min_iou: float = 0.98) -> None:
    assert theirs, "upstream produced no masks: the case tests nothing"
    assert abs(len(ours) - len(theirs)) <= 0.02 * len(theirs), (len(ours), len(theirs))
    pairs = match_one_to_one(ours, theirs) if len(ours) >= len(theirs) else match_one_to_one(theirs, ours)
    for a, b, iou in pairs:
        assert iou >= min_iou
        assert np.abs(np.array(a["bbox"]) - np.array(b["bbox"])).max() <= 2
        assert abs(a["area"] - b["area"]) <= max(2, 0.01 * b["area"])
        assert a["crop_box"] == b["crop_box"]
        assert abs(a["predicted_iou"] - b["predicted_iou"]) <= 1e-3


# ------------------------------------------------------------------ a. neural path
def test_neural_path_matches_upstream_mask_for_mask(sam, ir_f32):
    from segment_anything import SamAutomaticMaskGenerator

    image = small_images()["landscape"]
    options = dict(points_per_side=5, points_per_batch=16, **NO_FILTERS)
    ours = OVSamAutomaticMaskGenerator(OVSamPredictor(*ir_f32, config=F32), show_progress=False, **options).generate(
        image
    )
    theirs = SamAutomaticMaskGenerator(sam, **options).generate(image)
    assert len(ours) == len(theirs) == 5 * 5 * 3
    for a, b in zip(ours, theirs):  # same order: NMS keeps everything, sorted by predicted IoU
        assert a["point_coords"][0] == pytest.approx(b["point_coords"][0])
        assert abs(a["predicted_iou"] - b["predicted_iou"]) <= 1e-3
        assert mask_iou(a["segmentation"], b["segmentation"]) >= 0.98
        assert a["stability_score"] == pytest.approx(b["stability_score"], abs=1e-3)


# ------------------------------------------------------------------ b. post-processing
@pytest.fixture(scope="module")
def upstream_synthetic_sam():
    from segment_anything import sam_model_registry

    return sam_model_registry["vit_b"](checkpoint=None).eval()


POSTPROCESSING_CASES = {
    "defaults": dict(points_per_side=8, stability_score_thresh=0.9),
    "crops": dict(points_per_side=8, stability_score_thresh=0.9, crop_n_layers=1),
    "small_regions": dict(points_per_side=8, stability_score_thresh=0.9, min_mask_region_area=600),
}


def run_both(options: dict, image: np.ndarray, synthetic_ir, upstream_sam) -> tuple[list[dict], list[dict]]:
    from segment_anything import SamAutomaticMaskGenerator

    from tests.synthetic_sam import patch_upstream_generator

    ours = OVSamAutomaticMaskGenerator(OVSamPredictor(*synthetic_ir, config=F32), show_progress=False, **options)
    theirs = SamAutomaticMaskGenerator(upstream_sam, **options)
    patch_upstream_generator(theirs)
    return ours.generate(image), theirs.generate(image)


@pytest.mark.parametrize("image_name", ["landscape", "portrait"])
@pytest.mark.parametrize("case", list(POSTPROCESSING_CASES))
def test_postprocessing_matches_upstream(case, image_name, synthetic_ir, upstream_synthetic_sam):
    image = small_images()[image_name]
    ours, theirs = run_both(POSTPROCESSING_CASES[case], image, synthetic_ir, upstream_synthetic_sam)
    print(f"{case}/{image_name}: {len(ours)} masks here, {len(theirs)} upstream")
    assert_same_masks(ours, theirs)


def test_each_filter_removes_something(synthetic_ir):
    """The cases above only prove something if every stage really drops masks."""
    image = small_images()["landscape"]
    predictor = OVSamPredictor(*synthetic_ir, config=F32)

    def count(**options) -> int:
        return len(
            OVSamAutomaticMaskGenerator(predictor, points_per_side=8, show_progress=False, **options).generate(image)
        )

    everything = count(**NO_FILTERS)
    assert count(**dict(NO_FILTERS, pred_iou_thresh=0.88)) < everything
    assert count(**dict(NO_FILTERS, stability_score_thresh=0.9)) < everything
    assert count(**dict(NO_FILTERS, box_nms_thresh=0.7)) < everything
    defaults = POSTPROCESSING_CASES["defaults"]
    cleaned = OVSamAutomaticMaskGenerator(
        predictor, show_progress=False, **POSTPROCESSING_CASES["small_regions"]
    ).generate(image)
    plain = OVSamAutomaticMaskGenerator(predictor, show_progress=False, **defaults).generate(image)
    assert sorted(a["area"] for a in cleaned) != sorted(a["area"] for a in plain), "clean-up changed nothing"


def test_stage_counts_follow_the_masks_through_every_stage(synthetic_ir):
    """stage_counts (what notebook 05 charts): every prompt decoded, each stage keeps at most what it got,
    each stage drops something here, and the last count is the number of records returned."""
    from utils.amg import STAGES

    image = small_images()["landscape"]
    options = dict(points_per_side=8, stability_score_thresh=0.93, crop_n_layers=1, min_mask_region_area=600)
    generator = OVSamAutomaticMaskGenerator(OVSamPredictor(*synthetic_ir, config=F32), show_progress=False, **options)
    anns = generator.generate(image)
    counts = [generator.stage_counts[stage] for stage in STAGES]
    print(dict(zip(STAGES, counts)))
    assert counts[0] == 3 * (8 * 8) * 5  # three candidates per point, the full image and four crops
    assert all(later <= earlier for earlier, later in zip(counts, counts[1:])), counts
    assert counts[-1] == len(anns) > 0
    for stage in ("IoU filter", "stability filter", "NMS within each crop", "NMS across crops"):
        index = STAGES.index(stage)
        assert counts[index] < counts[index - 1], f"{stage} dropped nothing: {counts}"


def test_memory_does_not_grow_with_points_per_batch(synthetic_ir):
    """The generator's own arrays (NumPy's allocations, which tracemalloc sees) peak the same for a batch of 16
    and of 256 points, and the masks are the same: 256 points' low-res logits alone would be 200 MB."""
    import tracemalloc

    image = small_images()["landscape"]
    predictor = OVSamPredictor(*synthetic_ir, config=F32)
    peaks, results = {}, {}
    for batch in (16, 256):
        generator = OVSamAutomaticMaskGenerator(
            predictor, points_per_side=16, points_per_batch=batch, show_progress=False, **NO_FILTERS
        )
        tracemalloc.start()
        results[batch] = generator.generate(image)
        peaks[batch] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    print(f"peak MiB by points_per_batch: {peaks}")
    assert peaks[256] < 1.2 * peaks[16], peaks
    assert [a["predicted_iou"] for a in results[256]] == [a["predicted_iou"] for a in results[16]]


@pytest.mark.parametrize("output_mode", ["uncompressed_rle", "coco_rle"])
def test_output_modes_decode_to_the_binary_masks(output_mode, synthetic_ir):
    image = small_images()["portrait"]
    predictor = OVSamPredictor(*synthetic_ir, config=F32)
    binary = OVSamAutomaticMaskGenerator(predictor, points_per_side=4, show_progress=False).generate(image)
    encoded = OVSamAutomaticMaskGenerator(
        predictor, points_per_side=4, output_mode=output_mode, show_progress=False
    ).generate(image)
    assert len(binary) == len(encoded) > 0
    for a, b in zip(binary, encoded):
        rle = b["segmentation"]
        if output_mode == "uncompressed_rle":
            assert rle == mask_to_uncompressed_rle(a["segmentation"])
            rle = mask_utils.frPyObjects(rle, *rle["size"])
        decoded = mask_utils.decode({"size": rle["size"], "counts": rle["counts"]}).astype(bool)
        np.testing.assert_array_equal(decoded, a["segmentation"])
        assert b["area"] == a["segmentation"].sum()


def test_uncompressed_rle_matches_upstream_encoder():
    import torch
    from segment_anything.utils.amg import mask_to_rle_pytorch

    masks = np.random.default_rng(0).random((3, 7, 5)) > 0.5
    masks[1] = True
    masks[2] = False
    expected = mask_to_rle_pytorch(torch.as_tensor(masks))
    assert [mask_to_uncompressed_rle(mask) for mask in masks] == expected


def test_coco_json_round_trip(synthetic_ir, tmp_path):
    image = small_images()["landscape"]
    anns = OVSamAutomaticMaskGenerator(OVSamPredictor(*synthetic_ir), points_per_side=4, show_progress=False).generate(
        image
    )
    path = tmp_path / "masks.json"
    path.write_text(json.dumps(anns_to_coco(anns, image.shape[:2], "landscape.jpg")))
    coco = json.loads(path.read_text())
    assert coco["images"][0] == {"id": 1, "width": 450, "height": 300, "file_name": "landscape.jpg"}
    for ann, mask in zip(anns, coco_to_masks(coco), strict=True):
        np.testing.assert_array_equal(mask, ann["segmentation"])


def test_draw_anns_paints_largest_first_and_is_reproducible(synthetic_ir):
    image = small_images()["landscape"]
    anns = OVSamAutomaticMaskGenerator(OVSamPredictor(*synthetic_ir), points_per_side=4, show_progress=False).generate(
        image
    )
    drawn = draw_anns(image, anns, seed=3)
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    np.testing.assert_array_equal(drawn, draw_anns(image, anns, seed=3))
    assert not np.array_equal(drawn, draw_anns(image, anns, seed=4))
    covered = np.any([ann["segmentation"] for ann in anns], axis=0)
    np.testing.assert_array_equal(drawn[~covered], image[~covered])
    assert np.abs(drawn[covered].astype(int) - image[covered]).mean() > 5

    # largest first: opaque paint shows which mask was painted last where two overlap, whatever their order
    large, small = np.zeros((2, *image.shape[:2]), bool)
    large[50:250, 50:400] = True
    small[100:150, 100:200] = True
    rng = np.random.default_rng(3)
    large_colour, small_colour = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    for masks in ([large, small], [small, large]):
        painted = draw_anns(image, [{"segmentation": mask, "area": int(mask.sum())} for mask in masks], 1.0, seed=3)
        np.testing.assert_array_equal(painted[60, 60], large_colour)
        np.testing.assert_array_equal(painted[120, 150], small_colour)


def test_nothing_passing_gives_an_empty_list(ir_f32):
    """Random weights predict IoU near 0: with the default threshold nothing survives."""
    predictor = OVSamPredictor(*ir_f32, config=F32)
    image = make_test_images()["tiny"]
    assert OVSamAutomaticMaskGenerator(predictor, points_per_side=4, show_progress=False).generate(image) == []


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(output_mode="png"), "output_mode"),
        (dict(point_grids=[np.zeros((4, 2))]), "exactly one"),
        (dict(points_per_side=None), "exactly one"),
        (dict(points_per_side=0), "positive"),
        (dict(points_per_batch=-1), "positive"),
        (dict(crop_n_points_downscale_factor=0), "positive"),
        (dict(crop_n_layers=-1), "zero or positive"),
        (dict(min_mask_region_area=-5), "zero or positive"),
        (dict(pred_iou_thresh=1.5), r"within \[0, 1\]"),
        (dict(stability_score_thresh=-0.1), r"within \[0, 1\]"),
        (dict(box_nms_thresh=2), r"within \[0, 1\]"),
        (dict(points_per_side=None, point_grids=[np.zeros((4, 2))], crop_n_layers=1), "one grid per crop layer"),
    ],
)
def test_bad_options(synthetic_ir, options, message):
    with pytest.raises(ValueError, match=message):
        OVSamAutomaticMaskGenerator(OVSamPredictor(*synthetic_ir), **options)


def test_bad_image(synthetic_ir):
    generator = OVSamAutomaticMaskGenerator(OVSamPredictor(*synthetic_ir), show_progress=False)
    with pytest.raises(ValueError, match="uint8"):
        generator.generate(np.zeros((20, 20, 3), np.float32))


TORCH_FREE_SCRIPT = """
import sys
sys.modules["torch"] = None  # from here on, any import of torch raises ImportError
sys.path.insert(0, sys.argv[1])
import numpy as np
from utils.amg import OVSamAutomaticMaskGenerator
from utils.predictor import OVSamPredictor
from utils.transforms import read_rgb_image
from utils.viz import draw_anns
predictor = OVSamPredictor(sys.argv[2], sys.argv[3], config={"INFERENCE_PRECISION_HINT": "f32"})
image = read_rgb_image(sys.argv[4])[::8, ::8].copy()
anns = OVSamAutomaticMaskGenerator(predictor, points_per_side=3, pred_iou_thresh=0, stability_score_thresh=0,
                                   output_mode="coco_rle", show_progress=False).generate(image)
assert len(anns) > 0
print(len(anns), "masks without torch")
"""


def test_generate_runs_without_torch(ir_f32):
    result = subprocess.run(
        [sys.executable, "-c", TORCH_FREE_SCRIPT, str(ROOT), *map(str, ir_f32), str(ROOT / "data" / "truck.jpg")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "masks without torch" in result.stdout
