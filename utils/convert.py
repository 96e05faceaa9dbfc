"""Convert SAM to OpenVINO IR, the image encoder and the prompt decoder (plus the decoder's parts), and cache them.

The conversion itself is two calls per model, shown by hand in notebook 01:
``ov.convert_model`` on a wrapper from `utils.export_wrappers` with an example
input (and dynamic sizes for the decoder), then ``ov.save_model``. This module
adds what a notebook should not have to repeat: a progress bar, a temporary
folder moved into place only when complete, and a stamp naming the weights and
export options, so a second call with the same weights returns at once.

Besides SAM's own two models it saves the decoder split for speed
(`utils.decoder_split.DecoderImageSide`, run once per image, `DecoderPromptSide`,
run per prompt without a mask input, and `DecoderPromptSideWithMask`, per prompt with
one), which `OVSamPredictor` uses when it finds them beside the decoder. The whole
decoder and its parts carry the same conversion id in their runtime info, so IR from
two conversions is never mixed.

Fused attention is the default (``fused_attention=True``, see
`utils.export_wrappers.sdpa_attention`); ``False`` keeps the plain
MatMul/Softmax graph in its own folder, for comparison.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
import warnings
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import openvino as ov
from tqdm.auto import tqdm

from utils.atomic import staged_files, write_text_atomically
from utils.checkpoints import load_sam, weights_id
from utils.ir_store import (
    CONVERSION_ID_KEY,
    DECODER_XML,
    ENCODER_XML,
    STAMP_FILE,
    conversion_stamp,
    ir_directory,
    ir_files,
    ir_is_current,
    take_from_kit,
)
from utils.memory import release_freed_memory

if TYPE_CHECKING:
    from segment_anything.modeling import Sam


DECODER_OUTPUTS = ("masks", "iou_predictions")
"""The output names of every decoder IR and prompt side: all four mask logits and their predicted IoUs."""


@contextlib.contextmanager
def _quiet_tracing():
    """Silence torch's TracerWarnings: SAM's shape arithmetic is constant for these fixed sizes."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        yield


def _convert_encoder(sam: "Sam", fused: bool) -> ov.Model:
    import torch

    from utils.export_wrappers import ImageEncoderModel, encoder_example_input, sdpa_attention

    example = encoder_example_input()
    attention = sdpa_attention(sam) if fused else contextlib.nullcontext()
    with torch.no_grad(), _quiet_tracing(), attention:
        model = ov.convert_model(ImageEncoderModel(sam).eval(), example_input=example, input=[tuple(example.shape)])
    _name_ports(model.inputs, ["image"])
    _name_ports(model.outputs, ["image_embeddings"])
    return model


def _convert_decoder(sam: "Sam", conversion_id: str) -> ov.Model:
    from utils.export_wrappers import DECODER_INPUT_SHAPES, PromptDecoderModel, decoder_example_input

    return _convert_decoder_graph(PromptDecoderModel(sam), decoder_example_input(), DECODER_INPUT_SHAPES, conversion_id)


def _convert_decoder_graph(
    module, example: dict, input_shapes: dict, conversion_id: str, output_names=DECODER_OUTPUTS
) -> ov.Model:
    """A decoder wrapper or part traced on ``example`` with ``input_shapes`` (-1 dynamic), its ports named (inputs
    as in ``example``), its runtime info holding the conversion id that ties a decoder to its parts."""
    import torch

    shapes = [(input_shapes[name], ov.Type.f32) for name in example]
    with torch.no_grad(), _quiet_tracing():
        model = ov.convert_model(module.eval(), example_input=example, input=shapes)
    _name_ports(model.inputs, list(example))
    _name_ports(model.outputs, list(output_names))
    model.set_rt_info(conversion_id, CONVERSION_ID_KEY)
    return model


def _convert_decoder_image_side(sam: "Sam", conversion_id: str) -> ov.Model:
    import torch

    from utils.decoder_split import IMAGE_SIDE_OUTPUTS, DecoderImageSide
    from utils.export_wrappers import EMBEDDING_SHAPE

    example = {"image_embeddings": torch.randn(*EMBEDDING_SHAPE)}
    shapes = {"image_embeddings": list(EMBEDDING_SHAPE)}
    return _convert_decoder_graph(DecoderImageSide(sam), example, shapes, conversion_id, IMAGE_SIDE_OUTPUTS)


