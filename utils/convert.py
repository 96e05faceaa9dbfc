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

Both families' parts (`utils.model_spec.Family.parts`: SAM 1's wrappers here and in `utils.decoder_split`, SAM
2's in `utils.sam2_export`) are converted alike by `convert_part`, each traced on example inputs made from the
names its wrapper's ``forward`` takes (`example_inputs`).

Fused attention is the default (``fused_attention=True``, see
`utils.export_wrappers.sdpa_attention`); ``False`` keeps the plain
MatMul/Softmax graph in its own folder, for comparison.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import uuid
import warnings
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
    take_video_from_kit,
    video_conversion_stamp,
    video_files,
    video_ir_is_current,
)
from utils.memory import release_freed_memory
from utils.model_spec import SAM_2, VIDEO_PARTS, Family, ModelSpec, Part, family_of_model, model_spec, resolve

if TYPE_CHECKING:
    from segment_anything.modeling import Sam


@contextlib.contextmanager
def _quiet_tracing():
    """Silence torch's TracerWarnings: SAM's shape arithmetic is constant for these fixed sizes."""
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        yield


def convert_part(model, family: Family, part: Part, conversion_id: str, fused_attention: bool = True) -> ov.Model:
    """One of ``family``'s IR parts: its export wrapper built on ``model``, traced on `example_inputs` with the
    prompts' sizes dynamic (`utils.export_wrappers.DECODER_INPUT_SHAPES`: any number of prompts and of points),
    its ports named (inputs as the wrapper's ``forward`` names them), its runtime info holding the conversion id
    that ties a decoder to its parts."""
    import torch

    from utils.export_wrappers import DECODER_INPUT_SHAPES

    module = resolve(part.wrapper)(model).eval()
    example = example_inputs(model, family, module)
    shapes = [(DECODER_INPUT_SHAPES.get(name, list(tensor.shape)), ov.Type.f32) for name, tensor in example.items()]
    with torch.no_grad(), _quiet_tracing(), _attention_export(model, family, fused_attention):
        converted = ov.convert_model(_traced(module, example), example_input=example, input=shapes)
    _name_ports(converted.inputs, list(example))
    _name_ports(converted.outputs, list(part.outputs))
    converted.set_rt_info(conversion_id, CONVERSION_ID_KEY)
    return converted


def _traced(module, example: dict):
    """``module`` traced to TorchScript on ``example``, for `ov.convert_model`, without torch.jit.trace's check.

    `ov.convert_model` on a module traces it with torch's defaults, whose ``check_trace`` runs the module twice
    more to compare the traces: most of a vit_b conversion's time. The parity tests check what the check would
    (the IR against the model it came from), on every model type's parts."""
    from openvino.frontend.pytorch.ts_decoder import TorchScriptPythonDecoder

    return TorchScriptPythonDecoder(module, example_input=example, trace_kwargs={"check_trace": False})


def example_inputs(model, family: Family, module) -> dict:
    """What tracing runs ``module`` (one of ``family``'s export wrappers, built on ``model``) on, by the names its
    ``forward`` takes: a 1024x1024 image, random encoder outputs, prompts (`decoder_example_input`'s, sizes above
    one so that tracing cannot specialise on a size of one) and what another part computes from those, such as the
    image side's outputs that a prompt side takes."""
    import torch

    from utils.export_wrappers import decoder_example_input, encoder_example_input

    pool = {"image": encoder_example_input(), **decoder_example_input()}
    pool.update({name: torch.randn(*shape) for name, shape in family.encoder_outputs.items()})
    parameters = inspect.signature(module.forward).parameters
    for part in family.parts:
        if any(name in part.outputs and name not in pool for name in parameters):
            source = resolve(part.wrapper)(model).eval()
            with torch.no_grad():
                pool.update(zip(part.outputs, source(**example_inputs(model, family, source)), strict=True))
    # an optional input (SAM 2's high-resolution maps, in a part both families share) only where the family has it
    required = {name for name, parameter in parameters.items() if parameter.default is inspect.Parameter.empty}
    return {name: pool[name] for name in parameters if name in pool or name in required}


