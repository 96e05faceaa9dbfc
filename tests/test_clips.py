"""`utils.clips`: the real clip notebook 09 tracks, fetched from a local HTTP server under its official file name
(no network here), checked, read back as a video, and put into a workshop kit by `utils.prefetch`."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from tests.helpers import camera_clip
from tests.http_server import FileServer
from utils import clips, prefetch
from utils.download import MIRROR_ENV, ChecksumError
from utils.model_spec import RANDOM_WEIGHTS_ENV
from utils.video_frames import video_frames
from utils.video_output import write_mp4

FRAMES = 6


def test_the_official_clip_is_pinned_to_a_commit_and_a_checksum():
    clip = clips.CLIPS[clips.DEFAULT_CLIP]
    assert re.fullmatch(
        r"https://raw\.githubusercontent\.com/facebookresearch/sam2/[0-9a-f]{40}/notebooks/videos/bedroom\.mp4",
        clip.url,
    )
    assert re.fullmatch(r"[0-9a-f]{64}", clip.sha256) and clip.filename == "bedroom.mp4" and clip.size_bytes > 1e6


@pytest.fixture
def served_clip(tmp_path, monkeypatch):
    """A clip the tests make, written as an mp4 and served from 127.0.0.1 under the official clip's file name;
    yields the server and the frames."""
    frames = camera_clip(FRAMES, size=(64, 96), step=6)
    mp4 = write_mp4(tmp_path / "made.mp4", ((frame, np.zeros((0, 64, 96), bool)) for frame in frames), fps=5)
    payload = mp4.read_bytes()
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    with FileServer() as server:
        official = clips.CLIPS[clips.DEFAULT_CLIP]
        path = f"/{official.filename}"
        server.files[path] = payload
        served = clips.Clip(
            official.name, server.url + path, hashlib.sha256(payload).hexdigest(), len(payload), official.description
        )
        monkeypatch.setitem(clips.CLIPS, official.name, served)
        yield server, frames


def test_download_checks_the_clip_and_reads_as_a_video(served_clip, tmp_path):
    server, frames = served_clip
    path = clips.download_clip(directory=tmp_path / "videos", show_progress=False)
    video = video_frames(path)
    assert path.name == "bedroom.mp4" and video.num_frames == FRAMES and video.size == frames[0].shape[:2]
    assert np.abs(video[3].astype(int) - frames[3]).mean() < 8  # mp4 is lossy
    assert clips.download_clip(directory=tmp_path / "videos", show_progress=False) == path
    assert len(server.requests) == 1, "a checked copy is used again without a request"


def test_corrupt_download_is_refused_and_leaves_nothing(served_clip, tmp_path):
    server, _ = served_clip
    server.files["/bedroom.mp4"] = b"not the clip"
    with pytest.raises(ChecksumError, match="bedroom.mp4"):
        clips.download_clip(directory=tmp_path / "videos", show_progress=False)
    assert list((tmp_path / "videos").iterdir()) == []


def test_unknown_clip_names_the_known_ones():
    with pytest.raises(ValueError, match="bedroom"):
        clips.download_clip("kitchen")


def test_prefetch_puts_the_clip_in_the_kit_and_the_kit_serves_it_offline(served_clip, tmp_path, monkeypatch, capsys):
    server, _ = served_clip
    monkeypatch.delenv(RANDOM_WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(prefetch, "prefetch", lambda kit, model_types: [])  # checkpoints: tests/test_checkpoints.py
    prefetch.main([str(tmp_path / "kit")])
    assert "bedroom.mp4" in capsys.readouterr().out and (tmp_path / "kit" / "bedroom.mp4").is_file()
    server.files.clear()  # the network has nothing now: only the kit does
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path / "kit"))
    path = clips.download_clip(directory=tmp_path / "laptop", show_progress=False)
    assert path.read_bytes() == (tmp_path / "kit" / "bedroom.mp4").read_bytes() and len(server.requests) == 1
