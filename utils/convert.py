"""Convert SAM to two OpenVINO IR models: the image encoder and the prompt decoder.

SAM is split where its cost is split: the heavy ViT image encoder runs once per
image, the light prompt encoder + mask decoder runs once per prompt (or per
batch of prompts). Each half gets a small torch wrapper whose only job is to give
`ov.convert_model` a plain tensor-in, tensor-out forward:

- `ImageEncoderModel`: the encoder takes an already resized, normalised and
  padded 1x3x1024x1024 image, so the IR contains no pre-processing to get wrong.
- `PromptDecoderModel`: `segment_anything`'s `PromptEncoder.forward` takes Python
  optionals (points or None, boxes or None, masks or None), which a traced graph
  cannot express. The wrapper re-expresses them as always-present tensors: box
  corners become points with labels 2 and 3, a padding point has label -1, and
  ``has_mask_input`` blends the ``mask_input`` embedding with the "no mask" one.
  Batch and point count stay dynamic so one IR serves single prompts, many boxes
  and the automatic mask generator's grid batches.

Fused attention (the default, ``fused_attention=True``): SAM's ViT computes
attention as MatMul, Add of a decomposed relative-position bias, Softmax and
MatMul, over 4096x4096 score matrices in its four global blocks. During export
only, each `Attention` module is given an equivalent forward built on
``torch.nn.functional.scaled_dot_product_attention`` with that bias passed as
the attention mask, so the IR holds one ScaledDotProductAttention node per block
and the CPU plugin runs it as one fused kernel whatever the weights' storage
type. The PyTorch model is restored afterwards. Measured on a 2-core AVX2 CPU
at f32 (vit_b, IR with FP32 weights): 8.81 s -> 7.36 s per image; there, with
the default FP16-compressed weights, the plugin already fused the plain graph
itself and both exports timed the same. Folding the bias into q and k instead
(relative terms appended to q, one-hot key row/column to k) avoids the
4096x4096 mask but triples the q.k width, and measured 8.54 s, so the mask
form is the one kept.

`convert_sam` writes both IR files next to a stamp naming the weights and
export options, and skips all the work when the stamp already matches.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import openvino as ov
from tqdm.auto import tqdm

from utils.checkpoints import ir_directory, load_sam, weights_id
from utils.transforms import IMAGE_SIZE, LOW_RES_MASK_SIZE

if TYPE_CHECKING:
    import torch
    from segment_anything.modeling import Sam

ENCODER_XML = "image_encoder.xml"
DECODER_XML = "prompt_decoder.xml"
STAMP_FILE = "conversion.json"
PLAIN_ATTENTION_SUFFIX = "-plain-attention"
EXPORT_VERSION = 2
"""Bump when the wrappers change, so IR made by older code is rebuilt."""

EMBEDDING_SHAPE = (1, 256, 64, 64)


def _torch_wrappers():
    """Define the wrappers lazily: torch is needed to convert, never to run the IR."""
    import torch
    from torch import nn

    class ImageEncoderModel(nn.Module):
        """SAM's ViT on a pre-processed image: [1,3,1024,1024] -> embedding [1,256,64,64]."""

        def __init__(self, sam: "Sam") -> None:
            super().__init__()
            self.image_encoder = sam.image_encoder

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return self.image_encoder(image)

    class PromptDecoderModel(nn.Module):
        """Prompt encoder + mask decoder with every prompt as a tensor (see the module docstring).

        Returns all four mask logits per prompt, [B,4,256,256], and their IoU
        predictions [B,4]: index 0 is the single-mask output, 1..3 the multimask
        candidates, exactly as `MaskDecoder.forward` slices them.
        """

        def __init__(self, sam: "Sam") -> None:
            super().__init__()
            self.prompt_encoder = sam.prompt_encoder
            self.mask_decoder = sam.mask_decoder

        def _embed_points(self, point_coords: torch.Tensor, point_labels: torch.Tensor) -> torch.Tensor:
            encoder = self.prompt_encoder
            coords = (point_coords + 0.5) / IMAGE_SIZE
            embedding = encoder.pe_layer._pe_encoding(coords)
            labels = point_labels.unsqueeze(-1)
            embedding = embedding * (labels != -1) + encoder.not_a_point_embed.weight * (labels == -1)
            for label, point_embedding in enumerate(encoder.point_embeddings):
                embedding = embedding + point_embedding.weight * (labels == label)
            return embedding

        def _embed_masks(self, mask_input: torch.Tensor, has_mask_input: torch.Tensor) -> torch.Tensor:
            encoder = self.prompt_encoder
            has_mask = has_mask_input.reshape(-1, 1, 1, 1)
            no_mask = encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
            return has_mask * encoder.mask_downscaling(mask_input) + (1 - has_mask) * no_mask

        def forward(
            self,
            image_embeddings: torch.Tensor,
            point_coords: torch.Tensor,
            point_labels: torch.Tensor,
            mask_input: torch.Tensor,
            has_mask_input: torch.Tensor,
        ) -> tuple[torch.Tensor, torch.Tensor]:
            sparse = self._embed_points(point_coords, point_labels)
            dense = self._embed_masks(mask_input, has_mask_input)
            return self.mask_decoder.predict_masks(
                image_embeddings=image_embeddings,
                image_pe=self.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
            )

    return ImageEncoderModel, PromptDecoderModel


