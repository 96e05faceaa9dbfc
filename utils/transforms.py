"""SAM's pre- and post-processing in numpy, matching `segment_anything` without torch.

SAM's image encoder sees a 1024x1024 frame: the image is resized so its longest
side is 1024 (aspect kept), normalised with ImageNet statistics in 0..255 units,
and zero-padded at the bottom and right. Prompts are mapped into that frame, and
the decoder's 256x256 mask logits are mapped back to the original image size.
Each function mirrors the `segment_anything` code named in its docstring so
parity tests can compare them one to one.

SAM 2 (the ``sam2_*`` functions) resizes to the whole 1024x1024 square instead, without
padding, and maps its logits back in one step; they mirror transformers' `Sam2Processor`.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

IMAGE_SIZE = 1024
"""Side of the square frame the image encoder takes."""
LOW_RES_MASK_SIZE = 256
"""Side of the mask logits the decoder returns (and takes back as ``mask_input``)."""
PIXEL_MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
PIXEL_STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)
SAM2_PIXEL_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
SAM2_PIXEL_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
"""SAM 2 normalises images in 0..1 units with ImageNet's statistics (the same as SAM's, divided by 255)."""


def preprocess_shape(height: int, width: int, long_side: int = IMAGE_SIZE) -> tuple[int, int]:
    """Size after scaling the longest side to ``long_side`` (ResizeLongestSide.get_preprocess_shape)."""
    scale = long_side * 1.0 / max(height, width)
    return int(height * scale + 0.5), int(width * scale + 0.5)


def resize_longest_side(image: np.ndarray, long_side: int = IMAGE_SIZE) -> np.ndarray:
    """Resize an HxWx3 uint8 image so its longest side is ``long_side`` (ResizeLongestSide.apply_image).

    Uses PIL's bilinear filter, as torchvision does for PIL images, so the pixels are identical.
    """
    new_h, new_w = preprocess_shape(*image.shape[:2], long_side)
    return np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.BILINEAR))


def normalize_and_pad(resized: np.ndarray) -> np.ndarray:
    """Normalise and zero-pad a resized image to the encoder's 1x3x1024x1024 float32 input (Sam.preprocess)."""
    normalised = (resized.astype(np.float32) - PIXEL_MEAN) / PIXEL_STD
    height, width = normalised.shape[:2]
    padded = np.zeros((IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.float32)
    padded[:height, :width] = normalised
    return np.ascontiguousarray(padded.transpose(2, 0, 1)[None])


def encoder_input(image: np.ndarray) -> np.ndarray:
    """An HxWx3 uint8 RGB image as the encoder takes it: resized, normalised, padded, 1x3x1024x1024 float32."""
    return normalize_and_pad(resize_longest_side(image))


def apply_coords(coords: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
    """Map ``[..., 2]`` (x, y) pixel coordinates into the 1024 frame (ResizeLongestSide.apply_coords)."""
    old_h, old_w = original_size
    new_h, new_w = preprocess_shape(old_h, old_w)
    mapped = np.array(coords, dtype=np.float32, copy=True)
    mapped[..., 0] = mapped[..., 0] * (new_w / old_w)
    mapped[..., 1] = mapped[..., 1] * (new_h / old_h)
    return mapped


def apply_boxes(boxes: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
    """Map ``[B, 4]`` XYXY boxes into the 1024 frame (ResizeLongestSide.apply_boxes)."""
    corners = apply_coords(np.asarray(boxes, dtype=np.float32).reshape(-1, 2, 2), original_size)
    return corners.reshape(-1, 4)


def postprocess_masks(
    low_res_logits: np.ndarray,
    input_size: tuple[int, int],
    original_size: tuple[int, int],
    threshold: float | None = None,
) -> np.ndarray:
    """Upscale ``[B, C, 256, 256]`` logits to ``[B, C, H, W]`` at the original size (Sam.postprocess_masks).

    Bilinear to 1024, crop the padding away, bilinear to the original size.
    cv2's INTER_LINEAR uses the same half-pixel sampling as torch's
    ``interpolate(mode="bilinear", align_corners=False)``. One plane at a time, each
    written straight into the output: OpenCV resizes a single-channel image faster than
    the same planes interleaved as channels, and no transposes are needed.
    The padding is cropped from the low-res logits first (`_unpadded_rows_cols`), which
    gives the same pixels for less work. With ``threshold``, boolean masks ``logits >
    threshold``, each plane compared while it is still in the cache.
    """
    batch, channels = low_res_logits.shape[:2]
    planes = low_res_logits.reshape(batch * channels, LOW_RES_MASK_SIZE, LOW_RES_MASK_SIZE)
    planes = planes.astype(np.float32, copy=False)
    rows, cols = _unpadded_rows_cols(input_size)
    out = np.empty((batch * channels, *original_size), dtype=np.float32 if threshold is None else bool)
    resized = None if threshold is None else np.empty(original_size, dtype=np.float32)  # one plane, reused
    scale = IMAGE_SIZE // LOW_RES_MASK_SIZE
    for plane, upscaled in zip(planes, out):
        full = cv2.resize(plane[:rows, :cols], (scale * cols, scale * rows), interpolation=cv2.INTER_LINEAR)
        cropped = full[: input_size[0], : input_size[1]]
        target = upscaled if threshold is None else resized
        cv2.resize(cropped, (original_size[1], original_size[0]), dst=target, interpolation=cv2.INTER_LINEAR)
        if threshold is not None:
            np.greater(resized, threshold, out=upscaled)
    return out.reshape(batch, channels, *original_size)


def sam2_encoder_input(image: np.ndarray) -> np.ndarray:
    """An HxWx3 uint8 RGB image as SAM 2's encoder takes it: 1x3x1024x1024 float32 (`Sam2ImageProcessor`).

    SAM 2 does not keep the aspect ratio: the image is resized to the full 1024x1024 square, with no
    padding (PIL's bilinear filter, which antialiases when it shrinks, as transformers' torchvision resize
    does; the two round to uint8 differently, by one grey level at most), then scaled to 0..1 and
    normalised with ImageNet's statistics.
    """
    resized = sam2_resize(image).astype(np.float32)
    normalised = (resized / 255.0 - SAM2_PIXEL_MEAN) / SAM2_PIXEL_STD
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[None], dtype=np.float32)


def sam2_resize(image: np.ndarray) -> np.ndarray:
    """An HxWx3 uint8 image resized to SAM 2's whole 1024x1024 square (the aspect ratio not kept), uint8."""
    return np.asarray(Image.fromarray(image).resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR))


def sam2_apply_coords(coords: np.ndarray, original_size: tuple[int, int]) -> np.ndarray:
    """Map ``[..., 2]`` (x, y) pixel coordinates into SAM 2's 1024x1024 frame: each axis by its own factor
    (`Sam2Processor._normalize_coordinates`)."""
    height, width = original_size
    mapped = np.array(coords, dtype=np.float32, copy=True)
    mapped[..., 0] *= IMAGE_SIZE / width
    mapped[..., 1] *= IMAGE_SIZE / height
    return mapped


def sam2_postprocess_masks(
    low_res_logits: np.ndarray, original_size: tuple[int, int], threshold: float | None = None
) -> np.ndarray:
    """Upscale ``[B, C, 256, 256]`` logits to ``[B, C, H, W]`` in one bilinear step, nothing to crop
    (`Sam2Processor.post_process_masks`); with ``threshold``, boolean masks ``logits > threshold``."""
    batch, channels = low_res_logits.shape[:2]
    planes = low_res_logits.reshape(batch * channels, LOW_RES_MASK_SIZE, LOW_RES_MASK_SIZE).astype(np.float32)
    out = np.empty((batch * channels, *original_size), dtype=np.float32 if threshold is None else bool)
    for plane, upscaled in zip(planes, out):
        resized = cv2.resize(plane, (original_size[1], original_size[0]), interpolation=cv2.INTER_LINEAR)
        upscaled[...] = resized if threshold is None else resized > threshold
    return out.reshape(batch, channels, *original_size)


def _unpadded_rows_cols(input_size: tuple[int, int]) -> tuple[int, int]:
    """Rows and columns of the 256x256 logits that the unpadded ``input_size`` part of the 1024 frame reads.

    Upscaling by 4 with half-pixel sampling, output pixel i reads source pixels around
    (i + 0.5) / 4 - 0.5, so the first ``input_size`` output pixels read no further than
    source pixel ceil(size / 4). Resizing just those by the same factor 4 samples the same
    positions with the same weights, so the cropped result is identical.
    """
    scale = IMAGE_SIZE // LOW_RES_MASK_SIZE
    return tuple(min(LOW_RES_MASK_SIZE, -(-size // scale) + 1) for size in input_size)


def read_rgb_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as HxWx3 uint8 RGB, raising a clear error when it cannot be read."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No image file at {path.resolve()}.")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{path} is not an image OpenCV can read (PNG, JPEG, BMP, TIFF, WebP...).")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def to_rgb_uint8(image: np.ndarray, image_format: str = "RGB") -> np.ndarray:
    """Return ``image`` as a contiguous HxWx3 uint8 RGB array, or raise saying what is wrong.

    Accepted besides HxWx3: a grayscale HxW or HxWx1 image (its channel is repeated
    three times) and an RGBA HxWx4 image (the alpha channel is dropped). With
    ``image_format="BGR"`` (OpenCV's order) the channels are swapped.
    """
    if image_format not in ("RGB", "BGR"):
        raise ValueError(f"image_format must be 'RGB' or 'BGR', got {image_format!r}.")
    if not isinstance(image, np.ndarray):
        raise TypeError(f"Expected the image as a numpy array (HxWx3 uint8 RGB), got {type(image).__name__}.")
    if image.dtype != np.uint8:
        raise ValueError(
            f"Expected a uint8 image with values 0..255, got dtype {image.dtype}. "
            "For a float image in 0..1 use (image * 255).round().astype(np.uint8)."
        )
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or min(image.shape[:2]) == 0:
        raise ValueError(
            f"Expected an HxWx3 RGB image (HxW gray and HxWx4 RGBA are converted), got shape {image.shape}."
        )
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    image = image[:, :, :3]
    if image_format == "BGR":
        image = image[:, :, ::-1]
    return np.ascontiguousarray(image)
