"""One owner of the IR on disk: file names, the folder of each variant, the stamps, atomic writes, the workshop kit.

Layout under ``models_dir`` (``models/`` in the notebooks):

    sam_<type>[-random-seed<N>][-plain-attention]/   (SAM 2.1 and EdgeTAM: <type>[-random-seed<N>]/, the same
                                                     files, no plain-attention export)
        image_encoder.xml/.bin  prompt_decoder.xml/.bin  conversion.json      (utils/convert.py)
        prompt_decoder_image_side.xml/.bin  prompt_decoder_prompt_side.xml/.bin (utils/convert.py)
        prompt_decoder_prompt_side_with_mask.xml/.bin                          (utils/convert.py)
        image_encoder_int8.xml/.bin  image_encoder_int8.json                   (utils/quantize.py)
        video_memory_attention.xml/.bin  video_memory_encoder.xml/.bin         (SAM 2.1 and EdgeTAM:
        video_decoder.xml/.bin  video_config.json  video.json                   utils/convert.py, ensure_video_ir)

A stamp (``conversion.json``) names the weights, the export options, a digest of the
code that defines the exported graphs (`export_code_digest`) and the OpenVINO version;
IR is *current* only when its stamp matches what would be made now, so changed weights,
a changed export wrapper or a new OpenVINO rebuild it, without anyone bumping a number. Every file is
written in a temporary folder beside its destination and moved into place, stamp
last, so an interrupted run never leaves IR that looks finished.

A workshop kit (``python -m utils.prefetch KIT --with-ir``) holds ready IR under
``KIT/ir/<folder name>``. With ``SAM_OV_MIRROR=KIT`` set, `take_from_kit` copies it
into ``models_dir`` when its stamp matches, so a light install without PyTorch runs
the notebooks without converting anything. The kit also holds the INT8 encoder
(`take_int8_from_kit`), so the light install, which has no NNCF, quantizes nothing either.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import shutil
import warnings
from functools import cache
from pathlib import Path

import openvino as ov

from utils.atomic import staged_files
from utils.download import MIRROR_ENV
from utils.model_spec import DECODER_IMAGE_SIDE_XML as DECODER_IMAGE_SIDE_XML  # the IR's file names, as before
from utils.model_spec import DECODER_PROMPT_SIDE_WITH_MASK_XML as DECODER_PROMPT_SIDE_WITH_MASK_XML
from utils.model_spec import DECODER_PROMPT_SIDE_XML as DECODER_PROMPT_SIDE_XML
from utils.model_spec import DECODER_XML as DECODER_XML
from utils.model_spec import ENCODER_XML as ENCODER_XML
from utils.model_spec import (
    SAM,
    VIDEO_PARTS,
    ModelSpec,
    missing_full_install,
    model_spec,
    random_weights_seed,
)

IR_XML_FILES = tuple(part.xml for part in SAM.parts)
"""Every family's IR files, named by its parts (`utils.model_spec.Part`; both families' are named alike): the
encoder, the whole decoder and the decoder's parts."""
DECODER_PART_XML_FILES = IR_XML_FILES[2:]
"""The decoder split for speed (`utils.decoder_split.DecoderImageSide`, `DecoderPromptSide` and
`DecoderPromptSideWithMask`, and SAM 2's in `utils.sam2_export`)."""
CONVERSION_ID_KEY = ["sam_openvino", "conversion_id"]
"""Where in an IR's runtime info the decoder and its parts keep the id of the conversion that made them."""
STAMP_FILE = "conversion.json"
INT8_ENCODER_XML = "image_encoder_int8.xml"
INT8_STAMP_FILE = "image_encoder_int8.json"
PLAIN_ATTENTION_SUFFIX = "-plain-attention"
KIT_IR_FOLDER = "ir"
EXPORT_CODE_MODULES = (
    "utils.export_wrappers",
    "utils.decoder_split",
    "utils.sam2_export",
    "utils.convert",
    "utils.model_spec",
    "utils.transforms",
    "utils.sam2_models",
)
"""The modules whose code defines the exported graphs: the wrappers, the decoder split, the conversion (input
shapes, port names), the families' parts and their outputs' names (all of `utils.model_spec` counts, its weights
tables too: editing them converts once more, which is slower but never wrong), the constants the wrappers take
from `utils.transforms`, and how SAM 2's models are built (`utils.sam2_models`: their configs, and the random
weights the tests draw). Their digest is in every stamp."""


VIDEO_EXPORT_CODE_MODULES = (*EXPORT_CODE_MODULES, "utils.sam2_video_export")
"""The modules whose code defines the video parts' graphs (`utils.model_spec.VIDEO_PARTS`): the image parts'
and the video wrappers. A change to the video wrappers makes only the video IR stale."""
VIDEO_STAMP_FILE = "video.json"
VIDEO_CONFIG_FILE = "video_config.json"
"""What the tracker reads besides the video IR (`utils.convert.video_config`): the video model's settings and the
few weights it applies in NumPy."""


class KitError(RuntimeError):
    """The workshop kit cannot provide the IR; the message names the file and the command that makes it."""