def _sdpa_attention_forward(self, x: "torch.Tensor") -> "torch.Tensor":
    """`segment_anything`'s `Attention.forward` with the attention as one SDPA call (same maths).

    Upstream adds ``rel_h[..., :, None] + rel_w[..., None, :]`` (the decomposed
    relative-position bias, computed from the unscaled q) to ``q * scale @ k^T``
    before the softmax; passing that sum as ``attn_mask`` is exactly the same.
    """
    import torch
    from segment_anything.modeling.image_encoder import get_rel_pos

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
def sdpa_attention(sam: "Sam"):
    """Within this block every ViT `Attention` of ``sam`` runs `_sdpa_attention_forward`; restored on exit."""
    import types

    from segment_anything.modeling.image_encoder import Attention

    modules = [module for module in sam.image_encoder.modules() if isinstance(module, Attention)]
    for module in modules:
        module.forward = types.MethodType(_sdpa_attention_forward, module)
    try:
        yield
    finally:
        for module in modules:
            del module.forward


@contextlib.contextmanager
def _quiet_tracing():
    """Silence torch's TracerWarnings: SAM's shape arithmetic is constant for these fixed sizes."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        yield


def _convert_encoder(sam: "Sam", fused: bool) -> ov.Model:
    import torch

    encoder_cls, _ = _torch_wrappers()
    example = torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE)
    attention = sdpa_attention(sam) if fused else contextlib.nullcontext()
    with torch.no_grad(), _quiet_tracing(), attention:
        model = ov.convert_model(encoder_cls(sam).eval(), example_input=example, input=[(1, 3, IMAGE_SIZE, IMAGE_SIZE)])
    _name_ports(model.inputs, ["image"])
    _name_ports(model.outputs, ["image_embeddings"])
    return model


def _convert_decoder(sam: "Sam") -> ov.Model:
    import torch

    _, decoder_cls = _torch_wrappers()
    batch, points = 2, 3  # >1 so tracing cannot specialise on a size of one
    example = {
        "image_embeddings": torch.randn(*EMBEDDING_SHAPE),
        "point_coords": torch.randint(0, IMAGE_SIZE, (batch, points, 2)).float(),
        "point_labels": torch.tensor([[1.0, 0.0, -1.0]] * batch),
        "mask_input": torch.randn(batch, 1, LOW_RES_MASK_SIZE, LOW_RES_MASK_SIZE),
        "has_mask_input": torch.ones(batch),
    }
    shapes = [
        list(EMBEDDING_SHAPE),
        [-1, -1, 2],
        [-1, -1],
        [-1, 1, LOW_RES_MASK_SIZE, LOW_RES_MASK_SIZE],
        [-1],
    ]
    with torch.no_grad(), _quiet_tracing():
        model = ov.convert_model(
            decoder_cls(sam).eval(), example_input=example, input=[(shape, ov.Type.f32) for shape in shapes]
        )
    _name_ports(model.inputs, list(example))
    _name_ports(model.outputs, ["masks", "iou_predictions"])
    return model


def _name_ports(ports, names: list[str]) -> None:
    """Give IR inputs/outputs stable names so callers can address them by name."""
    for port, name in zip(ports, names, strict=True):
        port.get_tensor().set_names({name})


def _state_dict_sha256(sam: "Sam") -> str:
    """Identify arbitrary weights when the caller gives no ``weights_id``."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sam.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return f"state-dict-sha256-{digest.hexdigest()}"


def _stamp(weights: str, compress_to_fp16: bool, fused_attention: bool) -> dict:
    return {
        "weights": weights,
        "compress_to_fp16": compress_to_fp16,
        "fused_attention": fused_attention,
        "export_version": EXPORT_VERSION,
        "openvino": ov.get_version(),
    }


