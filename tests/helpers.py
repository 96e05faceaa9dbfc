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


def quickest_compare_settings(model_type: str, tmp_path: Path, throughput_images: int) -> dict:
    """`benchmarks.compare`'s settings for a test: every measurement once, no warm-up, a 2x2 mask-generator grid,
    the models and the outputs under ``tmp_path``."""
    from benchmarks import compare  # not at the top: the light install imports this module without torch

    return compare.settings(
        model_type=model_type,
        models_dir=tmp_path / "models",
        output_dir=tmp_path,
        repeats=1,
        warmup=0,
        prompt_repeats=1,
        amg_points_per_side=2,
        throughput_images=throughput_images,
    )
