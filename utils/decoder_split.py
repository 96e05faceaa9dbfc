"""The mask decoder split for speed: the part that depends on the image alone once per image, the rest per prompt.

`utils.export_wrappers.PromptDecoderModel` is SAM's own decoder as notebook 01 exports it. The
conversion (`utils.convert`) also saves the same decoder in parts, which `OVSamPredictor`
runs when it finds them beside the whole decoder:

- `DecoderImageSide`: the decoder's image tokens, their positional encoding and the first
  two-way block's three projections of them, once per image.
- `DecoderPromptSide`: the rest, per prompt without a mask input.
- `DecoderPromptSideWithMask`: the whole decoder's work, per prompt with a mask input, in
  the prompt side's form.

They compute `segment_anything`'s `MaskDecoder.predict_masks` with the two-way transformer
written out, channels-last, in another order (see each docstring), so they agree with the
whole decoder up to rounding. The same classes serve SAM 2 (`utils.sam2_export`'s subclasses): each part reads
the weights through its family's whole-decoder wrapper (`DecoderPart.whole_decoder`), whose methods name what
the two implementations call differently.

Changing this module safely:

- Parity. ``tests/test_decoder_parts.py`` runs the parts' IR against the whole decoder's IR
  on the same inputs, with and without a mask input, for several batch and point counts,
  within `PARTS_TOLERANCE` (it prints the differences it measures), and the predictor with
  and without the parts; ``tests/test_parity.py`` runs `OVSamPredictor` (which runs the
  parts) against `segment_anything`'s `SamPredictor` on the same weights for every prompt
  type, mask input included; ``tests/test_amg.py::test_neural_path_matches_upstream_mask_for_mask``
  runs the mask generator through them against `SamAutomaticMaskGenerator`;
  ``tests/test_benchmarks.py::test_decoder_speed_counts_work_and_times_every_decoder`` checks
  that the prompt sides do fewer multiply-adds than the whole decoder. `OVSamPredictor` feeds
  the parts by their input and output names, whose names and shapes ``test_parts_interface``
  checks.
- Staleness. This module is in `utils.ir_store.EXPORT_CODE_MODULES`: the conversion stamp
  holds a digest of its code (docstrings and comments left out), so any change to the code
  here makes every IR converted before it stale, and `ensure_sam_ir` converts again. A new
  module that defines part of an exported graph must be added to that tuple.

This module needs torch; running the IR afterwards does not.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from utils.export_wrappers import PromptDecoderModel
from utils.model_spec import IMAGE_SIDE_OUTPUTS as IMAGE_SIDE_OUTPUTS  # their names, imported from here too

PARTS_TOLERANCE = 1e-5
"""The largest difference allowed, at f32, between a decoder part's outputs and the whole decoder's on the same
inputs: masks as a fraction of the whole decoder's largest |logit|, IoU predictions absolute. The parts do the
same maths in another order, so only rounding separates them; ``tests/test_decoder_parts.py`` asserts this bound
and prints the differences it measures."""


def _named(module: nn.Module, sam1_name: str, sam2_name: str):
    """The attribute that `segment_anything` calls ``sam1_name`` and transformers' SAM 2 ``sam2_name``: the two
    implementations of the same two-way transformer name a few of its parts differently."""
    return getattr(module, sam1_name) if hasattr(module, sam1_name) else getattr(module, sam2_name)


def _heads(attention: nn.Module) -> int:
    return _named(attention, "num_heads", "num_attention_heads")


def _output_projection(attention: nn.Module) -> nn.Linear:
    return _named(attention, "out_proj", "o_proj")


def _block_diagonal(x: torch.Tensor, heads: int) -> torch.Tensor:
    """Projected prompt tokens [B, T, D] as a block-diagonal [B, D, heads*T]: entry (h*c+i, h*T+s) = x[s, h*c+i].

    Multiplying the image's [P, D] projections by it gives every head's scores against
    every token at once, heads*T of them per pixel: no per-head reshapes or transposes of
    the image-sized tensors, which is where SAM's attention spends its time on a CPU
    (T is a handful of prompt tokens, P = 4096 pixels).
    """
    batch, tokens, width = x.shape
    per_head = x.reshape(batch, tokens, heads, width // heads).permute(0, 2, 3, 1)  # [B, heads, c, T]
    eye = torch.eye(heads, dtype=x.dtype).reshape(1, heads, 1, heads, 1)
    return (per_head.unsqueeze(3) * eye).reshape(batch, width, heads * tokens)


def _score_rows(columns: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """Scores [B or 1, rows, P] of prompt-side columns [B, C, heads*T] (a `_block_diagonal`, or one multiplied
    by a projection's weights) against image tokens [B or 1, P, C].

    The pixels are the last axis, the one a CPU's softmax runs along best: the softmax over
    the pixels reduces along it, the one over the tokens reduces across rows with the
    pixels as its vectors. When the image tokens are per-image (batch 1, shared by every
    prompt: the first block's), all prompts' columns go into one product,
    [1, B*heads*T, P], instead of a small one each.
    """
    rows = columns.transpose(1, 2)  # [B, heads*T, C]
    if image.shape[0] == 1:
        rows = rows.reshape(1, -1, rows.shape[2])
    return rows @ image.transpose(1, 2)


def _tokens_attend_to_image(
    attention: nn.Module, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, projected: bool
) -> torch.Tensor:
    """The decoder's attention (`segment_anything`'s `Attention`, transformers' `Sam2Attention`) with prompt-token
    queries q [B, T, D] (projected) and image keys and values [B or 1, P, C] (batch 1: per-image tensors shared by
    every prompt).

    The scores are computed as rows of pixels (`_score_rows`, `_block_diagonal`) and
    softmaxed over the pixels. With ``projected`` False, ``keys`` and ``values`` are the
    inputs of the attention's ``k_proj`` and ``v_proj``, and both projections move to the
    prompt side of the products: Q'(x Wk' + bk)' = (Wk' Q)' x' + (bk Q)', and since each
    head's weights over the pixels sum to one, weights (x Wv' + bv) = (weights x) Wv' + bv.
    Those products have heads*T rows instead of D, and ``v_proj`` runs on heads*T rows
    instead of P.
    """
    heads, (batch, tokens) = _heads(attention), q.shape[:2]
    head_width = q.shape[2] // heads
    queries = _block_diagonal(q, heads) / math.sqrt(head_width)  # [B, D, heads*T]
    if projected:
        scores = _score_rows(queries, keys)
    else:
        bias = (attention.k_proj.bias @ queries).unsqueeze(2)  # [B, heads*T, 1]
        scores = _score_rows(attention.k_proj.weight.T @ queries, keys) + bias
    mixed = (torch.softmax(scores, dim=2) @ values).reshape(batch, heads * tokens, -1)  # every head's weights
    if not projected:
        mixed = attention.v_proj(mixed)
    eye = torch.eye(heads, dtype=q.dtype).reshape(1, heads, 1, heads, 1)
    own_head = (mixed.reshape(-1, heads, tokens, heads, head_width) * eye).sum(dim=3)  # [B, heads, T, c]
    return _output_projection(attention)(own_head.transpose(1, 2).reshape(-1, tokens, heads * head_width))


def _image_attends_to_tokens(
    attention: nn.Module, queries: torch.Tensor, k: torch.Tensor, v: torch.Tensor, projected: bool
) -> torch.Tensor:
    """The decoder's attention with image queries [B or 1, P, C] and prompt-token keys and
    values k, v [B, T, D] (projected).

    Scores come as rows of pixels (`_score_rows`), [B, heads, T, P], softmaxed per head
    over the T tokens (axis 2), with vectors of pixels: over a last axis of T tokens (7 for
    one point: 5 output tokens, the point and a padding point) the CPU's softmax is slower
    (``python -m benchmarks.decoder_speed --profile`` gives the Softmax layers' time per call,
    ``profiles`` in benchmarks/results/decoder_speed.json). With
    ``projected`` False, ``queries`` are the input of ``q_proj``, which moves to the keys'
    side: K'(x Wq' + bq)' = (Wq' K)' x' + (bq K)'. The values, made block-diagonal and
    passed through ``out_proj``'s weights first, give [B, P, C] in one product.
    """
    heads, (batch, tokens) = _heads(attention), k.shape[:2]
    keys = _block_diagonal(k, heads) / math.sqrt(k.shape[2] // heads)  # [B, D, heads*T]
    if projected:
        scores = _score_rows(keys, queries)
    else:
        scores = _score_rows(attention.q_proj.weight.T @ keys, queries) + (attention.q_proj.bias @ keys).unsqueeze(2)
    weights = torch.softmax(scores.reshape(batch, heads, tokens, -1), dim=2).reshape(batch, heads * tokens, -1)
    out_proj = _output_projection(attention)
    projected_values = _block_diagonal(v, heads).transpose(1, 2) @ out_proj.weight.T  # [B, heads*T, C]
    return weights.transpose(1, 2) @ projected_values + out_proj.bias


def _tokens_attend_to_tokens(attention: nn.Module, queries: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """The decoder's self-attention of the prompt tokens [B, T, D], queries and keys from ``queries``, values from
    ``values``: plain multi-head attention (T is a handful of tokens), written out because the two
    implementations call their attention modules with other arguments and shapes."""
    heads, (batch, tokens, _) = _heads(attention), queries.shape

    def per_head(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(batch, tokens, heads, -1).transpose(1, 2)  # [B, heads, T, c]

    q, k, v = (
        per_head(attention.q_proj(queries)),
        per_head(attention.k_proj(queries)),
        per_head(attention.v_proj(values)),
    )
    weights = torch.softmax(q @ k.transpose(2, 3) / math.sqrt(q.shape[3]), dim=3)
    return _output_projection(attention)((weights @ v).transpose(1, 2).reshape(batch, tokens, -1))


class DecoderPart(nn.Module):
    """A part of the decoder, built on either family's model: it reads the weights through the family's
    whole-decoder wrapper (``whole_decoder``: `PromptDecoderModel`, or SAM 2's subclass of it), whose methods name
    what the two implementations call differently."""

    whole_decoder = PromptDecoderModel

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.decoder = self.whole_decoder(model)


class DecoderImageSide(DecoderPart):
    """The part of the mask decoder that depends on the image alone, run once per image.

    Without a mask input the decoder's image tokens are the embedding plus the learned
    "no mask" embedding, and its positional encoding depends only on the weights. The
    first two-way block projects those image tokens three times before they meet any
    prompt: keys and values for tokens-attend-to-image, queries for image-attends-to-tokens.
    This module computes the image tokens and the three projections once, so every
    prompt without a mask input skips them (``python -m benchmarks.decoder_speed`` counts the
    multiply-adds of each part and of the whole decoder: ``gmac`` in benchmarks/results/decoder_speed.json).

    Input: the image embedding [1,256,64,64]. Outputs, each [1,4096,C]: ``image_tokens``
    (C=256), ``image_pe`` (C=256), ``token_to_image_keys``, ``token_to_image_values`` and
    ``image_to_token_queries`` (C=128, the attention's internal width). SAM 2's image side
    (`utils.sam2_export.Sam2DecoderImageSide`) also takes its encoder's two high-resolution maps and
    returns them in the upscaling's patch layout (`patches_of_high_res_features`).
    """

    def forward(
        self,
        image_embeddings: torch.Tensor,
        high_res_feats_0: torch.Tensor | None = None,
        high_res_feats_1: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, ...]:
        decoder = self.decoder
        image_tokens = image_embeddings + decoder.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
        image_tokens = image_tokens.flatten(2).permute(0, 2, 1)
        image_pe = decoder.dense_pe().flatten(2).permute(0, 2, 1)
        first_block = decoder.mask_decoder.transformer.layers[0]
        token_to_image = first_block.cross_attn_token_to_image
        tokens = (
            image_tokens,
            image_pe,
            token_to_image.k_proj(image_tokens + image_pe),
            token_to_image.v_proj(image_tokens),
            first_block.cross_attn_image_to_token.q_proj(image_tokens + image_pe),
        )
        if high_res_feats_0 is None:
            return tokens
        return (*tokens, *patches_of_high_res_features(high_res_feats_1, high_res_feats_0))


class DecoderPromptSide(DecoderPart):
    """The rest of the mask decoder, per prompt, on `DecoderImageSide`'s outputs (prompts without a mask input).

    The same computation as `PromptDecoderModel` with ``has_mask_input`` 0, the two-way
    transformer written out (as in `TwoWayTransformer.forward` and
    `TwoWayAttentionBlock.forward`) so the first block can take its per-image projections.
    Inputs: the five image-side tensors and points [B,N,2] with labels [B,N] (and, for SAM 2, its
    image side's two high-resolution patch maps). Outputs as `PromptDecoderModel`: masks [B,4,256,256]
    and iou_predictions [B,4].
    """

    def forward(
        self,
        image_tokens: torch.Tensor,
        image_pe: torch.Tensor,
        token_to_image_keys: torch.Tensor,
        token_to_image_values: torch.Tensor,
        image_to_token_queries: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        high_res_patches_1: torch.Tensor | None = None,
        high_res_patches_0: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        per_image = (token_to_image_keys, token_to_image_values, image_to_token_queries)
        skips = None if high_res_patches_1 is None else (high_res_patches_1, high_res_patches_0)
        return decode_prompts(self.decoder, point_coords, point_labels, image_tokens, image_pe, skips, per_image)


class DecoderPromptSideWithMask(DecoderPart):
    """The prompt side for prompts with a mask input (a previous mask's logits, to refine it).

    The downscaled mask is added to the image embedding, so every prompt has its own image
    tokens and the first block's projections cannot be done once per image: this module does
    the whole decoder's work per prompt, in `DecoderPromptSide`'s form (channels-last image
    tokens, the attentions of `_tokens_attend_to_image` and `_image_attends_to_tokens`, the
    upscaling of `upscaled_masks`), where SAM's own graph (`PromptDecoderModel`) spends its
    time on transposes of image-sized tensors.

    Inputs: `DecoderImageSide`'s ``image_tokens`` and ``image_pe`` [1,4096,256], points [B,N,2]
    with labels [B,N], and one mask input per prompt [B,1,256,256] (and, for SAM 2, the image side's two
    high-resolution patch maps). The image side's tokens are the embedding plus the "no mask" embedding,
    channels-last: this module adds the downscaled mask minus the "no mask" embedding, which gives SAM's
    embedding plus mask without transposing the embedding per call, an image-sized Transpose that would add to
    every call (``python -m benchmarks.decoder_speed`` times this part per prompt:
    benchmarks/results/decoder_speed.json). Outputs as `PromptDecoderModel` with ``has_mask_input`` 1.
    """

    def forward(
        self,
        image_tokens: torch.Tensor,
        image_pe: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor,
        high_res_patches_1: torch.Tensor | None = None,
        high_res_patches_0: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # the last layer, a 1x1 convolution from 16 to 256 channels, runs as a per-pixel linear layer after the
        # transpose to channels-last (16 channels moved instead of 256), with the "no mask" embedding taken off
        # its bias; as a convolution followed by a broadcasting add, OpenVINO's CPU plugin failed for batches > 1
        downscale, to_embedding = self.decoder.mask_layers()
        downscaled = downscale(mask_input).flatten(2).transpose(1, 2)  # [B, 4096, 16]
        bias = to_embedding.bias - self.decoder.prompt_encoder.no_mask_embed.weight[0]
        dense_minus_no_mask = nn.functional.linear(downscaled, to_embedding.weight.flatten(1), bias)
        skips = None if high_res_patches_1 is None else (high_res_patches_1, high_res_patches_0)
        return decode_prompts(
            self.decoder, point_coords, point_labels, image_tokens + dense_minus_no_mask, image_pe, skips
        )


def decode_prompts(
    decoder: PromptDecoderModel,
    point_coords: torch.Tensor,
    point_labels: torch.Tensor,
    image_tokens: torch.Tensor,
    image_pe: torch.Tensor,
    skips: tuple[torch.Tensor, torch.Tensor] | None = None,
    per_image: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole decoder's ``forward`` (either family's) on channels-last image tokens [B or 1,4096,256]: the
    output tokens and the points through `two_way_transformer`, then one mask per mask token (`upscaled_masks`,
    with SAM 2's high-resolution ``skips``) and the IoU predictions. Returns all four masks and IoU predictions.

    ``per_image``: the first block's image-side projections (see `_two_way_block`), when its
    image tokens depend on the image alone.
    """
    mask_decoder, first_mask = decoder.mask_decoder, decoder.first_mask_token
    output_tokens = decoder.output_tokens().expand(point_coords.shape[0], -1, -1)
    tokens = torch.cat([output_tokens, decoder.embed_points(point_coords, point_labels)], dim=1)
    tokens, keys = two_way_transformer(mask_decoder.transformer, tokens, image_tokens, image_pe, per_image)
    mlps = mask_decoder.output_hypernetworks_mlps
    hyper_in = torch.stack([mlp(tokens[:, first_mask + index]) for index, mlp in enumerate(mlps)], dim=1)
    masks = upscaled_masks(decoder.upscaling(), keys, hyper_in, skips)
    return masks, mask_decoder.iou_prediction_head(tokens[:, first_mask - 1])  # the IoU token is before the masks


def two_way_transformer(
    transformer: nn.Module,
    point_embedding: torch.Tensor,
    image_tokens: torch.Tensor,
    image_pe: torch.Tensor,
    per_image: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`TwoWayTransformer.forward` (or transformers' `Sam2TwoWayTransformer`) on point embeddings [B,T,256] and
    channels-last image tokens [B or 1,4096,256]: the tokens [B,T,256] and the image tokens [B,4096,256] after it.

    ``per_image``: the first block's image-side projections (see `_two_way_block`), when its image tokens depend
    on the image alone.
    """
    first, second = transformer.layers
    queries, keys = _two_way_block(first, point_embedding, image_tokens, point_embedding, image_pe, per_image)
    queries, keys = _two_way_block(second, queries, keys, point_embedding, image_pe)
    final = transformer.final_attn_token_to_image
    attended = _tokens_attend_to_image(
        final, final.q_proj(queries + point_embedding), keys + image_pe, keys, projected=False
    )
    return _named(transformer, "norm_final_attn", "layer_norm_final_attn")(queries + attended), keys


def _two_way_block(
    block: nn.Module,
    queries: torch.Tensor,
    keys: torch.Tensor,
    query_pe: torch.Tensor,
    key_pe: torch.Tensor,
    per_image: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`TwoWayAttentionBlock.forward` (or `Sam2TwoWayAttentionBlock.forward`) on channels-last tensors, with the
    attentions of `_tokens_attend_to_tokens`, `_tokens_attend_to_image` and `_image_attends_to_tokens`.
    ``per_image``: the image-side projections (token-to-image keys and values, image-to-token queries), given for
    the first block, whose image tokens depend on the image alone."""
    norm1, norm2, norm3, norm4 = (_named(block, f"norm{index}", f"layer_norm{index}") for index in range(1, 5))
    if block.skip_first_layer_pe:
        queries = norm1(_tokens_attend_to_tokens(block.self_attn, queries, queries))
    else:
        queries = norm1(queries + _tokens_attend_to_tokens(block.self_attn, queries + query_pe, queries))
    token_to_image, image_to_token = block.cross_attn_token_to_image, block.cross_attn_image_to_token
    projected = per_image is not None
    image_keys, image_values, image_queries = per_image if projected else (keys + key_pe, keys, keys + key_pe)
    q = token_to_image.q_proj(queries + query_pe)
    attended = _tokens_attend_to_image(token_to_image, q, image_keys, image_values, projected)
    queries = norm2(queries + attended)
    queries = norm3(queries + block.mlp(queries))
    k, v = image_to_token.k_proj(queries + query_pe), image_to_token.v_proj(queries)
    keys = norm4(keys + _image_attends_to_tokens(image_to_token, image_queries, k, v, projected))
    return queries, keys


def _transposed_conv_as_linear(conv: nn.ConvTranspose2d, tokens: torch.Tensor) -> torch.Tensor:
    """A 2x2, stride-2 `ConvTranspose2d` on channels-last pixels [..., C_in] -> [..., 4, C_out].

    With kernel = stride every input pixel makes its own 2x2 output patch, so the
    convolution is one matrix product per pixel; the 4 is the patch, row-major (dy, dx).
    Kept channels-last, the pixels never need the NCHW transposes and layout reorders
    that the convolution's output costs OpenVINO.
    """
    in_channels, out_channels = conv.weight.shape[:2]
    weight = conv.weight.permute(2, 3, 1, 0).reshape(4 * out_channels, in_channels)  # [(dy dx C_out), C_in]
    patches = torch.nn.functional.linear(tokens, weight, conv.bias.repeat(4))
    return patches.reshape(*tokens.shape[:-1], 4, out_channels)


def upscaled_masks(
    upscaling: tuple[nn.Module, ...],
    keys: torch.Tensor,
    hyper_in: torch.Tensor,
    skips: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Mask logits [B, M, 256, 256] from channels-last image tokens [B, 4096, C] and M hypernetwork outputs
    [B, M, C/8], through ``upscaling``: (transposed conv, channel LayerNorm, activation, transposed conv,
    activation), each conv as per-pixel matrix products (`_transposed_conv_as_linear`).

    ``skips``: SAM 2's high-resolution features, added after each transposed conv, already in the patch
    layout of its output (`patches_of_high_res_features`): [1, 4096, 4, 64] and [1, 4096, 4, 4, 32].
    """
    first_conv, norm, first_activation, second_conv, second_activation = upscaling
    batch, side = keys.shape[0], math.isqrt(keys.shape[1])
    upscaled = _transposed_conv_as_linear(first_conv, keys)  # [B, 4096, 4 (dy1 dx1), 64]
    if skips is not None:
        upscaled = upscaled + skips[0]
    upscaled = torch.nn.functional.layer_norm(upscaled, upscaled.shape[-1:], eps=norm.eps) * norm.weight + norm.bias
    upscaled = _transposed_conv_as_linear(second_conv, first_activation(upscaled))  # [B, 4096, 4, 4 (dy2 dx2), 32]
    if skips is not None:
        upscaled = upscaled + skips[1]
    upscaled = second_activation(upscaled)
    masks = upscaled.reshape(batch, -1, upscaled.shape[-1]) @ hyper_in.transpose(1, 2)  # [B, 4096*16, M masks]
    # rows: (y1 x1 dy1 dx1 dy2 dx2); a mask pixel is (4*y1 + 2*dy1 + dy2, 4*x1 + 2*dx1 + dx2)
    masks = masks.reshape(batch, side, side, 2, 2, 2, 2, -1).permute(0, 7, 1, 3, 5, 2, 4, 6)
    return masks.reshape(batch, -1, 4 * side, 4 * side)


def patches_of_high_res_features(
    feats_1: torch.Tensor, feats_0: torch.Tensor, side: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """SAM 2's high-resolution features [1,64,128,128] and [1,32,256,256] in the patch layout of
    `upscaled_masks`: [1, side*side, 4 (dy1 dx1), 64] and [1, side*side, 4 (dy1 dx1), 4 (dy2 dx2), 32], where pixel
    (2*y1 + dy1, 2*x1 + dx1) of the first and (4*y1 + 2*dy1 + dy2, 4*x1 + 2*dx1 + dx2) of the second sit.
    Once per image, so no prompt moves these image-sized maps."""
    channels_1, channels_0 = feats_1.shape[1], feats_0.shape[1]
    # feats_1: (C, y1, dy1, x1, dx1) -> (y1, x1, dy1, dx1, C)
    patches_1 = feats_1.reshape(1, channels_1, side, 2, side, 2).permute(0, 2, 4, 3, 5, 1)
    # feats_0: (C, y1, dy1, dy2, x1, dx1, dx2) -> (y1, x1, dy1, dx1, dy2, dx2, C)
    patches_0 = feats_0.reshape(1, channels_0, side, 2, 2, side, 2, 2).permute(0, 2, 5, 3, 6, 4, 7, 1)
    return patches_1.reshape(1, side * side, 4, channels_1), patches_0.reshape(1, side * side, 4, 4, channels_0)
