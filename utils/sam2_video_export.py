"""Export wrappers for the video parts of SAM 2.1 and EdgeTAM (transformers' `Sam2VideoModel`, `EdgeTamVideoModel`).

Tracking adds three steps to the image path of `utils.sam2_export`, each exported as an IR of its own:

- `MemoryAttentionModel` conditions the current frame's encoder map on the memory bank: self-attention over
  the frame's 64x64 tokens, then cross-attention to the memory of past frames and to their object pointers, both
  with 2-D rotary position encoding (RoPE). The number of memory frames and of pointers changes from frame to
  frame, so both are dynamic.
- `MemoryEncoderModel` turns a frame's encoder map and its predicted mask into that frame's memory: the mask
  downsampled and fused with the map, projected to 64 channels; EdgeTAM then compresses the 64x64 map to 512
  tokens with its spatial perceiver (256 global latents and a 16x16 grid of window latents), so that each memory
  frame costs an eighth of SAM 2.1's in the attention above.
- `VideoDecoderModel` is the prompt decoder of `utils.sam2_export` with what tracking reads from it besides the
  masks: the object score (is the object visible at all?) and the object pointer of every output token (the
  token's summary, kept as memory).

Everything that depends only on shapes is computed once here and stored in the IR as constants: the RoPE tables,
the sine position encodings of the encoder map and of the memory, EdgeTAM's perceiver position encoding. What
changes per frame comes in as inputs. The encoder map enters as the image IR gives it, with the "no memory"
embedding added (`Sam2ImageEncoderModel`); the parts that need the map without it subtract that constant.

transformers' session code (which frames are memory, their temporal indices, the bf16 rounding of SAM 2.1's memory,
the choice among the decoder's masks) is left to the caller, in NumPy: these modules are only the networks,
converted into the IR folder by `utils.convert.ensure_video_ir`. `tests/test_video_parts.py` compares each part
with the transformers code it replaces, on the same weights.

This module needs torch and transformers; running the IR afterwards does not.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from utils.export_wrappers import DECODER_INPUT_SHAPES, decoder_example_input
from utils.model_spec import SAM2_ENCODER_OUTPUTS
from utils.sam2_export import Sam2PromptDecoderModel

MEMORY_FRAMES_EXAMPLE = 2
"""Memory frames and object pointers in the examples the parts are traced on: above one, so that tracing cannot
specialise on a size of one."""
POINTERS_EXAMPLE = 3


def rotate_pairs(x: torch.Tensor) -> torch.Tensor:
    """RoPE's quarter turn of each pair of channels, (x0, x1) -> (-x1, x0): transformers' `rotate_pairwise`."""
    pairs = x.unflatten(-1, (-1, 2))
    return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """2-D rotary position encoding with precomputed tables (transformers' `apply_rotary_pos_emb_2d`)."""
    return x * cos + rotate_pairs(x) * sin


def memory_spatial_tokens(model: nn.Module) -> int:
    """Tokens per memory frame: the 64x64 map (SAM 2.1) or EdgeTAM's perceiver latents (256 + 256)."""
    perceiver = getattr(model, "spatial_perceiver", None)
    if perceiver is None:
        height, width = model.backbone_feature_sizes[-1]
        return height * width
    return perceiver.num_latents_1d + perceiver.num_latents_2d


class MemoryAttentionModel(nn.Module):
    """The memory attention of ``model`` (a `Sam2VideoModel` or `EdgeTamVideoModel`), its attention run as one
    scaled-dot-product node per attention (OpenVINO's ScaledDotProductAttention).

    Inputs:
        image_embeddings [1,256,64,64]: the image IR's map (with the "no memory" embedding, removed here).
        memory [F,T,64]: F memory frames of T tokens each (`memory_spatial_tokens`), as `MemoryEncoderModel` gives
            them (SAM 2.1's rounded to bfloat16 by the caller, as transformers stores them).
        memory_time_index [F]: each frame's row of the temporal encoding: the frame's distance from the current
            frame minus one, and the last row (``num_maskmem - 1``) for a prompted frame.
        object_pointers [P,256]: past frames' object pointers (`VideoDecoderModel`), each split into four tokens.
        pointer_time [P]: each pointer's distance in frames from the current one, divided by the largest distance
            allowed (``max_object_pointers_in_encoder - 1``, or the video's length less one when shorter).
    Output: conditioned_embeddings [1,256,64,64], what the decoder takes instead of the image embedding.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        attention = model.memory_attention
        channels, (height, width) = model.hidden_dim, model.backbone_feature_sizes[-1]
        query_cos, query_sin = attention.rotary_emb(torch.zeros(1), attention.position_ids)
        self.register_buffer("query_cos", query_cos, persistent=False)  # [1, 4096, 256]
        self.register_buffer("query_sin", query_sin, persistent=False)
        key_positions = getattr(attention, "position_ids_k", attention.position_ids)  # EdgeTAM's 16x16 latents
        key_cos, key_sin = attention.rotary_emb(torch.zeros(1), key_positions)
        self.register_buffer("key_cos", key_cos, persistent=False)
        self.register_buffer("key_sin", key_sin, persistent=False)
        image_pos = model.vision_encoder.neck.position_encoding((1, channels, height, width), "cpu", torch.float32)
        self.register_buffer("image_pos", image_pos.flatten(2).transpose(1, 2), persistent=False)  # [1, 4096, 256]
        self.register_buffer("memory_pos", memory_position_encoding(model), persistent=False)  # [T, 64]
        self.register_buffer("no_memory", model.no_memory_embedding.detach().reshape(1, 1, -1), persistent=False)

    def example_inputs(self) -> dict[str, tuple[torch.Tensor, list[int]]]:
        """What tracing runs this part on, each input with its shape in the IR (-1: dynamic)."""
        frames, tokens, channels = MEMORY_FRAMES_EXAMPLE, self.memory_pos.shape[0], self.model.mem_dim
        embedding = SAM2_ENCODER_OUTPUTS["image_embeddings"]
        return {
            "image_embeddings": (torch.randn(*embedding), list(embedding)),
            "memory": (torch.randn(frames, tokens, channels), [-1, tokens, channels]),
            "memory_time_index": (torch.arange(frames), [-1]),
            "object_pointers": (torch.randn(POINTERS_EXAMPLE, self.model.hidden_dim), [-1, self.model.hidden_dim]),
            "pointer_time": (torch.rand(POINTERS_EXAMPLE), [-1]),
        }

    def forward(
        self,
        image_embeddings: torch.Tensor,
        memory: torch.Tensor,
        memory_time_index: torch.Tensor,
        object_pointers: torch.Tensor,
        pointer_time: torch.Tensor,
    ) -> torch.Tensor:
        model = self.model
        tokens = image_embeddings.flatten(2).transpose(1, 2) - self.no_memory
        queries = tokens + 0.1 * self.image_pos
        keys, key_pos = self.memory_tokens(memory, memory_time_index, object_pointers, pointer_time)
        frames_tokens = memory.shape[0] * memory.shape[1]
        for layer in model.memory_attention.layers:
            normed = layer.layer_norm1(queries)
            queries = queries + self.attend(layer.self_attn, normed, normed, normed)
            normed = layer.layer_norm2(queries)
            queries = queries + self.attend(layer.cross_attn_image, normed, keys + key_pos, keys, frames_tokens)
            queries = queries + feed_forward(layer, layer.layer_norm3(queries))
        conditioned = model.memory_attention.layer_norm(queries)
        return conditioned.transpose(1, 2).reshape(image_embeddings.shape)

    def memory_tokens(
        self,
        memory: torch.Tensor,
        memory_time_index: torch.Tensor,
        object_pointers: torch.Tensor,
        pointer_time: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The cross-attention's keys before projection, [1, F*T + 4P, 64], and their position encodings: the
        memory frames with their spatial and temporal encodings, then the pointers, each 256-channel pointer as
        four 64-channel tokens sharing the sine encoding of its distance in time (`_process_object_pointers`)."""
        model = self.model
        temporal = model.memory_temporal_positional_encoding.reshape(model.num_maskmem, 1, -1)
        frame_pos = self.memory_pos.unsqueeze(0) + temporal[memory_time_index]  # [F, T, 64]
        pointer_pos = model.temporal_positional_encoding_projection_layer(sine_encoding(pointer_time, model.hidden_dim))
        splits = model.hidden_dim // model.mem_dim
        pointers = object_pointers.reshape(-1, model.mem_dim)  # [4P, 64], each pointer's four tokens in a row
        keys = torch.cat([memory.flatten(0, 1), pointers]).unsqueeze(0)
        key_pos = torch.cat([frame_pos.flatten(0, 1), pointer_pos.repeat_interleave(splits, 0)]).unsqueeze(0)
        return keys, key_pos

    def attend(
        self, attention: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, memory_tokens=None
    ) -> torch.Tensor:
        """One RoPE attention of the memory attention (one head, as every SAM 2.1 and EdgeTAM size has): self-
        attention when ``memory_tokens`` is None, else cross-attention whose first ``memory_tokens`` keys are the
        memory frames' and the rest the pointers' (left out of RoPE)."""
        query = rope(attention.q_proj(query), self.query_cos, self.query_sin)
        key, value = attention.k_proj(key), attention.v_proj(value)
        if memory_tokens is None:
            key = rope(key, self.query_cos, self.query_sin)
        else:
            key = torch.cat([self.rotate_memory_keys(key[:, :memory_tokens]), key[:, memory_tokens:]], dim=1)
        attended = F.scaled_dot_product_attention(query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1))
        return attention.o_proj(attended.squeeze(1))

    def rotate_memory_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """RoPE on each memory frame's spatial tokens: all of SAM 2.1's 4096; EdgeTAM's last 256 (the 16x16 grid
        latents), its 256 global latents left as they are."""
        frame_tokens, rotated = self.memory_pos.shape[0], self.key_cos.shape[1]
        frames = keys.reshape(-1, frame_tokens, keys.shape[-1])
        kept = frames[:, : frame_tokens - rotated]
        turned = rope(frames[:, frame_tokens - rotated :], self.key_cos, self.key_sin)
        return torch.cat([kept, turned], dim=1).reshape(keys.shape)


