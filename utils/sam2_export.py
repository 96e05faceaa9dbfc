"""Export wrappers for SAM 2.1 and EdgeTAM (transformers' `Sam2Model` and `EdgeTamModel`): tensor in, tensor out.

As for SAM 1 (`utils.export_wrappers`), the model is split where the work splits: the image
encoder once per image, the prompt encoder and mask decoder once per prompt.

- `Sam2ImageEncoderModel` returns everything the decoder needs per image: the 1x256x64x64
  embedding (with the "no memory" embedding added, as an image without video history has) and
  the two high-resolution feature maps that skip past the transformer straight to the mask
  upscaling, with the decoder's ``conv_s0`` and ``conv_s1`` already applied, so a click does not
  recompute them (transformers' `get_image_embeddings` does the same, as does ONNX Runtime's SAM 2 export).
- `Sam2PromptDecoderModel` takes every prompt as a tensor, as SAM 1's decoder wrapper does (it is a subclass of
  `utils.export_wrappers.PromptDecoderModel`, whose methods it gives SAM 2's module names): box
  corners are points labelled 2 and 3, a padding point is labelled -1 (SAM 2 always appends
  one), and ``has_mask_input`` blends a previous mask's embedding with the "no mask" one. It
  returns all four masks and scores; the predictor chooses among them, because SAM 2's choice
  for a single mask depends on the mask (`utils.predictor.OVSam2Predictor`).

transformers' own decoder takes one mask input per image, not per prompt, and picks the outputs
with Python conditions; so `Sam2PromptDecoderModel.forward` runs its modules itself, in its
order. The parity tests compare it with transformers' `Sam2Model.forward`.

The decoder is also saved in parts by SAM 1's part classes (`utils.decoder_split`), which read the weights
through ``Sam2PromptDecoderModel`` here: `Sam2DecoderImageSide` once per image (the image tokens,
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
from utils.export_wrappers import PromptDecoderModel


class Sam2ImageEncoderModel(nn.Module):
    """The Hiera (or RepViT) trunk, its FPN neck, ``conv_s0`` and ``conv_s1``: [1,3,1024,1024] -> the three maps
    of `utils.model_spec.SAM2_ENCODER_OUTPUTS`."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feats_0, feats_1, embedding = self.model.get_image_embeddings(image)
        return embedding, feats_0, feats_1


class Sam2PromptDecoderModel(PromptDecoderModel):
    """SAM 2's prompt encoder and mask decoder with every prompt as a tensor.

    Inputs: the three encoder outputs; points [B,N,2] in the 1024 frame with labels [B,N]
    (1 foreground, 0 background, 2 and 3 box corners, -1 padding); a previous mask's logits
    [B,1,256,256] and ``has_mask_input`` [B]. Returns all four mask logits per prompt,
    [B,4,256,256], and their predicted IoUs [B,4]: index 0 is the single-mask output, 1 to 3
    the multimask candidates.

    The prompts are embedded as SAM 1's wrapper does (`PromptDecoderModel.embed_points` and ``embed_masks``),
    through the methods below that name SAM 2's modules.
    """

    first_mask_token = 2
    """Where the mask tokens start among the output tokens: after the object-score token and the IoU token."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        self.register_buffer("image_pe", model.get_image_wide_positional_embeddings().detach(), persistent=False)

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
        masks, scores, _ = self.decode(
            image_embeddings, high_res_feats_0, high_res_feats_1, point_coords, point_labels, mask_input, has_mask_input
        )
        return masks, scores

    def decode(
        self,
        image_embeddings: torch.Tensor,
        high_res_feats_0: torch.Tensor,
        high_res_feats_1: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor,
        has_mask_input: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`forward`'s masks and IoU scores, and the transformer's output tokens [B, tokens, 256] (the object-score
        token, the IoU token, the four mask tokens, then the prompts'), which the video decoder reads too
        (`utils.sam2_video_export.VideoDecoderModel`)."""
        decoder = self.mask_decoder
        batch = point_coords.shape[0]
        output_tokens = self.output_tokens().expand(batch, -1, -1)
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
        return masks, decoder.iou_prediction_head(iou_token), queries[:, 0]

    def positional_encoding(self, coords: torch.Tensor) -> torch.Tensor:
        return self.prompt_encoder.shared_embedding(coords)

    def label_embeddings(self) -> torch.Tensor:
        return self.prompt_encoder.point_embed.weight  # one row per label

    def mask_layers(self) -> tuple[nn.Module, nn.Conv2d]:
        embed = self.prompt_encoder.mask_embed
        layers = [embed.conv1, embed.layer_norm1, embed.activation, embed.conv2, embed.layer_norm2, embed.activation]
        return nn.Sequential(*layers), embed.conv3

    def dense_pe(self) -> torch.Tensor:
        return self.image_pe

    def output_tokens(self) -> torch.Tensor:
        decoder = self.mask_decoder
        return torch.cat([decoder.obj_score_token.weight, decoder.iou_token.weight, decoder.mask_tokens.weight])

    def upscaling(self) -> tuple[nn.Module, ...]:
        decoder = self.mask_decoder
        return (
            decoder.upscale_conv1,
            decoder.upscale_layer_norm,
            decoder.activation,
            decoder.upscale_conv2,
            decoder.activation,
        )


class Sam2DecoderImageSide(decoder_split.DecoderImageSide):
    """What SAM 2's decoder computes from the image alone, once per image: the three encoder maps -> SAM 1's
    image side's outputs, then the two high-resolution maps in the upscaling's patch layout
    (`decoder_split.patches_of_high_res_features`)."""

    whole_decoder = Sam2PromptDecoderModel


class Sam2DecoderPromptSide(decoder_split.DecoderPromptSide):
    """SAM 2's decoder per prompt without a mask input, on `Sam2DecoderImageSide`'s outputs and points [B,N,2]
    with labels [B,N] (as `Sam2PromptDecoderModel` takes them). Outputs as `Sam2PromptDecoderModel`'s."""

    whole_decoder = Sam2PromptDecoderModel


class Sam2DecoderPromptSideWithMask(decoder_split.DecoderPromptSideWithMask):
    """SAM 2's decoder per prompt with a previous mask's logits [B,1,256,256]: the downscaled mask is added to the
    image side's tokens (so the first block's projections are per prompt), the rest as `Sam2DecoderPromptSide`."""

    whole_decoder = Sam2PromptDecoderModel
