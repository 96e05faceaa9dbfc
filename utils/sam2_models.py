"""SAM 2.1 (four Hiera sizes) and EdgeTAM: where their weights live, and how to build the reference model.

The reference implementation is Hugging Face `transformers` (`Sam2Model`, `EdgeTamModel`): it is
pip-installable, holds both families, and its hub checkpoints are Meta's weights converted.
`build_reference_model` makes the architecture from the hyperparameters below with seeded random
weights (what the tests and CI use, see `utils.checkpoints.RANDOM_WEIGHTS_ENV`); `load_reference_model`
downloads the real weights with `huggingface_hub`, into its cache, with its progress bar.

Each architecture's hyperparameters come from the official configuration files, named in
``source``: facebookresearch/sam2 at commit 2b90b9f5 (``sam2/configs/sam2.1/``; the files last
changed in 393ae336) and facebookresearch/EdgeTAM's ``edgetam.yaml``. Only what differs from
transformers' defaults (`Sam2Config()` is the tiny Hiera) is written here.

A workshop kit (``SAM_OV_MIRROR``, see `utils.prefetch`) holds the hub files under
``KIT/huggingface``; with it set, nothing is fetched from the network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from utils.download import MIRROR_ENV

if TYPE_CHECKING:
    from torch import nn

KIT_HUB_FOLDER = "huggingface"
"""The kit's copy of the hub cache (``KIT/huggingface``)."""
SAM2_ENCODER_OUTPUTS = {
    "image_embeddings": (1, 256, 64, 64),
    "high_res_feats_0": (1, 32, 256, 256),
    "high_res_feats_1": (1, 64, 128, 128),
}
"""SAM 2's image encoder IR outputs (`utils.sam2_export.Sam2ImageEncoderModel`), by name and shape: the decoder's
per-image inputs."""
HUB_FILES = ("config.json", "model.safetensors")
"""What `load_reference_model` needs from a model's hub repository."""


@dataclass(frozen=True)
class Sam2Architecture:
    """One SAM 2.1 size or EdgeTAM: its hub repository and the hyperparameters that differ from transformers'
    defaults."""

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
SAM2_ARCHITECTURES: dict[str, Sam2Architecture] = {
    "sam2.1_hiera_tiny": Sam2Architecture(
        "sam2.1_hiera_tiny",
        "facebook/sam2.1-hiera-tiny",
        "main",
        f"{SAM2_CONFIGS}/sam2.1_hiera_t.yaml (transformers' Sam2Config defaults)",
        published_parameters=38.9,
    ),
    "sam2.1_hiera_small": Sam2Architecture(
        "sam2.1_hiera_small",
        "facebook/sam2.1-hiera-small",
        "main",
        f"{SAM2_CONFIGS}/sam2.1_hiera_s.yaml",
        hiera={"blocks_per_stage": [1, 2, 11, 2], "global_attention_blocks": [7, 10, 13]},
        published_parameters=46.0,
    ),
    "sam2.1_hiera_base_plus": Sam2Architecture(
        "sam2.1_hiera_base_plus",
        "facebook/sam2.1-hiera-base-plus",
        "main",
        f"{SAM2_CONFIGS}/sam2.1_hiera_b+.yaml (trunk embed_dim 112, num_heads 2; Hiera's other defaults)",
        hiera=_hiera_sizes(112, 2, [2, 3, 16, 3], [12, 16, 20], window_positional_embedding_background_size=[14, 14]),
        backbone_channel_list=[896, 448, 224, 112],
        published_parameters=80.8,
    ),
    "sam2.1_hiera_large": Sam2Architecture(
        "sam2.1_hiera_large",
        "facebook/sam2.1-hiera-large",
        "main",
        f"{SAM2_CONFIGS}/sam2.1_hiera_l.yaml",
        hiera=_hiera_sizes(144, 2, [2, 6, 36, 4], [23, 33, 43], window_size_per_stage=[8, 4, 16, 8]),
        backbone_channel_list=[1152, 576, 288, 144],
        published_parameters=224.4,
    ),
    "edgetam": Sam2Architecture(
        "edgetam",
        "yonigozlan/EdgeTAM-hf",
        "main",
        "facebookresearch/EdgeTAM sam2/configs/edgetam.yaml (RepViT-M1 trunk from timm; transformers' EdgeTamConfig"
        " defaults otherwise)",
        edgetam=True,
    ),
}
"""The SAM 2 family. ``revision`` is "main": the hub's commit ids could not be looked up where this was written
(no network); pin each to a 40-hex commit once they can be read."""

SAM2_MODEL_TYPES = tuple(SAM2_ARCHITECTURES)


def is_sam2(model_type: str) -> bool:
    """True for the SAM 2 family (SAM 2.1 sizes and EdgeTAM): their own pre-processing, encoder outputs and decoder."""
    return model_type in SAM2_ARCHITECTURES


