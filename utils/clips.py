"""Real clips to track: downloaded once, checked by sha256, read from a workshop kit where one is set.

The series ships no video. `download_clip` fetches one through `utils.download.download_file`: a copy already in
``directory`` with the right sha256 is used as is, then ``$SAM_OV_MIRROR/<file>`` (a kit that
``python -m utils.prefetch`` filled), then the network, with nothing half-written left behind. The tests and CI
track a clip the project makes instead (`utils.video_frames.camera_pan`), since they run without a network.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from utils.download import download_file

SAM2_REPOSITORY_COMMIT = "2b90b9f5ceec907a1c18123530e92e794ad901a4"
"""The facebookresearch/sam2 commit the clips are read from: a pinned commit, so the bytes never change."""


@dataclass(frozen=True)
class Clip:
    """One clip: where it lives, how to recognise it, and what it shows."""

    name: str
    url: str
    sha256: str
    size_bytes: int
    description: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[-1]


CLIPS: dict[str, Clip] = {
    "bedroom": Clip(
        "bedroom",
        f"https://raw.githubusercontent.com/facebookresearch/sam2/{SAM2_REPOSITORY_COMMIT}/notebooks/videos/bedroom.mp4",
        "1be76d5d19b066e8ad7c565d88a98e11a8f8d456a707508a7aa35390def70e30",
        2_380_401,
        "sam2's own video example (its video predictor notebook): two children in a bedroom, 200 frames of "
        "960x540 at 30 fps, from the sam2 repository (Apache 2.0)",
    ),
}
DEFAULT_CLIP = "bedroom"


def download_clip(
    name: str = DEFAULT_CLIP, directory: str | os.PathLike = "videos", show_progress: bool = True
) -> Path:
    """The path of clip ``name`` in ``directory``, downloaded (or copied from the kit) and checked first if needed.

    Raises:
        ValueError: ``name`` is not one of `CLIPS`.
        utils.download.DownloadError: no copy, no kit and no network; the message says how to place the file.
    """
    if name not in CLIPS:
        raise ValueError(f"Unknown clip {name!r}; choose from {sorted(CLIPS)}.")
    clip = CLIPS[name]
    return download_file(clip.url, directory, clip.filename, sha256=clip.sha256, show_progress=show_progress)
