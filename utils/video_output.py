"""Tracking results out: frames with each object's mask drawn over them, as an mp4, as an animation that GitHub
shows (GIF), or as a strip of frames (one picture, for a notebook's kept output).

Each takes the frames and masks as they come (an iterable of (frame, masks) pairs, masks [objects, H, W] boolean,
e.g. from `utils.video_predictor.OVSam2VideoPredictor.propagate_in_video`), so nothing piles up in memory but
what the format itself keeps; the files are written beside their destination and moved into place when whole.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from utils.atomic import staged_files

OBJECT_COLOURS = np.array(
    [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75), (227, 119, 194)],
    dtype=np.float32,
)
"""Object k's colour is row k modulo their number (matplotlib's tab10 without its greys)."""


def overlay_masks(frame: np.ndarray, masks: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``frame`` (HxWx3 uint8 RGB) with each of ``masks`` ([objects, H, W] boolean) tinted in its colour and
    outlined, as a new uint8 image."""
    drawn = frame.astype(np.float32)
    for index, mask in enumerate(np.asarray(masks, dtype=bool)):
        colour = OBJECT_COLOURS[index % len(OBJECT_COLOURS)]
        drawn[mask] = (1 - alpha) * drawn[mask] + alpha * colour
        outline = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)) > 0
        drawn[outline] = colour
    return drawn.round().astype(np.uint8)


def write_mp4(path: str | os.PathLike, tracked: Iterable[tuple[np.ndarray, np.ndarray]], fps: float = 10.0) -> Path:
    """An mp4 (OpenCV's ``mp4v``) of the frames with their masks drawn; returns its path."""
    path = Path(path)
    with staged_files(path.parent, [path.name], prefix=".writing-") as (staged,):
        writer = None
        try:
            for frame, masks in tracked:
                if writer is None:
                    size = (frame.shape[1], frame.shape[0])
                    writer = cv2.VideoWriter(str(staged), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
                    if not writer.isOpened():
                        raise RuntimeError(f"OpenCV cannot write an mp4 here ({staged}).")
                writer.write(cv2.cvtColor(overlay_masks(frame, masks), cv2.COLOR_RGB2BGR))
        finally:
            if writer is not None:
                writer.release()
        if writer is None:
            raise ValueError("No frames to write.")
    return path


def write_animation(
    path: str | os.PathLike, tracked: Iterable[tuple[np.ndarray, np.ndarray]], fps: float = 5.0, width: int = 320
) -> Path:
    """A looping GIF of the frames with their masks drawn, scaled to ``width`` pixels: small enough for a README
    or a notebook on GitHub; returns its path."""
    pictures = [_scaled(overlay_masks(frame, masks), width) for frame, masks in tracked]
    if not pictures:
        raise ValueError("No frames to write.")
    path = Path(path)
    with staged_files(path.parent, [path.name], prefix=".writing-") as (staged,):
        first, *rest = (Image.fromarray(picture) for picture in pictures)
        first.save(staged, format="GIF", save_all=True, append_images=rest, duration=round(1000 / fps), loop=0)
    return path


def frame_strip(tracked: Iterable[tuple[np.ndarray, np.ndarray]], height: int = 160, gap: int = 4) -> np.ndarray:
    """The frames with their masks drawn, side by side at ``height`` pixels, white between them: one picture."""
    pictures = []
    for frame, masks in tracked:
        drawn = overlay_masks(frame, masks)
        width = round(drawn.shape[1] * height / drawn.shape[0])
        pictures.append(cv2.resize(drawn, (width, height), interpolation=cv2.INTER_AREA))
    if not pictures:
        raise ValueError("No frames to draw.")
    spacer = np.full((height, gap, 3), 255, np.uint8)
    return np.concatenate([part for picture in pictures for part in (picture, spacer)][:-1], axis=1)


def _scaled(picture: np.ndarray, width: int) -> np.ndarray:
    if picture.shape[1] <= width:
        return picture
    height = round(picture.shape[0] * width / picture.shape[1])
    return cv2.resize(picture, (width, height), interpolation=cv2.INTER_AREA)
