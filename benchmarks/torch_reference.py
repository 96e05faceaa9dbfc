"""PyTorch's side of the benchmarks: `segment_anything`'s predictor, made safe for bf16 autocast."""

from __future__ import annotations

import torch
from segment_anything import SamAutomaticMaskGenerator, SamPredictor


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
