"""The SAM checkpoints this series knows, and `load_sam` to build a model from one.

Setting the environment variable ``SAM_RANDOM_WEIGHTS_SEED`` to an integer makes
`load_sam` skip the download and build the same architecture with random weights
seeded by that integer. The graph, shapes and timings are those of the real model;
the masks are meaningless. Tests and CI use it because they cannot reach the
checkpoint server; a loud warning is printed every time it is active.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from utils.download import download_file
from utils.sam2_models import SAM2_ARCHITECTURES, SAM2_MODEL_TYPES, build_reference_model, is_sam2, load_reference_model

if TYPE_CHECKING:  # torch is only needed when a model is really built
    from segment_anything.modeling import Sam

RANDOM_WEIGHTS_ENV = "SAM_RANDOM_WEIGHTS_SEED"
"""Environment variable: an integer seed switches `load_sam` to random weights."""

DEFAULT_CHECKPOINT_DIR = Path("models") / "checkpoints"


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

MODEL_TYPES = (*CHECKPOINTS, *RANDOM_ONLY_ARCHITECTURES, *SAM2_MODEL_TYPES)
"""Every model type: SAM 1's checkpoints, the random-only vit_tiny, and the SAM 2 family (`utils.sam2_models`)."""


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be used (corrupt, truncated, wrong model)."""


def get_checkpoint(model_type: str) -> Checkpoint:
    """Return the registry entry for ``model_type`` or raise listing the valid ones."""
    if is_sam2(model_type):
        raise ValueError(f"{model_type} is on the Hugging Face hub, not a checkpoint file: see utils.sam2_models.")
    if model_type in RANDOM_ONLY_ARCHITECTURES:
        raise ValueError(
            f"{model_type} has no checkpoint: it is built with random weights only, with {RANDOM_WEIGHTS_ENV} set."
        )
    try:
        return CHECKPOINTS[model_type]
    except KeyError:
        valid = ", ".join(MODEL_TYPES)
        raise ValueError(f"Unknown SAM model type {model_type!r}; choose one of: {valid}.") from None


def random_weights_seed() -> int | None:
    """Return the seed from ``$SAM_RANDOM_WEIGHTS_SEED``, or None when real weights are wanted."""
    value = os.environ.get(RANDOM_WEIGHTS_ENV, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{RANDOM_WEIGHTS_ENV} must be an integer seed, got {value!r}.") from None


def weights_id(model_type: str) -> str:
    """Name the weights `load_sam` would use now: the checkpoint's sha256 or the random seed.

    Converted IR is stamped with this so it is rebuilt when the weights change,
    without loading the checkpoint first.
    """
    seed = random_weights_seed()
    if seed is not None and model_type in MODEL_TYPES:
        return f"{model_type}:random-seed-{seed}"
    if is_sam2(model_type):
        architecture = SAM2_ARCHITECTURES[model_type]
        return f"{model_type}:hub-{architecture.repo_id}@{architecture.revision}"
    return f"{model_type}:sha256-{get_checkpoint(model_type).sha256}"


def check_model_type(model_type: str) -> None:
    """Raise ValueError naming the valid model types when ``model_type`` is none of them."""
    if model_type not in MODEL_TYPES:
        raise ValueError(f"Unknown SAM model type {model_type!r}; choose one of: {', '.join(MODEL_TYPES)}.")


def describe_weights(model_type: str) -> str:
    """One line for a notebook to print: the checkpoint in use, or a loud random-weights warning."""
    seed = random_weights_seed()
    if seed is not None:
        return (
            f"WARNING: {RANDOM_WEIGHTS_ENV}={seed} is set, so SAM {model_type} has RANDOM weights: "
            "every mask and score below is MEANINGLESS (only shapes and timings are real)."
        )
    if is_sam2(model_type):
        architecture = SAM2_ARCHITECTURES[model_type]
        return (
            f"{model_type} with the official weights {architecture.repo_id}@{architecture.revision} (Hugging Face hub)"
        )
    return f"SAM {model_type} with the official checkpoint {get_checkpoint(model_type).url}"


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


def modules_to_build(model_type: str) -> tuple[str, ...]:
    """What building ``model_type`` in PyTorch needs: segment_anything for SAM 1; transformers, and timm for
    EdgeTAM's trunk, for the SAM 2 family."""
    return ("torch", "transformers", "timm") if is_sam2(model_type) else ("torch", "segment_anything")


def missing_full_install(model_type: str = "vit_b") -> list[str]:
    """The modules of the full install that building ``model_type`` needs and this Python lacks, found without
    importing them."""
    return [name for name in modules_to_build(model_type) if importlib.util.find_spec(name) is None]


def _require_full_install(model_type: str) -> None:
    """One clear sentence where the light install (no PyTorch) reaches a step that needs it."""
    missing = missing_full_install(model_type)
    if missing:
        raise ModuleNotFoundError(
            f"This step builds SAM in PyTorch, and this Python has no {' or '.join(missing)}: it is the light install. "
            "Install the full one (pip install -r requirements.txt -c constraints.txt), or, for notebooks 02 to 06 and "
            "08, point SAM_OV_MIRROR at a workshop kit with ready IR (python -m utils.prefetch KIT --with-ir)."
        )


def load_sam(
    model_type: str = "vit_b",
    checkpoint_dir: str | os.PathLike = DEFAULT_CHECKPOINT_DIR,
    show_progress: bool = True,
) -> "Sam":
    """Build a SAM model in eval mode: the official checkpoint, or random weights when switched on.

    For the SAM 2 family (`utils.sam2_models`) it is transformers' `Sam2Model` or `EdgeTamModel`,
    its weights from the Hugging Face hub. SAM 1's checkpoint is downloaded (or taken from the workshop mirror) into
    ``checkpoint_dir`` and checked by sha256. With ``$SAM_RANDOM_WEIGHTS_SEED`` set,
    nothing is downloaded and a warning says the masks will be meaningless.
    """
    seed = random_weights_seed()
    if is_sam2(model_type):
        _require_full_install(model_type)
        if seed is None:
            return load_reference_model(model_type, checkpoint_dir, show_progress)
        _warn_random_weights(model_type, seed)
        return build_reference_model(model_type, seed)
    checkpoint = None if seed is not None and model_type in MODEL_TYPES else get_checkpoint(model_type)
    _require_full_install(model_type)
    import torch
    from segment_anything import sam_model_registry
    from segment_anything.build_sam import _build_sam

    if checkpoint is None:
        _warn_random_weights(model_type, seed)
        torch.manual_seed(seed)
        architecture = RANDOM_ONLY_ARCHITECTURES.get(model_type)
        sam = _build_sam(**architecture) if architecture else sam_model_registry[model_type](checkpoint=None)
        return _randomise_rel_pos(sam).eval()

    path = download_file(checkpoint.url, checkpoint_dir, sha256=checkpoint.sha256, show_progress=show_progress)
    sam = sam_model_registry[model_type](checkpoint=None)
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
        sam.load_state_dict(state_dict)
    except Exception as err:  # torch raises many types for a bad file; all mean the same to the user
        raise CheckpointError(
            f"{path} could not be loaded as a {model_type} checkpoint ({type(err).__name__}: {err}). "
            "Delete it and run again to download a fresh copy."
        ) from err
    return sam.eval()


def _warn_random_weights(model_type: str, seed: int) -> None:
    warnings.warn(
        f"{RANDOM_WEIGHTS_ENV}={seed}: building {model_type} with RANDOM weights. "
        "Shapes and speed are real, the masks are MEANINGLESS. Unset it to use the real checkpoint.",
        stacklevel=3,
    )
