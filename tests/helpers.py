"""Helpers shared by the tests: test images and mask comparison."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from utils.precision import F32  # noqa: F401 - re-exported: the tests' compile config for parity
from utils.transforms import read_rgb_image
from utils.video_frames import camera_pan

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
CONVERT = """
import json, sys
from utils.checkpoints import load_sam
from utils.convert import convert_sam
paths = convert_sam(load_sam(sys.argv[1]), sys.argv[2], show_progress=False, **json.loads(sys.argv[3]))
print(json.dumps([str(path) for path in paths]))
"""

LABEL_OPTIONS = {
    "model_type": "vit_tiny",
    "points_per_side": 4,
    "pred_iou_thresh": 0.0,
    "stability_score_thresh": 0.0,
    "show_progress": False,
}
"""utils.label_folder's options for the tests: vit_tiny on a 4x4 grid, and every mask a random-weight model makes
passes the filters, so that the files have something in them."""


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


def convert_in_own_process(model_type: str, output_dir: Path, **options) -> tuple[Path, Path]:
    """`utils.convert.convert_sam` of ``load_sam(model_type)`` in a process of its own: tracing vit_b peaks
    near 5 GB, which so stays out of the test process. The weights are the same seeded random ones (the seed
    is in the environment), which the parity tests and the stamp check confirm."""
    done = subprocess.run(
        [sys.executable, "-c", CONVERT, model_type, str(output_dir), json.dumps(options)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"converting {model_type} failed:\n{done.stderr[-4000:]}")
    encoder_xml, decoder_xml = json.loads(done.stdout.strip().splitlines()[-1])
    return Path(encoder_xml), Path(decoder_xml)


def camera_clip(frames: int, size: tuple[int, int] = (240, 320), step: int = 12) -> list[np.ndarray]:
    """The tests' clip: `utils.video_frames.camera_pan` over the truck photo."""
    return camera_pan(read_rgb_image(DATA / "truck.jpg"), frames, size, step)