def _convert_decoder_prompt_side(sam: "Sam", conversion_id: str, with_mask: bool) -> ov.Model:
    """`DecoderPromptSide` (prompts without a mask input) or, ``with_mask``, `DecoderPromptSideWithMask`."""

    from utils import decoder_split

    if with_mask:
        module = decoder_split.DecoderPromptSideWithMask(sam)
        example = decoder_split.prompt_side_with_mask_example_input(sam)
    else:
        module, example = decoder_split.DecoderPromptSide(sam), decoder_split.prompt_side_example_input(sam)
    return _convert_decoder_graph(module, example, decoder_split.prompt_side_input_shapes(example), conversion_id)


def _convert_sam2_encoder(model) -> ov.Model:
    import torch

    from utils.sam2_export import SAM2_ENCODER_OUTPUTS, Sam2ImageEncoderModel, sam2_encoder_example_input

    example = sam2_encoder_example_input()
    with torch.no_grad(), _quiet_tracing():
        converted = ov.convert_model(
            Sam2ImageEncoderModel(model).eval(), example_input=example, input=[tuple(example.shape)]
        )
    _name_ports(converted.inputs, ["image"])
    _name_ports(converted.outputs, list(SAM2_ENCODER_OUTPUTS))
    return converted


def _convert_sam2_decoder(model, conversion_id: str) -> ov.Model:
    from utils.sam2_export import SAM2_DECODER_INPUT_SHAPES, Sam2PromptDecoderModel, sam2_decoder_example_input

    example = sam2_decoder_example_input()
    return _convert_decoder_graph(Sam2PromptDecoderModel(model), example, SAM2_DECODER_INPUT_SHAPES, conversion_id)


def _convert_sam2_decoder_part(model, part: str, conversion_id: str) -> ov.Model:
    """One of SAM 2's decoder parts (`utils.sam2_export`), by `sam2_part_example_inputs`' name for it."""
    from utils import sam2_export
    from utils.decoder_split import prompt_side_input_shapes

    example = sam2_export.sam2_part_example_inputs(model)[part]
    if part == "image side":
        module, outputs = sam2_export.Sam2DecoderImageSide(model), sam2_export.SAM2_IMAGE_SIDE_OUTPUTS
        return _convert_decoder_graph(module, example, sam2_export.SAM2_DECODER_INPUT_SHAPES, conversion_id, outputs)
    module = (
        sam2_export.Sam2DecoderPromptSide if part == "prompt side" else sam2_export.Sam2DecoderPromptSideWithMask
    )(model)
    return _convert_decoder_graph(module, example, prompt_side_input_shapes(example), conversion_id)


def _conversion_steps(sam, conversion_id: str, fused_attention: bool) -> list[tuple[str, object]]:
    """(description, convert) per IR file, in the order of `utils.ir_store.ir_files`: SAM 1's encoder, decoder and
    decoder parts, or the SAM 2 family's encoder and decoder (a transformers model)."""
    if _is_sam2_model(sam):
        if not fused_attention:
            raise ValueError("The plain-attention export is SAM 1's; SAM 2 exports transformers' attention as it is.")
        return [
            ("convert image encoder", lambda: _convert_sam2_encoder(sam)),
            ("convert prompt decoder", lambda: _convert_sam2_decoder(sam, conversion_id)),
            *[
                (f"convert decoder, {part}", partial(_convert_sam2_decoder_part, sam, part, conversion_id))
                for part in ("image side", "prompt side", "with mask")
            ],
        ]
    return [
        ("convert image encoder", lambda: _convert_encoder(sam, fused_attention)),
        ("convert prompt decoder", lambda: _convert_decoder(sam, conversion_id)),
        ("convert decoder, image side", lambda: _convert_decoder_image_side(sam, conversion_id)),
        ("convert decoder, prompt side", lambda: _convert_decoder_prompt_side(sam, conversion_id, with_mask=False)),
        ("convert decoder, with mask", lambda: _convert_decoder_prompt_side(sam, conversion_id, with_mask=True)),
    ]


