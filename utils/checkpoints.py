"""`load_sam`: any model type's reference model in PyTorch, with its official weights or seeded random weights.

Where the weights live is `utils.model_spec`'s (`CHECKPOINTS` for SAM 1, `SAM2_ARCHITECTURES` for the SAM 2
family); this module builds SAM 1 from its checkpoint, and the SAM 2 family's builders are in `utils.sam2_models`.

Setting the environment variable ``SAM_RANDOM_WEIGHTS_SEED`` to an integer makes `load_sam` skip the download and
build the same architecture with random weights seeded by that integer. The graph, shapes and timings are those of
the real model; the masks are meaningless. Tests and CI use it because they cannot reach the checkpoint server; a
loud warning is printed every time it is active.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from utils.download import download_file

# the registry and the switch live in utils.model_spec; these names are imported from here too
from utils.model_spec import CHECKPOINTS as CHECKPOINTS
from utils.model_spec import MODEL_TYPES as MODEL_TYPES
from utils.model_spec import RANDOM_ONLY_ARCHITECTURES as RANDOM_ONLY_ARCHITECTURES
from utils.model_spec import (
    RANDOM_WEIGHTS_ENV,
    SAM_2,
    CheckpointError,
    ModelSpec,
    missing_full_install,
    model_spec,
    random_weights_seed,
    resolve,
)
from utils.model_spec import Checkpoint as Checkpoint

if TYPE_CHECKING:  # torch is only needed when a model is really built
    from segment_anything.modeling import Sam


DEFAULT_CHECKPOINT_DIR = Path("models") / "checkpoints"


def get_checkpoint(model_type: str | ModelSpec) -> Checkpoint:
    """Return the registry entry for ``model_type`` or raise listing the valid ones."""
    spec = model_spec(model_type)
    if spec.family.weights is not CHECKPOINTS:
        raise ValueError(
            f"{spec.model_type} is on the Hugging Face hub, not a checkpoint file: see "
            "utils.model_spec.SAM2_ARCHITECTURES."
        )
    return spec.require_weights()


def weights_id(model_type: str | ModelSpec) -> str:
    """Name the weights `load_sam` would use now: the checkpoint's sha256, the hub revision, or the random seed.

    Converted IR is stamped with this so it is rebuilt when the weights change,
    without loading the checkpoint first.
    """
    spec = model_spec(model_type)
    seed = random_weights_seed()
    if seed is not None:
        return f"{spec.model_type}:random-seed-{seed}"
    return f"{spec.model_type}:{spec.require_weights().weights_id}"


def describe_weights(model_type: str | ModelSpec) -> str:
    """One line for a notebook to print: the weights in use, or a loud random-weights warning."""
    spec = model_spec(model_type)
    seed = random_weights_seed()
    if seed is not None:
        return (
            f"WARNING: {RANDOM_WEIGHTS_ENV}={seed} is set, so SAM {spec.model_type} has RANDOM weights: "
            "every mask and score below is MEANINGLESS (only shapes and timings are real)."
        )
    return spec.require_weights().description


def _randomise_rel_pos(sam: "Sam", std: float = 0.02) -> "Sam":
    """Give the ViT's relative-position tables random values, as a trained checkpoint has.

    `segment_anything` zero-initialises them. Left at zero, the relative-position
    bias is zero, so parity tests would not exercise it, and the exported graph
    would hold all-zero constants that graph optimisations may treat specially,
    which a real checkpoint never has. Drawn after the seeded model build, so
    the result is still fixed by the seed.
    """
    import torch

    with torch.no_grad():
        for name, parameter in sam.image_encoder.named_parameters():
            if "rel_pos" in name:
                parameter.normal_(0.0, std)
    return sam


def _require_full_install(spec: ModelSpec) -> None:
    """One clear sentence where the light install (no PyTorch) reaches a step that needs it."""
    missing = missing_full_install(spec)
    if missing:
        raise ModuleNotFoundError(
            f"This step builds SAM in PyTorch, and this Python has no {' or '.join(missing)}: it is the light install. "
            "Install the full one (pip install -r requirements.txt -c constraints.txt), or, for notebooks 02 to 06, "
            "08 and 09, point SAM_OV_MIRROR at a workshop kit with ready IR (python -m utils.prefetch KIT --with-ir)."
        )


def load_sam(
    model_type: str | ModelSpec = "vit_b",
    checkpoint_dir: str | os.PathLike = DEFAULT_CHECKPOINT_DIR,
    show_progress: bool = True,
    video: bool = False,
) -> "Sam":
    """Build a SAM model in eval mode: the official weights, or random weights when switched on.

    SAM 1's checkpoint is downloaded (or taken from the workshop mirror) into ``checkpoint_dir`` and checked by
    sha256 (`load_checkpoint`). For the SAM 2 family it is transformers' `Sam2Model` or `EdgeTamModel`, its weights
    from the Hugging Face hub (`utils.sam2_models.load_reference_model`). With ``$SAM_RANDOM_WEIGHTS_SEED`` set,
    nothing is downloaded and a warning says the masks will be meaningless.

    ``video=True`` gives the SAM 2 family's video model instead (`Sam2VideoModel`, `EdgeTamVideoModel`): the
    reference for tracking, with the same weights as the image model (`utils.sam2_models.build_reference_model`).
    """
    spec = model_spec(model_type)
    if video and spec.family is not SAM_2:
        raise ValueError(
            f"{spec.model_type} has no video model; SAM 2.1 and EdgeTAM track: {', '.join(SAM_2.model_types)}."
        )
    options = {"video": True} if video else {}
    seed = random_weights_seed()
    if seed is None:
        spec.require_weights()
    _require_full_install(spec)
    if seed is not None:
        _warn_random_weights(spec.model_type, seed)
        return resolve(spec.family.build_random)(spec, seed, **options)
    return resolve(spec.family.load)(spec, checkpoint_dir, show_progress, **options)


def build_random_sam(spec: ModelSpec, seed: int) -> "Sam":
    """SAM 1's ``spec`` with random weights drawn from ``seed`` (relative positions included), in eval mode."""
    import torch
    from segment_anything import sam_model_registry
    from segment_anything.build_sam import _build_sam

    torch.manual_seed(seed)
    architecture = spec.family.random_only.get(spec.model_type)
    sam = _build_sam(**architecture) if architecture else sam_model_registry[spec.model_type](checkpoint=None)
    return _randomise_rel_pos(sam).eval()