def ir_is_current(
    output_dir: str | os.PathLike, weights: str, compress_to_fp16: bool, fused_attention: bool = True
) -> bool:
    """True when ``output_dir`` holds complete IR stamped with these weights and options."""
    output_dir = Path(output_dir)
    stamp_path = output_dir / STAMP_FILE
    files = [output_dir / name for name in (ENCODER_XML, DECODER_XML)]
    files += [path.with_suffix(".bin") for path in files]
    if not stamp_path.is_file() or not all(path.is_file() for path in files):
        return False
    try:
        return json.loads(stamp_path.read_text()) == _stamp(weights, compress_to_fp16, fused_attention)
    except json.JSONDecodeError:
        return False


def convert_sam(
    sam: "Sam",
    output_dir: str | os.PathLike,
    compress_to_fp16: bool = True,
    weights_id: str | None = None,
    show_progress: bool = True,
    fused_attention: bool = True,
) -> tuple[Path, Path]:
    """Convert ``sam`` to (encoder_xml, decoder_xml) in ``output_dir``, or reuse IR already there.

    Args:
        sam: a `segment_anything` model, e.g. from `utils.checkpoints.load_sam`.
        output_dir: folder for the IR; created if missing.
        compress_to_fp16: store weights as FP16 (half the size; computation
            precision is chosen at compile time, not here). Parity tests use False.
        weights_id: what identifies the weights in the stamp (checkpoint digest or
            random seed). Default: a sha256 over the state dict.
        show_progress: show a progress bar over the four conversion steps.
        fused_attention: export the ViT attention as ScaledDotProductAttention
            (see the module docstring); False gives the plain MatMul/Softmax graph.

    The IR is written into a temporary folder inside ``output_dir`` and moved into
    place file by file; the stamp is written last, so an interrupted conversion is
    never mistaken for a finished one.
    """
    output_dir = Path(output_dir)
    encoder_xml, decoder_xml = output_dir / ENCODER_XML, output_dir / DECODER_XML
    weights = weights_id or _state_dict_sha256(sam)
    stamp = _stamp(weights, compress_to_fp16, fused_attention)
    if ir_is_current(output_dir, weights, compress_to_fp16, fused_attention):
        return encoder_xml, decoder_xml

    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / STAMP_FILE).unlink(missing_ok=True)
    steps = [
        ("convert image encoder", lambda: _convert_encoder(sam, fused_attention), ENCODER_XML),
        ("convert prompt decoder", lambda: _convert_decoder(sam), DECODER_XML),
    ]
    with tempfile.TemporaryDirectory(dir=output_dir, prefix=".converting-") as tmp, tqdm(
        total=2 * len(steps), desc="SAM to OpenVINO", disable=not show_progress
    ) as bar:
        for description, convert, filename in steps:
            bar.set_postfix_str(description)
            model = convert()
            bar.update()
            bar.set_postfix_str(f"save {filename}")
            ov.save_model(model, Path(tmp) / filename, compress_to_fp16=compress_to_fp16)
            del model
            bar.update()
        for filename in (ENCODER_XML, DECODER_XML):
            for suffix in (".xml", ".bin"):
                os.replace(Path(tmp) / Path(filename).with_suffix(suffix), output_dir / Path(filename).with_suffix(suffix))
    write_text_atomically(output_dir / STAMP_FILE, json.dumps(stamp, indent=2))
    return encoder_xml, decoder_xml


def write_text_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text)
    os.replace(tmp, path)


def ensure_sam_ir(
    model_type: str = "vit_b",
    models_dir: str | os.PathLike = "models",
    compress_to_fp16: bool = True,
    show_progress: bool = True,
    fused_attention: bool = True,
) -> tuple[Path, Path]:
    """Return (encoder_xml, decoder_xml) for ``model_type``, downloading and converting only if needed.

    This is what a notebook calls to "make the IR it needs if it is missing": when
    the stamp in ``models/sam_<type>/`` matches the current weights (checkpoint
    digest, or the random seed), it returns at once without importing torch.
    The plain-attention export, kept for comparison, lives in its own folder
    (``sam_<type>-plain-attention``) so the two never replace each other.
    """
    output_dir = ir_directory(model_type, models_dir)
    if not fused_attention:
        output_dir = output_dir.with_name(output_dir.name + PLAIN_ATTENTION_SUFFIX)
    weights = weights_id(model_type)
    if ir_is_current(output_dir, weights, compress_to_fp16, fused_attention):
        return output_dir / ENCODER_XML, output_dir / DECODER_XML
    sam = load_sam(model_type, Path(models_dir) / "checkpoints", show_progress=show_progress)
    return convert_sam(
        sam, output_dir, compress_to_fp16, weights_id=weights, show_progress=show_progress, fused_attention=fused_attention
    )


__all__ = ["convert_sam", "ensure_sam_ir", "ir_is_current", "sdpa_attention", "ENCODER_XML", "DECODER_XML"]
