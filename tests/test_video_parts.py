"""The video parts of SAM 2.1 tiny and EdgeTAM in OpenVINO IR against transformers' video models, part by part.

Each part (`utils.model_spec.VIDEO_PARTS`) is converted at f32 by `utils.convert.ensure_video_ir` and compiled at
f32, then compared with what transformers' `Sam2VideoModel` / `EdgeTamVideoModel` compute from the same inputs
with their own session code: `_encode_new_memory` for the memory, `memory_attention` fed as
`_prepare_memory_conditioned_features` feeds it (pointers through `_process_object_pointers`), and
`_single_frame_forward` for the decoder's object score and pointer. The inputs are random maps and masks on
seeded random weights; a tracked clip end to end is the video predictor's test.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
import torch
import torch.nn.functional as F

from tests.helpers import F32
from utils import convert
from utils.checkpoints import load_sam
from utils.ir_store import VIDEO_CONFIG_FILE, video_files
from utils.model_spec import VIDEO_PARTS
from utils.sam2_video_export import memory_position_encoding, memory_spatial_tokens

MODEL_TYPES = ["sam2.1_hiera_tiny", "edgetam"]
TOLERANCE = 1e-4
"""The largest difference allowed, relative to the reference's largest magnitude: f32 against f32, with the
attention fused in OpenVINO and not in PyTorch."""


@pytest.fixture(scope="module", params=MODEL_TYPES)
def video(request, sam2_models_dir):
    """(transformers' video model, {part name: compiled IR at f32}, the IR folder) on the same seeded weights."""
    folder = convert.ensure_video_ir(request.param, sam2_models_dir, compress_to_fp16=False, show_progress=False)
    core = ov.Core()
    parts = {part.name: core.compile_model(folder / part.xml, "CPU", F32) for part in VIDEO_PARTS}
    return load_sam(request.param, video=True), parts, folder


def no_memory_map(model, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A random encoder map before the "no memory" embedding [1,256,64,64], and the image IR's map (with it)."""
    raw = torch.randn(1, model.hidden_dim, 64, 64, generator=generator)
    return raw, raw + model.no_memory_embedding.detach().reshape(1, -1, 1, 1)


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-6))


def reference_memory(model, raw: torch.Tensor, low_res: torch.Tensor, scores: torch.Tensor, binarize: bool):
    """transformers' memory of one frame for each object: features [B,T,64] and their position encoding [B,T,64]."""
    high_res = F.interpolate(low_res, size=(1024, 1024), mode="bilinear", align_corners=False)
    objects = low_res.shape[0]
    rows = []
    # one object per call: EdgeTamVideoModel's perceiver fails on several at once (see utils.sam2_video_export.perceive)
    for index in range(objects):
        with torch.no_grad():
            features, position = model._encode_new_memory(
                raw.flatten(2).permute(2, 0, 1), high_res[index : index + 1], scores[index : index + 1], binarize
            )
        if features.shape[1] == 1 and features.shape[0] != 1:  # SAM 2.1's are (HW, B, C)
            features, position = features.transpose(0, 1), position.transpose(0, 1)
        rows.append((features.float(), position))
    return torch.cat([row[0] for row in rows]), torch.cat([row[1] for row in rows])


def bfloat16(values: np.ndarray) -> np.ndarray:
    return torch.from_numpy(values).to(torch.bfloat16).float().numpy()


def test_the_video_model_has_the_image_models_weights():
    """The image IR serves tracking: the video model's image parts are the image model's, weight for weight."""
    for model_type in MODEL_TYPES:
        image, video = load_sam(model_type).state_dict(), load_sam(model_type, video=True).state_dict()
        assert set(image) < set(video)
        assert all(torch.equal(image[name], video[name]) for name in image), model_type