def fetch_checkpoint(spec: ModelSpec, folder: str | os.PathLike, show_progress: bool = True) -> Path:
    """SAM 1's checkpoint in ``folder`` (or the workshop mirror), downloaded first if missing, checked by sha256."""
    checkpoint = spec.require_weights()
    return download_file(checkpoint.url, folder, sha256=checkpoint.sha256, show_progress=show_progress)


def load_checkpoint(spec: ModelSpec, checkpoint_dir: str | os.PathLike, show_progress: bool = True) -> "Sam":
    """SAM 1's ``spec`` with its official checkpoint (`fetch_checkpoint`), in eval mode."""
    import torch
    from segment_anything import sam_model_registry

    path = fetch_checkpoint(spec, checkpoint_dir, show_progress)
    sam = sam_model_registry[spec.model_type](checkpoint=None)
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
        sam.load_state_dict(state_dict)
    except Exception as err:  # torch raises many types for a bad file; all mean the same to the user
        raise CheckpointError(
            f"{path} could not be loaded as a {spec.model_type} checkpoint ({type(err).__name__}: {err}). "
            "Delete it and run again to download a fresh copy."
        ) from err
    return sam.eval()


def _warn_random_weights(model_type: str, seed: int) -> None:
    warnings.warn(
        f"{RANDOM_WEIGHTS_ENV}={seed}: building {model_type} with RANDOM weights. "
        "Shapes and speed are real, the masks are MEANINGLESS. Unset it to use the real checkpoint.",
        stacklevel=3,
    )
