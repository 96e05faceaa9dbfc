"""OpenVINO against segment_anything on the same seeded random vit_b weights, at f32.

Each prompt type runs through `OVSamPredictor` and `SamPredictor` on a landscape,
a portrait and a tiny image. Thresholds: `utils.accuracy`'s ``PARITY_*`` constants
(embedding relative error, mask IoU, scores, logits).
"""

from __future__ import annotations

import numpy as np
import pytest

from utils.accuracy import (
    PARITY_EMBEDDING_TOLERANCE,
    PARITY_LOGIT_TOLERANCE,
    PARITY_MIN_MASK_IOU,
    PARITY_SCORE_TOLERANCE,
    mask_iou,
)


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def scaled_prompts(shape: tuple[int, int]) -> dict[str, dict]:
    """Prompts placed at fixed fractions of the image, so every image gets comparable ones."""
    h, w = shape
    at = lambda fx, fy: [fx * (w - 1), fy * (h - 1)]  # noqa: E731
    box = np.array([0.25 * w, 0.45 * h, 0.45 * w, 0.75 * h])
    return {
        "one_point": dict(point_coords=np.array([at(0.3, 0.5)]), point_labels=np.array([1])),
        "three_points": dict(
            point_coords=np.array([at(0.3, 0.5), at(0.6, 0.55), at(0.1, 0.8)]), point_labels=np.array([1, 1, 1])
        ),
        "negative_point": dict(point_coords=np.array([at(0.3, 0.5), at(0.7, 0.3)]), point_labels=np.array([1, 0])),
        "box": dict(box=box),
        "box_and_negative_point": dict(box=box, point_coords=np.array([at(0.35, 0.6)]), point_labels=np.array([0])),
        "box_and_points": dict(
            box=box, point_coords=np.array([at(0.35, 0.6), at(0.3, 0.5)]), point_labels=np.array([0, 1])
        ),
    }


def assert_same_prediction(ov_out, torch_out, logits: bool = False) -> None:
    ov_masks, ov_scores, ov_low = ov_out
    pt_masks, pt_scores, pt_low = torch_out
    assert ov_masks.shape == pt_masks.shape and ov_masks.dtype == pt_masks.dtype
    assert ov_scores.shape == pt_scores.shape and ov_low.shape == pt_low.shape
    np.testing.assert_allclose(ov_scores, pt_scores, atol=PARITY_SCORE_TOLERANCE, rtol=0)
    np.testing.assert_allclose(ov_low, pt_low, atol=PARITY_LOGIT_TOLERANCE, rtol=0)
    if logits:
        np.testing.assert_allclose(ov_masks, pt_masks, atol=PARITY_LOGIT_TOLERANCE, rtol=0)
        ov_masks, pt_masks = ov_masks > 0, pt_masks > 0
    for ov_mask, pt_mask in zip(ov_masks, pt_masks):
        assert mask_iou(ov_mask, pt_mask) >= PARITY_MIN_MASK_IOU


def test_embedding_matches_pytorch(predictor_pair):
    ov_predictor, torch_predictor = predictor_pair
    expected = torch_predictor.get_image_embedding().numpy()
    assert ov_predictor.get_image_embedding().shape == expected.shape == (1, 256, 64, 64)
    error = relative_error(ov_predictor.get_image_embedding(), expected)
    print(f"embedding relative error (max abs / max |ref|): {error:.2e}")
    assert error <= PARITY_EMBEDDING_TOLERANCE
    assert ov_predictor.input_size == tuple(torch_predictor.input_size)
    assert ov_predictor.original_size == tuple(torch_predictor.original_size)


@pytest.mark.parametrize("multimask_output", [True, False])
@pytest.mark.parametrize(
    "prompt", ["one_point", "three_points", "negative_point", "box", "box_and_negative_point", "box_and_points"]
)
def test_prompt_matches_sam_predictor(predictor_pair, prompt, multimask_output):
    ov_predictor, torch_predictor = predictor_pair
    kwargs = scaled_prompts(ov_predictor.original_size)[prompt]
    assert_same_prediction(
        ov_predictor.predict(**kwargs, multimask_output=multimask_output),
        torch_predictor.predict(**kwargs, multimask_output=multimask_output),
    )


def test_return_logits_matches(predictor_pair):
    ov_predictor, torch_predictor = predictor_pair
    kwargs = scaled_prompts(ov_predictor.original_size)["three_points"]
    ov_out = ov_predictor.predict(**kwargs, return_logits=True)
    assert ov_out[0].dtype == np.float32
    assert_same_prediction(ov_out, torch_predictor.predict(**kwargs, return_logits=True), logits=True)


def test_mask_input_refinement_matches(predictor_pair):
    """Feeding back the best low-res logits with new points changes the result as upstream does."""
    ov_predictor, torch_predictor = predictor_pair
    prompts = scaled_prompts(ov_predictor.original_size)
    first = torch_predictor.predict(**prompts["one_point"])
    previous = first[2][np.argmax(first[1])][None]
    kwargs = dict(prompts["negative_point"], mask_input=previous, multimask_output=False)
    refined = ov_predictor.predict(**kwargs)
    assert_same_prediction(refined, torch_predictor.predict(**kwargs))
    without_mask = ov_predictor.predict(**prompts["negative_point"], multimask_output=False)
    assert np.abs(refined[2] - without_mask[2]).max() > 1e-2, "mask_input did not reach the decoder"


def test_many_boxes_in_one_call_match_predict_torch(predictor_pair):
    import torch

    ov_predictor, torch_predictor = predictor_pair
    h, w = ov_predictor.original_size
    boxes = np.array([[0.05, 0.2, 0.95, 0.7], [0.25, 0.5, 0.4, 0.73], [0.75, 0.45, 0.9, 0.67], [0.7, 0.55, 0.78, 0.63]])
    boxes = boxes * [w, h, w, h]
    for multimask_output in (False, True):
        ov_out = ov_predictor.predict_boxes(boxes, multimask_output=multimask_output)
        torch_boxes = torch_predictor.transform.apply_boxes_torch(torch.as_tensor(boxes, dtype=torch.float), (h, w))
        pt_out = torch_predictor.predict_torch(None, None, torch_boxes, multimask_output=multimask_output)
        pt_out = tuple(t.numpy() for t in pt_out)
        assert ov_out[0].shape == (4, 3 if multimask_output else 1, h, w)
        for ov_item, pt_item in zip(zip(*ov_out), zip(*pt_out)):
            assert_same_prediction(ov_item, pt_item)
