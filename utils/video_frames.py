"""Video in, with no extraction step: frames read as tracking reaches them, from a file, a folder, an array or a
live iterator (a camera).

`video_frames` turns whatever `utils.video_predictor.OVSam2VideoPredictor.init_state` is given into a
`VideoFrames`: a video file (anything OpenCV reads), a folder of JPEG or PNG frames (sam2's layout: one file per
frame, numbered), a list or array of RGB frames, or an iterator whose length is unknown. Every frame comes out as
HxWx3 uint8 RGB (`utils.transforms.to_rgb_uint8`: gray and RGBA frames are converted); a frame of another size
than the first is an error that names it, since a track's coordinates would no longer mean the same place.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

from utils.transforms import to_rgb_uint8

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")


class VideoFrames:
    """Frames by index, read when asked. ``num_frames`` is None for a live iterator, whose frames can only be read
    in order (the latest one is kept, so a prompt may go on it)."""

    num_frames: int | None = None
    size: tuple[int, int]
    """(height, width) of every frame, from the first."""

    def __getitem__(self, index: int) -> np.ndarray:
        raise NotImplementedError

    def has_frame(self, index: int) -> bool:
        """Whether frame ``index`` exists; for a live iterator, reading up to it (False once it has ended)."""
        return 0 <= index < self.num_frames

    def _checked(self, frame: np.ndarray, where: str) -> np.ndarray:
        """``frame`` as HxWx3 uint8 RGB, and of the first frame's size."""
        rgb = to_rgb_uint8(np.asarray(frame))
        if not hasattr(self, "size"):
            self.size = rgb.shape[:2]
        elif rgb.shape[:2] != self.size:
            raise ValueError(
                f"{where} is {rgb.shape[1]}x{rgb.shape[0]}, the video's first frame {self.size[1]}x{self.size[0]}: "
                "every frame of a video must have the same size."
            )
        return rgb


class ArrayFrames(VideoFrames):
    """A list of HxWx3 frames, or an NxHxWx3 array."""

    def __init__(self, frames) -> None:
        self.frames = frames
        self.num_frames = len(frames)
        if self.num_frames == 0:
            raise ValueError("The video has no frames: the list or array is empty.")
        self._checked(frames[0], "frame 0")

    def __getitem__(self, index: int) -> np.ndarray:
        return self._checked(self.frames[index], f"frame {index}")


class FolderFrames(VideoFrames):
    """A folder of JPEG/PNG frames in order: by number where every name is a number (sam2's ``00000.jpg``),
    else by name."""

    def __init__(self, folder: Path) -> None:
        files = [path for path in folder.iterdir() if path.suffix.lower() in FRAME_SUFFIXES]
        if not files:
            raise ValueError(f"{folder} holds no frames ({', '.join(FRAME_SUFFIXES)} files).")
        numbered = all(path.stem.isdigit() for path in files)
        self.files = sorted(files, key=lambda path: (int(path.stem), path.name) if numbered else (0, path.name))
        self.num_frames = len(self.files)
        self[0]

    def __getitem__(self, index: int) -> np.ndarray:
        path = self.files[index]
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise ValueError(f"{path} is not an image OpenCV can read.")
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)
        return self._checked(image, str(path))


