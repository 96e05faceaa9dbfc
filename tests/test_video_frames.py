"""`utils.video_frames`: every kind of video the tracker takes, read frame by frame, and the errors for bad ones."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from tests.helpers import camera_clip
from utils import video_output
from utils.video_frames import ArrayFrames, FileFrames, FolderFrames, StreamFrames, video_frames


@pytest.fixture(scope="module")
def clip():
    return camera_clip(4, size=(48, 64), step=4)


def write_mp4(path, frames) -> None:
    """The frames as an mp4, through `utils.video_output.write_mp4` with no mask drawn."""
    no_masks = np.zeros((0, *frames[0].shape[:2]), bool)
    video_output.write_mp4(path, ((frame, no_masks) for frame in frames))


def test_an_array_a_folder_and_a_file_give_the_same_frames(clip, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, frame in enumerate(clip):  # sam2's layout, numbered; 10 sorts after 9 by number, not by name
        cv2.imwrite(str(folder / f"{index * 5}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    write_mp4(tmp_path / "clip.mp4", clip)
    array, pictures, video = video_frames(np.stack(clip)), video_frames(folder), video_frames(tmp_path / "clip.mp4")
    assert (type(array), type(pictures), type(video)) == (ArrayFrames, FolderFrames, FileFrames)
    assert array.num_frames == pictures.num_frames == video.num_frames == 4
    assert array.size == pictures.size == video.size == (48, 64)
    for index in (0, 1, 3, 2):  # backwards too: the file seeks
        np.testing.assert_array_equal(pictures[index], clip[index])
        np.testing.assert_array_equal(array[index], clip[index])
        assert np.abs(video[index].astype(int) - clip[index]).mean() < 12, "mp4v is lossy, not another frame"


def test_a_file_that_counts_more_frames_than_it_holds_ends_where_decoding_does(clip, tmp_path):
    write_mp4(tmp_path / "clip.mp4", clip)
    video = video_frames(tmp_path / "clip.mp4")
    video.num_frames = 7  # as a container whose header over-counts
    assert [index for index in range(7) if video.has_frame(index)] == [0, 1, 2, 3]
    assert video.num_frames == 4 and video[3].shape == (48, 64, 3)


def test_a_stream_is_read_in_order_and_ends_cleanly(clip):
    frames = video_frames(frame for frame in clip)
    assert type(frames) is StreamFrames and frames.num_frames is None
    assert frames.has_frame(2) and frames[2].shape == (48, 64, 3)
    with pytest.raises(IndexError, match="gone"):
        frames[1]
    assert not frames.has_frame(4)


def test_gray_and_rgba_frames_become_rgb(clip):
    gray = [cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in clip]
    rgba = [np.dstack([frame, np.full(frame.shape[:2], 255, np.uint8)]) for frame in clip]
    assert video_frames(gray)[0].shape == video_frames(rgba)[0].shape == (48, 64, 3)


def test_bad_videos_are_named(clip, tmp_path):
    (tmp_path / "notes.txt").write_text("not a video")
    with pytest.raises(ValueError, match="not a video"):
        video_frames(tmp_path / "notes.txt")
    with pytest.raises(FileNotFoundError):
        video_frames(tmp_path / "missing.mp4")
    with pytest.raises(ValueError, match="no frames"):
        video_frames([])
    with pytest.raises(ValueError, match="holds no frames"):
        video_frames(tmp_path)
    with pytest.raises(ValueError, match="no frame"):
        video_frames(iter([]))
    with pytest.raises(TypeError):
        video_frames(3)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    cv2.imwrite(str(mixed / "00000.jpg"), clip[0])
    cv2.imwrite(str(mixed / "00001.jpg"), clip[1][:40])
    frames = video_frames(mixed)
    with pytest.raises(ValueError, match="same size"):
        frames[1]
