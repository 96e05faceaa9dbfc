"""INT8 quantization of the encoder: calibration-folder errors, a working INT8 IR, and reuse by stamp."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import openvino as ov
import pytest

from tests.helpers import DATA, make_test_images
from utils.checkpoints import weights_id
from utils.ir_store import STAMP_FILE, ir_directory
from utils.predictor import OVSamPredictor
from utils.quantize import INT8_ENCODER_XML, CalibrationError, calibration_images, ensure_int8_encoder

MODEL_TYPE = "vit_tiny"


def test_missing_calibration_folder(tmp_path):
    with pytest.raises(CalibrationError, match="does not exist.*data/"):
        calibration_images(tmp_path / "nowhere")


def test_empty_calibration_folder(tmp_path):
    with pytest.raises(CalibrationError, match=r"No images in .*found nothing.*Copy a few"):
        calibration_images(tmp_path)


def test_folder_without_images_names_what_it_found(tmp_path):
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(CalibrationError, match=r"found only notes\.txt"):
        calibration_images(tmp_path)


def test_unreadable_image_is_named(tmp_path):
    shutil.copy(DATA / "truck.jpg", tmp_path / "truck.jpg")
    (tmp_path / "broken.png").write_bytes(b"this is not a PNG")
    with pytest.raises(CalibrationError, match=r"cannot be read: broken\.png.*Remove or replace"):
        calibration_images(tmp_path)


def test_non_image_files_are_skipped(tmp_path):
    shutil.copy(DATA / "truck.jpg", tmp_path / "b.jpg")
    shutil.copy(DATA / "truck.jpg", tmp_path / "a.JPEG")
    (tmp_path / "README.md").write_text("about these images")
    assert [path.name for path in calibration_images(tmp_path)] == ["a.JPEG", "b.jpg"]


def test_subset_size_must_be_positive(tiny_ir_f32, tmp_path):
    from utils.quantize import quantize_encoder

    with pytest.raises(ValueError, match="subset_size must be at least 1"):
        quantize_encoder(tiny_ir_f32[0], DATA, subset_size=0, output_xml=tmp_path / "int8.xml")


@pytest.fixture(scope="module")
def int8_models(tiny_ir_f32, tmp_path_factory):
    """ensure_int8_encoder on a models folder that already holds current FP IR (a copy of the session's).

    On vit_tiny (SAM's decoder behind a one-block encoder), quantized in seconds: vit_b's INT8 encoder is
    made once per CI run, by the workshop kit (tests/test_kit.py) that notebook 06 then uses."""
    models_dir = tmp_path_factory.mktemp("models")
    target = ir_directory(MODEL_TYPE, models_dir)
    shutil.copytree(tiny_ir_f32[0].parent, target)
    stamp = json.loads((target / STAMP_FILE).read_text())
    stamp.update(weights=weights_id(MODEL_TYPE), compress_to_fp16=True)  # what ensure_sam_ir looks for
    (target / STAMP_FILE).write_text(json.dumps(stamp))
    calibration = tmp_path_factory.mktemp("calibration")
    cv2.imwrite(str(calibration / "portrait.png"), cv2.cvtColor(make_test_images()["portrait"], cv2.COLOR_RGB2BGR))
    int8_xml = ensure_int8_encoder(MODEL_TYPE, models_dir, calibration, subset_size=1)
    return models_dir, calibration, int8_xml, tiny_ir_f32


def test_int8_encoder_is_quantized_and_saved_beside_fp(int8_models):
    models_dir, _, int8_xml, ir_f32 = int8_models
    assert int8_xml == ir_directory(MODEL_TYPE, models_dir) / INT8_ENCODER_XML
    op_types = {op.get_type_name() for op in ov.Core().read_model(int8_xml).get_ordered_ops()}
    assert "FakeQuantize" in op_types
    assert not list(int8_xml.parent.glob(".quantizing-*")), "a temporary folder was left behind"


def test_int8_predictor_gives_masks_of_the_right_shapes(int8_models):
    _, _, int8_xml, ir_f32 = int8_models
    image = make_test_images()["landscape"]
    int8 = OVSamPredictor(int8_xml, ir_f32[1])
    int8.set_image(image)
    assert int8.get_image_embedding().shape == (1, 256, 64, 64)
    masks, scores, low_res = int8.predict(point_coords=np.array([[500, 375]]), point_labels=np.array([1]))
    assert masks.shape == (3, *image.shape[:2]) and masks.dtype == bool
    assert scores.shape == (3,) and low_res.shape == (3, 256, 256)
    boxes = np.array([[100, 100, 600, 500], [700, 300, 1500, 1100]])
    masks, scores, _ = int8.predict_boxes(boxes)
    assert masks.shape == (2, 1, *image.shape[:2]) and scores.shape == (2, 1)


def test_int8_embedding_stays_close_to_fp(int8_models):
    """Loose bounds that a broken quantization, with wrong ranges or wrongly pre-processed calibration
    images, would miss by far; the test prints what it measures."""
    from utils.accuracy import compare_on_images

    _, _, int8_xml, ir_f32 = int8_models
    images = {"landscape": make_test_images()["landscape"]}
    result = compare_on_images(OVSamPredictor(int8_xml, ir_f32[1]), OVSamPredictor(*ir_f32), images)
    print(f"INT8 vs FP: {json.dumps({k: v for k, v in result.items() if k != 'per_image'})}")
    assert result["worst_embedding_relative_error"] < 0.35 and result["mean_mask_iou"] > 0.8


def test_second_call_reuses_the_int8_ir(int8_models, monkeypatch):
    models_dir, calibration, int8_xml, _ = int8_models

    def fail(*args, **kwargs):
        raise AssertionError("quantize_encoder must not run when the INT8 IR is current")

    monkeypatch.setattr("utils.quantize.quantize_encoder", fail)
    assert ensure_int8_encoder(MODEL_TYPE, models_dir, calibration, subset_size=1) == int8_xml