def feed_forward(layer: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """A memory attention layer's MLP: SAM 2.1 names its layers ``linear1``/``linear2``, EdgeTAM ``mlp``."""
    if hasattr(layer, "mlp"):
        return layer.mlp(hidden)
    return layer.linear2(layer.activation(layer.linear1(hidden)))


def sine_encoding(positions: torch.Tensor, channels: int, temperature: float = 10000.0) -> torch.Tensor:
    """The 1-D sine encoding of the pointers' normalised distances in time (transformers' `get_1d_sine_pe`)."""
    half = channels // 2
    steps = torch.arange(half, dtype=torch.float32)
    scales = temperature ** (2 * torch.div(steps, 2, rounding_mode="floor") / half)
    angles = positions.unsqueeze(-1) / scales
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def memory_position_encoding(model: nn.Module) -> torch.Tensor:
    """The spatial position encoding of one memory frame's tokens, [T, 64]: the memory encoder's sine encoding of
    the 64x64 map, or for EdgeTAM what its perceiver makes of it (zeros for the global latents, a sine encoding of
    the 16x16 grid for the window latents). It depends on shapes only."""
    height, width = model.backbone_feature_sizes[-1]
    shape = (1, model.mem_dim, height, width)
    encoding = model.memory_encoder.position_encoding(shape, "cpu", torch.float32)
    perceiver = getattr(model, "spatial_perceiver", None)
    if perceiver is None:
        return encoding.flatten(2).transpose(1, 2)[0]
    with torch.no_grad():
        _, perceived = perceiver(torch.zeros(shape), encoding)
    return perceived[0]


class MemoryEncoderModel(nn.Module):
    """A frame's memory for each tracked object, from the encoder map and each object's mask.

    Inputs:
        image_embeddings [1,256,64,64]: the image IR's map (with the "no memory" embedding, removed here).
        mask_logits [B,1,H,W]: each object's chosen mask logits, at the decoder's 256x256 or the model's 1024x1024
            (upsampled bilinearly to 1024x1024, as transformers' high-resolution masks are).
        object_score_logits [B,1]: the decoder's object scores; an object scored absent gets the occlusion
            embedding added to its memory (SAM 2.1; EdgeTAM likewise).
        binarize [1]: 1 when any object's mask came from a prompt on this frame (its mask is thresholded at 0),
            0 for tracked frames (a sigmoid), as transformers does for all objects of a frame at once.
    Output: memory [B,T,64], one frame's tokens per object (`MemoryAttentionModel`'s ``memory`` rows).
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("no_memory", model.no_memory_embedding.detach().reshape(1, -1, 1, 1), persistent=False)
        height, width = model.backbone_feature_sizes[-1]
        position = model.memory_encoder.position_encoding((1, model.mem_dim, height, width), "cpu", torch.float32)
        self.register_buffer("memory_pos", position, persistent=False)

    def example_inputs(self) -> dict[str, tuple[torch.Tensor, list[int]]]:
        """What tracing runs this part on, each input with its shape in the IR (-1: dynamic)."""
        embedding, objects, size = SAM2_ENCODER_OUTPUTS["image_embeddings"], MEMORY_FRAMES_EXAMPLE, 256
        return {
            "image_embeddings": (torch.randn(*embedding), list(embedding)),
            "mask_logits": (torch.randn(objects, 1, size, size), [-1, 1, -1, -1]),
            "object_score_logits": (torch.tensor([[1.0], [-1.0]]), [-1, 1]),
            "binarize": (torch.ones(1), [1]),
        }

    def forward(
        self,
        image_embeddings: torch.Tensor,
        mask_logits: torch.Tensor,
        object_score_logits: torch.Tensor,
        binarize: torch.Tensor,
    ) -> torch.Tensor:
        model, config = self.model, self.model.config
        # one map per object, as transformers does (OpenVINO's CPU plugin fails to broadcast the sum below)
        features = (image_embeddings - self.no_memory).expand(mask_logits.shape[0], -1, -1, -1)
        size = (model.image_size, model.image_size)
        masks = F.interpolate(mask_logits, size=size, mode="bilinear", align_corners=False)
        masks = torch.where(binarize > 0, (masks > 0).to(masks.dtype), torch.sigmoid(masks))
        masks = masks * config.sigmoid_scale_for_mem_enc + config.sigmoid_bias_for_mem_enc
        encoder = model.memory_encoder
        fused = encoder.feature_projection(features) + encoder.mask_downsampler(masks)
        memory = encoder.projection(encoder.memory_fuser(fused))
        occlusion = model.occlusion_spatial_embedding_parameter
        if occlusion is not None:
            absent = (object_score_logits <= 0).to(memory.dtype)
            memory = memory + absent[..., None, None] * occlusion[..., None, None]
        perceiver = getattr(model, "spatial_perceiver", None)
        if perceiver is None:
            return memory.flatten(2).transpose(1, 2)
        return perceive(perceiver, memory, self.memory_pos)


def perceive(perceiver: nn.Module, memory: torch.Tensor, memory_pos: torch.Tensor) -> torch.Tensor:
    """EdgeTAM's spatial perceiver on each object's memory map [B,64,64,64] -> [B,512,64]: 256 global latents that
    attend to the whole map (with its position encoding ``memory_pos`` [1,64,64,64]), then a 16x16 grid of latents,
    each attending to its 4x4 window of the map.

    transformers' `EdgeTamVideoPerceiverResampler.forward` computes the same, but reshapes its grid latents with
    ``view``, which fails for more than one object at a time; this runs its layers with ``reshape``.
    """
    batch, channels, height, width = memory.shape
    tokens = memory.flatten(2).transpose(1, 2)
    global_latents = perceiver.latents_1d.expand(batch, -1, -1)
    position = memory_pos.flatten(2).transpose(1, 2).expand(batch, -1, -1)
    for layer in perceiver.layers:
        global_latents = layer(global_latents, tokens, position)
    per_side = math.isqrt(perceiver.num_latents_2d)
    window = height // per_side
    windows = memory.reshape(batch, channels, per_side, window, per_side, window).permute(0, 2, 4, 3, 5, 1)
    windows = windows.reshape(batch * per_side * per_side, window * window, channels)
    grid_latents = perceiver.latents_2d.reshape(1, -1, channels).expand(batch, -1, -1).reshape(-1, 1, channels)
    for layer in perceiver.layers:
        grid_latents = layer(grid_latents, windows, None)
    grid_latents = grid_latents.reshape(batch, -1, channels)
    return torch.cat([perceiver.layer_norm(global_latents), perceiver.layer_norm(grid_latents)], dim=1)


class VideoDecoderModel(Sam2PromptDecoderModel):
    """`Sam2PromptDecoderModel` (its inputs, masks and IoU scores) plus what tracking keeps of a decoded frame:
    object_score_logits [B,1] (above zero: the object is visible) and object_pointers [B,4,256], the pointer of
    each output token (the tracker keeps the chosen mask's; transformers mixes in the "no object" pointer where the
    score says absent, which the caller does with the stored constant)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__(model)
        self.object_pointer_proj = model.object_pointer_proj

    def example_inputs(self) -> dict[str, tuple[torch.Tensor, list[int]]]:
        """What tracing runs this part on, each input with its shape in the IR (-1: dynamic): the image decoder's."""
        maps = {name: (torch.randn(*shape), list(shape)) for name, shape in SAM2_ENCODER_OUTPUTS.items()}
        prompts = {name: (tensor, DECODER_INPUT_SHAPES[name]) for name, tensor in decoder_example_input().items()}
        return {**maps, **prompts}

    def forward(
        self,
        image_embeddings: torch.Tensor,
        high_res_feats_0: torch.Tensor,
        high_res_feats_1: torch.Tensor,
        point_coords: torch.Tensor,
        point_labels: torch.Tensor,
        mask_input: torch.Tensor,
        has_mask_input: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        masks, scores, tokens = self.decode(
            image_embeddings, high_res_feats_0, high_res_feats_1, point_coords, point_labels, mask_input, has_mask_input
        )
        decoder = self.mask_decoder
        object_scores = decoder.pred_obj_score_head(tokens[:, 0])
        pointers = self.object_pointer_proj(tokens[:, self.first_mask_token : self.first_mask_token + 4])
        return masks, scores, object_scores, pointers