def _attention_export(model, family: Family, fused_attention: bool):
    """The context the parts are traced in: SAM 1's fused attention (`utils.export_wrappers.sdpa_attention`) or
    its plain MatMul/Softmax graph; SAM 2 exports transformers' attention as it is."""
    if fused_attention and family.fused_attention_export:
        return resolve(family.fused_attention_export)(model)
    return contextlib.nullcontext()


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
            `EdgeTamModel` (into a folder named after its model type);
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

    family = family_of_model(sam)
    conversion_id = f"{weights}/{uuid.uuid4().hex}"  # ties the decoder's parts to the whole decoder
    if not fused_attention and family.fused_attention_export is None:
        raise ValueError(f"The plain-attention export is SAM 1's; {family.name} exports its attention as it is.")
    names = [path.name for path in ir_files(output_dir)]  # .bin then .xml, in the order of the family's parts
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / STAMP_FILE).unlink(missing_ok=True)
    with (
        staged_files(output_dir, names, prefix=".converting-") as staged,
        tqdm(total=2 * len(family.parts), desc="SAM to OpenVINO", disable=not show_progress) as bar,
    ):
        for part, xml in zip(family.parts, staged[1::2], strict=True):
            bar.set_postfix_str(f"convert {part.name}")
            model = convert_part(sam, family, part, conversion_id, fused_attention)
            bar.update()
            bar.set_postfix_str(f"save {xml.name}")
            ov.save_model(model, xml, compress_to_fp16=compress_to_fp16)
            del model
            release_freed_memory()  # tracing a network leaves gigabytes freed but held; the next one reuses none
            bar.update()
    write_text_atomically(output_dir / STAMP_FILE, json.dumps(stamp, indent=2))
    return encoder_xml, decoder_xml


