"""SAM 2.1 (four Hiera sizes) and EdgeTAM: how to build the reference model, and how to fetch its weights.

The reference implementation is Hugging Face `transformers` (`Sam2Model`, `EdgeTamModel`): it is
pip-installable, holds both families, and its hub checkpoints are Meta's weights converted.
`build_reference_model` makes the architecture from its hyperparameters (`utils.model_spec.SAM2_ARCHITECTURES`,
where each size's weights and the sources of its numbers are) with seeded random weights (what the tests and CI
use, see `utils.model_spec.RANDOM_WEIGHTS_ENV`); `load_reference_model` downloads the real weights with
`huggingface_hub`, into its cache, with its progress bar. `utils.model_spec.SAM_2` names these functions.

A workshop kit (``SAM_OV_MIRROR``, see `utils.prefetch`) holds the hub files under
``KIT/huggingface``; with it set, nothing is fetched from the network.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from utils.download import MIRROR_ENV
from utils.model_spec import SAM2_ARCHITECTURES as SAM2_ARCHITECTURES  # the weights' table, imported from here too
from utils.model_spec import SAM2_ENCODER_OUTPUTS as SAM2_ENCODER_OUTPUTS
from utils.model_spec import (
    SAM_2,
    CheckpointError,
    ModelSpec,
    missing_full_install,
    model_spec,
)

if TYPE_CHECKING:
    from torch import nn


KIT_HUB_FOLDER = "huggingface"
"""The kit's copy of the hub cache (``KIT/huggingface``)."""
HUB_FILES = ("config.json", "model.safetensors")
"""What `load_reference_model` needs from a model's hub repository."""
SAM2_MODEL_TYPES = SAM_2.model_types


def reference_config(model_type: str | ModelSpec):
    """The transformers config (`Sam2Config` or `EdgeTamConfig`) of ``model_type``'s architecture."""
    from transformers import EdgeTamConfig, Sam2Config, Sam2HieraDetConfig, TimmWrapperConfig

    architecture = _architecture(model_type)
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


def reference_model_class(model_type: str | ModelSpec):
    from transformers import EdgeTamModel, Sam2Model

    return EdgeTamModel if _architecture(model_type).edgetam else Sam2Model


def _architecture(model_type: str | ModelSpec):
    """The SAM 2 family's `Sam2Architecture` of ``model_type``; a ValueError for another family's type."""
    spec = model_spec(model_type)
    if spec.family is not SAM_2:
        raise ValueError(f"{spec.model_type} is not in the SAM 2 family: {', '.join(SAM_2.model_types)}.")
    return spec.weights


def build_reference_model(model_type: str | ModelSpec, seed: int, std: float = 0.02) -> "nn.Module":
    """``model_type``'s transformers model in eval mode with random weights drawn from ``seed``.

    transformers initialises the biases, the position embeddings and the "no memory" embedding to
    zero; they get random values too, as a trained checkpoint has, so that a parity test exercises
    them (an export that dropped one would agree with the reference at zero).
    """
    import torch

    spec = model_spec(model_type)
    torch.manual_seed(seed)
    model = reference_model_class(spec)(reference_config(spec)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            if not parameter.any():
                parameter.normal_(0.0, std)
    return model


def load_reference_model(
    model_type: str | ModelSpec, checkpoint_dir: str | os.PathLike, show_progress: bool = True
) -> "nn.Module":
    """``model_type``'s transformers model with the real weights, in eval mode.

    The hub files are fetched into ``checkpoint_dir`` (a `huggingface_hub` cache), or read from the
    workshop kit, without network, when ``SAM_OV_MIRROR`` is set. A missing network, a missing kit
    entry or a corrupt file raise `utils.model_spec.CheckpointError` saying what to do.
    """
    spec = model_spec(model_type)
    kit = os.environ.get(MIRROR_ENV)
    cache, offline = (Path(kit) / KIT_HUB_FOLDER, True) if kit else (Path(checkpoint_dir), False)
    folder = hub_snapshot(spec, cache, offline, show_progress)
    try:
        return reference_model_class(spec).from_pretrained(folder).eval()
    except Exception as err:  # safetensors and transformers raise many types for a bad file
        remedy = (
            f"Fill the kit again on a machine with network (python -m utils.prefetch KIT --models {spec.model_type})."
            if offline
            else "Delete that folder and run again to download a fresh copy."
        )
        raise CheckpointError(
            f"{folder} could not be loaded as {spec.model_type} ({type(err).__name__}: {err}). {remedy}"
        ) from err


def fetch_into_kit(spec: ModelSpec, kit_dir: str | os.PathLike, show_progress: bool = True) -> Path:
    """The folder of ``spec``'s hub files in a workshop kit (``KIT/huggingface``), downloaded first if missing."""
    return hub_snapshot(spec, Path(kit_dir) / KIT_HUB_FOLDER, False, show_progress)


def hub_snapshot(
    model_type: str | ModelSpec,
    cache: str | os.PathLike,
    offline: bool,
    show_progress: bool = True,
    endpoint: str | None = None,
) -> Path:
    """The folder in the `huggingface_hub` cache ``cache`` with ``model_type``'s `HUB_FILES` at its pinned
    revision, downloaded first unless ``offline`` (a workshop kit: `utils.prefetch` fills ``KIT/huggingface``).

    ``endpoint`` is the hub's address; None is `huggingface_hub`'s (https://huggingface.co, or ``HF_ENDPOINT``
    for a mirror). The files arrive through `huggingface_hub`'s own ``.incomplete`` files, so an interrupted
    download leaves nothing in the snapshot and the next call resumes it.
    """
    spec = model_spec(model_type)
    if missing_full_install(spec):
        raise ModuleNotFoundError(
            f"Fetching {spec.model_type}'s weights needs the full install's huggingface_hub and transformers "
            "(pip install -r requirements.txt -c constraints.txt)."
        )
    import httpx2  # huggingface_hub's HTTP client
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    architecture = _architecture(spec)
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
            f"(python -m utils.prefetch KIT --models {spec.model_type}) and set {MIRROR_ENV}=KIT."
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
