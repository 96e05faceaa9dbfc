"""The gradio demo: launched on 127.0.0.1 and called with gradio_client like any user would, and the page's
click handlers called as gradio calls them (a click's position comes from the browser, which the client cannot send)."""

from __future__ import annotations

import socket

import cv2
import numpy as np
import pytest

from tests.helpers import F32
from utils.gradio_app import build_gradio_app, overlay
from utils.predictor import OVSamPredictor

IMAGE = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
PROMPTS = {"points": [[120.0, 90.0], [200.0, 40.0]], "labels": [1, 0], "box": [60.0, 30.0, 250.0, 180.0]}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def direct_mask(synthetic_ir) -> np.ndarray:
    """The best mask of `predict` for PROMPTS on IMAGE (showing the box and the negative point)."""
    direct = OVSamPredictor(*synthetic_ir, config=F32)
    direct.set_image(IMAGE)
    masks, scores, _ = direct.predict(
        point_coords=np.array(PROMPTS["points"]), point_labels=np.array(PROMPTS["labels"]), box=np.array(PROMPTS["box"])
    )
    expected = masks[np.argmax(scores)]
    assert_box_and_negative_point_shown(expected)
    return expected


def assert_box_and_negative_point_shown(mask: np.ndarray) -> None:
    """PROMPTS' box and negative point in the mask: the stand-in decoder (tests/synthetic_sam.py) adds the box's
    rectangle to the positive point's disc and cuts a disc out around the negative point."""
    assert mask[170, 240], "inside the box, far from the positive point: the box was dropped"
    assert not mask[40, 200], "at the negative point, inside the box: the negative point was dropped"
    assert not mask[10, 10], "outside the box and the positive point's disc"


def test_segment_api_returns_the_direct_predict_mask(synthetic_ir, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    image_path = tmp_path / "image.png"
    cv2.imwrite(str(image_path), IMAGE[:, :, ::-1])

    app = build_gradio_app(OVSamPredictor(*synthetic_ir, config=F32))
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        result_path = client.predict(handle_file(str(image_path)), PROMPTS, api_name="/segment")
        bad_prompts = {"points": [[120.0, 90.0]], "labels": [1, 0], "box": None}
        with pytest.raises(AppError, match="point_labels"):  # the handlers' one error path: shown, not a traceback
            client.predict(handle_file(str(image_path)), bad_prompts, api_name="/segment")
    finally:
        app.close()

    returned = cv2.imread(str(result_path), cv2.IMREAD_GRAYSCALE) > 127
    assert_box_and_negative_point_shown(returned)
    np.testing.assert_array_equal(returned, direct_mask(synthetic_ir))


def test_clicks_and_box_in_the_page_build_the_prompt(synthetic_ir):
    """The page's handlers (a click in each mode, then "Use box", as gradio calls them) keep every prompt part,
    and the picture they return is the image with the direct `predict` mask blended in."""
    import gradio as gr

    app = build_gradio_app(OVSamPredictor(*synthetic_ir, config=F32))
    handlers = {function.fn.__name__: function.fn for function in app.fns.values()}
    prompts, _ = handlers["on_upload"](IMAGE)
    for point, mode in zip(PROMPTS["points"], ("foreground", "background")):
        click = gr.SelectData(None, {"index": point, "value": None})
        prompts, shown = handlers["on_click"](IMAGE, prompts, mode, click)
    prompts, shown = handlers["on_box"](IMAGE, prompts, *PROMPTS["box"])
    assert prompts == PROMPTS
    expected = direct_mask(synthetic_ir)
    np.testing.assert_array_equal(shown, overlay(IMAGE, expected))
    assert_box_and_negative_point_shown(np.any(shown != IMAGE, axis=2))
