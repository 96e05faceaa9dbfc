"""utils.transforms against segment_anything's ResizeLongestSide and Sam pre/post-processing."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from segment_anything.utils.transforms import ResizeLongestSide

from utils import transforms

ODD_SIZES = [(1200, 1800), (1077, 643), (65, 97), (1, 1), (1024, 1024), (333, 1025), (2001, 7)]


@pytest.mark.parametrize("size", ODD_SIZES)
def test_resize_matches_resize_longest_side(size):
    rng = np.random.default_rng(sum(size))
    image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    reference = ResizeLongestSide(1024)
    assert transforms.preprocess_shape(*size) == reference.get_preprocess_shape(*size, 1024)
    np.testing.assert_array_equal(transforms.resize_longest_side(image), reference.apply_image(image))


@pytest.mark.parametrize("size", ODD_SIZES)
def test_coords_and_boxes_match(size):
    reference = ResizeLongestSide(1024)
    coords = np.array([[0, 0], [size[1] - 1, size[0] - 1], [size[1] / 3, size[0] / 7], [-5, size[0] + 3]], dtype=float)
    boxes = np.array([[0, 0, size[1], size[0]], [1.5, 2.5, 3.5, 4.5]], dtype=float)
    np.testing.assert_allclose(transforms.apply_coords(coords, size), reference.apply_coords(coords, size), rtol=1e-6)
    np.testing.assert_allclose(transforms.apply_boxes(boxes, size), reference.apply_boxes(boxes, size), rtol=1e-6)


def test_normalize_and_pad_matches_sam_preprocess(sam):
    image = np.random.default_rng(0).integers(0, 256, (683, 1024, 3), dtype=np.uint8)
    expected = sam.preprocess(torch.as_tensor(image).permute(2, 0, 1)[None].float()).numpy()
    actual = transforms.normalize_and_pad(image)
    assert actual.shape == (1, 3, 1024, 1024) and actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, atol=1e-5)


@pytest.mark.parametrize("original_size", [(1200, 1800), (1077, 643), (65, 97)])
def test_postprocess_masks_matches_sam(sam, original_size):
    input_size = transforms.preprocess_shape(*original_size)
    logits = np.random.default_rng(1).normal(size=(2, 3, 256, 256)).astype(np.float32)
    expected = sam.postprocess_masks(torch.as_tensor(logits), input_size, original_size).numpy()
    actual = transforms.postprocess_masks(logits, input_size, original_size)
    assert actual.shape == (2, 3, *original_size)
    np.testing.assert_allclose(actual, expected, atol=1e-3)  # cv2 and torch round interpolation weights differently


@pytest.mark.parametrize("original_size", [(1200, 1800), (1077, 643), (65, 97), (500, 500)])
def test_postprocess_masks_cropping_first_changes_no_pixel(original_size):
    """The low-res logits are cropped to the unpadded region before the first resize: the same pixels as
    resizing the whole 256x256 to 1024 and cropping after, as `segment_anything` does."""
    input_size = transforms.preprocess_shape(*original_size)
    logits = np.random.default_rng(3).normal(size=(1, 2, 256, 256)).astype(np.float32)
    expected = []
    for plane in logits[0]:
        full = cv2.resize(plane, (1024, 1024), interpolation=cv2.INTER_LINEAR)[: input_size[0], : input_size[1]]
        expected.append(cv2.resize(full, original_size[::-1], interpolation=cv2.INTER_LINEAR))
    actual = transforms.postprocess_masks(logits, input_size, original_size)
    np.testing.assert_array_equal(actual[0], np.stack(expected))
    masks = transforms.postprocess_masks(logits, input_size, original_size, threshold=0.25)
    assert masks.dtype == bool
    np.testing.assert_array_equal(masks, actual > 0.25)


def test_to_rgb_uint8_converts_gray_rgba_and_bgr():
    rgb = np.random.default_rng(2).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    gray = rgb[:, :, 0]
    np.testing.assert_array_equal(transforms.to_rgb_uint8(gray), np.stack([gray] * 3, axis=-1))
    np.testing.assert_array_equal(transforms.to_rgb_uint8(gray[:, :, None]), np.stack([gray] * 3, axis=-1))
    rgba = np.concatenate([rgb, np.full((5, 7, 1), 128, np.uint8)], axis=2)
    np.testing.assert_array_equal(transforms.to_rgb_uint8(rgba), rgb)
    np.testing.assert_array_equal(transforms.to_rgb_uint8(rgb[:, :, ::-1], "BGR"), rgb)


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((5, 7, 3), np.float32), "uint8"),
        (np.zeros((5, 7, 2), np.uint8), "HxWx3"),
        (np.zeros((0, 7, 3), np.uint8), "HxWx3"),
        (np.zeros((2, 5, 7, 3), np.uint8), "HxWx3"),
        ([[1, 2, 3]], "numpy array"),
    ],
)
def test_to_rgb_uint8_rejects_bad_images(image, message):
    with pytest.raises((ValueError, TypeError), match=message):
        transforms.to_rgb_uint8(image)


def test_to_rgb_uint8_rejects_unknown_format():
    with pytest.raises(ValueError, match="image_format"):
        transforms.to_rgb_uint8(np.zeros((2, 2, 3), np.uint8), "HSV")


def test_read_rgb_image(tmp_path):
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0] = 255  # pure red
    import cv2

    cv2.imwrite(str(tmp_path / "red.png"), rgb[:, :, ::-1])
    np.testing.assert_array_equal(transforms.read_rgb_image(tmp_path / "red.png"), rgb)
    with pytest.raises(FileNotFoundError, match="No image file"):
        transforms.read_rgb_image(tmp_path / "missing.png")
    (tmp_path / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match="not an image"):
        transforms.read_rgb_image(tmp_path / "notes.png")