def ir_directory(
    model_type: str | ModelSpec, models_dir: str | os.PathLike = "models", fused_attention: bool = True
) -> Path:
    """Folder for a model's IR: the model type after its family's prefix (``sam_`` for SAM 1). Random-weight IR and
    the plain-attention export get their own folders, so they never replace the real, fused IR."""
    spec = model_spec(model_type)
    seed = random_weights_seed()
    name = spec.family.folder_prefix + spec.model_type + ("" if seed is None else f"-random-seed{seed}")
    return Path(models_dir) / (name + ("" if fused_attention else PLAIN_ATTENTION_SUFFIX))


def ir_files(folder: Path) -> list[Path]:
    """The files of one conversion, each .bin before .xml: the encoder, the decoder and the decoder's parts."""
    return [folder / Path(name).with_suffix(suffix) for name in IR_XML_FILES for suffix in (".bin", ".xml")]


def model_type_of_folder(folder: Path) -> str:
    """The model type an `ir_directory` folder is named after (``sam_vit_b-random-seed0`` -> ``vit_b``)."""
    name = Path(folder).name.split("-")[0]
    return name.removeprefix("sam_")


def conversion_stamp(weights: str, compress_to_fp16: bool, fused_attention: bool) -> dict:
    """What IR converted now, from these weights with these options, is stamped with."""
    return {
        "weights": weights,
        "compress_to_fp16": compress_to_fp16,
        "fused_attention": fused_attention,
        "export_code": export_code_digest(),
        "openvino": ov.get_version(),
    }


def video_conversion_stamp(weights: str, compress_to_fp16: bool) -> dict:
    """What the video parts converted now from these weights are stamped with: as `conversion_stamp`, with the
    digest of `VIDEO_EXPORT_CODE_MODULES`."""
    return {
        **conversion_stamp(weights, compress_to_fp16, fused_attention=True),
        "export_code": code_digest({name: module_source(name) for name in VIDEO_EXPORT_CODE_MODULES}),
    }


def video_files(folder: Path) -> list[Path]:
    """The video parts' files, each .bin before .xml, their settings, then their stamp (written last)."""
    parts = [folder / Path(part.xml).with_suffix(suffix) for part in VIDEO_PARTS for suffix in (".bin", ".xml")]
    return [*parts, folder / VIDEO_CONFIG_FILE, folder / VIDEO_STAMP_FILE]


def video_ir_is_current(folder: str | os.PathLike, stamp: dict) -> bool:
    """True when ``folder`` holds every video file and a video stamp equal to ``stamp``."""
    files = video_files(Path(folder))
    return all(path.is_file() for path in files) and read_stamp(files[-1]) == stamp


@cache
def export_code_digest() -> str:
    """The digest of `EXPORT_CODE_MODULES` as they are now (see `code_digest`), once per process."""
    return code_digest({name: module_source(name) for name in EXPORT_CODE_MODULES})