def reference_config(model_type: str):
    """The transformers config (`Sam2Config` or `EdgeTamConfig`) of ``model_type``'s architecture."""
    from transformers import EdgeTamConfig, Sam2Config, Sam2HieraDetConfig, TimmWrapperConfig

    architecture = SAM2_ARCHITECTURES[model_type]
    if architecture.edgetam:
        # transformers' default for the trunk misspells "architecture", so the trunk is named here
        trunk = TimmWrapperConfig(
            architecture="repvit_m1", model_args={"in_chans": 3, "features_only": True, "out_indices": [0, 1, 2, 3]}
        )
        return EdgeTamConfig(vision_config={"backbone_config": trunk})
    vision = {"backbone_config": Sam2HieraDetConfig(**architecture.hiera)}
    if architecture.backbone_channel_list:
        vision["backbone_channel_list"] = architecture.backbone_channel_list
    return Sam2Config(vision_config=vision)


def reference_model_class(model_type: str):
    from transformers import EdgeTamModel, Sam2Model

    return EdgeTamModel if SAM2_ARCHITECTURES[model_type].edgetam else Sam2Model


def build_reference_model(model_type: str, seed: int, std: float = 0.02) -> "nn.Module":
    """``model_type``'s transformers model in eval mode with random weights drawn from ``seed``.

    transformers initialises the biases, the position embeddings and the "no memory" embedding to
    zero; they get random values too, as a trained checkpoint has, so that a parity test exercises
    them (an export that dropped one would agree with the reference at zero).
    """
    import torch

    torch.manual_seed(seed)
    model = reference_model_class(model_type)(reference_config(model_type)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            if not parameter.any():
                parameter.normal_(0.0, std)
    return model


def load_reference_model(model_type: str, checkpoint_dir: str | os.PathLike, show_progress: bool = True) -> "nn.Module":
    """``model_type``'s transformers model with the real weights, in eval mode.

    The hub files are fetched into ``checkpoint_dir`` (a `huggingface_hub` cache), or read from the
    workshop kit, without network, when ``SAM_OV_MIRROR`` is set. A missing network, a missing kit
    entry or a corrupt file raise `utils.checkpoints.CheckpointError` saying what to do.
    """
    from utils.checkpoints import CheckpointError

    kit = os.environ.get(MIRROR_ENV)
    cache, offline = (Path(kit) / KIT_HUB_FOLDER, True) if kit else (Path(checkpoint_dir), False)
    folder = hub_snapshot(model_type, cache, offline, show_progress)
    try:
        return reference_model_class(model_type).from_pretrained(folder).eval()
    except Exception as err:  # safetensors and transformers raise many types for a bad file
        remedy = (
            f"Fill the kit again on a machine with network (python -m utils.prefetch KIT --models {model_type})."
            if offline
            else "Delete that folder and run again to download a fresh copy."
        )
        raise CheckpointError(
            f"{folder} could not be loaded as {model_type} ({type(err).__name__}: {err}). {remedy}"
        ) from err


def hub_snapshot(
    model_type: str, cache: str | os.PathLike, offline: bool, show_progress: bool = True, endpoint: str | None = None
) -> Path:
    """The folder in the `huggingface_hub` cache ``cache`` with ``model_type``'s `HUB_FILES` at its pinned
    revision, downloaded first unless ``offline`` (a workshop kit: `utils.prefetch` fills ``KIT/huggingface``).

    ``endpoint`` is the hub's address; None is `huggingface_hub`'s (https://huggingface.co, or ``HF_ENDPOINT``
    for a mirror). The files arrive through `huggingface_hub`'s own ``.incomplete`` files, so an interrupted
    download leaves nothing in the snapshot and the next call resumes it.
    """
    from utils.checkpoints import CheckpointError, missing_full_install

    if missing_full_install(model_type):
        raise ModuleNotFoundError(
            f"Fetching {model_type}'s weights needs the full install's huggingface_hub and transformers "
            "(pip install -r requirements.txt -c constraints.txt)."
        )
    import httpx2  # huggingface_hub's HTTP client
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    architecture = SAM2_ARCHITECTURES[model_type]
    source = f"{architecture.repo_id}@{architecture.revision}"
    if not show_progress:
        disable_progress_bars()
    try:
        paths = [
            hf_hub_download(
                architecture.repo_id,
                name,
                revision=architecture.revision,
                cache_dir=cache,
                local_files_only=offline,
                endpoint=endpoint,
            )
            for name in HUB_FILES
        ]
    except LocalEntryNotFoundError as err:
        where = f"the workshop kit's {cache}" if offline else f"{cache}, and the hub cannot be reached"
        raise CheckpointError(
            f"{source} is not in {where}. Fill a kit on a machine with network "
            f"(python -m utils.prefetch KIT --models {model_type}) and set {MIRROR_ENV}=KIT."
        ) from err
    except HfHubHTTPError as err:
        raise CheckpointError(f"The Hugging Face hub refused {source}: {err}") from err
    except (OSError, httpx2.TransportError) as err:  # the connection lost during a transfer, a full disk
        raise CheckpointError(
            f"Downloading {source} into {cache} failed ({type(err).__name__}: {err}). Run again when the network is "
            "back: huggingface_hub resumes from the part it has."
        ) from err
    finally:
        enable_progress_bars()
    return Path(paths[0]).parent
