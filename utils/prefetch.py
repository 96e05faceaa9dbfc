"""Fill a workshop mirror folder with everything the notebooks download.

    python -m utils.prefetch MIRROR_DIR                 # vit_b, what the notebooks use by default
    python -m utils.prefetch MIRROR_DIR --models vit_b vit_l vit_h

Copy the folder to each laptop (or a shared drive) and set
``SAM_OV_MIRROR=MIRROR_DIR``: every `download_file` call then reads from it, with
the same sha256 checks, and no network is needed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from utils.checkpoints import CHECKPOINTS
from utils.download import MIRROR_ENV, download_file


def prefetch(mirror_dir: str | Path, model_types: list[str], show_progress: bool = True) -> list[Path]:
    """Download (or verify) the checkpoints of ``model_types`` into ``mirror_dir``; return their paths."""
    unknown = sorted(set(model_types) - set(CHECKPOINTS))
    if unknown:
        raise ValueError(f"Unknown model types {unknown}; choose from {sorted(CHECKPOINTS)}.")
    paths = []
    for model_type in model_types:
        checkpoint = CHECKPOINTS[model_type]
        paths.append(download_file(checkpoint.url, mirror_dir, sha256=checkpoint.sha256, show_progress=show_progress))
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m utils.prefetch", description=__doc__.split("\n\n")[0])
    parser.add_argument("mirror_dir", type=Path, help="folder to fill (created if missing)")
    parser.add_argument("--models", nargs="+", default=["vit_b"], choices=sorted(CHECKPOINTS), help="default: vit_b")
    args = parser.parse_args(argv)
    for path in prefetch(args.mirror_dir, args.models):
        print(f"ready: {path} ({path.stat().st_size / 2**20:.0f} MiB)")
    print(f"Use it with: export {MIRROR_ENV}={args.mirror_dir.resolve()}")


if __name__ == "__main__":
    main()
