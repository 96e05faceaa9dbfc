"""A small gradio app around an `OVSamPredictor`, for sharing a demo outside the notebook.

Upload an image, click on it (the radio button says whether a click is foreground or
background), optionally type a box, and see the mask. The same predictor also answers a
stateless API call, ``/segment``, which `gradio_client` can use:

    client.predict(handle_file("truck.jpg"), {"points": [[500, 375]], "labels": [1], "box": None},
                   api_name="/segment")
"""

from __future__ import annotations

import contextlib
import hashlib

import gradio as gr
import numpy as np

from utils.predictor import ImageClaim, OVSamPredictor, prompts_to_arguments
from utils.transforms import to_rgb_uint8
from utils.viz import MASK_ALPHA, MASK_RGB

OVERLAY_RGB = np.array(MASK_RGB, dtype=np.float32)
EMPTY_PROMPTS = {"points": [], "labels": [], "box": None}
NO_IMAGE_MESSAGE = "Upload an image first."


class _Session:
    """The app's image on the predictor, encoded only when it changes.

    Every request carries the image; a hash of its pixels tells whether it is the one already
    encoded. The predictor may be shared (the notebook's widget, the mask generator): the
    app holds its image through an `ImageClaim`, which encodes it again when one of them has
    set another image since. The predictor's lock is held over a whole request, so requests
    served in parallel threads with different images each get their own image's mask.
    """

    def __init__(self, predictor: OVSamPredictor) -> None:
        self.image = ImageClaim(predictor)
        self.image_key: str | None = None

    def set_image(self, image: np.ndarray) -> np.ndarray:
        image = to_rgb_uint8(image)
        key = hashlib.sha1(image.tobytes() + str(image.shape).encode()).hexdigest()
        with self.image.predictor.lock:
            if key != self.image_key:
                self.image.set_image(image)
                self.image_key = key
        return image

    def mask(self, image: np.ndarray, prompts: dict) -> np.ndarray:
        """Best mask (HxW bool) for {"points": [[x, y]], "labels": [1 or 0], "box": [x0, y0, x1, y1] or None}."""
        arguments = prompts_to_arguments(prompts.get("points"), prompts.get("labels"), prompts.get("box"))
        with self.image.predictor.lock:
            image = self.set_image(image)
            if not arguments:
                return np.zeros(image.shape[:2], dtype=bool)
            with self.image.use() as predictor:
                masks, scores, _ = predictor.predict(**arguments)
        return masks[int(np.argmax(scores))]


def overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The image with the mask blended in the segment-anything blue."""
    shown = image.astype(np.float32)
    shown[mask] = (1 - MASK_ALPHA) * shown[mask] + MASK_ALPHA * OVERLAY_RGB
    return shown.round().astype(np.uint8)


@contextlib.contextmanager
def _shown_as_gradio_errors(image: np.ndarray | None):
    """The one error path of every handler: no image, or a ValueError (bad image or prompt), becomes a gr.Error
    that the page shows, instead of a traceback in the server log."""
    if image is None:
        raise gr.Error(NO_IMAGE_MESSAGE)
    try:
        yield
    except ValueError as err:
        raise gr.Error(str(err)) from err


def build_gradio_app(predictor: OVSamPredictor) -> gr.Blocks:
    """Build (not launch) the demo; call ``.launch(server_name="127.0.0.1")`` on the result."""
    session = _Session(predictor)

    def segment(image: np.ndarray | None, prompts: dict | None) -> np.ndarray:
        with _shown_as_gradio_errors(image):
            return session.mask(image, prompts or EMPTY_PROMPTS).astype(np.uint8) * 255

    def on_upload(image: np.ndarray | None):
        if image is not None:
            with _shown_as_gradio_errors(image):
                session.set_image(image)
        return dict(EMPTY_PROMPTS), image

    def on_click(image: np.ndarray | None, prompts: dict, mode: str, event: gr.SelectData):
        with _shown_as_gradio_errors(image):
            prompts = {
                **prompts,
                "points": prompts["points"] + [list(event.index)],
                "labels": prompts["labels"] + [1 if mode == "foreground" else 0],
            }
            return prompts, overlay(to_rgb_uint8(image), session.mask(image, prompts))

    def on_box(image: np.ndarray | None, prompts: dict, x0: float, y0: float, x1: float, y1: float):
        with _shown_as_gradio_errors(image):
            prompts = {**prompts, "box": [x0, y0, x1, y1]}
            return prompts, overlay(to_rgb_uint8(image), session.mask(image, prompts))

    with gr.Blocks(title="Segment Anything with OpenVINO") as app:
        gr.Markdown("## Segment Anything with OpenVINO\nUpload an image, then click on it; choose what a click means.")
        prompts = gr.State(dict(EMPTY_PROMPTS))
        with gr.Row():
            image = gr.Image(type="numpy", label="image (click here)", format="png")
            result = gr.Image(type="numpy", label="mask", format="png", interactive=False)
        mode = gr.Radio(["foreground", "background"], value="foreground", label="a click adds a")
        with gr.Row():
            box = [gr.Number(label=name, value=0) for name in ("x0", "y0", "x1", "y1")]
            apply_box = gr.Button("Use box")
            reset = gr.Button("Reset prompts")
        image.upload(on_upload, inputs=image, outputs=[prompts, result])
        image.select(on_click, inputs=[image, prompts, mode], outputs=[prompts, result])
        apply_box.click(on_box, inputs=[image, prompts, *box], outputs=[prompts, result])
        reset.click(on_upload, inputs=image, outputs=[prompts, result])
        api_prompts = gr.JSON(visible=False)
        api_mask = gr.Image(type="numpy", format="png", visible=False)
        api_button = gr.Button(visible=False)
        api_button.click(segment, inputs=[image, api_prompts], outputs=api_mask, api_name="segment")
    return app
