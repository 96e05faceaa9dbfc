"""The PyTorch modules that `ov.convert_model` turns into SAM's two OpenVINO models.

SAM is split where its cost is split: the heavy ViT image encoder runs once per
image, the light prompt encoder + mask decoder once per prompt (or batch of
prompts). Each half gets a wrapper whose only job is a plain tensor-in,
tensor-out ``forward`` that tracing can follow:

- `ImageEncoderModel`: the encoder takes an already resized, normalised and padded
  1x3x1024x1024 image, so the IR contains no pre-processing to get wrong.
- `PromptDecoderModel`: `segment_anything`'s `PromptEncoder.forward` takes Python
  optionals (points or None, boxes or None, masks or None), which a traced graph
  cannot express. The wrapper re-expresses them as always-present tensors: box
  corners become points with labels 2 and 3, a padding point has label -1, and
  ``has_mask_input`` blends the ``mask_input`` embedding with the "no mask" one.

`sdpa_attention` is an export-time option for the encoder: inside it, every ViT
`Attention` computes its attention with one ``scaled_dot_product_attention`` call
(the relative-position bias passed as the mask), which OpenVINO keeps as one
ScaledDotProductAttention node per block instead of MatMul, Add, Softmax, MatMul.

The decoder split for speed, which the conversion also saves, is in `utils.decoder_split`.

This module needs torch; running the IR afterwards does not.
"""

from __future__ import annotations

import contextlib
import types

import torch
from segment_anything.modeling import Sam
from segment_anything.modeling.image_encoder import Attention, get_rel_pos
from torch import nn

from utils.transforms import IMAGE_SIZE, LOW_RES_MASK_SIZE

EMBEDDING_SHAPE = (1, 256, 64, 64)  # the encoder's output: 256 channels on a 64x64 grid


class ImageEncoderModel(nn.Module):
    """SAM's ViT on a pre-processed image: [1,3,1024,1024] -> embedding [1,256,64,64]."""

    def __init__(self, sam: Sam) -> None:
        super().__init__()
        self.image_encoder = sam.image_encoder

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.image_encoder(image)


class PromptDecoderModel(nn.Module):
    """Prompt encoder + mask decoder with every prompt as a tensor.

    Inputs: the image embedding [1,256,64,64]; points [B,N,2] in the 1024 frame with
    labels [B,N] (1 foreground, 0 background, 2 and 3 box corners, -1 padding); a
    previous mask's logits [B,1,256,256] and ``has_mask_input`` [B] (1 to use it).
    Returns all four mask logits per prompt, [B,4,256,256], and their predicted IoUs
    [B,4]: index 0 is the single-mask output, 1 to 3 the multimask candidates.

    The methods after ``forward`` name what SAM 2's decoder (`utils.sam2_export.Sam2PromptDecoderModel`, a
    subclass) holds under other names or in another order; the decoder's parts (`utils.decoder_split`) read both
    families' weights through them.
    """

    first_mask_token = 1
    """Where the mask tokens start among the output tokens: after the IoU token."""

    def __init__(self, sam: Sam) -> None:
        super().__init__()
        self.prompt_encoder = sam.prompt_encoder
        self.mask_decoder = sam.mask_decoder

    def embed_points(self, point_coords: torch.Tensor, point_labels: torch.Tensor) -> torch.Tensor:
        """Each point: positional encoding of its place, plus the learned embedding of its label."""
        embedding = self.positional_encoding((point_coords + 0.5) / IMAGE_SIZE)  # pixel centres, in [0, 1]
        labels = point_labels.unsqueeze(-1)
        embedding = embedding * (labels != -1) + self.prompt_encoder.not_a_point_embed.weight * (labels == -1)
        for label, label_embedding in enumerate(self.label_embeddings()):
            embedding = embedding + label_embedding * (labels == label)
        return embedding

    def embed_masks(self, mask_input: torch.Tensor, has_mask_input: torch.Tensor) -> torch.Tensor:
        """The downscaled previous mask where ``has_mask_input`` is 1, the learned "no mask" embedding where 0."""
        downscale, to_embedding = self.mask_layers()
        has_mask = has_mask_input.reshape(-1, 1, 1, 1)
        no_mask = self.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        return has_mask * to_embedding(downscale(mask_input)) + (1 - has_mask) * no_mask

    def forward(
        self,
        image_embeddings: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor,
        has_mask_input: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mask_decoder.predict_masks(
            image_embeddings=image_embeddings,
            image_pe=self.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=self.embed_points(point_coords, point_labels),
            dense_prompt_embeddings=self.embed_masks(mask_input, has_mask_input),
        )

    def positional_encoding(self, coords: torch.Tensor) -> torch.Tensor:
        """Points in [0, 1] -> their random-Fourier positional encoding [..., 256]."""
        return self.prompt_encoder.pe_layer._pe_encoding(coords)

    def label_embeddings(self) -> list[torch.Tensor] | torch.Tensor:
        """The learned embedding of each point label, 0 (background) to 3 (a box's second corner), in order."""
        return [embedding.weight for embedding in self.prompt_encoder.point_embeddings]

    def mask_layers(self) -> tuple[nn.Module, nn.Conv2d]:
        """The mask input's downscaling, in two: the layers to 16 channels, and the last 1x1 conv to 256."""
        *downscale, to_embedding = self.prompt_encoder.mask_downscaling
        return nn.Sequential(*downscale), to_embedding

    def dense_pe(self) -> torch.Tensor:
        """The image tokens' positional encoding [1,256,64,64]."""
        return self.prompt_encoder.get_dense_pe()

    def output_tokens(self) -> torch.Tensor:
        """The learned tokens before the prompt's [T,256]: the IoU token, then the mask tokens."""
        return torch.cat([self.mask_decoder.iou_token.weight, self.mask_decoder.mask_tokens.weight])

    def upscaling(self) -> tuple[nn.Module, ...]:
        """The upscaling after the transformer: transposed conv, channel LayerNorm, activation, transposed conv,
        activation."""
        return tuple(self.mask_decoder.output_upscaling)


def encoder_example_input() -> torch.Tensor:
    """What tracing runs the encoder on: one 1024x1024 RGB image (the values do not matter)."""
    return torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE)


