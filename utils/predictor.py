"""`OVSamPredictor`: `SamPredictor`'s interface on SAM's two OpenVINO models (and the decoder's parts).

`set_image` runs the image encoder once; every `predict` call runs only the
light prompt decoder and upscales its logits in numpy, so prompts are cheap.
Where the conversion saved the decoder's parts beside it (see
`utils.decoder_split.DecoderImageSide`), `set_image` also runs the image side once,
prompts without a ``mask_input`` run only the prompt side, and prompts with one the
prompt side with mask. They compute the whole decoder's maths in another order, so
they agree with it up to rounding (at f32 within `utils.decoder_split.PARTS_TOLERANCE`; more at bf16).
Inputs, outputs, shapes and meaning follow `SamPredictor` one for one; the
difference is that everything is numpy and nothing here imports torch.

`OVSam2Predictor` is the same predictor on SAM 2.1 and EdgeTAM IR, with SAM 2's processing;
`open_predictor` picks the one that fits an IR, so callers need not know which family they hold.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openvino as ov

from utils.ir_store import CONVERSION_ID_KEY, DECODER_PART_XML_FILES
from utils.model_spec import SAM, SAM_2, family_of_encoder, resolve
from utils.precision import compile_config
from utils.transforms import (
    IMAGE_SIZE,
    LOW_RES_MASK_SIZE,
    apply_coords,
    normalize_and_pad,
    postprocess_masks,
    resize_longest_side,
    sam2_apply_coords,
    sam2_encoder_input,
    sam2_postprocess_masks,
    to_rgb_uint8,
)

MASK_THRESHOLD = 0.0
"""Logits above this are inside the mask (`Sam.mask_threshold`)."""

DECODER_CHUNK = 16
"""Most prompts per decoder call; bigger batches are split (see `OVSamPredictor._decode`)."""
WITH_MASK_PER_IMAGE_INPUTS = ("image_tokens", "image_pe")
"""The image side's outputs that SAM 1's prompt side with mask takes (`DecoderPromptSideWithMask`); SAM 2's takes
the high-resolution features too (`per_image_inputs`)."""
PROMPT_INPUTS = ("point_coords", "point_labels", "mask_input")
"""A prompt side's inputs that come from the prompt; the others are image-side outputs."""
PADDING_LABEL = -1.0
BOX_CORNER_LABELS = (2.0, 3.0)
_IMAGE_TOKENS = itertools.count(1)
"""Every `OVSamPredictor.set_image` in the process takes the next number, so no two images share a token."""


def _pixels_digest(image: np.ndarray) -> str:
    """A digest of an RGB uint8 image's size and pixels (BLAKE2b: milliseconds for a photo)."""
    digest = hashlib.blake2b(str(image.shape).encode(), digest_size=16)
    digest.update(np.ascontiguousarray(image).data)
    return digest.hexdigest()


