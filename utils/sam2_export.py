"""Export wrappers for SAM 2.1 and EdgeTAM (transformers' `Sam2Model` and `EdgeTamModel`): tensor in, tensor out.

As for SAM 1 (`utils.export_wrappers`), the model is split where the work splits: the image
encoder once per image, the prompt encoder and mask decoder once per prompt.

- `Sam2ImageEncoderModel` returns everything the decoder needs per image: the 1x256x64x64
  embedding (with the "no memory" embedding added, as an image without video history has) and
  the two high-resolution feature maps that skip past the transformer straight to the mask
  upscaling, with the decoder's ``conv_s0`` and ``conv_s1`` already applied, so a click does not
  recompute them (transformers' `get_image_embeddings` does the same, as does ONNX Runtime's SAM 2 export).
- `Sam2PromptDecoderModel` takes every prompt as a tensor, as SAM 1's decoder wrapper does: box
  corners are points labelled 2 and 3, a padding point is labelled -1 (SAM 2 always appends
  one), and ``has_mask_input`` blends a previous mask's embedding with the "no mask" one. It
  returns all four masks and scores; the predictor chooses among them, because SAM 2's choice
  for a single mask depends on the mask (`utils.predictor.OVSam2Predictor`).

transformers' own decoder takes one mask input per image, not per prompt, and picks the outputs
with Python conditions; so `Sam2PromptDecoderModel.forward` runs its modules itself, in its
order. The parity tests compare it with transformers' `Sam2Model.forward`.

The decoder is also saved in parts, as SAM 1's is (`utils.decoder_split`, whose channels-last two-way
transformer and upscaling both families share): `Sam2DecoderImageSide` once per image (the image tokens,
their positional encoding, the first block's three projections, and the high-resolution features
rearranged into the upscaling's patch layout), `Sam2DecoderPromptSide` per prompt, and
`Sam2DecoderPromptSideWithMask` per prompt with a previous mask. `OVSam2Predictor` runs them when they
are beside the whole decoder; ``tests/test_decoder_parts.py`` checks them against it.

This module needs torch and transformers; running the IR afterwards does not.
"""

from __future__ import annotations

import torch
from torch import nn

from utils import decoder_split
from utils.sam2_models import SAM2_ENCODER_OUTPUTS
from utils.transforms import IMAGE_SIZE, LOW_RES_MASK_SIZE