def _is_sam2_model(model) -> bool:
    """True for transformers' `Sam2Model` and `EdgeTamModel` (found without importing transformers)."""
    return type(model).__name__ in ("Sam2Model", "EdgeTamModel")


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
        sam: a `segment_anything` model, or for the SAM 2 family transformers' `Sam2Model` or
            `EdgeTamModel` (encoder and decoder only, into a folder named after its model type);
            e.g. from `utils.checkpoints.load_sam`.
        output_dir: folder for the IR; created if missing.
        compress_to_fp16: store weights as FP16 (half the size; computation
            precision is chosen at compile time, not here). Parity tests use False.
        weights_id: what identifies the weights in the stamp (checkpoint digest or
            random seed). Default: a sha256 over the state dict.
        show_progress: show a progress bar over the conversion steps.
        fused_attention: export the ViT attention as ScaledDotProductAttention
            (see the module docstring); False gives the plain MatMul/Softmax graph.

    The IR is written into a temporary folder inside ``output_dir`` and moved into
    place file by file; the stamp is written last, so an interrupted conversion is
    never mistaken for a finished one.
    """
    output_dir = Path(output_dir)
    encoder_xml, decoder_xml = output_dir / ENCODER_XML, output_dir / DECODER_XML
    weights = weights_id or _state_dict_sha256(sam)
    stamp = conversion_stamp(weights, compress_to_fp16, fused_attention)
    if ir_is_current(output_dir, stamp):
        return encoder_xml, decoder_xml

    conversion_id = f"{weights}/{uuid.uuid4().hex}"  # ties the decoder's parts to the whole decoder
    steps = _conversion_steps(sam, conversion_id, fused_attention)
    names = [path.name for path in ir_files(output_dir)]  # .bin then .xml, in the order of the steps
    if len(names) != 2 * len(steps):
        raise ValueError(
            f"{output_dir} is not named for {type(sam).__name__}'s IR: the folder's name tells which files it holds, "
            "so use utils.ir_store.ir_directory(model_type) (a SAM 2 family folder starts with its model type)."
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / STAMP_FILE).unlink(missing_ok=True)
    with (
        staged_files(output_dir, names, prefix=".converting-") as staged,
        tqdm(total=2 * len(steps), desc="SAM to OpenVINO", disable=not show_progress) as bar,
    ):
        for (description, convert), xml in zip(steps, staged[1::2]):
            bar.set_postfix_str(description)
            model = convert()
            bar.update()
            bar.set_postfix_str(f"save {xml.name}")
            ov.save_model(model, xml, compress_to_fp16=compress_to_fp16)
            del model
            release_freed_memory()  # tracing a network leaves gigabytes freed but held; the next one reuses none
            bar.update()
    write_text_atomically(output_dir / STAMP_FILE, json.dumps(stamp, indent=2))
    return encoder_xml, decoder_xml


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
    digest, or the random seed), it returns at once without importing torch. Next it
    looks in the workshop kit (``$SAM_OV_MIRROR/ir``, see `utils.ir_store.take_from_kit`);
    only then does it load SAM and convert, which needs PyTorch.
    The plain-attention export, kept for comparison, lives in its own folder
    (``sam_<type>-plain-attention``) so the two never replace each other.
    """
    output_dir = ir_directory(model_type, models_dir, fused_attention)
    weights = weights_id(model_type)
    stamp = conversion_stamp(weights, compress_to_fp16, fused_attention)
    if ir_is_current(output_dir, stamp) or take_from_kit(output_dir, stamp):
        return output_dir / ENCODER_XML, output_dir / DECODER_XML
    sam = load_sam(model_type, Path(models_dir) / "checkpoints", show_progress=show_progress)
    return convert_sam(
        sam,
        output_dir,
        compress_to_fp16,
        weights_id=weights,
        show_progress=show_progress,
        fused_attention=fused_attention,
    )


__all__ = ["convert_sam", "ensure_sam_ir"]
