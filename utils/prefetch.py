"""Fill a workshop kit: the checkpoints every notebook downloads and, with ``--with-ir``, ready OpenVINO IR.

    python -m utils.prefetch KIT                          # vit_b checkpoint, what the notebooks use by default
    python -m utils.prefetch KIT --models vit_b vit_l     # more model types
    python -m utils.prefetch KIT --models sam2.1_hiera_tiny edgetam   # SAM 2's hub files, under KIT/huggingface
    python -m utils.prefetch KIT --with-ir                # and converted IR, FP and INT8, for the light install
    python -m utils.prefetch KIT --clips                  # no real clip

Copy the folder to each laptop (or a shared drive) and set ``SAM_OV_MIRROR=KIT``: every
`download_file` call then reads from it, with the same sha256 checks, and no network is
needed. The kit also holds a real clip to track (`utils.clips`, 2.3 MiB). With ``--with-ir`` it
holds the IR under ``KIT/ir/`` too (made here, with the full install): the FP IR, the INT8 encoder
quantized on ``data/calibration/`` and, for SAM 2.1 and EdgeTAM, the video parts. `ensure_sam_ir`,
`ensure_int8_encoder` and `ensure_video_ir` copy them from there when their stamps match, so notebooks
02 to 06, 08 and 09 run on laptops with the light install (no PyTorch, no NNCF) and convert or quantize
nothing.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from utils.clips import CLIPS, DEFAULT_CLIP, download_clip
from utils.download import MIRROR_ENV
from utils.ir_store import KIT_IR_FOLDER, copy_int8_ir, copy_ir, copy_video_ir
from utils.model_spec import FAMILIES, SAM_2, ModelSpec, model_spec, random_weights_seed, resolve

KIT_MODEL_TYPES = tuple(model_type for family in FAMILIES for model_type in family.weights)
"""What a kit can hold: the model types with official weights, SAM 1's checkpoints and the SAM 2 family's hub
files (under ``KIT/huggingface``)."""


def prefetch(mirror_dir: str | Path, model_types: list[str], show_progress: bool = True) -> list[Path]:
    """Download (or verify) the checkpoints of ``model_types`` into ``mirror_dir``; return their paths (for the SAM 2
    family, its folder of hub files)."""
    return [resolve(spec.family.fetch)(spec, mirror_dir, show_progress) for spec in _kit_specs(model_types)]


def add_ir(kit_dir: str | Path, model_types: list[str], models_dir: str | Path = "models") -> list[Path]:
    """Put current IR of ``model_types`` into ``KIT/ir/``, converting and quantizing in ``models_dir`` where needed.

    Each model's folder gets the FP IR and the INT8 encoder (`ensure_int8_encoder`, on the default
    calibration images); SAM 2.1's and EdgeTAM's get their video parts too (`ensure_video_ir`), so that
    notebook 09 tracks on the light install. Conversion reads the checkpoints from the kit itself (fill it
    with `prefetch` first). Returns the kit's IR folders. Each set of files is written through a temporary
    folder, its stamp last.
    """
    from utils.convert import ensure_sam_ir, ensure_video_ir  # need PyTorch when they have to convert
    from utils.quantize import ensure_int8_encoder  # needs NNCF when it has to quantize

    specs = _kit_specs(model_types)
    folders = []
    previous_mirror = os.environ.get(MIRROR_ENV)
    os.environ[MIRROR_ENV] = str(kit_dir)  # the checkpoints just fetched, not the network
    try:
        for spec in specs:
            encoder_xml, _ = ensure_sam_ir(spec, models_dir)
            source = encoder_xml.parent
            target = Path(kit_dir) / KIT_IR_FOLDER / source.name
            copy_ir(source, target, prefix=".kit-")
            ensure_int8_encoder(spec, models_dir)
            copy_int8_ir(source, target, prefix=".kit-")
            if spec.family is SAM_2:
                ensure_video_ir(spec, models_dir)
                copy_video_ir(source, target, prefix=".kit-")
            folders.append(target)
    finally:
        if previous_mirror is None:
            os.environ.pop(MIRROR_ENV, None)
        else:
            os.environ[MIRROR_ENV] = previous_mirror
    return folders


def _kit_specs(model_types: list[str]) -> list[ModelSpec]:
    """The specs of ``model_types``, or a ValueError naming those a kit cannot hold."""
    unknown = sorted(set(model_types) - set(KIT_MODEL_TYPES))
    if unknown:
        raise ValueError(f"Unknown model types {unknown}; choose from {sorted(KIT_MODEL_TYPES)}.")
    return [model_spec(model_type) for model_type in model_types]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m utils.prefetch", description=__doc__.split("\n\n")[0])
    parser.add_argument("mirror_dir", type=Path, help="the kit folder to fill (created if missing)")
    parser.add_argument(
        "--models", nargs="+", default=["vit_b"], choices=sorted(KIT_MODEL_TYPES), help="default: vit_b"
    )
    parser.add_argument(
        "--clips",
        nargs="*",
        default=[DEFAULT_CLIP],
        choices=sorted(CLIPS),
        help=f"real clips to track (default: {DEFAULT_CLIP}; none with a bare --clips)",
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
        for name in args.clips:
            path = download_clip(name, args.mirror_dir)
            print(f"ready: {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    else:
        print(
            "Random weights (SAM_RANDOM_WEIGHTS_SEED is set: the tests' offline mode): no checkpoint is needed and "
            "nothing is fetched, no clip either."
        )
    if args.with_ir:
        for folder in add_ir(args.mirror_dir, args.models, args.models_dir):
            size = sum(path.stat().st_size for path in folder.iterdir()) / 2**20
            print(f"ready: {folder} ({size:.0f} MiB of IR)")
    print(f"Use it with: export {MIRROR_ENV}={args.mirror_dir.resolve()}")


if __name__ == "__main__":
    main()
