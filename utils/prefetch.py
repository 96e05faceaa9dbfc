"""Fill a workshop kit: the checkpoints every notebook downloads and, with ``--with-ir``, ready OpenVINO IR.

    python -m utils.prefetch KIT                          # vit_b checkpoint, what the notebooks use by default
    python -m utils.prefetch KIT --models vit_b vit_l     # more model types
    python -m utils.prefetch KIT --models sam2.1_hiera_tiny edgetam   # SAM 2's hub files, under KIT/huggingface
    python -m utils.prefetch KIT --with-ir                # and converted IR, FP and INT8, for the light install

Copy the folder to each laptop (or a shared drive) and set ``SAM_OV_MIRROR=KIT``: every
`download_file` call then reads from it, with the same sha256 checks, and no network is
needed. With ``--with-ir`` the kit also holds the IR under ``KIT/ir/`` (made here, with the
full install): the FP IR and the INT8 encoder quantized on ``data/calibration/``. `ensure_sam_ir`
and `ensure_int8_encoder` copy them from there when their stamps match, so notebooks 02 to 06 and 08
run on laptops with the light install (no PyTorch, no NNCF) and convert or quantize nothing.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from utils.checkpoints import CHECKPOINTS, random_weights_seed
from utils.download import MIRROR_ENV, download_file
from utils.ir_store import KIT_IR_FOLDER, copy_int8_ir, copy_ir
from utils.sam2_models import KIT_HUB_FOLDER, SAM2_MODEL_TYPES, hub_snapshot, is_sam2

KIT_MODEL_TYPES = (*CHECKPOINTS, *SAM2_MODEL_TYPES)
"""What a kit can hold: SAM 1's checkpoints and the SAM 2 family's hub files (under ``KIT/huggingface``)."""


def prefetch(mirror_dir: str | Path, model_types: list[str], show_progress: bool = True) -> list[Path]:
    """Download (or verify) the checkpoints of ``model_types`` into ``mirror_dir``; return their paths (for the SAM 2
    family, its folder of hub files)."""
    _check_model_types(model_types)
    paths = []
    for model_type in model_types:
        if is_sam2(model_type):
            paths.append(hub_snapshot(model_type, Path(mirror_dir) / KIT_HUB_FOLDER, False, show_progress))
            continue
        checkpoint = CHECKPOINTS[model_type]
        paths.append(download_file(checkpoint.url, mirror_dir, sha256=checkpoint.sha256, show_progress=show_progress))
    return paths


def add_ir(kit_dir: str | Path, model_types: list[str], models_dir: str | Path = "models") -> list[Path]:
    """Put current IR of ``model_types`` into ``KIT/ir/``, converting and quantizing in ``models_dir`` where needed.

    Each model's folder gets the FP IR and the INT8 encoder (`ensure_int8_encoder`, on the default
    calibration images). Conversion reads the checkpoints from the kit itself (fill it with `prefetch`
    first). Returns the kit's IR folders. Each set of files is written through a temporary folder, its
    stamp last.
    """
    from utils.convert import ensure_sam_ir  # needs PyTorch when it has to convert
    from utils.quantize import ensure_int8_encoder  # needs NNCF when it has to quantize

    _check_model_types(model_types)
    folders = []
    previous_mirror = os.environ.get(MIRROR_ENV)
    os.environ[MIRROR_ENV] = str(kit_dir)  # the checkpoints just fetched, not the network
    try:
        for model_type in model_types:
            encoder_xml, _ = ensure_sam_ir(model_type, models_dir)
            source = encoder_xml.parent
            target = Path(kit_dir) / KIT_IR_FOLDER / source.name
            copy_ir(source, target, prefix=".kit-")
            ensure_int8_encoder(model_type, models_dir)
            copy_int8_ir(source, target, prefix=".kit-")
            folders.append(target)
    finally:
        if previous_mirror is None:
            os.environ.pop(MIRROR_ENV, None)
        else:
            os.environ[MIRROR_ENV] = previous_mirror
    return folders


def _check_model_types(model_types: list[str]) -> None:
    unknown = sorted(set(model_types) - set(KIT_MODEL_TYPES))
    if unknown:
        raise ValueError(f"Unknown model types {unknown}; choose from {sorted(KIT_MODEL_TYPES)}.")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m utils.prefetch", description=__doc__.split("\n\n")[0])
    parser.add_argument("mirror_dir", type=Path, help="the kit folder to fill (created if missing)")
    parser.add_argument(
        "--models", nargs="+", default=["vit_b"], choices=sorted(KIT_MODEL_TYPES), help="default: vit_b"
    )
    parser.add_argument(
        "--with-ir",
        action="store_true",
        help="also put converted IR in the kit, FP and INT8; needs the full install",
    )
    parser.add_argument("--models-dir", type=Path, default=Path("models"), help="where to convert (default: models)")
    args = parser.parse_args(argv)
    if random_weights_seed() is None:
        for path in prefetch(args.mirror_dir, args.models):
            files = list(path.iterdir()) if path.is_dir() else [path]  # a SAM 2 model's hub files, or a checkpoint
            print(f"ready: {path} ({sum(file.stat().st_size for file in files) / 2**20:.0f} MiB)")
    else:
        print("Random weights (SAM_RANDOM_WEIGHTS_SEED is set): no checkpoint is needed, none is fetched.")
    if args.with_ir:
        for folder in add_ir(args.mirror_dir, args.models, args.models_dir):
            size = sum(path.stat().st_size for path in folder.iterdir()) / 2**20
            print(f"ready: {folder} ({size:.0f} MiB of IR)")
    print(f"Use it with: export {MIRROR_ENV}={args.mirror_dir.resolve()}")


if __name__ == "__main__":
    main()
