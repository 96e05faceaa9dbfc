"""PyTorch's side of the benchmarks: `segment_anything`'s predictor, made safe for bf16 autocast, and a predictor
for the SAM 2 family on transformers' modules in eager PyTorch."""

from __future__ import annotations

import numpy as np
import torch
from segment_anything import SamAutomaticMaskGenerator, SamPredictor

from utils.predictor import OVSam2Predictor
from utils.sam2_models import SAM2_ENCODER_OUTPUTS


class Float32OutputPredictor(SamPredictor):
    """A SamPredictor whose floating outputs are float32, also under ``torch.autocast(dtype=torch.bfloat16)``.

    Under bf16 autocast the mask decoder returns bf16 tensors; `SamPredictor.predict` then
    fails in ``.numpy()`` (NumPy has no bfloat16) and the mask generator in its NumPy
    conversions. The computation stays bf16; only its outputs are widened.
    """

    def predict_torch(self, *args, **kwargs):
        outputs = super().predict_torch(*args, **kwargs)
        return tuple(tensor.float() if tensor.is_floating_point() else tensor for tensor in outputs)


def mask_generator(sam, **options) -> SamAutomaticMaskGenerator:
    """Upstream's mask generator on a `Float32OutputPredictor`, so it also runs under bf16 autocast."""
    generator = SamAutomaticMaskGenerator(sam, **options)
    generator.predictor = Float32OutputPredictor(sam)
    return generator


def bf16_autocast():
    """The context the "PyTorch bf16 autocast" row measures in."""
    return torch.autocast("cpu", dtype=torch.bfloat16)


class TorchSam2Predictor(OVSam2Predictor):
    """`OVSam2Predictor` on transformers' `Sam2Model` or `EdgeTamModel` in eager PyTorch at f32, for the benchmarks.

    The encoder is the model's ``get_image_embeddings`` and every prompt runs the whole decoder as
    `utils.sam2_export.Sam2PromptDecoderModel` (transformers' own prompt encoder and mask decoder modules, in the
    order of `Sam2Model.forward`, which ``tests/test_sam2.py`` checks it against). Everything else is inherited:
    SAM 2's pre-processing, prompt validation, the single-mask rule and upscaling, so the mask generator runs on
    it unchanged and a comparison with the OpenVINO predictor measures the runtimes alone.
    """

    def __init__(self, model: torch.nn.Module) -> None:
        from utils.sam2_export import Sam2ImageEncoderModel, Sam2PromptDecoderModel

        self.encoder_module = Sam2ImageEncoderModel(model).eval()
        self.decoder_module = Sam2PromptDecoderModel(model).eval()
        self._without_openvino_models()

    def _encode(self, encoder_input: np.ndarray) -> dict[str, np.ndarray]:
        with torch.no_grad():
            maps = self.encoder_module(torch.from_numpy(encoder_input))
        return {name: value.numpy() for name, value in zip(SAM2_ENCODER_OUTPUTS, maps, strict=True)}

    def _run_decoder(self, coords: np.ndarray, labels: np.ndarray, mask_input: np.ndarray | None) -> dict:
        inputs = self._whole_decoder_inputs(coords, labels, mask_input)
        with torch.no_grad():
            masks, scores = self.decoder_module(
                **{name: torch.from_numpy(np.array(value)) for name, value in inputs.items()}
            )
        return {"masks": masks.numpy(), "iou_predictions": scores.numpy()}


def transformers_video_session(model, frames: list[np.ndarray]):
    """(processor, session): transformers' video processor and an inference session for ``model``
    (`Sam2VideoModel` or `EdgeTamVideoModel`) on ``frames``, fed the pixels the OpenVINO tracker reads
    (`utils.transforms.sam2_encoder_input`), at f32."""
    import transformers

    from utils.transforms import sam2_encoder_input

    height, width = frames[0].shape[:2]
    processor = transformers.Sam2VideoProcessor(
        image_processor=transformers.Sam2ImageProcessor(), video_processor=transformers.Sam2VideoVideoProcessor()
    )
    session_class = (
        transformers.EdgeTamVideoInferenceSession
        if isinstance(model, transformers.EdgeTamVideoModel)
        else transformers.Sam2VideoInferenceSession
    )
    pixels = torch.from_numpy(np.concatenate([sam2_encoder_input(frame) for frame in frames]))
    # dtype named: the session's default, the string "float32", fails in torch's .to()
    session = session_class(video=pixels, video_height=height, video_width=width, dtype=torch.float32)
    return processor, session