def decoder_example_input(batch: int = 2, points: int = 3) -> dict[str, torch.Tensor]:
    """What tracing runs the decoder on. Sizes above one, so tracing cannot specialise on a size of one."""
    return {
        "image_embeddings": torch.randn(*EMBEDDING_SHAPE),
        "point_coords": torch.randint(0, IMAGE_SIZE, (batch, points, 2)).float(),
        "point_labels": torch.tensor([[1.0, 0.0] + [-1.0] * (points - 2)] * batch),
        "mask_input": torch.randn(batch, 1, LOW_RES_MASK_SIZE, LOW_RES_MASK_SIZE),
        "has_mask_input": torch.ones(batch),
    }


DECODER_INPUT_SHAPES = {
    # -1 is a dynamic size: any number of prompts (batch) and of points per prompt
    "image_embeddings": list(EMBEDDING_SHAPE),
    "point_coords": [-1, -1, 2],
    "point_labels": [-1, -1],
    "mask_input": [-1, 1, LOW_RES_MASK_SIZE, LOW_RES_MASK_SIZE],
    "has_mask_input": [-1],
}


def _sdpa_attention_forward(self: Attention, x: torch.Tensor) -> torch.Tensor:
    """`segment_anything`'s `Attention.forward` with the attention as one SDPA call (same maths).

    Upstream adds ``rel_h[..., :, None] + rel_w[..., None, :]`` (the decomposed
    relative-position bias, computed from the unscaled q) to ``q * scale @ k^T``
    before the softmax; passing that sum as ``attn_mask`` is exactly the same.
    """
    batch, height, width, _ = x.shape
    tokens = height * width
    qkv = self.qkv(x).reshape(batch, tokens, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
    q, k, v = qkv.unbind(0)  # each [B, heads, tokens, head_dim]
    bias = None
    if self.use_rel_pos:
        r_q = q.reshape(batch, self.num_heads, height, width, -1)
        rel_h = torch.einsum("bnhwc,hkc->bnhwk", r_q, get_rel_pos(height, height, self.rel_pos_h))
        rel_w = torch.einsum("bnhwc,wkc->bnhwk", r_q, get_rel_pos(width, width, self.rel_pos_w))
        bias = (rel_h[..., :, None] + rel_w[..., None, :]).reshape(batch, self.num_heads, tokens, tokens)
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=self.scale)
    out = out.view(batch, self.num_heads, height, width, -1).permute(0, 2, 3, 1, 4).reshape(batch, height, width, -1)
    return self.proj(out)


@contextlib.contextmanager
def sdpa_attention(sam: Sam):
    """Within this block every ViT `Attention` of ``sam`` runs `_sdpa_attention_forward`; restored on exit."""
    modules = [module for module in sam.image_encoder.modules() if isinstance(module, Attention)]
    for module in modules:
        module.forward = types.MethodType(_sdpa_attention_forward, module)
    try:
        yield
    finally:
        for module in modules:
            del module.forward
