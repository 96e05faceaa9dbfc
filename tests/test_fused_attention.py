"""The fused-attention export: same maths as upstream Attention, one SDPA node per block, restored afterwards.

The parity tests use a two-block ViT with the real 1024 input, a windowed and a global
block, small enough to convert in a unit test, whose relative-position tables are drawn
with a standard deviation of 1, so a wrong or missing bias moves the output far beyond
the tolerance (random vit_b weights get small random tables from
`utils.checkpoints._randomise_rel_pos`, as a trained checkpoint has; `test_vit_b_ir_is_fused`
checks vit_b's own export).
"""

from __future__ import annotations

import types
from functools import partial

import numpy as np
import openvino as ov
import pytest
import torch

from tests.helpers import F32
from utils.accuracy import PARITY_EMBEDDING_TOLERANCE
from utils.convert import convert_part
from utils.export_wrappers import sdpa_attention
from utils.model_spec import SAM


@pytest.fixture(scope="module")
def small_sam():
    """A Sam-like object whose image_encoder is a small ViT with non-zero relative-position tables."""
    from segment_anything.modeling import ImageEncoderViT

    torch.manual_seed(0)
    encoder = ImageEncoderViT(
        embed_dim=32,
        depth=2,
        num_heads=2,
        mlp_ratio=2.0,
        out_chans=256,
        qkv_bias=True,
        norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
        use_rel_pos=True,
        window_size=14,
        global_attn_indexes=(1,),
    ).eval()
    for name, parameter in encoder.named_parameters():
        if "rel_pos" in name:
            parameter.data.normal_(0, 1)
    return types.SimpleNamespace(image_encoder=encoder)


@pytest.fixture(scope="module")
def image() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(1, 3, 1024, 1024)


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual - expected).max() / np.abs(expected).max())


def test_sdpa_forward_matches_upstream_and_is_restored(small_sam, image):
    encoder = small_sam.image_encoder
    with torch.no_grad():
        expected = encoder(image)
        with sdpa_attention(small_sam):
            fused = encoder(image)
            assert all("forward" in block.attn.__dict__ for block in encoder.blocks)
        after = encoder(image)
    assert relative_error(fused.numpy(), expected.numpy()) <= 1e-5
    assert not any("forward" in block.attn.__dict__ for block in encoder.blocks)
    assert torch.equal(after, expected)


def test_sdpa_attention_restores_on_error(small_sam, image):
    with pytest.raises(RuntimeError, match="boom"), sdpa_attention(small_sam):
        raise RuntimeError("boom")
    assert not any("forward" in block.attn.__dict__ for block in small_sam.image_encoder.blocks)


@pytest.mark.parametrize("fused, sdpa_nodes", [(True, 2), (False, 0)])
def test_encoder_ir_parity_with_and_without_fusion(small_sam, image, fused, sdpa_nodes):
    model = convert_part(small_sam, SAM, SAM.parts[0], "a test's conversion", fused)
    op_types = [op.get_type_name() for op in model.get_ordered_ops()]
    assert op_types.count("ScaledDotProductAttention") == sdpa_nodes
    with torch.no_grad():
        expected = small_sam.image_encoder(image).numpy()
    actual = ov.Core().compile_model(model, "CPU", F32)(image.numpy())[0]
    error = relative_error(actual, expected)
    print(f"fused={fused}: embedding relative error {error:.2e}")
    assert error <= PARITY_EMBEDDING_TOLERANCE


def test_vit_b_ir_is_fused(ir_f32):
    model = ov.Core().read_model(ir_f32[0])
    op_types = [op.get_type_name() for op in model.get_ordered_ops()]
    assert op_types.count("ScaledDotProductAttention") == 12  # one per ViT block
    assert "Softmax" not in op_types
