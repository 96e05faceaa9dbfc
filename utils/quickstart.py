"""The two set-up steps every notebook from 02 on starts with, in one place.

`load_predictor` says which weights are in use (a loud warning for random ones), makes
the IR if it is missing and builds an `OVSamPredictor`; `embed_image` reads an image and
runs the encoder once, printing how long that took. Notebook 01 shows the steps they hide.
`load_video_predictor` does for tracking what `load_predictor` does for images.
"""

from __future__ import annotations

import os
import time

import numpy as np

from utils.checkpoints import describe_weights
from utils.convert import ensure_sam_ir, ensure_video_ir
from utils.model_spec import ModelSpec, model_spec, resolve
from utils.predictor import OVSamPredictor
from utils.transforms import read_rgb_image
from utils.video_predictor import OVSam2VideoPredictor


def load_predictor(
    model_type: str | ModelSpec = "vit_b",
    models_dir: str | os.PathLike = "models",
    device: str = "CPU",
    config: dict | None = None,
) -> OVSamPredictor:
    """A predictor for ``model_type`` on ``device``, converting the model first if its IR is missing.

    SAM 1 types give an `OVSamPredictor`, the SAM 2 family (SAM 2.1 sizes, EdgeTAM) an
    `utils.predictor.OVSam2Predictor`: the same calls. Raises ValueError naming the valid model
    types for an unknown one, before any download.
    """
    spec = model_spec(model_type)
    print(describe_weights(spec))
    encoder_xml, decoder_xml = ensure_sam_ir(spec, models_dir)
    return resolve(spec.family.predictor)(encoder_xml, decoder_xml, device=device, config=config)


def load_video_predictor(
    model_type: str | ModelSpec = "sam2.1_hiera_tiny",
    models_dir: str | os.PathLike = "models",
    device: str = "CPU",
    config: dict | None = None,
) -> OVSam2VideoPredictor:
    """A video predictor (sam2's `SAM2VideoPredictor` calls) for SAM 2.1 or EdgeTAM on ``device``, converting the
    image and video parts first where their IR is missing (`utils.convert.ensure_video_ir`)."""
    spec = model_spec(model_type)
    print(describe_weights(spec))
    return OVSam2VideoPredictor(ensure_video_ir(spec, models_dir), device=device, config=config)


def embed_image(predictor: OVSamPredictor, image_path: str | os.PathLike) -> np.ndarray:
    """Read ``image_path`` as RGB, run the encoder on it once and return the image.

    A missing file raises FileNotFoundError, a file that is not an image ValueError, both naming the path.
    """
    image = read_rgb_image(image_path)
    start = time.perf_counter()
    predictor.set_image(image)
    print(f"image {image.shape[1]}x{image.shape[0]}, encoder {time.perf_counter() - start:.1f} s")
    return image
