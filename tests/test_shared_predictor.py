"""One predictor shared by the widget, the gradio app and the mask generator: each segments its own image.

The predictor holds one image at a time and names it with ``image_token``; each front end holds
its image through an `ImageClaim` and sets it again when another one has moved the predictor.
The stand-in model (tests/synthetic_sam.py) ignores the pixels, so the front ends' images differ
in size: a mask decoded against another front end's image lands elsewhere and has that image's shape.
"""

from __future__ import annotations

import socket
import threading

import cv2
import numpy as np
import pytest

from tests.helpers import F32
from utils.amg import OVSamAutomaticMaskGenerator
from utils.gradio_app import build_gradio_app
from utils.predictor import ImageClaim, OVSamPredictor
from utils.widget import SamWidget

WIDGET_IMAGE = np.random.default_rng(0).integers(0, 256, (240, 360, 3), dtype=np.uint8)
APP_IMAGE = np.random.default_rng(1).integers(0, 256, (300, 200, 3), dtype=np.uint8)
GENERATOR_IMAGE = np.random.default_rng(2).integers(0, 256, (200, 320, 3), dtype=np.uint8)
WIDGET_CLICK = {"type": "point", "x": 150.0, "y": 100.0, "label": 1}
APP_PROMPTS = {"points": [[80.0, 120.0], [100.0, 150.0]], "labels": [1, 0], "box": [30.0, 60.0, 170.0, 260.0]}


def own_image_mask(synthetic_ir, image: np.ndarray, **prompt) -> np.ndarray:
    """The best mask for ``prompt`` from a predictor that nothing else uses, set to ``image``."""
    predictor = OVSamPredictor(*synthetic_ir, config=F32)
    predictor.set_image(image)
    masks, scores, _ = predictor.predict(**prompt)
    return masks[np.argmax(scores)]


def widget_click_mask(synthetic_ir) -> np.ndarray:
    return own_image_mask(
        synthetic_ir,
        WIDGET_IMAGE,
        point_coords=np.array([[WIDGET_CLICK["x"], WIDGET_CLICK["y"]]]),
        point_labels=np.array([1]),
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_image_token_names_each_set_image(synthetic_ir):
    """A new token at every set_image (the same pixels too), None after reset_image,
    unchanged by a set_image that fails, and never the same on two predictors."""
    predictor, other = (OVSamPredictor(*synthetic_ir) for _ in range(2))
    assert predictor.image_token is None
    predictor.set_image(WIDGET_IMAGE)
    first = predictor.image_token
    predictor.set_image(WIDGET_IMAGE)
    assert predictor.image_token not in (None, first)
    second = predictor.image_token
    with pytest.raises(ValueError, match="uint8"):
        predictor.set_image(WIDGET_IMAGE.astype(np.float32))
    assert predictor.image_token == second and predictor.original_size == (240, 360)
    other.set_image(WIDGET_IMAGE)
    assert other.image_token not in (first, second)
    predictor.reset_image()
    assert predictor.image_token is None


def test_widget_and_gradio_app_each_segment_their_own_image(synthetic_ir, tmp_path, monkeypatch):
    """A request to the app after a click in the widget, and a click after the request: each gets its own image's
    mask. The app's second request carries the image it already encoded (it would skip set_image by its hash)."""
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    from gradio_client import Client, handle_file

    shared = OVSamPredictor(*synthetic_ir, config=F32)
    widget = SamWidget(shared, WIDGET_IMAGE)
    app_image_path = tmp_path / "app.png"
    cv2.imwrite(str(app_image_path), APP_IMAGE[:, :, ::-1])
    app_expected = own_image_mask(
        synthetic_ir,
        APP_IMAGE,
        point_coords=np.array(APP_PROMPTS["points"]),
        point_labels=np.array(APP_PROMPTS["labels"]),
        box=np.array(APP_PROMPTS["box"]),
    )
    widget_expected = widget_click_mask(synthetic_ir)

    app = build_gradio_app(shared)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)

        def app_mask() -> np.ndarray:
            path = client.predict(handle_file(str(app_image_path)), APP_PROMPTS, api_name="/segment")
            return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) > 127

        np.testing.assert_array_equal(app_mask(), app_expected)  # the app moves the predictor to its image
        widget.handle_action(WIDGET_CLICK)
        assert widget.message == ""
        np.testing.assert_array_equal(widget.mask, widget_expected)  # the widget moves it back to its own
        np.testing.assert_array_equal(app_mask(), app_expected)
    finally:
        app.close()


