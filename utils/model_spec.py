"""Model types as data: one `ModelSpec` per model type, resolved once, and the family it belongs to.

A family (`SAM`: segment_anything's vit_b, vit_l, vit_h and the random-only vit_tiny; `SAM_2`: the four SAM 2.1
sizes and EdgeTAM, from transformers) says everything the code needs to handle its model types alike:

- where their weights live (`CHECKPOINTS`, `SAM2_ARCHITECTURES`) and how to fetch them, build the reference model
  from them, or build it with seeded random weights (``$SAM_RANDOM_WEIGHTS_SEED``, what tests and CI use);
- its IR parts (`Part`): the image encoder, the whole decoder and the decoder's three parts, each with its file,
  its export wrapper and the names of its outputs; the conversion (`utils.convert`) traces each wrapper on inputs
  made from the names its ``forward`` takes;
- its pre-processing, its encoder's outputs (which tell the family of an IR) and its predictor class.

Code is named by ``"module:attribute"`` references, imported when used: the wrappers and builders need torch,
which the light install lacks, and this module imports nothing of the project, so every other module can import it
without a cycle. `model_spec` resolves a model type once; the functions that take a model type
also take the `ModelSpec`, so a public call resolves its string once and hands the spec on.

A new model type of a known family is one entry in its weights table; a new family or part is one entry here.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import openvino as ov

RANDOM_WEIGHTS_ENV = "SAM_RANDOM_WEIGHTS_SEED"
"""Environment variable: an integer seed switches `utils.checkpoints.load_sam` to random weights."""


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be used (corrupt, truncated, wrong model)."""