@pytest.mark.parametrize("binarize", [True, False], ids=["prompted frame", "tracked frame"])
def test_memory_encoder_matches_transformers(video, binarize):
    model, parts, _ = video
    generator = torch.Generator().manual_seed(1)
    raw, embedding = no_memory_map(model, generator)
    low_res = torch.randn(2, 1, 256, 256, generator=generator) * 8
    scores = torch.tensor([[3.0], [-2.0]])  # the second object scored absent: the occlusion embedding is added
    expected, expected_position = reference_memory(model, raw, low_res, scores, binarize)
    inputs = [embedding.numpy(), low_res.numpy(), scores.numpy(), np.array([float(binarize)])]
    memory = parts["memory encoder"](inputs)[0]
    assert memory.shape == (2, memory_spatial_tokens(model), 64)
    tolerance = TOLERANCE
    if json.loads((video[2] / VIDEO_CONFIG_FILE).read_text())["memory_in_bfloat16"]:
        memory = bfloat16(memory)  # the tracker stores SAM 2.1's memory as transformers does
        tolerance = 2**-8  # a value next to a rounding boundary may round to the neighbouring bfloat16
    assert relative_error(memory, expected.numpy()) < tolerance
    torch.testing.assert_close(memory_position_encoding(model), expected_position[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("frames, pointers", [(1, 1), (7, 16)], ids=["first tracked frame", "full memory"])
def test_memory_attention_matches_transformers(video, frames, pointers):
    """A frame conditioned on ``frames`` memory frames (a prompted one, then tracked ones at distances 1, 2, ...)
    and ``pointers`` object pointers, as transformers assembles them."""
    model, parts, _ = video
    generator = torch.Generator().manual_seed(frames)
    raw, embedding = no_memory_map(model, generator)
    masks = torch.randn(frames, 1, 256, 256, generator=generator) * 8
    memory, position = reference_memory(model, raw, masks, torch.ones(frames, 1), binarize=False)
    distances = [0, *range(1, frames)]  # the prompted frame has distance 0: the temporal encoding's last row
    time_index = [(distance - 1) % model.num_maskmem for distance in distances]
    temporal = model.memory_temporal_positional_encoding.detach()
    object_pointers = torch.randn(pointers, model.hidden_dim, generator=generator)
    offsets = list(range(pointers))
    max_pointers = model.config.max_object_pointers_in_encoder
    with torch.no_grad():
        pointer_tokens, pointer_position = model._process_object_pointers(
            offsets, [row[None] for row in object_pointers], max_pointers, 1, model.hidden_dim, "cpu"
        )
        combined = torch.cat([*memory.unsqueeze(2), pointer_tokens])  # (tokens, 1, 64), seq first
        combined_position = torch.cat(
            [*(position[index : index + 1].transpose(0, 1) + temporal[time_index[index]] for index in range(frames))]
            + [pointer_position]
        )
        spatial = {"num_spatial_memory_tokens": frames} if hasattr(model, "spatial_perceiver") else {}
        expected = model.memory_attention(
            current_vision_features=raw.flatten(2).permute(2, 0, 1),
            current_vision_position_embeddings=model.vision_encoder.neck.position_encoding(
                raw.shape, "cpu", torch.float32
            )
            .flatten(2)
            .permute(2, 0, 1),
            memory=combined.reshape(-1, 1, model.mem_dim),
            memory_posision_embeddings=combined_position.reshape(-1, 1, model.mem_dim),
            num_object_pointer_tokens=pointer_tokens.shape[0],
            **spatial,
        )
    expected = expected.squeeze(1).transpose(1, 2).reshape(raw.shape).numpy()
    pointer_time = np.array(offsets, dtype=np.float32) / (max_pointers - 1)
    inputs = [embedding.numpy(), memory.numpy(), np.array(time_index), object_pointers.numpy(), pointer_time]
    conditioned = parts["memory attention"](inputs)[0]
    assert relative_error(conditioned, expected) < TOLERANCE


def test_video_decoder_gives_transformers_object_score_and_pointer(video):
    """One click: the mask, the object score and the pointer that transformers keeps for the best of the three
    multimask outputs, the "no object" pointer mixed in (from the stored settings) where the score says absent."""
    model, parts, folder = video
    generator = torch.Generator().manual_seed(2)
    _, embedding = no_memory_map(model, generator)
    feats_0 = torch.randn(1, 32, 256, 256, generator=generator)
    feats_1 = torch.randn(1, 64, 128, 128, generator=generator)
    points, labels = torch.tensor([[[300.0, 400.0], [0.0, 0.0]]]), torch.tensor([[1.0, -1.0]])
    with torch.no_grad():
        expected = model._single_frame_forward(
            input_points=points[:, None, :1],
            input_labels=labels[:, None, :1].int(),
            image_embeddings=[feats_0, feats_1, embedding],
            multimask_output=True,
        )
    inputs = [embedding, feats_0, feats_1, points, labels, torch.zeros(1, 1, 256, 256), torch.zeros(1)]
    masks, scores, object_scores, pointers = parts["video decoder"]([tensor.numpy() for tensor in inputs]).values()
    best = 1 + int(np.argmax(scores[0, 1:]))
    np.testing.assert_allclose(object_scores, expected.object_score_logits.numpy().reshape(1, 1), rtol=1e-4, atol=1e-4)
    appearing = float(object_scores[0, 0] > 0)
    no_object = np.array(json.loads((folder / VIDEO_CONFIG_FILE).read_text())["no_object_pointer"])
    pointer = appearing * pointers[0, best] + (1 - appearing) * no_object
    assert relative_error(pointer, expected.object_pointer[0].numpy()) < TOLERANCE
    # an absent object's mask is replaced by transformers' placeholder score (-1024), which the tracker sets
    expected_mask = expected.pred_masks[0, 0].numpy()
    assert (
        relative_error(masks[0, best] if appearing else np.full_like(expected_mask, -1024.0), expected_mask) < TOLERANCE
    )


def test_video_ir_is_reused_and_remade_when_its_stamp_changes(video, monkeypatch):
    """A second call converts nothing; a stamp from other wrapper code (or weights) converts the parts again."""
    model, _, folder = video
    model_type = "edgetam" if hasattr(model, "spatial_perceiver") else "sam2.1_hiera_tiny"
    models_dir = folder.parent
    converted = []
    monkeypatch.setattr(convert, "convert_video_parts", lambda *args: converted.append(args))
    assert convert.ensure_video_ir(model_type, models_dir, compress_to_fp16=False, show_progress=False) == folder
    assert converted == []
    stamp = video_files(folder)[-1]
    original = stamp.read_text()
    try:
        stamp.write_text(json.dumps({**json.loads(original), "export_code": "older wrappers"}))
        convert.ensure_video_ir(model_type, models_dir, compress_to_fp16=False, show_progress=False)
        assert len(converted) == 1
    finally:
        stamp.write_text(original)
    with pytest.raises(ValueError, match="does not track"):
        convert.ensure_video_ir("vit_tiny", models_dir)


def test_sam1_has_no_video_model():
    with pytest.raises(ValueError, match="no video model"):
        load_sam("vit_tiny", video=True)


def test_every_video_file_is_written(video):
    _, _, folder = video
    assert all(path.is_file() for path in video_files(Path(folder)))


def test_work_per_frame_counts_the_memory_attention_by_hand():
    """`benchmarks.video.work_per_frame`: SAM 2.1's memory attention counted by torch is the sum worked out here,
    per layer, with the attention's two products over all memory tokens (seven frames of 4096, sixteen pointers of
    four tokens): about 300 GMAC per object, nearly all of it the cross-attention's products."""
    from benchmarks.video import work_per_frame

    model = load_sam("sam2.1_hiera_tiny", video=True)
    config = model.config
    queries, channels, memory_channels = (
        64 * 64,
        config.memory_attention_hidden_size,
        config.memory_encoder_output_channels,
    )
    keys = config.num_maskmem * queries + config.max_object_pointers_in_encoder * channels // memory_channels
    self_attention = 4 * queries * channels * channels + 2 * queries * queries * channels
    cross_attention = 2 * queries * channels * channels + 2 * keys * memory_channels * channels
    cross_attention += 2 * queries * keys * channels
    feed_forward = 2 * queries * channels * config.memory_attention_feed_forward_hidden_size
    per_object = config.memory_attention_num_layers * (self_attention + cross_attention + feed_forward) / 1e9
    pointer_encoding = config.max_object_pointers_in_encoder * channels * memory_channels / 1e9
    work = work_per_frame(model, objects=2)
    assert work["memory attention"] == pytest.approx(2 * (per_object + pointer_encoding), rel=1e-3)
    assert work["frame"] == pytest.approx(sum(value for part, value in work.items() if part != "frame"))
