"""Shared fixtures: one seeded random vit_b, its f32 IR converted once, test images, and a folder to label.

Parity needs exact arithmetic, so the IR keeps FP32 weights (no FP16 compression)
and is compiled with ``INFERENCE_PRECISION_HINT=f32``: without the hint, CPUs with
AVX-512 BF16 or AMX would run in bf16.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.helpers import F32, convert_in_own_process, make_test_images
from utils.checkpoints import load_sam
from utils.convert import convert_sam
from utils.label_folder import prepare_ir
from utils.predictor import OVSamPredictor


@pytest.fixture(scope="session")
def test_images() -> dict[str, np.ndarray]:
    return make_test_images()


@pytest.fixture(scope="session")
def sam():
    """vit_b with random weights seeded by SAM_RANDOM_WEIGHTS_SEED (set in the root conftest)."""
    return load_sam("vit_b")


@pytest.fixture(scope="session")
def tiny_sam():
    """vit_tiny (`utils.checkpoints.RANDOM_ONLY_ARCHITECTURES`): SAM's own decoder behind a one-block, 32-wide
    image encoder, quick to run, export and compile. bf16 autocast on it takes seconds even where bf16 is emulated."""
    return load_sam("vit_tiny")


@pytest.fixture(scope="session")
def ir_f32(tmp_path_factory) -> tuple[Path, Path]:
    """(encoder_xml, decoder_xml) with FP32 weights, converted once per test session, in a process of its own
    (the conversion's 5 GB peak stays out of the suite's)."""
    return convert_in_own_process("vit_b", tmp_path_factory.mktemp("ir_f32"), compress_to_fp16=False)


@pytest.fixture(scope="session")
def tiny_ir_f32(tiny_sam, tmp_path_factory) -> tuple[Path, Path]:
    """vit_tiny's IR with FP32 weights: SAM's real decoder (and its parts) behind an encoder converted in seconds."""
    return convert_sam(tiny_sam, tmp_path_factory.mktemp("tiny_ir_f32"), compress_to_fp16=False, show_progress=False)


@pytest.fixture(scope="module")
def ov_predictor(ir_f32) -> OVSamPredictor:
    """vit_b's f32 predictor, compiled for each module that asks and freed after it."""
    return OVSamPredictor(*ir_f32, config=F32)


@pytest.fixture(scope="module", params=["landscape", "portrait", "tiny"])
def predictor_pair(request, sam, ir_f32, test_images):
    """An OVSamPredictor (f32) and a SamPredictor, both set to the same image (freed after the module)."""
    from segment_anything import SamPredictor

    image = test_images[request.param]
    ov_predictor = OVSamPredictor(*ir_f32, config=F32)
    ov_predictor.set_image(image)
    torch_predictor = SamPredictor(sam)
    torch_predictor.set_image(image)
    return ov_predictor, torch_predictor


@pytest.fixture(scope="session")
def synthetic_ir(tmp_path_factory) -> tuple[Path, Path]:
    """The disc-drawing stand-in for SAM's two networks (tests/synthetic_sam.py), as IR."""
    from tests.synthetic_sam import convert_synthetic

    return convert_synthetic(tmp_path_factory.mktemp("synthetic_ir"))


@pytest.fixture(autouse=True)
def close_widgets():
    """ipywidgets keeps every widget until it is closed, and a SamWidget its predictor (hundreds of MiB with vit_b):
    close what a test made once it is done."""
    yield
    import ipywidgets

    ipywidgets.Widget.close_all()


@pytest.fixture(scope="session")
def sam2_models_dir(tmp_path_factory) -> Path:
    """One models folder for SAM 2.1 tiny's and EdgeTAM's IR, so that the image IR converted for
    tests/test_sam2.py serves tests/test_video_parts.py too."""
    return tmp_path_factory.mktemp("sam2_models")


@pytest.fixture(scope="session")
def label_models_dir(tmp_path_factory) -> Path:
    """vit_tiny's IR for utils.label_folder, converted once (labelling never converts on a worker)."""
    models = tmp_path_factory.mktemp("label-models")
    prepare_ir("vit_tiny", models)
    return models


@pytest.fixture
def images_dir(tmp_path) -> Path:
    """A folder to label: two photos, a corrupt JPEG and a text file."""
    folder = tmp_path / "images"
    folder.mkdir()
    images = make_test_images()
    cv2.imwrite(str(folder / "truck.jpg"), cv2.cvtColor(cv2.resize(images["landscape"], (450, 300)), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(folder / "portrait.png"), cv2.cvtColor(images["portrait"][::3, ::3], cv2.COLOR_RGB2BGR))
    (folder / "broken.jpg").write_bytes((folder / "truck.jpg").read_bytes()[:200])
    (folder / "notes.txt").write_text("not an image")
    return folder
