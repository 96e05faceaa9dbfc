"""Bad input to OVSamPredictor raises an error that says what was wrong and what was expected.

vit_tiny's IR (SAM's own decoder behind a quick encoder) stands in for vit_b: the checks do not depend on the
encoder's size, and the fast tests (.ci/fast-tests) need no vit_b conversion.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import F32
from utils.accuracy import PARITY_LOGIT_TOLERANCE, PARITY_MIN_MASK_IOU, PARITY_SCORE_TOLERANCE, mask_iou
from utils.predictor import OVSamPredictor

POINT = dict(point_coords=np.array([[10, 10]]), point_labels=np.array([1]))


@pytest.fixture(scope="module")
def predictor(tiny_ir_f32) -> OVSamPredictor:
    predictor = OVSamPredictor(*tiny_ir_f32)
    predictor.set_image(np.zeros((40, 60, 3), np.uint8))
    return predictor


def test_predict_before_set_image(tiny_ir_f32):
    fresh = OVSamPredictor(*tiny_ir_f32)
    with pytest.raises(RuntimeError, match="set_image"):
        fresh.predict(**POINT)
    with pytest.raises(RuntimeError, match="set_image"):
        fresh.get_image_embedding()


def test_reset_image_forgets_the_image(tiny_ir_f32):
    fresh = OVSamPredictor(*tiny_ir_f32)
    fresh.set_image(np.zeros((8, 8), np.uint8))  # gray is converted
    assert fresh.is_image_set and fresh.original_size == (8, 8) and fresh.input_size == (1024, 1024)
    fresh.reset_image()
    assert not fresh.is_image_set
    with pytest.raises(RuntimeError, match="set_image"):
        fresh.predict(**POINT)


def test_missing_ir(tiny_ir_f32, tmp_path):
    with pytest.raises(FileNotFoundError, match="ensure_sam_ir"):
        OVSamPredictor(tmp_path / "image_encoder.xml", tiny_ir_f32[1])


def test_unavailable_device(tiny_ir_f32):
    with pytest.raises(ValueError, match="not available"):
        OVSamPredictor(*tiny_ir_f32, device="NPU_THAT_IS_NOT_HERE")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(), "at least one prompt"),
        (dict(point_coords=np.array([[1, 2]])), "go together"),
        (dict(point_coords=np.array([1, 2]), point_labels=np.array([1])), r"\[N, 2\]"),
        (dict(point_coords=np.array([[1, 2, 3]]), point_labels=np.array([1])), r"\[N, 2\]"),
        (dict(point_coords=np.array([[1, 2]]), point_labels=np.array([1, 1])), r"shape \[N\] = \[1\]"),
        (dict(point_coords=np.array([[1, 2]]), point_labels=np.array([[1]])), r"shape \[N\]"),
        (dict(point_coords=np.array([[1, 2]]), point_labels=np.array([2])), "1 .foreground. or 0"),
        (dict(point_coords=np.array([[np.nan, 2]]), point_labels=np.array([1])), "NaN or infinite"),
        (dict(point_coords=np.array([["a", "b"]]), point_labels=np.array([1])), "numeric"),
        (dict(box=np.array([1, 2, 3])), r"shape \[4\]"),
        (dict(box=np.array([5, 2, 3, 4])), "x1 >= x0"),
        (dict(box=np.array([1, 5, 3, 4])), "y1 >= y0"),
        (dict(box=np.array([1, 2, np.inf, 4])), "NaN or infinite"),
        (dict(mask_input=np.zeros((256, 256))), r"\[1, 256, 256\]"),
        (dict(mask_input=np.zeros((1, 64, 64))), r"\[1, 256, 256\]"),
    ],
)
def test_bad_prompts(predictor, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        predictor.predict(**kwargs)


def test_bad_boxes_for_predict_boxes(predictor):
    with pytest.raises(ValueError, match=r"\[B, 4\]"):
        predictor.predict_boxes(np.array([1, 2, 3, 4]))


def test_bad_image(predictor):
    with pytest.raises(ValueError, match="uint8"):
        predictor.set_image(np.zeros((10, 10, 3), np.float64))
    with pytest.raises(ValueError, match="HxWx3"):
        predictor.set_image(np.zeros((10, 10, 5), np.uint8))


def test_points_outside_the_image_are_accepted_like_sam_predictor(tiny_sam, tiny_ir_f32):
    """SamPredictor takes points off the image without an error and maps them as they are; OVSamPredictor gives
    the same masks, scores and logits for them (at f32, within the parity tolerances of `utils.accuracy`).
    SAM's own prompt encoder and decoder, behind vit_tiny's quick encoder."""
    from segment_anything import SamPredictor

    image = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    prompt = dict(point_coords=np.array([[-20, 500], [75, -8]]), point_labels=np.array([1, 0]))
    ours, theirs = OVSamPredictor(*tiny_ir_f32, config=F32), SamPredictor(tiny_sam)
    ours.set_image(image)
    theirs.set_image(image)
    masks, scores, low_res = ours.predict(**prompt)
    expected_masks, expected_scores, expected_low_res = theirs.predict(**prompt)
    assert masks.shape == expected_masks.shape == (3, 40, 60) and low_res.shape == expected_low_res.shape
    np.testing.assert_allclose(scores, expected_scores, atol=PARITY_SCORE_TOLERANCE, rtol=0)
    np.testing.assert_allclose(low_res, expected_low_res, atol=PARITY_LOGIT_TOLERANCE, rtol=0)
    assert all(mask_iou(a, b) >= PARITY_MIN_MASK_IOU for a, b in zip(masks, expected_masks))
