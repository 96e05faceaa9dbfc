"""`SamWidget`: click and drag on an image inside JupyterLab or Notebook 7 to segment it with SAM.

The front end (``widget.js``, an anywidget ES module on a canvas) sends each action as
a custom message in image pixels: a foreground or background point, a box, undo,
reset, or "next candidate". `SamWidget` keeps the prompts, calls
`OVSamPredictor.predict_without_upscaling` (only the decoder: the image was encoded once by
`set_image`, and no full-size upscaling: the shown candidate is upscaled from the
low-res logits straight to screen size) and syncs back the mask as raw bits in a binary
buffer (one bit a pixel, no image encoding on either side) plus the prompts and scores;
the canvas paints the mask itself. Everything is readable from Python:
``widget.points``, ``widget.labels``, ``widget.box``, ``widget.mask``.

The predictor may be shared with the gradio app or the mask generator: the widget holds
its image through an `ImageClaim`, so a click after one of them has set another image
encodes the widget's own image again before decoding.
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import anywidget
import cv2
import numpy as np
import traitlets

from utils.predictor import MASK_THRESHOLD, ImageClaim, OVSamPredictor, prompts_to_arguments
from utils.viz import MASK_ALPHA, MASK_RGB

ACTIONS = ("point", "box", "undo", "reset", "cycle", "upload")
"""The messages the canvas sends (see widget.js)."""
UPLOAD_MESSAGE = "Encoding the new image: the image encoder takes a few seconds..."
"""Shown in the widget's status line while an uploaded image is encoded."""
MASK_RGBA = (*MASK_RGB, round(255 * MASK_ALPHA))
"""Overlay colour of the mask: the segment-anything blue, about 60% opaque."""
OVERLAY_MAX_SIDE = 1024
"""Longest side of the mask sent to the page: a notebook shows images at about this size, and
the canvas stretches it to the image (`widget.mask` stays full size)."""