class OVSamPredictor:
    """Prompted segmentation with SAM's OpenVINO IR, the same interface as `SamPredictor`.

    Args:
        encoder_xml: image encoder IR from `utils.convert.convert_sam`.
        decoder_xml: prompt decoder IR from the same call. When the decoder's parts
            (``prompt_decoder_image_side.xml``, ``prompt_decoder_prompt_side.xml``,
            ``prompt_decoder_prompt_side_with_mask.xml``) are in the same folder, every
            prompt runs on them instead.
        device: an OpenVINO device name, e.g. "CPU", "GPU" or "AUTO".
        config: properties passed to `compile_model` for every model, e.g.
            ``{"INFERENCE_PRECISION_HINT": "f32"}`` for exact parity with PyTorch. Without a precision
            hint, the project's choice (`utils.precision.choose_precision`) is named.

    Attributes besides `SamPredictor`'s: ``encoder`` and ``decoder`` (the compiled IR),
    ``decoder_image_side``, ``decoder_prompt_side`` and ``decoder_prompt_side_with_mask``
    (the decoder's parts, or None when the folder has none), ``image_side_outputs``
    (what the image side computed for the current image, by name: the prompt side's first
    inputs), and for front ends that share one predictor (see `ImageClaim`) ``image_token``
    (which image it holds: a number that no other `set_image` in the process gets, not even
    one of the same pixels; None without an image) and ``lock``.
    """

    family = SAM
    """The model family whose IR this predictor runs (`utils.model_spec.Family`)."""

    def __init__(
        self,
        encoder_xml: str | os.PathLike,
        decoder_xml: str | os.PathLike,
        device: str = "CPU",
        config: dict | None = None,
    ) -> None:
        for xml in (encoder_xml, decoder_xml):
            if not Path(xml).is_file():
                raise FileNotFoundError(
                    f"No OpenVINO IR at {xml}: create it with utils.convert.ensure_sam_ir() (or notebook 01)."
                )
        core = ov.Core()
        available = core.available_devices
        known = {name.split(".")[0] for name in available} | {"AUTO", "MULTI", "HETERO"}
        if device.split(":")[0].split(".")[0] not in known:
            raise ValueError(f"OpenVINO device {device!r} is not available here; choose one of {available}.")
        self.device = device
        config = compile_config(config)
        encoder = core.read_model(encoder_xml)
        family = family_of_encoder(encoder) or SAM  # IR with unnamed ports is taken for SAM 1's, as open_predictor does
        if family is not self.family:
            outputs = [sorted(port.get_names()) for port in encoder.outputs]
            raise ValueError(
                f"{encoder_xml} is another family's image encoder (outputs {outputs}; {self.family.name}'s are "
                f"{list(self.family.encoder_outputs)}): use {family.predictor.split(':')[1]} for it, or "
                "open_predictor, which chooses."
            )
        self.encoder = core.compile_model(encoder, device, config)
        decoder = core.read_model(decoder_xml)
        self.decoder = core.compile_model(decoder, device, config)
        self._decoder_request = self.decoder.create_infer_request()
        parts = _compile_decoder_parts(core, Path(decoder_xml), _conversion_id(decoder), device, config)
        self.decoder_image_side, self.decoder_prompt_side, self.decoder_prompt_side_with_mask = parts or (None,) * 3
        self._prompt_side_request = None if parts is None else self.decoder_prompt_side.create_infer_request()
        self._with_mask_request = None if parts is None else self.decoder_prompt_side_with_mask.create_infer_request()
        self._with_mask_per_image_inputs = [] if parts is None else per_image_inputs(self.decoder_prompt_side_with_mask)
        self.reset_image()

    def _without_openvino_models(self) -> None:
        """No compiled IR, for subclasses that run the models on another runtime (the benchmarks' peers): they
        replace `_encode` and `_run_decoder`, and every prompt runs their whole decoder."""
        self.device = "CPU"
        self.encoder = self.decoder = self._decoder_request = None
        self.decoder_image_side = self.decoder_prompt_side = self.decoder_prompt_side_with_mask = None
        self._prompt_side_request = self._with_mask_request = None
        self._with_mask_per_image_inputs = []
        self.reset_image()

    @functools.cached_property
    def lock(self) -> threading.RLock:
        """Held by `set_image`, `reset_image` and a front end's `ImageClaim.use`. Made on first use: by
        `reset_image` in ``__init__``, and so also in subclasses that make their models without ``__init__``."""
        return threading.RLock()

    # ----------------------------------------------------------------- image
    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        """Run the image encoder on an HxWx3 uint8 image (HxW gray and HxWx4 RGBA are converted).

        The image gets a new ``image_token``, even when the pixels are the same as before (a front end that
        would rather not encode them again asks `holds_image` first).
        """
        image = to_rgb_uint8(image, image_format)
        digest = _pixels_digest(image)
        with self.lock:
            encoder_input, input_size = self._encoder_input(image)
            features = self._encode(encoder_input)
            image_side_outputs = {}
            if self.decoder_image_side is not None:
                per_image = self.decoder_image_side(features)
                image_side_outputs = {port.get_any_name(): np.array(value) for port, value in per_image.items()}
            # assigned only once everything is computed: a failure above leaves the previous image intact
            self.features, self.image_side_outputs = features, image_side_outputs
            self.original_size = tuple(image.shape[:2])
            self.input_size = input_size
            self.is_image_set = True
            self.image_token = next(_IMAGE_TOKENS)
            self._image_digest = digest

    def holds_image(self, image: np.ndarray, image_format: str = "RGB") -> bool:
        """True when the image set now has exactly these pixels (a digest compares them, in milliseconds where the
        encoder takes seconds): `ImageClaim` then takes the embedding as it is."""
        return self.is_image_set and self._image_digest == _pixels_digest(to_rgb_uint8(image, image_format))

    def _encoder_input(self, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """SAM's pre-processing of an RGB uint8 image: the encoder's 1x3x1024x1024 input, and the size of the
        image inside it (its longest side resized to 1024, the rest padding)."""
        resized = resize_longest_side(image)
        return normalize_and_pad(resized), tuple(resized.shape[:2])

    def _encode(self, encoder_input: np.ndarray) -> np.ndarray:
        """The image encoder on a normalised, padded 1x3x1024x1024 input: the 1x256x64x64 float32 embedding."""
        return np.asarray(self.encoder(encoder_input)[0], dtype=np.float32).copy()

    def reset_image(self) -> None:
        """Forget the current image and its embedding (``image_token`` becomes None)."""
        with self.lock:
            self.is_image_set = False
            self.features: np.ndarray | None = None
            self.image_side_outputs: dict[str, np.ndarray] = {}
            self.original_size: tuple[int, int] | None = None
            self.input_size: tuple[int, int] | None = None
            self.image_token: int | None = None
            self._image_digest: str | None = None

    def get_image_embedding(self) -> np.ndarray:
        """Return the current image's embedding, 1x256x64x64 float32."""
        self._require_image()
        return self.features

    # --------------------------------------------------------------- prompts
    def predict(
        self,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Predict masks for one prompt on the current image, exactly like `SamPredictor.predict`.

        Args:
            point_coords: [N, 2] (x, y) pixel coordinates in the original image.
                Points outside the image are not rejected: like `SamPredictor`, they
                are mapped as they are and the model sees them off the image.
            point_labels: [N], 1 for a foreground point, 0 for a background point.
            box: [4] XYXY box in pixel coordinates.
            mask_input: [1, 256, 256] low-res logits from an earlier call, to refine.
            multimask_output: three candidates (True) or the single-mask output (False).
            return_logits: return float logits instead of boolean masks.

        Returns:
            masks [C, H, W] (bool, or float32 logits), scores [C], low-res logits [C, 256, 256],
            with C = 3 when ``multimask_output`` else 1.
        """
        scores, low_res = self.predict_without_upscaling(point_coords, point_labels, box, mask_input, multimask_output)
        return self._upscale(low_res[None], return_logits)[0], scores, low_res

    def predict_without_upscaling(
        self,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask_output: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """`predict` up to the decoder: scores [C] and low-res logits [C, 256, 256], no mask at the image size.

        For callers that need fewer pixels than ``C`` full-size masks: the widget shows one
        candidate at screen size and upscales a full-size mask only when asked for it.
        Arguments as `predict`.
        """
        self._require_image()
        points = _validate_points(point_coords, point_labels)
        boxes = None if box is None else _validate_boxes(box, expected_single=True)
        if points is None and boxes is None and mask_input is None:
            raise ValueError("Give at least one prompt: point_coords with point_labels, a box, or a mask_input.")
        if points is not None:
            points = (points[0][None], points[1][None])
        low_res, scores = self._decode(points, boxes, _validate_mask_input(mask_input), multimask_output)
        return scores[0], low_res[0]

    def predict_boxes(
        self, boxes: np.ndarray, multimask_output: bool = False, return_logits: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Predict one mask set per box for many boxes in batched decoder calls of up to DECODER_CHUNK boxes.

        The numpy counterpart of ``SamPredictor.predict_torch(boxes=...)``.

        Args:
            boxes: [B, 4] XYXY boxes in pixel coordinates of the original image.

        Returns:
            masks [B, C, H, W], scores [B, C], low-res logits [B, C, 256, 256].
        """
        self._require_image()
        low_res, scores = self._decode(None, _validate_boxes(boxes, expected_single=False), None, multimask_output)
        return self._upscale(low_res, return_logits), scores, low_res

    def predict_low_res(
        self, point_coords: np.ndarray, point_labels: np.ndarray, multimask_output: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Decode a batch of point prompts in one call and return only the low-res logits and scores.

        The automatic mask generator uses this: it drops masks by score before paying
        for upscaling them (`utils.transforms.postprocess_masks` does that later).

        Args:
            point_coords: [B, N, 2] pixel coordinates, one row of N points per prompt.
            point_labels: [B, N] labels, 1 foreground and 0 background.

        Returns:
            low-res logits [B, C, 256, 256] and scores [B, C].
        """
        self._require_image()
        coords, labels = np.asarray(point_coords), np.asarray(point_labels)
        if coords.ndim != 3 or labels.shape != coords.shape[:2]:
            raise ValueError(
                f"point_coords must be [B, N, 2] and point_labels [B, N], got {coords.shape} and {labels.shape}."
            )
        flat = _validate_points(coords.reshape(-1, 2), labels.reshape(-1))
        points = (flat[0].reshape(coords.shape), flat[1].reshape(labels.shape))
        return self._decode(points, None, None, multimask_output)

    def _upscale(self, low_res: np.ndarray, return_logits: bool) -> np.ndarray:
        """Low-res logits [B,C,256,256] to masks [B,C,H,W] at the image size, thresholded unless asked not to."""
        threshold = None if return_logits else MASK_THRESHOLD
        return self.upscale_masks(low_res, self.input_size, self.original_size, threshold)

    @staticmethod
    def upscale_masks(
        low_res: np.ndarray, input_size: tuple[int, int], size: tuple[int, int], threshold: float | None = None
    ) -> np.ndarray:
        """Logits [B,C,256,256] decoded for an image whose ``input_size`` the predictor had then, upscaled to
        ``size`` [B,C,H,W] (`utils.transforms.postprocess_masks`), and thresholded when ``threshold`` is given.

        The mask generator and the widget upscale logits they kept with this, after the predictor may have
        moved on to another image, so it takes the sizes instead of reading them from the predictor.
        """
        return postprocess_masks(low_res, input_size, size, threshold)

    def _decode(
        self,
        points: tuple[np.ndarray, np.ndarray] | None,
        boxes: np.ndarray | None,
        mask_input: np.ndarray | None,
        multimask_output: bool,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Run the decoder on a batch of prompts; returns low-res logits [B,C,256,256] and scores [B,C].

        Large batches go through the decoder DECODER_CHUNK prompts at a time: OpenVINO's
        working memory grows with the prompts in one call while the time per prompt does not
        (`python -m benchmarks.amg_speed` measures peak memory by points_per_batch).
        """
        coords, labels = self._decoder_points(points, boxes)
        logits, scores = [], []
        for start in range(0, coords.shape[0], DECODER_CHUNK):
            chunk = slice(start, start + DECODER_CHUNK)
            result = self._run_decoder(coords[chunk], labels[chunk], mask_input)
            all_logits = np.asarray(result["masks"], dtype=np.float32)
            chosen = self._choose_outputs(all_logits, np.asarray(result["iou_predictions"]), multimask_output)
            logits.append(chosen[0])
            scores.append(chosen[1])
        return np.concatenate(logits), np.concatenate(scores)

    def _decoder_points(
        self, points: tuple[np.ndarray, np.ndarray] | None, boxes: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The decoder's point inputs for these prompts on the current image (`decoder_points`)."""
        return decoder_points(points, boxes, self.original_size)

    @staticmethod
    def _choose_outputs(
        logits: np.ndarray, scores: np.ndarray, multimask_output: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """From the decoder's four outputs per prompt, SAM's choice: the three candidates (1 to 3), or the
        single-mask output (0). Copies, so no caller holds the decoder's buffers."""
        chosen = slice(1, None) if multimask_output else slice(0, 1)
        return np.array(logits[:, chosen], dtype=np.float32), np.array(scores[:, chosen], dtype=np.float32)

    def _run_decoder(self, coords: np.ndarray, labels: np.ndarray, mask_input: np.ndarray | None):
        """One decoder call: a prompt side when the decoder's parts are there (the one with mask when
        ``mask_input`` is given), else the whole decoder.

        ``share_inputs``: OpenVINO reads the arrays in place instead of copying them into its
        own tensors first; the image side's five [1,4096,C] outputs, the prompt side's inputs, are
        14 MB, which would otherwise be copied on every call (``python -m benchmarks.decoder_speed`` times the
        calls with the inputs shared, as here: benchmarks/results/decoder_speed.json).
        """
        if self._prompt_side_request is None:
            return self._decoder_request.infer(
                self._whole_decoder_inputs(coords, labels, mask_input), share_inputs=True
            )
        if mask_input is None:
            inputs = {**self.image_side_outputs, "point_coords": coords, "point_labels": labels}
            return self._prompt_side_request.infer(inputs, share_inputs=True)
        per_image = {name: self.image_side_outputs[name] for name in self._with_mask_per_image_inputs}
        masks = per_prompt_mask_inputs(mask_input, len(coords))
        inputs = {**per_image, "point_coords": coords, "point_labels": labels, "mask_input": masks}
        return self._with_mask_request.infer(inputs, share_inputs=True)

    def _whole_decoder_inputs(self, coords: np.ndarray, labels: np.ndarray, mask_input: np.ndarray | None) -> dict:
        """The whole decoder's inputs (`whole_decoder_inputs`), for IR without the decoder's parts."""
        return whole_decoder_inputs(self.features, coords, labels, mask_input)

    def _require_image(self) -> None:
        if not self.is_image_set:
            raise RuntimeError("No image is set: call set_image(image) before predicting.")


STABILITY_DELTA = 0.05
STABILITY_THRESHOLD = 0.98
"""SAM 2's single-mask rule (``dynamic_multimask_stability_delta`` and ``_thresh`` in its configs): the
single-mask output is kept when its area barely changes as the threshold moves by the delta, else the best
of the three candidates is taken."""


class OVSam2Predictor(OVSamPredictor):
    """`OVSamPredictor`'s calls on SAM 2.1 or EdgeTAM IR (`utils.sam2_export`), with SAM 2's own processing.

    What differs from SAM 1, each in one method, as transformers' `Sam2Model` and `Sam2Processor` do it:

    - pre-processing (`_encoder_input`): the image is resized to the whole 1024x1024 square, without
      padding, so ``input_size`` is always (1024, 1024);
    - the encoder returns three maps (`_encode`), kept by name in ``features`` for the decoder;
      `get_image_embedding` returns the 1x256x64x64 one, as for SAM 1;
    - prompts (`_decoder_points`): coordinates are scaled per axis, and a padding point always ends a prompt;
    - the single-mask output (`_choose_outputs`): kept only when stable, else the best candidate;
    - masks (`upscale_masks`): the 256x256 logits are resized to the image in one bilinear step.

    The decoder's parts (`utils.sam2_export.Sam2DecoderImageSide` and the two prompt sides) run as SAM 1's do.
    """

    family = SAM_2

    def _encoder_input(self, image: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        return sam2_encoder_input(image), (IMAGE_SIZE, IMAGE_SIZE)

    def _encode(self, encoder_input: np.ndarray) -> dict[str, np.ndarray]:
        """The encoder on a 1x3x1024x1024 input: its three maps by name (`model_spec.SAM2_ENCODER_OUTPUTS`), float32."""
        result = self.encoder(encoder_input)
        names = self.family.encoder_outputs
        return {name: np.array(result[index], dtype=np.float32) for index, name in enumerate(names)}

    def get_image_embedding(self) -> np.ndarray:
        """Return the current image's 1x256x64x64 embedding (the high-resolution maps are in ``features``)."""
        self._require_image()
        return self.features["image_embeddings"]

    def _decoder_points(self, points, boxes):
        return decoder_points(points, boxes, self.original_size, sam2=True)

    def _whole_decoder_inputs(self, coords, labels, mask_input):
        """SAM 1's whole-decoder inputs with SAM 2's three encoder maps in place of the one embedding."""
        return {**whole_decoder_inputs(self.features["image_embeddings"], coords, labels, mask_input), **self.features}

    @staticmethod
    def _choose_outputs(logits, scores, multimask_output):
        """The three candidates, or SAM 2's single mask: output 0 where it is stable (`STABILITY_THRESHOLD`),
        elsewhere the candidate with the highest predicted IoU (sam2's ``_dynamic_multimask_via_stability``)."""
        if multimask_output:
            return OVSamPredictor._choose_outputs(logits, scores, multimask_output)
        stability = np.nan_to_num(stability_score(logits[:, 0], 0.0, STABILITY_DELTA), nan=1.0)  # 0/0: no mask
        pick = np.where(stability >= STABILITY_THRESHOLD, 0, 1 + np.argmax(scores[:, 1:], axis=1))
        rows = np.arange(len(logits))
        return np.array(logits[rows, pick][:, None], dtype=np.float32), np.array(
            scores[rows, pick][:, None], np.float32
        )

    @staticmethod
    def upscale_masks(low_res, input_size, size, threshold=None):
        """`OVSamPredictor.upscale_masks` for SAM 2: one bilinear step to ``size``; there is no padding, so
        ``input_size`` plays no part (`utils.transforms.sam2_postprocess_masks`)."""
        return sam2_postprocess_masks(low_res, size, threshold)


def stability_score(logits: np.ndarray, threshold: float, offset: float) -> np.ndarray:
    """IoU of the masks (the last two axes) thresholded at threshold+offset and threshold-offset (nested, so a
    ratio of areas); NaN where both are empty. The mask generator filters by it, SAM 2's single-mask rule uses it."""
    high = (logits > threshold + offset).sum(axis=(-1, -2), dtype=np.int64)
    low = (logits > threshold - offset).sum(axis=(-1, -2), dtype=np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (high / low).astype(np.float32)


def open_predictor(
    encoder_xml: str | os.PathLike, decoder_xml: str | os.PathLike, device: str = "CPU", config: dict | None = None
) -> OVSamPredictor:
    """The predictor that fits this IR: `OVSam2Predictor` for a SAM 2 encoder (three outputs), else `OVSamPredictor`."""
    if not Path(encoder_xml).is_file():
        raise FileNotFoundError(
            f"No OpenVINO IR at {encoder_xml}: create it with utils.convert.ensure_sam_ir() (or notebook 01)."
        )
    family = family_of_encoder(ov.Core().read_model(encoder_xml))
    return resolve((family or SAM).predictor)(encoder_xml, decoder_xml, device=device, config=config)


def is_sam2_encoder(encoder: ov.Model) -> bool:
    """True when the image encoder's outputs are SAM 2's three maps (`utils.model_spec.family_of_encoder`): the
    SAM 2 family's IR, FP or INT8, as against SAM 1's one embedding."""
    return family_of_encoder(encoder) is SAM_2


class ImageClaim:
    """One front end's image on a predictor that several share (the widget, the gradio app, the mask generator).

    A predictor holds one image at a time. Each front end keeps its own claim: `set_image`
    encodes the image and remembers it with the predictor's ``image_token``; `use` hands
    out the predictor for decoding, after setting the claim's image again if the token
    has changed, i.e. another front end has set its own image in between. So a click
    always segments the image of the front end it was made in. Comparing tokens costs
    nothing per click (no hashing of pixels), and two images never share one; the price
    of a change is one more run of the encoder.

    The predictor's ``lock`` is held from the check to the end of the decoding, so a front
    end in another thread (gradio serves requests in worker threads) cannot set its image
    in between. Any predictor with ``set_image``, ``reset_image``, ``image_token`` and
    ``lock`` will do. The claim keeps a reference to its image (RGB uint8), not a copy.
    """

    def __init__(self, predictor: OVSamPredictor) -> None:
        self.predictor = predictor
        self.image: np.ndarray | None = None
        self._token: int | None = None

    def set_image(self, image: np.ndarray, reuse_embedding: bool = False) -> np.ndarray:
        """Encode ``image`` (gray and RGBA are converted) on the predictor as this claim's image; return it as RGB.

        With ``reuse_embedding``, a predictor that holds these very pixels already (`utils.quickstart.embed_image`
        has just encoded them, say) is not run again. The mask generator leaves it False: its end-to-end time, as
        upstream's, includes the encoder."""
        image = to_rgb_uint8(image)
        with self.predictor.lock:
            if not (reuse_embedding and self.predictor.holds_image(image)):
                self.predictor.set_image(image)
            self.image, self._token = image, self.predictor.image_token
        return image

    @contextlib.contextmanager
    def use(self) -> Iterator[OVSamPredictor]:
        """The predictor, holding this claim's image and locked for the ``with`` block."""
        if self.image is None:
            raise RuntimeError("No image is set: call set_image(image) before predicting.")
        with self.predictor.lock:
            if self.predictor.image_token != self._token:
                self.set_image(self.image)
            yield self.predictor

    def release(self) -> None:
        """Forget the claim's image, and reset the predictor if it still holds it (its embedding is freed)."""
        with self.predictor.lock:
            if self._token is not None and self.predictor.image_token == self._token:
                self.predictor.reset_image()
            self.image, self._token = None, None


def _conversion_id(model: ov.Model) -> str | None:
    """The id `utils.convert.convert_sam` stamps into the decoder IR it makes, or None (hand-made IR)."""
    return model.get_rt_info(CONVERSION_ID_KEY).astype(str) if model.has_rt_info(CONVERSION_ID_KEY) else None


def _compile_decoder_parts(
    core: ov.Core, decoder_xml: Path, decoder_id: str | None, device: str, config: dict
) -> tuple[ov.CompiledModel, ...] | None:
    """Compile the decoder's parts found beside ``decoder_xml`` (image side, prompt side, prompt side with mask);
    None when none is there.

    The parts must come from the same conversion as the whole decoder (the same id in the
    runtime info of all of them) and fit each other (the image side's outputs named as the
    prompt side's inputs other than `PROMPT_INPUTS`, and the prompt side with mask's among them);
    otherwise, or when only some exist, the error names the files.
    """
    paths = [decoder_xml.parent / name for name in DECODER_PART_XML_FILES]
    present = [path for path in paths if path.is_file()]
    if not present:
        return None
    remake = "convert again with utils.convert.ensure_sam_ir() (or utils.convert.convert_sam)"
    if len(present) < len(paths):
        named = ", ".join(str(path) for path in paths)
        missing = ", ".join(str(path) for path in paths if path not in present)
        raise FileNotFoundError(f"The decoder parts {named} go together; not found: {missing}. To make them, {remake}.")
    models = [core.read_model(path) for path in paths]
    ids = [_conversion_id(model) for model in models]
    outputs = {port.get_any_name() for port in models[0].outputs}
    fits = set(per_image_inputs(models[1])) == outputs and set(per_image_inputs(models[2])) <= outputs
    if decoder_id is None or ids != [decoder_id] * len(paths) or not fits:
        conversions = ", ".join(f"{path} (conversion {id_})" for path, id_ in zip(paths, ids, strict=True))
        raise ValueError(
            f"The decoder parts {conversions} do not come from the same conversion as "
            f"{decoder_xml} (conversion {decoder_id}): {remake}."
        )
    return tuple(core.compile_model(model, device, config) for model in models)


def per_image_inputs(prompt_side: ov.Model | ov.CompiledModel) -> list[str]:
    """The names of a prompt side's inputs that are image-side outputs (all but `PROMPT_INPUTS`), in order."""
    return [port.get_any_name() for port in prompt_side.inputs if port.get_any_name() not in PROMPT_INPUTS]


def whole_decoder_inputs(
    embedding: np.ndarray, coords: np.ndarray, labels: np.ndarray, mask_input: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """The whole decoder's five inputs for decoder points [B,N,2], [B,N]; ``mask_input`` [1,256,256] or None."""
    batch = len(coords)
    return {
        "image_embeddings": embedding,
        "point_coords": coords,
        "point_labels": labels,
        "mask_input": per_prompt_mask_inputs(mask_input, batch),
        "has_mask_input": np.full(batch, 0.0 if mask_input is None else 1.0, dtype=np.float32),
    }


def per_prompt_mask_inputs(mask_input: np.ndarray | None, batch: int) -> np.ndarray:
    """``mask_input`` [1,256,256] repeated for each of ``batch`` prompts, [B,1,256,256] float32; zeros for None."""
    if mask_input is None:
        return np.zeros((batch, 1, LOW_RES_MASK_SIZE, LOW_RES_MASK_SIZE), dtype=np.float32)
    return np.broadcast_to(mask_input[None], (batch, *mask_input.shape)).astype(np.float32)


def decoder_points(
    points: tuple[np.ndarray, np.ndarray] | None,
    boxes: np.ndarray | None,
    original_size: tuple[int, int],
    sam2: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Build decoder point inputs [B,N,2] and [B,N] in the 1024 frame for an image of ``original_size``.

    ``points`` are ([1 or B, N, 2], [1 or B, N]) in image pixels; a single row is shared by all boxes.

    As in `PromptEncoder`, box corners are points labelled 2 and 3, and when
    there is no box a padding point labelled -1 is appended to the points. With
    ``sam2``, coordinates are mapped as SAM 2 maps them (`utils.transforms.sam2_apply_coords`)
    and the padding point is appended also after a box, as SAM 2's prompt encoder does (two
    padding points for a prompt that is a mask alone, as transformers' `Sam2Model` gives it).
    """
    map_coords = sam2_apply_coords if sam2 else apply_coords
    batch = 1 if boxes is None else boxes.shape[0]
    parts_coords, parts_labels = [], []
    if points is not None:
        coords, labels = points
        batch = max(batch, coords.shape[0])
        parts_coords.append(np.broadcast_to(map_coords(coords, original_size), (batch, *coords.shape[1:])))
        parts_labels.append(np.broadcast_to(labels, (batch, labels.shape[1])))
    if boxes is not None:
        parts_coords.append(map_coords(boxes.reshape(-1, 2, 2), original_size).reshape(batch, 2, 2))
        parts_labels.append(np.tile(np.array(BOX_CORNER_LABELS, dtype=np.float32), (batch, 1)))
    if boxes is None or sam2:
        # SAM 2 with a mask alone: transformers' Sam2Model adds a point labelled -1, then pads it like any other
        padding = 2 if sam2 and points is None and boxes is None else 1
        parts_coords.append(np.zeros((batch, padding, 2), dtype=np.float32))
        parts_labels.append(np.full((batch, padding), PADDING_LABEL, dtype=np.float32))
    coords = np.concatenate(parts_coords, axis=1).astype(np.float32)
    labels = np.concatenate(parts_labels, axis=1).astype(np.float32)
    return coords, labels


def prompts_to_arguments(points: list | None, labels: list | None, box: list | None) -> dict:
    """`OVSamPredictor.predict` keyword arguments for prompts kept as plain lists.

    The widget and the gradio app store prompts as JSON-friendly lists; this is the
    one place that turns them into arrays. Empty or None prompts are left out.
    """
    arguments: dict = {}
    if points:
        arguments["point_coords"] = np.asarray(points, dtype=np.float32)
        arguments["point_labels"] = np.asarray(labels, dtype=np.int64)
    if box:
        arguments["box"] = np.asarray(box, dtype=np.float32)
    return arguments


def _validate_points(
    point_coords: np.ndarray | None, point_labels: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """Check [N,2] coordinates and [N] labels of 0/1; return them as float32 arrays, or None."""
    if point_coords is None and point_labels is None:
        return None
    if point_coords is None or point_labels is None:
        raise ValueError("point_coords and point_labels go together: give both or neither.")
    coords = np.asarray(point_coords)
    labels = np.asarray(point_labels)
    if not (np.issubdtype(coords.dtype, np.number) and np.issubdtype(labels.dtype, np.number)):
        raise TypeError(f"point_coords and point_labels must be numeric, got dtypes {coords.dtype} and {labels.dtype}.")
    if coords.ndim != 2 or coords.shape[1] != 2 or coords.shape[0] == 0:
        raise ValueError(f"point_coords must have shape [N, 2] (x, y) with N >= 1, got {coords.shape}.")
    if labels.shape != (coords.shape[0],):
        raise ValueError(
            f"point_labels must have shape [N] = [{coords.shape[0]}] to match point_coords, got {labels.shape}."
        )
    if not np.all(np.isfinite(coords)):
        raise ValueError("point_coords contains NaN or infinite values.")
    if not np.all(np.isin(labels, (0, 1))):
        raise ValueError(f"point_labels must be 1 (foreground) or 0 (background), got {np.unique(labels).tolist()}.")
    return coords.astype(np.float32), labels.astype(np.float32)


def _validate_boxes(box: np.ndarray, expected_single: bool) -> np.ndarray:
    """Check XYXY boxes ([4] when ``expected_single``, else [B,4]); return them as float32 [B,4]."""
    boxes = np.asarray(box)
    expected = "[4]" if expected_single else "[B, 4]"
    if expected_single:
        valid_shape = boxes.shape in ((4,), (1, 4))
    else:
        valid_shape = boxes.ndim == 2 and boxes.shape[1] == 4
    if not np.issubdtype(boxes.dtype, np.number) or not valid_shape or boxes.size == 0:
        raise ValueError(
            f"box must be numeric with shape {expected} as (x0, y0, x1, y1), got {boxes.shape} {boxes.dtype}."
        )
    boxes = boxes.reshape(-1, 4).astype(np.float32)
    if not np.all(np.isfinite(boxes)):
        raise ValueError("box contains NaN or infinite values.")
    if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
        raise ValueError(f"box must be (x0, y0, x1, y1) with x1 >= x0 and y1 >= y0, got {boxes.tolist()}.")
    return boxes


def _validate_mask_input(mask_input: np.ndarray | None) -> np.ndarray | None:
    """Check a [1, 256, 256] low-res logit mask (as returned in ``low_res_logits[i:i+1]``)."""
    if mask_input is None:
        return None
    mask = np.asarray(mask_input)
    expected = (1, LOW_RES_MASK_SIZE, LOW_RES_MASK_SIZE)
    if mask.shape != expected:
        raise ValueError(
            f"mask_input must have shape {list(expected)} (one low-res logit mask, e.g. "
            f"low_res_logits[best][None]), got {list(mask.shape)}."
        )
    if not np.all(np.isfinite(mask)):
        raise ValueError("mask_input contains NaN or infinite values.")
    return mask.astype(np.float32)