def test_generator_and_widget_each_segment_their_own_image(synthetic_ir, monkeypatch):
    """The widget clicks between every two decoder calls of the generator, which goes on with its own crop:
    the generator's records are those of a predictor nothing else touches, and each click the widget's mask."""
    options = dict(points_per_side=8, stability_score_thresh=0.9, crop_n_layers=1, show_progress=False)
    expected = OVSamAutomaticMaskGenerator(OVSamPredictor(*synthetic_ir, config=F32), **options).generate(
        GENERATOR_IMAGE
    )
    widget_expected = widget_click_mask(synthetic_ir)

    shared = OVSamPredictor(*synthetic_ir, config=F32)
    widget = SamWidget(shared, WIDGET_IMAGE)
    generator = OVSamAutomaticMaskGenerator(shared, **options)
    decoder_calls = generator._process_points
    clicks = []

    def decode_then_click(*args, **kwargs):
        result = decoder_calls(*args, **kwargs)
        widget.handle_action({"type": "reset"})
        widget.handle_action(WIDGET_CLICK)
        clicks.append(np.array_equal(widget.mask, widget_expected))
        return result

    monkeypatch.setattr(generator, "_process_points", decode_then_click)
    records = generator.generate(GENERATOR_IMAGE)
    assert len(clicks) == 5 * 4 and all(clicks), clicks  # five crops, 64 points each, 16 per decoder call
    assert len(records) == len(expected) > 0
    for ours, theirs in zip(records, expected):
        np.testing.assert_array_equal(ours.pop("segmentation"), theirs.pop("segmentation"))
        assert ours == theirs


def test_another_thread_waits_for_the_decoding_in_progress(synthetic_ir):
    """gradio serves requests in worker threads: while one front end decodes, another cannot set its image."""
    shared = OVSamPredictor(*synthetic_ir, config=F32)
    claim = ImageClaim(shared)
    claim.set_image(GENERATOR_IMAGE)
    widget = SamWidget(shared, WIDGET_IMAGE)
    click = threading.Thread(target=widget.handle_action, args=(WIDGET_CLICK,))
    with claim.use() as predictor:
        token = predictor.image_token
        click.start()
        click.join(timeout=1.0)
        assert click.is_alive(), "the click went through while the claim was decoding"
        assert predictor.image_token == token and predictor.original_size == GENERATOR_IMAGE.shape[:2]
    click.join()
    np.testing.assert_array_equal(widget.mask, widget_click_mask(synthetic_ir))


def test_a_widget_takes_the_embedding_the_predictor_holds_and_the_generator_encodes_again(synthetic_ir, monkeypatch):
    """`embed_image` then `SamWidget(predictor, image)`, as notebook 04 does: the widget runs no encoder for the
    pixels the predictor holds, and one for others; the mask generator's end-to-end run always encodes."""
    predictor = OVSamPredictor(*synthetic_ir, config=F32)
    encoded = []
    encode = predictor._encode
    monkeypatch.setattr(predictor, "_encode", lambda pixels: encoded.append(1) or encode(pixels))
    predictor.set_image(WIDGET_IMAGE)
    assert predictor.holds_image(WIDGET_IMAGE.copy()) and not predictor.holds_image(APP_IMAGE)
    widget = SamWidget(predictor, WIDGET_IMAGE.copy())
    assert len(encoded) == 1
    widget._on_message(widget, WIDGET_CLICK, [])
    assert np.array_equal(widget.mask, widget_click_mask(synthetic_ir)) and len(encoded) == 1
    widget.set_image(APP_IMAGE)
    assert len(encoded) == 2
    OVSamAutomaticMaskGenerator(predictor, points_per_side=2, show_progress=False).generate(APP_IMAGE)
    assert len(encoded) == 3
    predictor.reset_image()
    assert not predictor.holds_image(APP_IMAGE)
