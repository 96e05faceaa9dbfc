"""SamWidget at the Python level: the canvas's messages give the right prompts and the same masks as predict()."""

from __future__ import annotations

import gc
import weakref

import cv2
import numpy as np
import pytest

from tests.helpers import F32
from utils.accuracy import mask_iou
from utils.predictor import OVSamPredictor
from utils.widget import OVERLAY_MAX_SIDE, UPLOAD_MESSAGE, SamWidget


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (240, 360, 3), dtype=np.uint8)


class RecordingPredictor(OVSamPredictor):
    """Records the arguments of every decoder call the widget makes."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls: list[dict] = []

    def predict_without_upscaling(self, *args, **kwargs):
        self.calls.append(kwargs)  # the widget passes keywords; predict() (in these tests) positions
        return super().predict_without_upscaling(*args, **kwargs)


@pytest.fixture
def widget(synthetic_ir, image) -> SamWidget:
    return SamWidget(RecordingPredictor(*synthetic_ir, config=F32), image)


def direct_best_mask(predictor: OVSamPredictor, **kwargs) -> np.ndarray:
    masks, scores, _ = OVSamPredictor.predict(predictor, **kwargs)
    return masks[np.argmax(scores)]


def own_image_mask(synthetic_ir, image: np.ndarray, **kwargs) -> np.ndarray:
    """The best mask from a predictor that nothing else uses, set to ``image``."""
    predictor = OVSamPredictor(*synthetic_ir, config=F32)
    predictor.set_image(image)
    return direct_best_mask(predictor, **kwargs)


def assert_mask_sent_as_bits(widget) -> None:
    """The page gets the shown mask as packed bits, at most OVERLAY_MAX_SIDE on its long side: the logits
    upscaled to that size directly, the same mask as the full-size one shrunk (IoU >= 0.99; equal when the
    image is no larger)."""
    height, width = widget.mask_shape
    assert max(height, width) == min(OVERLAY_MAX_SIDE, max(widget.mask.shape))
    sent = np.unpackbits(np.frombuffer(widget.mask_bits, np.uint8), count=height * width).reshape(height, width)
    shrunk = cv2.resize(widget.mask.view(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)
    if (height, width) == widget.mask.shape:
        np.testing.assert_array_equal(sent, shrunk)
    else:
        assert mask_iou(sent.astype(bool), shrunk.astype(bool)) >= 0.99
    assert sent.any() and len(widget.mask_bits) == (height * width + 7) // 8


def test_click_right_click_and_drag(widget):
    widget.handle_action({"type": "point", "x": 100.4, "y": 80.2, "label": 1})
    assert widget.points == [[100.4, 80.2]] and widget.labels == [1] and widget.box == []
    widget.handle_action({"type": "point", "x": 200, "y": 150, "label": 0})
    assert widget.labels == [1, 0]
    widget.handle_action({"type": "box", "box": [50, 40, 250, 200]})
    assert widget.box == [50, 40, 250, 200] and widget.message == ""
    expected = dict(
        multimask_output=True,
        point_coords=np.array([[100.4, 80.2], [200, 150]], np.float32),
        point_labels=np.array([1, 0]),
        box=np.array([50, 40, 250, 200], np.float32),
    )
    call = widget.predictor.calls[-1]
    assert call.keys() == expected.keys()
    for key, value in expected.items():
        np.testing.assert_array_equal(call[key], value)
    np.testing.assert_array_equal(widget.mask, direct_best_mask(widget.predictor, **expected))
    # the stand-in decoder adds the box's rectangle and cuts a disc around the negative point
    assert widget.mask[190, 240], "inside the box, far from the positive point: the box was dropped"
    assert not widget.mask[150, 200], "at the negative point: the negative point was dropped"
    assert not widget.mask[20, 300], "outside the box and the positive point's disc"
    assert_mask_sent_as_bits(widget)
    assert len(widget.scores) == 3 and widget.scores[widget.candidate] == max(widget.scores)


def test_a_large_images_mask_is_sent_downscaled(synthetic_ir):
    widget = SamWidget(OVSamPredictor(*synthetic_ir, config=F32), np.zeros((1200, 1800, 3), np.uint8))
    widget.handle_action({"type": "point", "x": 900, "y": 600, "label": 1})
    assert widget.mask.shape == (1200, 1800) and widget.mask_shape == [683, 1024]
    assert_mask_sent_as_bits(widget)


def test_undo_reset_and_cycle(widget):
    widget.handle_action({"type": "point", "x": 100, "y": 80, "label": 1})
    first_mask = widget.mask.copy()
    widget.handle_action({"type": "box", "box": [10, 10, 300, 220]})
    assert not np.array_equal(widget.mask, first_mask)
    widget.handle_action({"type": "undo"})
    assert widget.points == [[100, 80]] and widget.box == []
    np.testing.assert_array_equal(widget.mask, first_mask)
    before = widget.candidate
    widget.handle_action({"type": "cycle"})
    assert widget.candidate == (before + 1) % 3
    assert not np.array_equal(widget.mask, first_mask)
    widget.handle_action({"type": "reset"})
    assert widget.points == [] and widget.mask is None and widget.mask_bits == b"" and widget.scores == []
    widget.handle_action({"type": "undo"})  # nothing to undo: no error
    assert widget.message == ""


def test_errors_become_messages(synthetic_ir):
    widget = SamWidget(OVSamPredictor(*synthetic_ir))
    widget.handle_action({"type": "point", "x": 1, "y": 1, "label": 1})
    assert "No image is set" in widget.message
    widget.handle_action({"type": "upload"}, [b"this is not an image"])
    assert "not an image" in widget.message
    widget.handle_action({"type": "dance"})
    assert "Unknown action" in widget.message


@pytest.mark.parametrize("channels", [1, 4])
def test_upload_gray_and_rgba(synthetic_ir, image, channels):
    widget = SamWidget(OVSamPredictor(*synthetic_ir))
    pixels = (
        image[:, :, 0] if channels == 1 else np.dstack([image[:, :, ::-1], np.full(image.shape[:2], 255, np.uint8)])
    )
    ok, png = cv2.imencode(".png", pixels)
    messages = []
    widget.observe(lambda change: messages.append(change["new"]), names="message")
    widget.handle_action({"type": "upload", "name": "x.png"}, [png.tobytes()])
    assert messages == [UPLOAD_MESSAGE, ""], "the widget says the encoder is running, then clears it"
    assert widget.message == "" and widget.image_data.startswith("data:image/jpeg;base64,")
    expected = np.repeat(pixels[:, :, None], 3, axis=2) if channels == 1 else image
    np.testing.assert_array_equal(widget._image.image, expected)  # what the widget encodes, as RGB
    assert widget.predictor.original_size == image.shape[:2]
    widget.handle_action({"type": "point", "x": 10, "y": 10, "label": 1})
    assert widget.mask.shape == image.shape[:2] and widget.mask.any()


def test_save_mask(widget, tmp_path):
    with pytest.raises(ValueError, match="no mask"):
        widget.save_mask(tmp_path / "none.png")
    widget.handle_action({"type": "point", "x": 180, "y": 120, "label": 1})
    saved = cv2.imread(str(widget.save_mask(tmp_path / "mask.png")), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(saved > 0, widget.mask)


def test_a_click_after_the_predictor_moved_on_segments_the_widgets_own_image(widget, synthetic_ir, image):
    """The predictor is shared (gradio app, mask generator): after another image is set there, the shown mask
    keeps its image's size, and the next click is decoded against the widget's own image, not the other one."""
    widget.handle_action({"type": "point", "x": 180, "y": 120, "label": 1})
    widget.predictor.set_image(np.zeros((50, 70, 3), np.uint8))
    assert widget.mask.shape == (240, 360)
    widget.handle_action({"type": "cycle"})
    assert widget.message == "" and widget.mask.shape == (240, 360) and widget.mask_shape == [240, 360]
    widget.handle_action({"type": "point", "x": 60, "y": 200, "label": 1})
    assert widget.message == ""
    prompt = dict(point_coords=np.array([[180, 120], [60, 200]]), point_labels=np.array([1, 1]))
    np.testing.assert_array_equal(widget.mask, own_image_mask(synthetic_ir, image, **prompt))


def test_a_closed_widget_lets_its_predictor_go(synthetic_ir, image):
    """Nothing but the widget holds its predictor: once closed and dropped, the predictor is freed. (With a path
    as ``_esm``, anywidget's file watcher kept every widget, and so every predictor, for the whole process.)"""
    predictor = OVSamPredictor(*synthetic_ir, config=F32)
    widget = SamWidget(predictor, image)
    freed = weakref.ref(predictor)
    widget.close()
    del widget, predictor
    gc.collect()
    assert freed() is None
