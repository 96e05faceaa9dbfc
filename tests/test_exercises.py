"""The notebooks' self-checks (utils.exercises): a right answer passes, each kind of wrong answer is told what is off.

The notebooks' solution cells assert the same checks in CI (nbval), so the right answers are also tested in place;
tests/test_notebooks_clean.py checks that every write-code exercise has a hidden solution that calls its check.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from tests.helpers import F32, make_test_images
from utils import exercises
from utils.accuracy import mask_iou
from utils.predictor import OVSamPredictor


def verdict(capsys, passed: bool, expected: str) -> None:
    """The check returned ``passed`` and printed ``expected`` in its one line."""
    line = capsys.readouterr().out.strip()
    assert line.startswith(exercises.PASS if passed else exercises.NOT_YET), line
    assert expected in line, line


def test_dynamic_sizes(capsys):
    good = [np.zeros((3, 4, 256, 256)), np.zeros((3, 4))]
    assert exercises.check_dynamic_sizes(good)
    verdict(capsys, True, "(3, 4, 256, 256)")
    assert not exercises.check_dynamic_sizes([np.zeros((1, 4, 256, 256)), np.zeros((1, 4))])
    verdict(capsys, False, "stack the 3 prompts along the first axis")
    assert not exercises.check_dynamic_sizes([np.zeros((3, 1, 256, 256)), np.zeros((3, 1))])
    verdict(capsys, False, "4 candidates")


def test_weights_on_disk(tmp_path, capsys):
    (tmp_path / "fp16.bin").write_bytes(b"x" * 1000)
    (tmp_path / "f32.bin").write_bytes(b"x" * 1990)
    (tmp_path / "same.bin").write_bytes(b"x" * 1000)
    assert exercises.check_weights_on_disk(tmp_path / "fp16.bin", tmp_path / "f32.bin")
    verdict(capsys, True, "1.99x")
    assert not exercises.check_weights_on_disk(tmp_path / "f32.bin", tmp_path / "fp16.bin")
    verdict(capsys, False, "pass the FP16 one first")
    assert not exercises.check_weights_on_disk(tmp_path / "fp16.bin", tmp_path / "same.bin")
    verdict(capsys, False, "compress_to_fp16=False")


def test_mask_iou(capsys):
    assert exercises.check_mask_iou(mask_iou)
    verdict(capsys, True, "agrees on 5 cases")
    assert not exercises.check_mask_iou(lambda a, b: np.logical_and(a, b).sum() / np.logical_or(a, b).sum())
    verdict(capsys, False, "on two empty masks it gives nan")  # 0 / 0: the one case the formula alone misses
    assert not exercises.check_mask_iou(lambda a, b: np.logical_and(a, b).sum() / a.sum())  # right when b is in a
    verdict(capsys, False, "on two random masks")
    assert not exercises.check_mask_iou(lambda a: 1.0)
    verdict(capsys, False, "raised TypeError")


@pytest.fixture(scope="module")
def tiny_predictor(tiny_ir_f32):
    predictor = OVSamPredictor(*tiny_ir_f32, config=F32)
    predictor.set_image(make_test_images()["landscape"])
    return predictor


def test_refinement(tiny_predictor, capsys):
    points, logits, scores = [[500, 375]], None, []
    for extra in ([600, 400], [700, 450], [800, 500]):
        points.append(extra)
        _, round_scores, logits = tiny_predictor.predict(
            point_coords=np.array(points), point_labels=np.ones(len(points)), mask_input=logits, multimask_output=False
        )
        scores.append(round_scores[0])
    assert exercises.check_refinement(tiny_predictor, scores)
    verdict(capsys, True, "the 3 rounds give the same scores")
    assert not exercises.check_refinement(tiny_predictor, scores[:2])
    verdict(capsys, False, "2 scores for 3 rounds")
    without_mask_input = []
    for count in (2, 3, 4):
        _, round_scores, _ = tiny_predictor.predict(
            point_coords=np.array(points[:count]), point_labels=np.ones(count), multimask_output=False
        )
        without_mask_input.append(round_scores[0])
    assert not exercises.check_refinement(tiny_predictor, without_mask_input)
    verdict(capsys, False, "round 2's score differs")


def test_box_and_point_inputs(capsys):
    from utils.transforms import apply_boxes, apply_coords

    shape, point, box = (1200, 1800, 3), np.array([[575, 750]]), np.array([425, 600, 700, 875])
    coords = np.concatenate([apply_coords(point, shape[:2]), apply_boxes(box[None], shape[:2]).reshape(2, 2)])[None]
    good = {"point_coords": coords, "point_labels": np.array([[0, 2, 3]])}
    assert exercises.check_box_and_point_inputs(good, point, box, shape)
    verdict(capsys, True, "labels 0, 2, 3")
    padded = {"point_coords": np.concatenate([coords, [[[0, 0]]]], axis=1), "point_labels": np.array([[0, 2, 3, -1]])}
    assert not exercises.check_box_and_point_inputs(padded, point, box, shape)
    verdict(capsys, False, "no padding point")
    in_pixels = {"point_coords": np.array([[[575, 750], [425, 600], [700, 875]]]), "point_labels": good["point_labels"]}
    assert not exercises.check_box_and_point_inputs(in_pixels, point, box, shape)
    verdict(capsys, False, "not in the 1024 frame")


def test_undo(capsys):
    assert exercises.check_undo(SimpleNamespace(points=[[500.0, 375.0]], labels=[1]), [500, 375])
    verdict(capsys, True, "undo took back the last point only")
    assert not exercises.check_undo(SimpleNamespace(points=[], labels=[]), [500, 375])
    verdict(capsys, False, "only the first is left")


def test_largest_masks(capsys):
    rng = np.random.default_rng(0)
    anns = []
    for size in rng.permutation(np.arange(1, 16)):
        segmentation = np.zeros((20, 20), bool)
        segmentation.flat[:size] = True
        anns.append({"area": int(size), "segmentation": segmentation})
    largest = sorted(anns, key=lambda record: record["area"], reverse=True)[:10]
    assert exercises.check_largest_masks(largest, anns)
    verdict(capsys, True, "from 15 pixels down to 6")
    assert not exercises.check_largest_masks(sorted(anns, key=lambda record: record["area"])[:10], anns)
    verdict(capsys, False, "in which order")
    assert exercises.check_largest_masks([], [])  # random weights may leave no mask at all
    verdict(capsys, True, "none: the generator kept no mask")
    wrong_area = [dict(record) for record in largest]
    wrong_area[0]["segmentation"] = np.zeros((20, 20), bool)
    assert not exercises.check_largest_masks(wrong_area, anns)
    verdict(capsys, False, "pixel count")


def quantize_asymmetric(x, sign=1):
    scale = (x.max() - x.min()) / 255
    zero_point = np.round(-sign * x.min() / scale)
    return np.clip(np.round(x / scale) + zero_point, 0, 255).astype(np.uint8), scale, zero_point


def dequantize(q, scale, zero_point):
    return (q.astype(np.float32) - zero_point) * scale


def test_asymmetric_quantization(capsys):
    assert exercises.check_asymmetric_quantization(quantize_asymmetric, dequantize)
    verdict(capsys, True, "within half a step")
    assert not exercises.check_asymmetric_quantization(lambda x: quantize_asymmetric(x, sign=-1), dequantize)
    verdict(capsys, False, "zero point's sign")
    as_int8 = lambda x: (quantize_asymmetric(x)[0].astype(np.int8), *quantize_asymmetric(x)[1:])  # noqa: E731
    assert not exercises.check_asymmetric_quantization(as_int8, dequantize)
    verdict(capsys, False, "uint8")


def test_per_prompt_times(capsys):
    assert exercises.check_per_prompt_times({1: 2.0, 4: 1.8, 16: 1.7})
    verdict(capsys, True, "batch 16: 1.7 ms per prompt")
    assert not exercises.check_per_prompt_times({1: 2.0, 4: 7.5, 16: 30.0})
    verdict(capsys, False, "divide each call's time by its batch size")
    assert not exercises.check_per_prompt_times({1: 2.0, 4: 1.8})
    verdict(capsys, False, "batch sizes [1, 4]")


def test_single_mask_choice(capsys):
    stable = np.full((1, 4, 8, 8), -5.0)
    stable[0, 0, :4] = 5.0  # output 0 is all-or-nothing around zero: stable
    outputs = {"masks": stable, "iou_predictions": np.array([[0.5, 0.9, 0.2, 0.3]])}
    assert exercises.check_single_mask_choice(0, outputs)
    verdict(capsys, True, "output 0")
    unstable = stable.copy()
    unstable[0, 0, 4:] = 0.0  # logits at 0: inside -0.05 but not +0.05, so half the area is unstable
    outputs_unstable = {"masks": unstable, "iou_predictions": outputs["iou_predictions"]}
    assert exercises.check_single_mask_choice(1, outputs_unstable)
    verdict(capsys, True, "output 1")
    assert not exercises.check_single_mask_choice(0, outputs_unstable)
    verdict(capsys, False, "output 0's stability is 0.500")


def test_without_padding(capsys):
    click = {"point_coords": np.array([[[284.4, 213.4]]]), "point_labels": np.array([[1]])}
    assert exercises.check_without_padding(click)
    verdict(capsys, True, "the click alone")
    padded = {"point_coords": np.array([[[284.4, 213.4], [0, 0]]]), "point_labels": np.array([[1, -1]])}
    assert not exercises.check_without_padding(padded)
    verdict(capsys, False, "still holds the padding point")


def test_click_latency(capsys):
    assert exercises.check_click_latency(widget_ms=40.0, predict_ms=35.0)
    verdict(capsys, True, "40 ms per click")
    assert not exercises.check_click_latency(widget_ms=800.0, predict_ms=35.0)
    verdict(capsys, False, "divide by the number of clicks")


def test_one_scale_error(capsys):
    w = np.random.default_rng(0).normal(size=(8, 16)).astype(np.float32) * np.arange(1, 9)[:, None]
    scale = np.abs(w).max() / 127
    right = np.linalg.norm(np.round(w / scale) * scale - w) / np.linalg.norm(w)
    assert exercises.check_one_scale_error(w, right)
    verdict(capsys, True, "one scale for the matrix")
    per_row = np.abs(w).max(axis=1, keepdims=True) / 127
    assert not exercises.check_one_scale_error(
        w, np.linalg.norm(np.round(w / per_row) * per_row - w) / np.linalg.norm(w)
    )
    verdict(capsys, False, "np.abs(w).max() / 127")


def test_filtered_coco(capsys, tmp_path):
    annotations = [
        {"id": index, "image_id": 1, "category_id": 1, "area": area, "predicted_iou": score, "bbox": [0, 0, 2, 2]}
        for index, (area, score) in enumerate([(50, 0.95), (500, 0.95), (500, 0.5), (5000, 0.99)], start=1)
    ]
    source = {"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": annotations, "categories": [{"id": 1}]}
    coco_path, filtered_path = tmp_path / "coco.json", tmp_path / "filtered.json"
    coco_path.write_text(json.dumps(source))

    def check(kept, **changes):
        filtered_path.write_text(json.dumps(source | {"annotations": kept} | changes))
        return exercises.check_filtered_coco(filtered_path, coco_path, min_area=100, min_score=0.9)

    assert check([annotations[1], annotations[3]])
    verdict(capsys, True, "2 of 4 annotations kept")
    assert not check([annotations[1], annotations[2], annotations[3]])  # the score left out
    verdict(capsys, False, "1 too many")
    assert not check([annotations[1], annotations[3]], images=[])
    verdict(capsys, False, "images or categories changed")
    assert not check([annotations[1], annotations[3] | {"area": 1}])
    verdict(capsys, False, "an annotation changed")
    filtered_path.write_text("[]")
    assert not exercises.check_filtered_coco(filtered_path, coco_path, 100, 0.9)
    verdict(capsys, False, "pycocotools cannot load")
    coco_path.write_text(json.dumps(source | {"annotations": []}))
    assert check([])
    verdict(capsys, True, "the job kept no mask")


def test_memory_frames(capsys):
    assert exercises.check_memory_frames(lambda frame_idx: 1 + min(frame_idx - 1, 6), num_maskmem=7)
    verdict(capsys, True, "7 from frame 7 on")
    assert not exercises.check_memory_frames(lambda frame_idx: min(frame_idx - 1, 6), num_maskmem=7)
    verdict(capsys, False, "the prompted frame's memory is read too")
    assert not exercises.check_memory_frames(lambda frame_idx: frame_idx, num_maskmem=7)
    verdict(capsys, False, "the window stops growing")
    assert not exercises.check_memory_frames(lambda frame_idx: 7, num_maskmem=7)
    verdict(capsys, False, "frame 1 reads only frame 0's memory")