class FileFrames(VideoFrames):
    """A video file through OpenCV, decoded in order; going back seeks (slower, and exact only where the codec
    allows, as OpenCV's seeking is)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.capture = cv2.VideoCapture(str(path))
        if not self.capture.isOpened():
            raise ValueError(f"{path} is not a video OpenCV can read.")
        self.next_index = 0
        self.last: tuple[int, np.ndarray] | None = None
        self.num_frames = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))
        if self.num_frames <= 0 or not self._read_next():
            raise ValueError(f"{path} has no frames OpenCV can decode.")

    def _read_next(self) -> bool:
        ok, frame = self.capture.read()
        if not ok:
            return False
        self.last = (self.next_index, self._checked(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), f"frame {self.next_index}"))
        self.next_index += 1
        return True

    def has_frame(self, index: int) -> bool:
        """As `VideoFrames.has_frame`, decoding the next frame in order first: a container that counts more frames
        than it holds (some do) ends where decoding does, as a stream would."""
        if not super().has_frame(index):
            return False
        if index == self.next_index and not self._read_next():
            self.num_frames = index
            return False
        return True

    def __getitem__(self, index: int) -> np.ndarray:
        if not self.has_frame(index):
            raise IndexError(f"frame {index} is outside {self.path}'s {self.num_frames} frames.")
        if self.last is not None and self.last[0] == index:
            return self.last[1]
        if index != self.next_index:
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, index)
            self.next_index = index
        if not self._read_next():
            raise ValueError(f"{self.path}: frame {index} could not be decoded.")
        return self.last[1]


class StreamFrames(VideoFrames):
    """A live iterator of frames (a camera, a stream): its length unknown, read in order, the latest one kept."""

    def __init__(self, frames: Iterator) -> None:
        self.frames = frames
        self.read = 0
        self.latest: tuple[int, np.ndarray] | None = None
        self.ended = False
        if not self.has_frame(0):
            raise ValueError("The stream gave no frame.")

    def has_frame(self, index: int) -> bool:
        while not self.ended and self.read <= index:
            try:
                frame = next(self.frames)
            except StopIteration:
                self.ended = True
                break
            self.latest = (self.read, self._checked(frame, f"frame {self.read}"))
            self.read += 1
        return index < self.read and index >= 0

    def __getitem__(self, index: int) -> np.ndarray:
        if not self.has_frame(index):
            raise IndexError(f"The stream ended after {self.read} frames; there is no frame {index}.")
        if self.latest[0] != index:
            raise IndexError(
                f"Frame {index} of a stream is gone (only the latest, {self.latest[0]}, is kept): prompt on the "
                "current frame."
            )
        return self.latest[1]


def video_frames(video) -> VideoFrames:
    """``video`` as `VideoFrames`: a path to a video file or to a folder of frames, a list or array of RGB frames,
    a `VideoFrames`, or any other iterable of frames (read live)."""
    if isinstance(video, VideoFrames):
        return video
    if isinstance(video, (str, os.PathLike)):
        path = Path(video)
        if path.is_dir():
            return FolderFrames(path)
        if not path.is_file():
            raise FileNotFoundError(f"No video file or folder of frames at {path.resolve()}.")
        return FileFrames(path)
    if isinstance(video, (list, tuple, np.ndarray)):
        return ArrayFrames(video)
    if isinstance(video, Iterable):
        return StreamFrames(iter(video))
    raise TypeError(
        "A video is a file path, a folder of frames, a list or array of RGB frames, or an iterator of frames; "
        f"got {type(video).__name__}."
    )


def camera_pan(photo: np.ndarray, frames: int, size: tuple[int, int] = (240, 320), step: int = 12) -> list[np.ndarray]:
    """A clip made from a photo, for tests and benchmarks where no real clip can be shipped: a camera panning across
    ``photo`` (scaled to twice ``size``), ``frames`` RGB frames of ``size`` (height, width), the window moving
    ``step`` pixels right (and down in proportion) each frame, and back at the edge (so a clip may be any length)."""
    return list(camera_pan_frames(photo, frames, size, step))


def camera_pan_frames(photo: np.ndarray, frames: int | None, size: tuple[int, int] = (240, 320), step: int = 12):
    """`camera_pan`'s frames one at a time, for as long as asked (``frames=None``: without end, as a camera)."""
    height, width = size
    scene = cv2.resize(photo, (width * 2, height * 2), interpolation=cv2.INTER_AREA)
    index = 0
    while frames is None or index < frames:
        x = (index * step) % (2 * width)
        x = x if x <= width else 2 * width - x
        y = x * height // (2 * width)  # down by up to half the frame's height as it goes right
        yield np.ascontiguousarray(scene[y : y + height, x : x + width])
        index += 1