class Sam2ImageEncoderModel(nn.Module):
    """The Hiera (or RepViT) trunk, its FPN neck, ``conv_s0`` and ``conv_s1``: [1,3,1024,1024] -> the three maps
    of `SAM2_ENCODER_OUTPUTS`."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feats_0, feats_1, embedding = self.model.get_image_embeddings(pixel_values)
        return embedding, feats_0, feats_1


class Sam2PromptDecoderModel(nn.Module):
    """SAM 2's prompt encoder and mask decoder with every prompt as a tensor.

    Inputs: the three encoder outputs; points [B,N,2] in the 1024 frame with labels [B,N]
    (1 foreground, 0 background, 2 and 3 box corners, -1 padding); a previous mask's logits
    [B,1,256,256] and ``has_mask_input`` [B]. Returns all four mask logits per prompt,
    [B,4,256,256], and their predicted IoUs [B,4]: index 0 is the single-mask output, 1 to 3
    the multimask candidates.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.prompt_encoder = model.prompt_encoder
        self.mask_decoder = model.mask_decoder
        self.register_buffer("image_pe", model.get_image_wide_positional_embeddings().detach(), persistent=False)

    def embed_points(self, point_coords: torch.Tensor, point_labels: torch.Tensor) -> torch.Tensor:
        """Each point: the positional encoding of its pixel centre, plus the learned embedding of its label."""
        encoder = self.prompt_encoder
        embedding = encoder.shared_embedding((point_coords + 0.5) / IMAGE_SIZE)
        labels = point_labels.unsqueeze(-1)
        embedding = embedding * (labels != -1) + encoder.not_a_point_embed.weight * (labels == -1)
        for label in range(encoder.point_embed.num_embeddings):
            embedding = embedding + encoder.point_embed.weight[label] * (labels == label)
        return embedding

    def embed_masks(self, mask_input: torch.Tensor, has_mask_input: torch.Tensor) -> torch.Tensor:
        """The downscaled previous mask where ``has_mask_input`` is 1, the learned "no mask" embedding where 0."""
        encoder = self.prompt_encoder
        has_mask = has_mask_input.reshape(-1, 1, 1, 1)
        no_mask = encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        return has_mask * encoder.mask_embed(mask_input) + (1 - has_mask) * no_mask

    def forward(
        self,
        image_embeddings: torch.Tensor,
        high_res_feats_0: torch.Tensor,
        high_res_feats_1: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor,
        has_mask_input: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        decoder = self.mask_decoder
        batch = point_coords.shape[0]
        output_tokens = [decoder.obj_score_token.weight, decoder.iou_token.weight, decoder.mask_tokens.weight]
        output_tokens = torch.cat(output_tokens).expand(batch, -1, -1)
        sparse = self.embed_points(point_coords, point_labels)
        tokens = torch.cat([output_tokens, sparse], dim=1).unsqueeze(1)  # each prompt as its own image
        image = image_embeddings + self.embed_masks(mask_input, has_mask_input)
        _, channels, height, width = image.shape
        queries, keys = decoder.transformer(
            point_embeddings=tokens,
            image_embeddings=image,
            image_positional_embeddings=self.image_pe.expand(batch, -1, -1, -1),
            attention_similarity=None,
        )
        iou_token, mask_tokens = queries[:, 0, 1], queries[:, 0, 2 : 2 + decoder.num_mask_tokens]
        image = keys.transpose(2, 3).reshape(batch, channels, height, width)
        upscaled = decoder.activation(decoder.upscale_layer_norm(decoder.upscale_conv1(image) + high_res_feats_1))
        upscaled = decoder.activation(decoder.upscale_conv2(upscaled) + high_res_feats_0)
        hyper_in = torch.stack(
            [mlp(mask_tokens[:, index]) for index, mlp in enumerate(decoder.output_hypernetworks_mlps)], dim=1
        )
        masks = (hyper_in @ upscaled.flatten(2)).reshape(batch, -1, *upscaled.shape[-2:])
        return masks, decoder.iou_prediction_head(iou_token)


SAM2_IMAGE_SIDE_OUTPUTS = (*decoder_split.IMAGE_SIDE_OUTPUTS, "high_res_patches_1", "high_res_patches_0")
"""The names of `Sam2DecoderImageSide`'s outputs: SAM 1's image side's, then the high-resolution features in the
upscaling's patch layout. They are the first inputs of `Sam2DecoderPromptSide`."""
WITH_MASK_IMAGE_SIDE_INPUTS = ("image_tokens", "image_pe", "high_res_patches_1", "high_res_patches_0")
"""The image-side outputs that `Sam2DecoderPromptSideWithMask` takes, its first inputs."""


class Sam2DecoderImageSide(nn.Module):
    """What SAM 2's decoder computes from the image alone, once per image: the three encoder maps ->
    `SAM2_IMAGE_SIDE_OUTPUTS`. As SAM 1's `decoder_split.DecoderImageSide`, plus the two high-resolution maps
    rearranged for the upscaling (`decoder_split.patches_of_high_res_features`)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.decoder = Sam2PromptDecoderModel(model)

    def forward(
        self, image_embeddings: torch.Tensor, high_res_feats_0: torch.Tensor, high_res_feats_1: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        decoder = self.decoder
        first_block = decoder.mask_decoder.transformer.layers[0]
        no_mask = decoder.prompt_encoder.no_mask_embed.weight
        tokens = decoder_split.image_side_tensors(image_embeddings, no_mask, decoder.image_pe, first_block)
        return (*tokens, *decoder_split.patches_of_high_res_features(high_res_feats_1, high_res_feats_0))


class Sam2DecoderPromptSide(nn.Module):
    """SAM 2's decoder per prompt without a mask input, on `Sam2DecoderImageSide`'s outputs and points [B,N,2]
    with labels [B,N] (as `Sam2PromptDecoderModel` takes them). Outputs as `Sam2PromptDecoderModel`'s."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.decoder = Sam2PromptDecoderModel(model)

    def forward(
        self,
        image_tokens: torch.Tensor,
        image_pe: torch.Tensor,
        token_to_image_keys: torch.Tensor,
        token_to_image_values: torch.Tensor,
        image_to_token_queries: torch.Tensor,
        high_res_patches_1: torch.Tensor,
        high_res_patches_0: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        per_image = (token_to_image_keys, token_to_image_values, image_to_token_queries)
        skips = (high_res_patches_1, high_res_patches_0)
        return _decode_split(self.decoder, point_coords, point_labels, image_tokens, image_pe, skips, per_image)


class Sam2DecoderPromptSideWithMask(nn.Module):
    """SAM 2's decoder per prompt with a previous mask's logits [B,1,256,256]: the downscaled mask is added to the
    image side's tokens (so the first block's projections are per prompt), the rest as `Sam2DecoderPromptSide`.

    The mask embedding's last 1x1 convolution runs as a per-pixel linear layer after the transpose to
    channels-last (16 channels moved instead of 256), with the "no mask" embedding taken off its bias, as SAM
    1's `decoder_split.DecoderPromptSideWithMask` does. Inputs: `WITH_MASK_IMAGE_SIDE_INPUTS`, points, labels and
    ``mask_input``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.decoder = Sam2PromptDecoderModel(model)

    def forward(
        self,
        image_tokens: torch.Tensor,
        image_pe: torch.Tensor,
        high_res_patches_1: torch.Tensor,
        high_res_patches_0: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        encoder = self.decoder.prompt_encoder
        embed = encoder.mask_embed
        downscaled = embed.activation(embed.layer_norm1(embed.conv1(mask_input)))
        downscaled = embed.activation(embed.layer_norm2(embed.conv2(downscaled))).flatten(2).transpose(1, 2)
        bias = embed.conv3.bias - encoder.no_mask_embed.weight[0]
        dense_minus_no_mask = nn.functional.linear(downscaled, embed.conv3.weight.flatten(1), bias)
        skips = (high_res_patches_1, high_res_patches_0)
        tokens = image_tokens + dense_minus_no_mask
        return _decode_split(self.decoder, point_coords, point_labels, tokens, image_pe, skips)


def _decode_split(
    decoder: Sam2PromptDecoderModel,
    point_coords: torch.Tensor,
    point_labels: torch.Tensor,
    image_tokens: torch.Tensor,
    image_pe: torch.Tensor,
    skips: tuple[torch.Tensor, torch.Tensor],
    per_image: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`Sam2PromptDecoderModel.forward` on channels-last image tokens [B or 1,4096,256]: SAM 2's output tokens (the
    object-score token first) and the points through `decoder_split.two_way_transformer`, then the upscaling with
    the high-resolution ``skips`` (`decoder_split.upscaled_masks`). Returns all four masks and IoU predictions."""
    mask_decoder = decoder.mask_decoder
    output_tokens = [
        mask_decoder.obj_score_token.weight,
        mask_decoder.iou_token.weight,
        mask_decoder.mask_tokens.weight,
    ]
    output_tokens = torch.cat(output_tokens).expand(point_coords.shape[0], -1, -1)
    tokens = torch.cat([output_tokens, decoder.embed_points(point_coords, point_labels)], dim=1)
    tokens, keys = decoder_split.two_way_transformer(
        mask_decoder.transformer, tokens, image_tokens, image_pe, per_image
    )
    mlps = mask_decoder.output_hypernetworks_mlps
    hyper_in = torch.stack([mlp(tokens[:, 2 + index]) for index, mlp in enumerate(mlps)], dim=1)
    activation = mask_decoder.activation
    upscaling = (mask_decoder.upscale_conv1, mask_decoder.upscale_layer_norm, activation, mask_decoder.upscale_conv2)
    masks = decoder_split.upscaled_masks((*upscaling, activation), keys, hyper_in, skips)
    return masks, mask_decoder.iou_prediction_head(tokens[:, 1])


def sam2_encoder_example_input() -> torch.Tensor:
    """What tracing runs the encoder on: one 1024x1024 RGB image (the values do not matter)."""
    return torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE)


def sam2_decoder_example_input(batch: int = 2, points: int = 3) -> dict[str, torch.Tensor]:
    """What tracing runs the decoder on. Sizes above one, so tracing cannot specialise on a size of one."""
    per_image = {name: torch.randn(*shape) for name, shape in SAM2_ENCODER_OUTPUTS.items()}
    return {
        **per_image,
        "point_coords": torch.randint(0, IMAGE_SIZE, (batch, points, 2)).float(),
        "point_labels": torch.tensor([[1.0, 0.0] + [-1.0] * (points - 2)] * batch),
        "mask_input": torch.randn(batch, 1, LOW_RES_MASK_SIZE, LOW_RES_MASK_SIZE),
        "has_mask_input": torch.ones(batch),
    }


SAM2_DECODER_INPUT_SHAPES = {
    **{name: list(shape) for name, shape in SAM2_ENCODER_OUTPUTS.items()},
    # -1 is a dynamic size: any number of prompts (batch) and of points per prompt
    "point_coords": [-1, -1, 2],
    "point_labels": [-1, -1],
    "mask_input": [-1, 1, LOW_RES_MASK_SIZE, LOW_RES_MASK_SIZE],
    "has_mask_input": [-1],
}


def sam2_part_example_inputs(model: nn.Module, batch: int = 2, points: int = 3) -> dict[str, dict[str, torch.Tensor]]:
    """What tracing runs each decoder part on, by part ("image side", "prompt side", "with mask"): the image side's
    outputs for random encoder maps, and `sam2_decoder_example_input`'s prompts."""
    whole = sam2_decoder_example_input(batch, points)
    with torch.no_grad():
        per_image = {name: whole[name] for name in SAM2_ENCODER_OUTPUTS}
        image_side = dict(zip(SAM2_IMAGE_SIDE_OUTPUTS, Sam2DecoderImageSide(model)(**per_image), strict=True))
    points_only = {name: whole[name] for name in ("point_coords", "point_labels")}
    return {
        "image side": per_image,
        "prompt side": {**image_side, **points_only},
        "with mask": {
            **{name: image_side[name] for name in WITH_MASK_IMAGE_SIDE_INPUTS},
            **points_only,
            "mask_input": whole["mask_input"],
        },
    }
