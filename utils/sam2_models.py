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
SELECTIVE_ATTENTION = 8
"""How much wider than transformers' initialisation the random video model's memory attention projections are drawn
(`build_reference_model`)."""
VISIBLE_OBJECT_SCORE = 2.0
"""The random model's object score bias (`build_reference_model`): drawn at transformers' initialisation, the score
of any prompt is within 0.05 of zero, below it for EdgeTAM's seed 0, whose tracker then scored every object absent
and gave empty masks, which any tracker matches."""


def reference_config(model_type: str | ModelSpec, video: bool = False):
    """The transformers config (`Sam2Config` or `EdgeTamConfig`) of ``model_type``'s architecture; with ``video``,
    the video model's (`Sam2VideoConfig`, `EdgeTamVideoConfig`): the same image parts, and transformers' defaults
    for the memory, which every released size shares."""
    from transformers import (
        EdgeTamConfig,
        EdgeTamVideoConfig,
        Sam2Config,
        Sam2HieraDetConfig,
        Sam2VideoConfig,
        TimmWrapperConfig,
    )

    architecture = _architecture(model_type)
    if architecture.edgetam:
        # transformers' default for the trunk misspells "architecture", so the trunk is named here
        trunk = TimmWrapperConfig(
            architecture="repvit_m1", model_args={"in_chans": 3, "features_only": True, "out_indices": [0, 1, 2, 3]}
        )
        config = EdgeTamConfig(vision_config={"backbone_config": trunk})
    else:
        vision = {"backbone_config": Sam2HieraDetConfig(**architecture.hiera)}
        if architecture.backbone_channel_list:
            vision["backbone_channel_list"] = architecture.backbone_channel_list
        config = Sam2Config(vision_config=vision)
    if not video:
        return config
    video_config = EdgeTamVideoConfig if architecture.edgetam else Sam2VideoConfig
    return video_config(
        vision_config=config.vision_config.to_dict(),
        prompt_encoder_config=config.prompt_encoder_config.to_dict(),
        mask_decoder_config=config.mask_decoder_config.to_dict(),
    )


def reference_model_class(model_type: str | ModelSpec, video: bool = False):
    """transformers' class of ``model_type``: the image model, or with ``video`` the video model (its superset:
    the same image parts under the same names, plus the memory)."""
    from transformers import EdgeTamModel, EdgeTamVideoModel, Sam2Model, Sam2VideoModel

    if _architecture(model_type).edgetam:
        return EdgeTamVideoModel if video else EdgeTamModel
    return Sam2VideoModel if video else Sam2Model


def _architecture(model_type: str | ModelSpec):
    """The SAM 2 family's `Sam2Architecture` of ``model_type``; a ValueError for another family's type."""
    spec = model_spec(model_type)
    if spec.family is not SAM_2:
        raise ValueError(f"{spec.model_type} is not in the SAM 2 family: {', '.join(SAM_2.model_types)}.")
    return spec.weights


def build_reference_model(
    model_type: str | ModelSpec, seed: int, std: float = 0.02, video: bool = False
) -> "nn.Module":
    """``model_type``'s transformers model in eval mode with random weights drawn from ``seed``.

    transformers initialises the biases, the position embeddings and the "no memory" embedding to
    zero; they get random values too, as a trained checkpoint has, so that a parity test exercises
    them (an export that dropped one would agree with the reference at zero).

    With ``video``, the video model (`reference_model_class`) whose image parts are the image model's of the same
    seed, so that the image IR converted from the one serves the other; its memory parts are drawn after them,
    with the query and key projections of the memory's attention (and EdgeTAM's perceiver's) `SELECTIVE_ATTENTION`
    times wider: at transformers' initialisation that attention is nearly uniform over the tens of thousands of
    memory tokens, so a memory position encoding left out or a frame put in the wrong place changed the output by
    about 1e-6, no more than f32 rounding, and a parity test could not see it (widened: by about 3e-3).

    The decoder's object score is moved up to about `VISIBLE_OBJECT_SCORE`, so that a prompted object is seen, as
    the trained model sees it, by a margin no rounding crosses.
    """
    import torch

    spec = model_spec(model_type)
    torch.manual_seed(seed)
    model = _randomised(reference_model_class(spec)(reference_config(spec)).eval(), std)
    with torch.no_grad():
        model.mask_decoder.pred_obj_score_head.proj_out.bias.add_(VISIBLE_OBJECT_SCORE)
    if not video:
        return model
    video_model = _randomised(reference_model_class(spec, video=True)(reference_config(spec, video=True)).eval(), std)
    _widen_memory_attention(video_model)
    unexpected = video_model.load_state_dict(model.state_dict(), strict=False).unexpected_keys
    if unexpected:
        raise RuntimeError(f"{spec.model_type}'s video model lacks image weights: {', '.join(unexpected[:5])}")
    return video_model


def _widen_memory_attention(model: "nn.Module") -> None:
    """Scale the query and key projections of ``model``'s memory attention and perceiver by `SELECTIVE_ATTENTION`."""
    import torch

    memory_modules = [model.memory_attention, getattr(model, "spatial_perceiver", None)]
    with torch.no_grad():
        for module in (sub for part in memory_modules if part is not None for sub in part.modules()):
            if hasattr(module, "q_proj") and hasattr(module, "k_proj"):
                module.q_proj.weight.mul_(SELECTIVE_ATTENTION)
                module.k_proj.weight.mul_(SELECTIVE_ATTENTION)


def _randomised(model: "nn.Module", std: float) -> "nn.Module":
    """``model`` with every parameter that is all zeros drawn from a normal distribution of ``std``."""
    import torch

    with torch.no_grad():
        for parameter in model.parameters():
            if not parameter.any():
                parameter.normal_(0.0, std)
    return model


def load_reference_model(
    model_type: str | ModelSpec, checkpoint_dir: str | os.PathLike, show_progress: bool = True, video: bool = False
) -> "nn.Module":
    """``model_type``'s transformers model with the real weights, in eval mode; with ``video``, the video model
    (`reference_model_class`), read from the same hub files, which hold the memory's weights too.

    The hub files are fetched into ``checkpoint_dir`` (a `huggingface_hub` cache), or read from the
    workshop kit, without network, when ``SAM_OV_MIRROR`` is set. A missing network, a missing kit
    entry or a corrupt file raise `utils.model_spec.CheckpointError` saying what to do.
    """
    spec = model_spec(model_type)
    kit = os.environ.get(MIRROR_ENV)
    cache, offline = (Path(kit) / KIT_HUB_FOLDER, True) if kit else (Path(checkpoint_dir), False)
    folder = hub_snapshot(spec, cache, offline, show_progress)
    try:
        return reference_model_class(spec, video).from_pretrained(folder).eval()
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