def ensure_sam_ir(
    model_type: str | ModelSpec = "vit_b",
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
    spec = model_spec(model_type)
    output_dir = ir_directory(spec, models_dir, fused_attention)
    weights = weights_id(spec)
    stamp = conversion_stamp(weights, compress_to_fp16, fused_attention)
    if ir_is_current(output_dir, stamp) or take_from_kit(output_dir, stamp, spec):
        return output_dir / ENCODER_XML, output_dir / DECODER_XML
    sam = load_sam(spec, Path(models_dir) / "checkpoints", show_progress=show_progress)
    return convert_sam(
        sam,
        output_dir,
        compress_to_fp16,
        weights_id=weights,
        show_progress=show_progress,
        fused_attention=fused_attention,
    )


__all__ = ["convert_sam", "ensure_sam_ir"]


def ensure_video_ir(
    model_type: str | ModelSpec,
    models_dir: str | os.PathLike = "models",
    compress_to_fp16: bool = True,
    show_progress: bool = True,
) -> Path:
    """The folder of ``model_type``'s IR for tracking (SAM 2.1 or EdgeTAM): the image IR (`ensure_sam_ir`) and
    beside it the video parts (`utils.model_spec.VIDEO_PARTS`) with their settings, converted from the video model
    (`utils.checkpoints.load_sam` with ``video=True``) unless their stamp (``video.json``) is current or the
    workshop kit has them (`utils.ir_store.take_video_from_kit`)."""
    spec = model_spec(model_type)
    if spec.family is not SAM_2:
        raise ValueError(f"{spec.model_type} does not track; SAM 2.1 and EdgeTAM do: {', '.join(SAM_2.model_types)}.")
    ensure_sam_ir(spec, models_dir, compress_to_fp16, show_progress)
    folder = ir_directory(spec, models_dir)
    stamp = video_conversion_stamp(weights_id(spec), compress_to_fp16)
    if not (video_ir_is_current(folder, stamp) or take_video_from_kit(folder, stamp, spec)):
        model = load_sam(spec, Path(models_dir) / "checkpoints", show_progress=show_progress, video=True)
        convert_video_parts(model, folder, stamp, compress_to_fp16, show_progress)
    return folder


def convert_video_parts(model, folder: Path, stamp: dict, compress_to_fp16: bool, show_progress: bool) -> None:
    """Convert ``model``'s `VIDEO_PARTS` into ``folder`` through staged files, then the settings, stamp last."""
    files = video_files(folder)
    files[-1].unlink(missing_ok=True)
    with (
        staged_files(folder, [path.name for path in files[:-1]], prefix=".converting-") as staged,
        tqdm(total=len(VIDEO_PARTS), desc="video parts to OpenVINO", disable=not show_progress) as bar,
    ):
        for part, xml in zip(VIDEO_PARTS, staged[1:-1:2], strict=True):
            bar.set_postfix_str(part.name)
            ov.save_model(convert_video_part(model, part), xml, compress_to_fp16=compress_to_fp16)
            release_freed_memory()
            bar.update()
        staged[-1].write_text(json.dumps(video_config(model), indent=1))
    write_text_atomically(files[-1], json.dumps(stamp, indent=2))


def convert_video_part(model, part: Part) -> ov.Model:
    """One of `VIDEO_PARTS`: its wrapper on ``model`` traced on the wrapper's ``example_inputs``, with their shapes
    (the memory's frames, the pointers and the prompts dynamic) and the ports named."""
    import torch

    module = resolve(part.wrapper)(model).eval()
    examples = module.example_inputs()
    names = list(inspect.signature(module.forward).parameters)
    example = {name: examples[name][0] for name in names}
    shapes = [
        (examples[name][1], ov.Type.i64 if examples[name][0].dtype == torch.int64 else ov.Type.f32) for name in names
    ]
    with torch.no_grad(), _quiet_tracing():
        converted = ov.convert_model(_traced(module, example), example_input=example, input=shapes)
    _name_ports(converted.inputs, names)
    _name_ports(converted.outputs, list(part.outputs))
    return converted


def video_config(model) -> dict:
    """What the tracker needs of ``model`` besides the video IR: its memory settings (transformers' config names)
    and the weights it applies in NumPy: the "no memory" embedding (to take it off the image IR's map), the
    "no object" pointer, and the 4x4 convolution that turns a mask prompt
    at 1024x1024 into the decoder's 256x256 mask input."""
    config = model.config
    settings = (
        "num_maskmem",
        "max_object_pointers_in_encoder",
        "max_cond_frame_num",
        "multimask_output_in_sam",
        "multimask_min_pt_num",
        "multimask_max_pt_num",
        "multimask_output_for_tracking",
        "sigmoid_scale_for_mem_enc",
        "sigmoid_bias_for_mem_enc",
    )
    decoder = config.mask_decoder_config
    return {
        "model_class": type(model).__name__,
        **{name: getattr(config, name) for name in settings},
        "dynamic_multimask_via_stability": decoder.dynamic_multimask_via_stability,
        "dynamic_multimask_stability_delta": decoder.dynamic_multimask_stability_delta,
        "dynamic_multimask_stability_thresh": decoder.dynamic_multimask_stability_thresh,
        "memory_in_bfloat16": not hasattr(model, "spatial_perceiver"),
        # EdgeTamVideoModel encodes each object's memory on its own, thresholding its mask where its own prompt
        # made it; Sam2VideoModel encodes a frame's objects together, thresholding all where any was prompted
        "memory_encoded_per_object": type(model).__name__.startswith("EdgeTam"),
        "no_memory_embedding": model.no_memory_embedding.detach().reshape(-1).tolist(),
        "no_object_pointer": model.no_object_pointer.detach().reshape(-1).tolist(),
        "mask_downsample_weight": model.mask_downsample.weight.detach().reshape(-1).tolist(),
        "mask_downsample_bias": model.mask_downsample.bias.detach().reshape(-1).tolist(),
    }
