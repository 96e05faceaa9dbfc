"""`utils.video_output`: a tracked clip written as an mp4, a GIF and a strip, with each object's mask in its colour."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.helpers import camera_clip
from utils.video_output import OBJECT_COLOURS, frame_strip, overlay_masks, write_animation, write_mp4


@pytest.fixture(scope="module")
def tracked():
    """Four frames, two objects: a square that moves right and a fixed bar."""
    frames = camera_clip(4, size=(60, 80), step=4)
    pairs = []
    for index, frame in enumerate(frames):
        masks = np.zeros((2, 60, 80), bool)
        masks[0, 10:30, 10 + 5 * index : 30 + 5 * index] = True
        masks[1, 45:55, :] = True
        pairs.append((frame, masks))
    return pairs


def test_each_object_is_tinted_in_its_colour_and_the_rest_is_untouched(tracked):
    frame, masks = tracked[0]
    drawn = overlay_masks(frame, masks)
    outside = ~masks.any(axis=0)
    outside[cv2.dilate(masks.any(axis=0).astype(np.uint8), np.ones((3, 3))) > 0] = False
    np.testing.assert_array_equal(drawn[outside], frame[outside])
    for index in range(2):
        inside = drawn[masks[index]].astype(float).mean(axis=0)
        assert np.abs(inside - OBJECT_COLOURS[index]).sum() < np.abs(inside - OBJECT_COLOURS[1 - index]).sum()


def test_mp4_and_gif_hold_every_frame(tracked, tmp_path):
    mp4 = write_mp4(tmp_path / "out" / "tracked.mp4", iter(tracked), fps=5)
    capture = cv2.VideoCapture(str(mp4))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    ok, first = capture.read()
    assert ok and first.shape == (60, 80, 3)
    gif = write_animation(tmp_path / "tracked.gif", tracked, width=40)
    with Image.open(gif) as animation:
        assert animation.n_frames == 4 and animation.size == (40, 30)
    assert frame_strip(tracked, height=30, gap=2).shape == (30, 4 * 40 + 3 * 2, 3)


def test_a_failure_midway_leaves_no_file(tracked, tmp_path):
    def broken():
        yield tracked[0]
        raise RuntimeError("the stream broke")

    with pytest.raises(RuntimeError, match="broke"):
        write_mp4(tmp_path / "tracked.mp4", broken())
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="No frames"):
        write_animation(tmp_path / "empty.gif", [])
