"""The gradio demo, launched on 127.0.0.1 and called with gradio_client like any user would."""

from __future__ import annotations

import socket

import cv2
import numpy as np
import pytest

from tests.helpers import F32
from utils.gradio_app import build_gradio_app
from utils.predictor import OVSamPredictor


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_segment_api_returns_the_direct_predict_mask(synthetic_ir, tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    image = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    image_path = tmp_path / "image.png"
    cv2.imwrite(str(image_path), image[:, :, ::-1])
    prompts = {"points": [[120.0, 90.0], [200.0, 40.0]], "labels": [1, 0], "box": [60.0, 30.0, 250.0, 180.0]}

    app = build_gradio_app(OVSamPredictor(*synthetic_ir, config=F32))
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        result_path = client.predict(handle_file(str(image_path)), prompts, api_name="/segment")
        bad_prompts = {"points": [[120.0, 90.0]], "labels": [1, 0], "box": None}
        with pytest.raises(AppError, match="point_labels"):  # the handlers' one error path: shown, not a traceback
            client.predict(handle_file(str(image_path)), bad_prompts, api_name="/segment")
    finally:
        app.close()

    returned = cv2.imread(str(result_path), cv2.IMREAD_GRAYSCALE) > 127
    direct = OVSamPredictor(*synthetic_ir, config=F32)
    direct.set_image(image)
    masks, scores, _ = direct.predict(
        point_coords=np.array(prompts["points"]), point_labels=np.array(prompts["labels"]), box=np.array(prompts["box"])
    )
    expected = masks[np.argmax(scores)]
    assert expected.any() and not expected.all()
    np.testing.assert_array_equal(returned, expected)