def overlay_size(image_size: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of the mask the page gets for an image of ``image_size``: at most OVERLAY_MAX_SIDE long."""
    scale = min(1.0, OVERLAY_MAX_SIDE / max(image_size))
    return round(image_size[0] * scale), round(image_size[1] * scale)


def _jpeg_data_url(image: np.ndarray) -> str:
    """Encode an RGB uint8 image as a JPEG data URL the browser can draw."""
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"Could not encode an image of shape {image.shape} as JPEG.")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


class SamWidget(anywidget.AnyWidget):
    """An image you click to segment: points, background points, a box, undo, reset, candidates.

    Args:
        predictor: an `OVSamPredictor`; the widget calls its `set_image` and `predict_without_upscaling`,
            and sets its image again when another user of the predictor has replaced it.
        image: the first image (HxWx3 uint8 RGB; gray and RGBA are converted), or None.
        multimask_output: ask SAM for three candidates per action (cycle with "Next mask").
    """

    _esm = Path(__file__).with_name("widget.js").read_text()  # the text: a path makes anywidget keep every widget
    _css = """
    .sam-widget .sam-canvas { max-width: 100%; height: auto; cursor: crosshair; display: block; }
    .sam-widget .sam-toolbar { display: flex; gap: 0.5em; align-items: center; margin-bottom: 0.3em; }
    .sam-widget .sam-status { font-family: monospace; }
    """
    image_data = traitlets.Unicode("").tag(sync=True)
    mask_bits = traitlets.Bytes(b"").tag(sync=True)
    mask_shape = traitlets.List([]).tag(sync=True)
    mask_version = traitlets.Int(0).tag(sync=True)  # counts published masks: the canvas repaints on each
    mask_rgba = traitlets.List(list(MASK_RGBA)).tag(sync=True)
    points = traitlets.List([]).tag(sync=True)
    labels = traitlets.List([]).tag(sync=True)
    box = traitlets.List([]).tag(sync=True)
    scores = traitlets.List([]).tag(sync=True)
    candidate = traitlets.Int(0).tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self, predictor: OVSamPredictor, image: np.ndarray | None = None, multimask_output: bool = True, **kwargs
    ) -> None:
        super().__init__(**kwargs)
        self._image = ImageClaim(predictor)
        self.multimask_output = multimask_output
        self._history: list[tuple[list, list, list]] = []
        self._low_res: np.ndarray | None = None  # the candidates' logits [C, 256, 256]
        self._sizes: tuple[tuple[int, int], tuple[int, int]] | None = None  # (input, original) size they were made at
        self._full_size: dict[int, np.ndarray] = {}  # candidate -> its mask at the image size, made when asked
        self.last_latency_ms: float | None = None  # the last action's decoder and overlay, in the kernel
        self.on_msg(self._on_message)
        if image is not None:
            self.set_image(image)

    # ------------------------------------------------------------ Python API
    @property
    def predictor(self) -> OVSamPredictor:
        """The predictor the widget decodes with (possibly shared)."""
        return self._image.predictor

    def set_image(self, image: np.ndarray) -> None:
        """Show a new image and encode it, unless the predictor holds these pixels already (`embed_image` has
        just encoded them, say); a click encodes it again first if another user of the predictor has set an image
        of its own since."""
        image = self._image.set_image(image, reuse_embedding=True)
        self._history.clear()
        self._set_prompts([], [], [])
        self.image_data = _jpeg_data_url(image)
        self.message = ""

    @property
    def mask(self) -> np.ndarray | None:
        """The mask shown now (HxW bool, the image's size, as `predict` gives it), or None when there is no prompt."""
        if self._low_res is None:
            return None
        if self.candidate not in self._full_size:
            self._full_size[self.candidate] = self._upscaled(self._sizes[1])
        return self._full_size[self.candidate]

    def _upscaled(self, size: tuple[int, int]) -> np.ndarray:
        """The shown candidate's logits upscaled to ``size`` (the predictor's `upscale_masks`), thresholded: HxW bool.

        Uses the image sizes stored with the logits, not the predictor's: the predictor may
        have been given another image since (the gradio app or the mask generator share it).
        """
        logits = self._low_res[self.candidate][None, None]
        return self.predictor.upscale_masks(logits, self._sizes[0], size, MASK_THRESHOLD)[0, 0]

    def save_mask(self, path: str | os.PathLike) -> Path:
        """Save the current mask as a black-and-white PNG."""
        if self.mask is None:
            raise ValueError("There is no mask yet: click on the image first.")
        path = Path(path)
        if not cv2.imwrite(str(path), self.mask.astype(np.uint8) * 255):
            raise OSError(f"Could not write {path}.")
        return path

    def handle_action(self, content: dict, buffers: list[bytes] | None = None) -> None:
        """Apply one front-end action (the same dicts the canvas sends) and update the mask.

        Errors become a readable ``message`` in the widget instead of an exception,
        so a bad click or upload never breaks the notebook.
        """
        try:
            self._apply(content, buffers or [])
            self.message = ""
        except (ValueError, RuntimeError, KeyError) as err:
            self.message = f"Error: {err}"

    # ------------------------------------------------------------ internals
    def _on_message(self, _widget, content: dict, buffers: list[bytes]) -> None:
        self.handle_action(content, buffers)

    def _apply(self, content: dict, buffers: list[bytes]) -> None:
        kind = content.get("type")
        if kind not in ACTIONS:
            raise ValueError(f"Unknown action {kind!r}; expected one of {', '.join(ACTIONS)}.")
        if kind == "upload":
            self._upload(buffers)
            return
        if self._image.image is None:
            raise RuntimeError("No image is set yet: call set_image or upload one.")
        if kind in ("point", "box"):
            previous = (self.points, self.labels, self.box)
            if kind == "point":
                point = [float(content["x"]), float(content["y"])]
                self._set_prompts(self.points + [point], self.labels + [int(content["label"])], self.box)
            else:
                self._set_prompts(self.points, self.labels, [float(value) for value in content["box"]])
            self._history.append(previous)
        elif kind == "undo":
            if self._history:
                self._set_prompts(*self._history.pop())
        elif kind == "reset":
            self._history.clear()
            self._set_prompts([], [], [])
        elif kind == "cycle" and self.scores:
            self.candidate = (self.candidate + 1) % len(self.scores)
            self._show_mask()

    def _upload(self, buffers: list[bytes]) -> None:
        if not buffers:
            raise ValueError("The upload carried no data.")
        decoded = cv2.imdecode(np.frombuffer(buffers[0], dtype=np.uint8), cv2.IMREAD_UNCHANGED)
        if decoded is None:
            raise ValueError("The uploaded file is not an image OpenCV can read.")
        if decoded.ndim == 3:
            decoded = cv2.cvtColor(decoded, cv2.COLOR_BGRA2RGBA if decoded.shape[2] == 4 else cv2.COLOR_BGR2RGB)
        if decoded.dtype != np.uint8:
            raise ValueError(f"The uploaded image has {decoded.dtype} pixels; use an 8-bit image.")
        self.message = UPLOAD_MESSAGE  # shown while the encoder runs; cleared when the image is set
        self.set_image(decoded)

    def prompt_arguments(self) -> dict:
        """The keyword arguments for `OVSamPredictor.predict` that the current prompts amount to."""
        return self._arguments_for(self.points, self.labels, self.box)

    def _arguments_for(self, points: list, labels: list, box: list) -> dict:
        return {"multimask_output": self.multimask_output, **prompts_to_arguments(points, labels, box)}

    def _set_prompts(self, points: list, labels: list, box: list) -> None:
        """Predict for these prompts, then publish prompts, scores and mask together."""
        low_res, scores, sizes = None, [], None
        self.last_latency_ms = None
        start = time.perf_counter()
        if points or box:
            with self._image.use() as predictor:
                scores, low_res = predictor.predict_without_upscaling(**self._arguments_for(points, labels, box))
                sizes = (predictor.input_size, predictor.original_size)
        with self.hold_sync():
            self.points, self.labels, self.box = list(points), list(labels), list(box)
            self._low_res, self._sizes, self._full_size = low_res, sizes, {}
            self.scores = [float(score) for score in scores]
            self.candidate = int(np.argmax(scores)) if len(scores) else 0
            self._show_mask()
        self.last_latency_ms = (time.perf_counter() - start) * 1000 if low_res is not None else None

    def _show_mask(self) -> None:
        """Publish the current mask as ``mask_bits`` (`np.packbits`, rows of ``mask_shape[1]`` pixels) and its shape.

        The page gets the mask at `overlay_size`, upscaled from the low-res logits directly
        (the canvas stretches it to the image): one candidate, and no full-size mask made
        only to be shrunk again.
        """
        if self._low_res is None:
            with self.hold_sync():
                self.mask_shape, self.mask_bits = [], b""
                self.mask_version += 1
            return
        size = overlay_size(self._sizes[1])
        inside = self.mask if size == self._sizes[1] else self._upscaled(size)  # a small image: its own mask
        with self.hold_sync():
            self.mask_shape = list(inside.shape)
            self.mask_bits = np.packbits(inside, axis=None).tobytes()
            self.mask_version += 1