def random_weights_seed() -> int | None:
    """Return the seed from ``$SAM_RANDOM_WEIGHTS_SEED``, or None when real weights are wanted."""
    value = os.environ.get(RANDOM_WEIGHTS_ENV, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{RANDOM_WEIGHTS_ENV} must be an integer seed, got {value!r}.") from None


# ------------------------------------------------------------------ SAM 1's weights
@dataclass(frozen=True)
class Checkpoint:
    """One official SAM checkpoint: where it lives and how to recognise it."""

    model_type: str
    url: str
    sha256: str
    size_bytes: int

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def weights_id(self) -> str:
        """What IR converted from this checkpoint is stamped with: its sha256."""
        return f"sha256-{self.sha256}"

    @property
    def description(self) -> str:
        return f"SAM {self.model_type} with the official checkpoint {self.url}"


CHECKPOINTS: dict[str, Checkpoint] = {
    "vit_b": Checkpoint(
        "vit_b",
        "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
        "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912",
        375_042_383,
    ),
    "vit_l": Checkpoint(
        "vit_l",
        "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_l_0b3195.pth",
        "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622",
        1_249_524_607,
    ),
    "vit_h": Checkpoint(
        "vit_h",
        "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth",
        "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e",
        2_564_550_879,
    ),
}

RANDOM_ONLY_ARCHITECTURES: dict[str, dict] = {
    "vit_tiny": {
        "encoder_embed_dim": 32,
        "encoder_depth": 1,
        "encoder_num_heads": 1,
        "encoder_global_attn_indexes": [0],
    },
}
"""Model types with no checkpoint, built with random weights only (``$SAM_RANDOM_WEIGHTS_SEED`` set).

``vit_tiny`` is SAM's own prompt encoder and mask decoder behind a one-block, 32-wide ViT
image encoder: the same interfaces and shapes as vit_b, so every code path (conversion,
predictor, mask generator, benchmarks) runs on it in seconds. The tests and quick trials of
the benchmarks use it; it segments nothing."""


# ------------------------------------------------------------------ SAM 2's weights
@dataclass(frozen=True)
class Sam2Architecture:
    """One SAM 2.1 size or EdgeTAM: its hub repository and the hyperparameters that differ from transformers'
    defaults (`utils.sam2_models.reference_config` builds the config from them)."""

    model_type: str
    repo_id: str
    revision: str
    source: str
    hiera: dict = field(default_factory=dict)
    backbone_channel_list: list[int] | None = None
    edgetam: bool = False
    published_parameters: float | None = None
    """Millions of parameters of the whole SAM 2.1 model, video memory included, in facebookresearch/sam2's README
    (its table of SAM 2.1 checkpoints); `Sam2Model` holds the image part, a fixed amount less for every size."""

    @property
    def weights_id(self) -> str:
        """What IR converted from these weights is stamped with: the hub repository at its revision (a new
        revision makes the IR stale)."""
        return f"hub-{self.repo_id}@{self.revision}"

    @property
    def description(self) -> str:
        return f"{self.model_type} with the official weights {self.repo_id}@{self.revision} (Hugging Face hub)"


def _hiera_sizes(hidden: int, heads: int, blocks: list[int], global_blocks: list[int], **more) -> dict:
    """A Hiera trunk's keyword arguments for `Sam2HieraDetConfig`: width and heads double at each of 4 stages."""
    return {
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "embed_dim_per_stage": [hidden * 2**stage for stage in range(4)],
        "num_attention_heads_per_stage": [heads * 2**stage for stage in range(4)],
        "blocks_per_stage": blocks,
        "global_attention_blocks": global_blocks,
        **more,
    }


SAM2_CONFIGS = "facebookresearch/sam2@2b90b9f5 sam2/configs/sam2.1"


def _sam2_1(size: str, config: str, parameters: float, **architecture) -> Sam2Architecture:
    """SAM 2.1 in one Hiera ``size``: its hub repository ``facebook/sam2.1-hiera-<size>`` and its config file."""
    model_type = "sam2.1_hiera_" + size.replace("-", "_")
    repo_id = f"facebook/sam2.1-hiera-{size}"
    source = f"{SAM2_CONFIGS}/{config}"
    return Sam2Architecture(model_type, repo_id, "main", source, **architecture, published_parameters=parameters)


_BASE_PLUS_TRUNK = _hiera_sizes(
    112, 2, [2, 3, 16, 3], [12, 16, 20], window_positional_embedding_background_size=[14, 14]
)
_LARGE_TRUNK = _hiera_sizes(144, 2, [2, 6, 36, 4], [23, 33, 43], window_size_per_stage=[8, 4, 16, 8])
SAM2_ARCHITECTURES: dict[str, Sam2Architecture] = {
    architecture.model_type: architecture
    for architecture in (
        _sam2_1("tiny", "sam2.1_hiera_t.yaml (transformers' Sam2Config defaults)", 38.9),
        _sam2_1(
            "small",
            "sam2.1_hiera_s.yaml",
            46.0,
            hiera={"blocks_per_stage": [1, 2, 11, 2], "global_attention_blocks": [7, 10, 13]},
        ),
        _sam2_1(
            "base-plus",
            "sam2.1_hiera_b+.yaml (trunk embed_dim 112, num_heads 2; Hiera's other defaults)",
            80.8,
            hiera=_BASE_PLUS_TRUNK,
            backbone_channel_list=[896, 448, 224, 112],
        ),
        _sam2_1("large", "sam2.1_hiera_l.yaml", 224.4, hiera=_LARGE_TRUNK, backbone_channel_list=[1152, 576, 288, 144]),
        Sam2Architecture(
            "edgetam",
            "yonigozlan/EdgeTAM-hf",
            "main",
            "facebookresearch/EdgeTAM sam2/configs/edgetam.yaml (RepViT-M1 trunk from timm; transformers'"
            " EdgeTamConfig defaults otherwise)",
            edgetam=True,
        ),
    )
}
"""The SAM 2 family's weights. Each architecture's hyperparameters come from the official configuration files,
named in ``source``: facebookresearch/sam2 at commit 2b90b9f5 (``sam2/configs/sam2.1/``; the files last changed in
393ae336) and facebookresearch/EdgeTAM's ``edgetam.yaml``. Only what differs from transformers' defaults
(`Sam2Config()` is the tiny Hiera) is written here. ``revision`` is "main": the hub's commit ids could not be looked
up where this was written (no network); pin each to a 40-hex commit once they can be read."""


# ------------------------------------------------------------------ IR parts and families
ENCODER_XML = "image_encoder.xml"
DECODER_XML = "prompt_decoder.xml"
DECODER_IMAGE_SIDE_XML = "prompt_decoder_image_side.xml"
DECODER_PROMPT_SIDE_XML = "prompt_decoder_prompt_side.xml"
DECODER_PROMPT_SIDE_WITH_MASK_XML = "prompt_decoder_prompt_side_with_mask.xml"
DECODER_OUTPUTS = ("masks", "iou_predictions")
"""The output names of every decoder IR and prompt side: all four mask logits and their predicted IoUs."""
IMAGE_SIDE_OUTPUTS = (
    "image_tokens",
    "image_pe",
    "token_to_image_keys",
    "token_to_image_values",
    "image_to_token_queries",
)
"""The names of SAM 1's decoder image side's outputs (`utils.decoder_split.DecoderImageSide`)."""
SAM2_IMAGE_SIDE_OUTPUTS = (*IMAGE_SIDE_OUTPUTS, "high_res_patches_1", "high_res_patches_0")
"""SAM 2's: SAM 1's, then the high-resolution features in the upscaling's patch layout."""
SAM_ENCODER_OUTPUTS = {"image_embeddings": (1, 256, 64, 64)}
"""SAM 1's image encoder IR output: 256 channels on a 64x64 grid."""
SAM2_ENCODER_OUTPUTS = {
    "image_embeddings": (1, 256, 64, 64),
    "high_res_feats_0": (1, 32, 256, 256),
    "high_res_feats_1": (1, 64, 128, 128),
}
"""SAM 2's image encoder IR outputs (`utils.sam2_export.Sam2ImageEncoderModel`), by name and shape: the decoder's
per-image inputs."""


@dataclass(frozen=True)
class Part:
    """One IR file of a family's conversion: what the progress bar calls it, its file, its export wrapper (a
    ``"module:Class"`` built on the reference model, whose ``forward``'s argument names are the IR's input names)
    and its outputs' names."""

    name: str
    xml: str
    wrapper: str
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Family:
    """What the model types of one family share. The ``"module:attribute"`` references are resolved by
    `resolve` when used."""

    name: str
    weights: dict
    """model type -> its weights (a `Checkpoint` or `Sam2Architecture`), read when asked, so a test may replace
    an entry."""
    random_only: dict
    """model type -> the architecture of a type with no weights, built with random weights only."""
    model_classes: tuple[str, ...]
    """The reference models' class names (`family_of_model` tells a model's family by them, without importing)."""
    folder_prefix: str
    """Before the model type in its IR folder's name (`utils.ir_store.ir_directory`)."""
    build_modules: tuple[str, ...]
    """What building a model in PyTorch needs (`missing_full_install`)."""
    encoder_outputs: dict[str, tuple[int, ...]]
    """The image encoder IR's outputs by name and shape (`family_of_encoder` tells an IR's family by them)."""
    preprocess: str
    """image -> the encoder's 1x3x1024x1024 input."""
    predictor: str
    fused_attention_export: str | None
    """(model) -> a context within which the encoder's attention exports as one SDPA node; None where the
    reference's own attention is exported as it is (then there is no plain-attention export)."""
    parts: tuple[Part, ...]
    load: str
    """(spec, checkpoint_dir, show_progress) -> the reference model with its real weights, in eval mode."""
    build_random: str
    """(spec, seed) -> the reference model with random weights drawn from seed, in eval mode."""
    fetch: str
    """(spec, kit_dir, show_progress) -> the weights' path in a workshop kit, downloaded first if missing."""

    @property
    def model_types(self) -> tuple[str, ...]:
        return (*self.weights, *self.random_only)


def _parts(whole: str, split: str, prefix: str, encoder_outputs: dict, image_side_outputs: tuple) -> tuple:
    """A family's five IR parts, in the order of `utils.ir_store.ir_files`: the encoder and the whole decoder from
    the module ``whole``, the decoder's three parts from ``split``, each wrapper named as SAM 1's after ``prefix``."""
    image_side, prompt_side = f"{split}:{prefix}DecoderImageSide", f"{split}:{prefix}DecoderPromptSide"
    return (
        Part("image encoder", ENCODER_XML, f"{whole}:{prefix}ImageEncoderModel", tuple(encoder_outputs)),
        Part("prompt decoder", DECODER_XML, f"{whole}:{prefix}PromptDecoderModel", DECODER_OUTPUTS),
        Part("decoder, image side", DECODER_IMAGE_SIDE_XML, image_side, image_side_outputs),
        Part("decoder, prompt side", DECODER_PROMPT_SIDE_XML, prompt_side, DECODER_OUTPUTS),
        Part("decoder, with mask", DECODER_PROMPT_SIDE_WITH_MASK_XML, prompt_side + "WithMask", DECODER_OUTPUTS),
    )


SAM = Family(
    name="SAM",
    weights=CHECKPOINTS,
    random_only=RANDOM_ONLY_ARCHITECTURES,
    model_classes=("Sam",),
    folder_prefix="sam_",
    build_modules=("torch", "segment_anything"),
    encoder_outputs=SAM_ENCODER_OUTPUTS,
    preprocess="utils.transforms:encoder_input",
    predictor="utils.predictor:OVSamPredictor",
    fused_attention_export="utils.export_wrappers:sdpa_attention",
    parts=_parts("utils.export_wrappers", "utils.decoder_split", "", SAM_ENCODER_OUTPUTS, IMAGE_SIDE_OUTPUTS),
    load="utils.checkpoints:load_checkpoint",
    build_random="utils.checkpoints:build_random_sam",
    fetch="utils.checkpoints:fetch_checkpoint",
)
"""segment_anything's SAM: its checkpoints, the one-embedding encoder, SAM's padded pre-processing."""

SAM_2 = Family(
    name="SAM 2",
    weights=SAM2_ARCHITECTURES,
    random_only={},
    model_classes=("Sam2Model", "EdgeTamModel"),
    folder_prefix="",
    build_modules=("torch", "transformers", "timm"),
    encoder_outputs=SAM2_ENCODER_OUTPUTS,
    preprocess="utils.transforms:sam2_encoder_input",
    predictor="utils.predictor:OVSam2Predictor",
    fused_attention_export=None,
    parts=_parts("utils.sam2_export", "utils.sam2_export", "Sam2", SAM2_ENCODER_OUTPUTS, SAM2_IMAGE_SIDE_OUTPUTS),
    load="utils.sam2_models:load_reference_model",
    build_random="utils.sam2_models:build_reference_model",
    fetch="utils.sam2_models:fetch_into_kit",
)
"""SAM 2.1 and EdgeTAM (transformers' `Sam2Model`, `EdgeTamModel`): hub weights, three encoder maps, a
whole-square resize (`utils.predictor.OVSam2Predictor` says what else differs)."""

VIDEO_PARTS = (
    Part(
        "memory attention",
        "video_memory_attention.xml",
        "utils.sam2_video_export:MemoryAttentionModel",
        ("conditioned_embeddings",),
    ),
    Part("memory encoder", "video_memory_encoder.xml", "utils.sam2_video_export:MemoryEncoderModel", ("memory",)),
    Part(
        "video decoder",
        "video_decoder.xml",
        "utils.sam2_video_export:VideoDecoderModel",
        (*DECODER_OUTPUTS, "object_score_logits", "object_pointers"),
    ),
)
"""What tracking adds to SAM 2's image IR (`utils.sam2_video_export`), in the same folder, converted from the
video model (`utils.checkpoints.load_sam` with ``video=True``) by `utils.convert.ensure_video_ir`."""

FAMILIES = (SAM, SAM_2)
MODEL_TYPES = tuple(model_type for family in FAMILIES for model_type in family.model_types)
"""Every model type: SAM 1's checkpoints, the random-only vit_tiny, and the SAM 2 family."""


@dataclass(frozen=True)
class ModelSpec:
    """One model type and its family (`model_spec` makes it)."""

    model_type: str
    family: Family

    @property
    def weights(self) -> Checkpoint | Sam2Architecture | None:
        """Its official weights; None for a random-only type."""
        return self.family.weights.get(self.model_type)

    def require_weights(self) -> Checkpoint | Sam2Architecture:
        """`weights`, or a ValueError for a type that has none."""
        if self.weights is None:
            raise ValueError(
                f"{self.model_type} has no checkpoint: it is built with random weights only, with {RANDOM_WEIGHTS_ENV}"
                " set."
            )
        return self.weights


def model_spec(model_type: str | ModelSpec) -> ModelSpec:
    """The spec of ``model_type`` (a spec is returned as it is), or a ValueError naming the valid types."""
    if isinstance(model_type, ModelSpec):
        return model_type
    return ModelSpec(model_type, _family_of_type(model_type))


def _family_of_type(model_type: str) -> Family:
    """The lookup of a model type's family: once per public call (``tests/test_model_spec.py`` counts them)."""
    for family in FAMILIES:
        if model_type in family.model_types:
            return family
    raise ValueError(f"Unknown SAM model type {model_type!r}; choose one of: {', '.join(MODEL_TYPES)}.")


def family_of_model(model) -> Family:
    """The family of a reference model (segment_anything's `Sam`, transformers' `Sam2Model` or `EdgeTamModel`),
    told by its class name without importing either library."""
    name = type(model).__name__
    for family in FAMILIES:
        if name in family.model_classes:
            return family
    raise TypeError(f"{name} is no model of a known family: {[f.model_classes for f in FAMILIES]}.")


def family_of_encoder(encoder: ov.Model) -> Family | None:
    """The family whose encoder outputs ``encoder`` has, by name and in order (a port may carry more names than
    one), FP or INT8; None for an IR of no family."""
    for family in FAMILIES:
        names = list(family.encoder_outputs)
        ports = encoder.outputs
        if len(ports) == len(names) and all(name in port.get_names() for port, name in zip(ports, names)):
            return family
    return None


def missing_full_install(model_type: str | ModelSpec = "vit_b") -> list[str]:
    """The modules of the full install that building ``model_type`` needs and this Python lacks, found without
    importing them."""
    modules = model_spec(model_type).family.build_modules
    return [name for name in modules if importlib.util.find_spec(name) is None]


def resolve(reference: str):
    """The attribute a ``"module:attribute"`` reference names, its module imported now."""
    module, attribute = reference.split(":")
    return getattr(importlib.import_module(module), attribute)
