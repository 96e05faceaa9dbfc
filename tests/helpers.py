"""Helpers shared by the tests: test images and mask comparison."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from utils.precision import F32  # noqa: F401 - re-exported: the tests' compile config for parity
from utils.transforms import read_rgb_image

DATA = Path(__file__).resolve().parent.parent / "data"


def make_test_images() -> dict[str, np.ndarray]:
    """Three shapes that stress the resize/pad/crop arithmetic differently."""
    truck = read_rgb_image(DATA / "truck.jpg")  # 1200 x 1800, landscape
    portrait = np.ascontiguousarray(truck[100:1177, 450:1093])  # 1077 x 643, odd sizes
    tiny = cv2.resize(truck, (97, 65), interpolation=cv2.INTER_AREA)  # under 100 px
    return {"landscape": truck, "portrait": portrait, "tiny": tiny}