def module_source(name: str) -> str:
    """A module's source text, read from its file without importing it (the light install has no torch
    to import the wrappers with)."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(f"{name}, listed in EXPORT_CODE_MODULES, has no source file")
    return Path(spec.origin).read_text(encoding="utf-8")


def definition_source(module: str, name: str) -> str:
    """The source of the class or function ``name`` defined at the top of ``module``, read without importing it
    (a notebook shows an export wrapper's code in the light install, which cannot import torch)."""
    source = module_source(module)
    for node in ast.parse(source).body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == name:
            return ast.get_source_segment(source, node)
    raise NameError(f"{module} defines no class or function {name}")


def code_digest(sources: dict[str, str]) -> str:
    """sha256 over each module's name and syntax tree, docstrings left out.

    Comments, docstrings and formatting do not change it; any change to the code does,
    and makes every IR converted before it stale.
    """
    digest = hashlib.sha256()
    for name, source in sources.items():
        digest.update(name.encode())
        digest.update(_syntax_text(_without_docstrings(ast.parse(source))).encode())
    return digest.hexdigest()[:16]


def _syntax_text(node: object) -> str:
    """A syntax tree as text: each node's type and the fields that hold something, without positions.

    It reads the same on every Python the README supports, so a kit made on one Python is current on another.
    `ast.dump` does not: 3.12 added fields that stay empty here (``type_params``) and 3.13's dump leaves out
    empty fields, so its digest differed between Python 3.11 and 3.13 (the Debian 13 check in .ci/run found it).
    """
    if isinstance(node, ast.AST):
        fields = [f"{name}={_syntax_text(value)}" for name, value in ast.iter_fields(node) if value not in (None, [])]
        return f"{type(node).__name__}({', '.join(fields)})"
    if isinstance(node, list):
        return f"[{', '.join(_syntax_text(item) for item in node)}]"
    return repr(node)


def _without_docstrings(tree: ast.Module) -> ast.Module:
    """``tree`` without its docstrings: every statement that is a bare string (module, class, function and
    attribute docstrings); a body left empty gets a ``pass``."""
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            kept = [
                statement
                for statement in body
                if not (
                    isinstance(statement, ast.Expr)
                    and isinstance(statement.value, ast.Constant)
                    and isinstance(statement.value.value, str)
                )
            ]
            node.body = kept or [ast.Pass()]
    return tree


def read_stamp(path: Path) -> dict | None:
    """The stamp at ``path``, or None when it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def ir_is_current(folder: str | os.PathLike, stamp: dict) -> bool:
    """True when ``folder`` holds every IR file and a stamp equal to ``stamp``."""
    folder = Path(folder)
    return all(path.is_file() for path in ir_files(folder)) and read_stamp(folder / STAMP_FILE) == stamp


def take_from_kit(folder: Path, stamp: dict, model_type: str | ModelSpec | None = None) -> bool:
    """Copy current IR for ``folder`` from the workshop kit in ``$SAM_OV_MIRROR``; True when it did.

    False when no kit is set or it has no IR for this folder. A kit whose stamp differs
    (other weights, export or OpenVINO version; an older export may also lack files that
    a newer one makes) raises `KitError` where PyTorch is missing, and otherwise is skipped
    with a warning, so the caller converts instead. A current kit with files missing
    raises `KitError`. ``model_type``: the folder's, when the caller has it (else read from the folder's name).
    """
    return _take_from_kit(
        folder,
        _stamped_ir_files,
        stamp,
        bool(missing_full_install(model_type or model_type_of_folder(folder))),
        "Converting here needs PyTorch",
    )


def take_video_from_kit(folder: Path, stamp: dict, model_type: str | ModelSpec) -> bool:
    """`take_from_kit` for SAM 2's video parts (`video_files`, stamped ``video.json``), so that a light install
    tracks from the kit too."""
    return _take_from_kit(
        folder, video_files, stamp, bool(missing_full_install(model_type)), "Converting here needs PyTorch"
    )


def take_int8_from_kit(folder: Path, stamp: dict) -> bool:
    """`take_from_kit` for the INT8 encoder (``image_encoder_int8.*`` and its stamp): where NNCF is missing
    (the light install) a stale or incomplete kit is an error, elsewhere a stale one is skipped and the caller
    quantizes instead."""
    return _take_from_kit(folder, int8_files, stamp, missing_nncf(), "Quantizing here needs NNCF")


def missing_nncf() -> bool:
    """True where NNCF cannot be imported (the light install), found without importing it."""
    return importlib.util.find_spec("nncf") is None


def _take_from_kit(folder: Path, files_of, stamp: dict, cannot_make_here: bool, making_needs: str) -> bool:
    """Copy ``files_of(kit folder)`` (its stamp last) into ``folder`` when the kit's stamp equals ``stamp``."""
    kit = os.environ.get(MIRROR_ENV)
    if not kit:
        return False
    source = Path(kit) / KIT_IR_FOLDER / folder.name
    files = files_of(source)
    if not any(path.is_file() for path in files):
        return False
    remake = f"remake it on a machine with the full install: python -m utils.prefetch {kit} --with-ir"
    missing = [path.name for path in files if not path.is_file()]
    found = read_stamp(files[-1])
    if missing and found in (None, stamp):
        raise KitError(f"The workshop kit {source} is incomplete, it lacks {', '.join(missing)}: {remake}.")
    found = found or {}
    if found != stamp:
        differences = ", ".join(
            f"{key} {found.get(key)!r} (this install needs {value!r})"
            for key, value in stamp.items()
            if found.get(key) != value
        )
        message = f"The IR in the workshop kit {source} is stale: {differences}"
        if cannot_make_here:
            raise KitError(f"{message}. {making_needs}, which this install lacks: {remake}.")
        warnings.warn(f"{message}; making it here instead.", stacklevel=3)
        return False
    _copy_files(files, folder, prefix=".from-kit-")
    return True


def copy_ir(source: Path, target: Path, prefix: str) -> None:
    """Copy the IR files and their stamp from ``source`` to ``target`` through a staged folder, stamp last."""
    _copy_files(_stamped_ir_files(source), target, prefix)


def copy_video_ir(source: Path, target: Path, prefix: str) -> None:
    """Copy the video parts, their settings and their stamp from ``source`` to ``target`` through a staged folder,
    stamp last."""
    _copy_files(video_files(source), target, prefix)


def copy_int8_ir(source: Path, target: Path, prefix: str) -> None:
    """Copy the INT8 encoder and its stamp from ``source`` to ``target`` through a staged folder, stamp last."""
    _copy_files(int8_files(source), target, prefix)


def int8_files(folder: Path) -> list[Path]:
    """The INT8 encoder's .bin, .xml and then its stamp (`utils.quantize` writes them)."""
    xml = folder / INT8_ENCODER_XML
    return [xml.with_suffix(".bin"), xml, folder / INT8_STAMP_FILE]


def _copy_files(files: list[Path], target: Path, prefix: str) -> None:
    with staged_files(target, [path.name for path in files], prefix=prefix) as staged:
        for original, copy in zip(files, staged):
            shutil.copyfile(original, copy)


def _stamped_ir_files(folder: Path) -> list[Path]:
    """The IR files and then the stamp: IR without its stamp is never trusted, so it is written last."""
    return [*ir_files(folder), folder / STAMP_FILE]
