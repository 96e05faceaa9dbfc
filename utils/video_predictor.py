"""`OVSam2VideoPredictor`: sam2's `SAM2VideoPredictor` calls on the OpenVINO IR of SAM 2.1 or EdgeTAM.

    predictor = OVSam2VideoPredictor(ensure_video_ir("edgetam"))
    state = predictor.init_state("clip.mp4")            # or a folder of frames, an array, a camera iterator
    predictor.add_new_points_or_box(state, frame_idx=0, obj_id=1, points=[[210, 350]], labels=[1])
    for frame_idx, obj_ids, mask_logits in predictor.propagate_in_video(state):
        masks = mask_logits > 0                             # [objects, 1, H, W] at the video's size

Each frame runs the image encoder once, then for every object the memory attention (the frame against the
object's memory bank), the decoder, and for all objects at once the memory encoder, which turns this frame's masks
into memory for the next frames (`utils.sam2_video_export` has the networks). What to put in the memory bank, and
how, is transformers' `Sam2VideoModel.forward` and its session (the reference the tests compare with), in NumPy:

- the memory: every prompted frame, and the ``num_maskmem - 1`` frames tracked just before (after, in reverse);
- the object pointers: the prompted frames up to this one and up to ``max_object_pointers_in_encoder - 1`` tracked
  frames before it, each with its distance in time;
- SAM 2.1's memory rounded to bfloat16, as transformers stores it.

Unlike transformers' session, the state keeps nothing else: no frames (they are read again from the video when
needed), no image features but the current frame's, and no outputs of tracked frames beyond those windows (around
the current frame, and around each prompted frame for a pass the other way), so a long video or a camera runs in
constant memory. Results are yielded, not kept. A correction on a frame whose window was forgotten tracks again
from the prompted frame before it, earlier corrections included (a frame's time per frame).

A prompt on a frame that tracking already went through corrects the track from there, as transformers does it: the
frame is decoded again with the prompt and with its memory, and the frames after it remember the corrected mask
(propagate again from ``frame_idx + 1``). sam2 keeps such a frame as a prompted frame
(``add_all_frames_to_correct_as_cond``); transformers, the reference here, does not.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import openvino as ov

from utils.ir_store import ENCODER_XML, VIDEO_CONFIG_FILE
from utils.model_spec import VIDEO_PARTS
from utils.precision import compile_config
from utils.predictor import (
    BOX_CORNER_LABELS,
    PADDING_LABEL,
    _validate_boxes,
    _validate_points,
    stability_score,
)
from utils.transforms import (
    IMAGE_SIZE,
    LOW_RES_MASK_SIZE,
    sam2_apply_coords,
    sam2_encoder_input,
    sam2_postprocess_masks,
)
from utils.video_frames import VideoFrames, video_frames

NO_OBJECT_SCORE = -1024.0
"""The mask logits of an object the decoder scores absent (transformers' ``NO_OBJ_SCORE``)."""
MASK_PROMPT_LOGITS = (20.0, -10.0)
"""A mask prompt's logits: scale and bias of the 0/1 mask (transformers' ``_use_mask_as_output``)."""


@dataclass
class FrameOutput:
    """What tracking keeps of one object on one frame."""

    low_res: np.ndarray | None
    """[256, 256] mask logits (`NO_OBJECT_SCORE` where the object is scored absent); None once a tracked frame is
    past (only a prompted frame's is shown again)."""
    pointer: np.ndarray
    """[256] object pointer."""
    score: float
    """Object score logit: above 0, the object is visible."""
    memory: np.ndarray | None = None
    """[T, 64] the frame's memory for this object, once encoded."""


class FrameSpans:
    """A set of frame indices kept as sorted runs of consecutive frames: tracking goes frame by frame, so a long
    video or an endless stream takes a few runs, not an entry per frame."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def __contains__(self, frame: int) -> bool:
        index = bisect.bisect_right(self.starts, frame) - 1
        return index >= 0 and frame <= self.ends[index]

    def add(self, frame: int) -> None:
        if frame in self:
            return
        index = bisect.bisect_right(self.starts, frame)  # the runs before index start at or before frame
        joins_left = index > 0 and self.ends[index - 1] == frame - 1
        joins_right = index < len(self.starts) and self.starts[index] == frame + 1
        if joins_left and joins_right:
            self.ends[index - 1] = self.ends.pop(index)
            del self.starts[index]
        elif joins_left:
            self.ends[index - 1] = frame
        elif joins_right:
            self.starts[index] = frame
        else:
            self.starts.insert(index, frame)
            self.ends.insert(index, frame)


@dataclass
class TrackedObject:
    obj_id: int
    points: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    """frame -> (coordinates [N, 2] in the 1024 frame, labels [N]): box corners (2, 3) first, then clicks."""
    masks: dict[int, np.ndarray] = field(default_factory=dict)
    """frame -> mask prompt, [1024, 1024] float 0/1."""
    prompted: dict[int, FrameOutput] = field(default_factory=dict)
    """Outputs of the frames prompted first (transformers' conditioning frames)."""
    tracked: dict[int, FrameOutput] = field(default_factory=dict)
    """Outputs of recent tracked frames: the pointers' window back from the last one, with memory for the memory's
    window (`OVSam2VideoPredictor._forget_beyond_windows`)."""
    tracked_frames: FrameSpans = field(default_factory=FrameSpans)
    """Every frame tracking went through (a prompt there corrects instead of starting)."""
    corrected: set[int] = field(default_factory=set)
    """Tracked frames whose kept output was decoded with their prompt (a correction): tracking them again, to restore
    what was forgotten (`OVSam2VideoPredictor._restore_window`), decodes them with it again."""
    new_inputs: bool = False


@dataclass
class VideoState:
    """One video's tracking state (`OVSam2VideoPredictor.init_state`)."""

    frames: VideoFrames
    objects: dict[int, TrackedObject] = field(default_factory=dict)
    features: tuple[int, dict[str, np.ndarray]] | None = None
    """The last encoded frame's index and its encoder maps."""

    @property
    def video_size(self) -> tuple[int, int]:
        return self.frames.size

    @property
    def num_frames(self) -> int | None:
        return self.frames.num_frames

    @property
    def obj_ids(self) -> list[int]:
        return list(self.objects)


class OVSam2VideoPredictor:
    """sam2's `SAM2VideoPredictor` interface on the IR folder that `utils.convert.ensure_video_ir` makes."""

    def __init__(self, folder: str | Path, device: str = "CPU", config: dict | None = None) -> None:
        folder = Path(folder)
        core, settings = ov.Core(), compile_config(config)
        self.encoder = core.compile_model(folder / ENCODER_XML, device, settings)
        parts = {part.name: core.compile_model(folder / part.xml, device, settings) for part in VIDEO_PARTS}
        self.memory_attention = parts["memory attention"]
        self.memory_encoder = parts["memory encoder"]
        self.decoder = parts["video decoder"]
        self.settings = json.loads((folder / VIDEO_CONFIG_FILE).read_text())
        self.no_object_pointer = np.array(self.settings["no_object_pointer"], dtype=np.float32)
        self.no_memory = np.array(self.settings["no_memory_embedding"], dtype=np.float32).reshape(1, -1, 1, 1)

    # --- sam2's calls

    def init_state(self, video) -> VideoState:
        """A tracking state on ``video``: a video file, a folder of JPEG/PNG frames, a list or array of RGB frames,
        or a live iterator of frames (`utils.video_frames.video_frames`). Nothing is decoded beyond the first frame."""
        return VideoState(video_frames(video))

    def reset_state(self, state: VideoState) -> None:
        """Forget every object and prompt (the video stays)."""
        state.objects.clear()

    def remove_object(self, state: VideoState, obj_id: int) -> list[int]:
        """Stop tracking ``obj_id``; returns the objects left."""
        self._object(state, obj_id)
        del state.objects[obj_id]
        return state.obj_ids

    def add_new_points_or_box(
        self,
        state: VideoState,
        frame_idx: int,
        obj_id: int,
        points=None,
        labels=None,
        clear_old_points: bool = True,
        box=None,
    ) -> tuple[int, list[int], np.ndarray]:
        """Prompt ``obj_id`` on ``frame_idx`` with clicks ([N, 2] (x, y) pixels, labels 1 or 0) and/or a box
        (x0, y0, x1, y1), then segment that frame: returns (frame_idx, obj_ids, mask logits [objects, 1, H, W]).
        With ``clear_old_points=False`` the clicks add to the frame's earlier ones (a box must come first)."""
        self._require_frame(state, frame_idx)
        clicks = _validate_points(points, labels)
        if clicks is None and box is None:
            raise ValueError("Give points with labels, a box, or both.")
        height, width = state.video_size
        coords, point_labels = [], []
        if box is not None:
            if not clear_old_points:
                raise ValueError("A box goes first: add it with clear_old_points=True, then the clicks.")
            corners = _validate_boxes(box, expected_single=True).reshape(2, 2)
            self._require_inside(corners, state.video_size, "box")
            coords.append(corners)
            point_labels.append(np.array(BOX_CORNER_LABELS, dtype=np.float32))
        if clicks is not None:
            self._require_inside(clicks[0], state.video_size, "point")
            coords.append(clicks[0])
            point_labels.append(clicks[1])
        coords = sam2_apply_coords(np.concatenate(coords), (height, width))
        point_labels = np.concatenate(point_labels)
        self._restore_window(state, frame_idx)  # before a new object joins: it has nothing to restore
        obj = state.objects.setdefault(obj_id, TrackedObject(obj_id))
        if not clear_old_points and frame_idx in obj.points:
            old_coords, old_labels = obj.points[frame_idx]
            coords, point_labels = np.concatenate([old_coords, coords]), np.concatenate([old_labels, point_labels])
        obj.points[frame_idx] = (coords, point_labels)
        obj.masks.pop(frame_idx, None)
        return self._prompt_frame(state, frame_idx, obj)

    def add_new_mask(
        self, state: VideoState, frame_idx: int, obj_id: int, mask: np.ndarray
    ) -> tuple[int, list[int], np.ndarray]:
        """Prompt ``obj_id`` on ``frame_idx`` with a mask (HxW, any size; nonzero inside), then segment that frame."""
        self._require_frame(state, frame_idx)
        mask = np.asarray(mask)
        if mask.ndim != 2 or min(mask.shape) == 0:
            raise ValueError(f"A mask prompt is an HxW array, got shape {mask.shape}.")
        self._restore_window(state, frame_idx)
        obj = state.objects.setdefault(obj_id, TrackedObject(obj_id))
        obj.masks[frame_idx] = mask_at_model_size(mask.astype(np.float32))
        obj.points.pop(frame_idx, None)
        return self._prompt_frame(state, frame_idx, obj)

    def propagate_in_video(
        self,
        state: VideoState,
        start_frame_idx: int | None = None,
        max_frame_num_to_track: int | None = None,
        reverse: bool = False,
    ) -> Iterator[tuple[int, list[int], np.ndarray]]:
        """Track every object frame by frame, yielding (frame_idx, obj_ids, mask logits [objects, 1, H, W]).

        From ``start_frame_idx`` (default: the earliest prompted frame) for ``max_frame_num_to_track`` frames (default:
        to the end; a live stream ends when its iterator does), backwards with ``reverse``."""
        prompted = [frame for obj in state.objects.values() for frame in obj.prompted]
        if start_frame_idx is None:
            if not prompted:
                raise ValueError("Nothing to track yet: prompt an object first (add_new_points_or_box).")
            start_frame_idx = min(prompted)
        self._require_frame(state, start_frame_idx)
        if not reverse:
            for obj in state.objects.values():
                first = min(obj.prompted, default=None)
                if first is not None and start_frame_idx < first:
                    raise ValueError(
                        f"Object {obj.obj_id} is first prompted on frame {first}: track forwards from there, or "
                        f"backwards from it with reverse=True (no object pointer precedes frame {start_frame_idx})."
                    )
        if max_frame_num_to_track is not None and max_frame_num_to_track < 0:
            raise ValueError(f"max_frame_num_to_track is a count of frames, got {max_frame_num_to_track}.")
        total = state.num_frames
        if reverse:
            if total is None:
                raise ValueError("A live stream can only be tracked forwards.")
            steps = max_frame_num_to_track if max_frame_num_to_track is not None else total
            last = max(start_frame_idx - steps, 0)
            order = range(start_frame_idx, last - 1, -1) if start_frame_idx > 0 else range(0)
        else:
            steps = max_frame_num_to_track if max_frame_num_to_track is not None else total
            last = None if steps is None else start_frame_idx + steps
            if total is not None:
                last = min(last, total - 1)
            order = range(start_frame_idx, last + 1) if last is not None else _count_from(start_frame_idx)
        for frame_idx in order:
            if not state.frames.has_frame(frame_idx):
                return  # a stream that ended: what was tracked stays
            low_res = self._run_frame(state, frame_idx, reverse)
            self._forget_beyond_windows(state, frame_idx)
            yield frame_idx, state.obj_ids, self._video_masks(state, low_res)

    # --- one frame, as transformers' Sam2VideoModel.forward

    def _prompt_frame(self, state: VideoState, frame_idx: int, obj: TrackedObject):
        obj.new_inputs = True
        low_res = self._run_frame(state, frame_idx, reverse=False)
        return frame_idx, state.obj_ids, self._video_masks(state, low_res)

    def _run_frame(self, state: VideoState, frame_idx: int, reverse: bool, replay: bool = False) -> np.ndarray:
        """Every object on ``frame_idx``: its mask logits [objects, 256, 256]; the outputs and memory stored. With
        ``replay`` (restoring forgotten frames), a frame that was corrected is decoded with its prompt again."""
        features = self._features(state, frame_idx)
        to_encode: list[tuple[FrameOutput, np.ndarray, bool]] = []
        masks = []
        for obj in state.objects.values():
            if not obj.new_inputs and frame_idx in obj.prompted:
                output, prompted = obj.prompted[frame_idx], True
            else:
                prompted, clicks, mask = False, None, None
                if obj.new_inputs:
                    prompted = frame_idx not in obj.tracked_frames
                    reverse = False if prompted else reverse
                    clicks, mask = obj.points.get(frame_idx), obj.masks.get(frame_idx)
                    obj.new_inputs = clicks is None and mask is None
                elif replay and frame_idx in obj.corrected:
                    clicks, mask = obj.points.get(frame_idx), obj.masks.get(frame_idx)
                if not prompted:
                    (obj.corrected.add if clicks is not None or mask is not None else obj.corrected.discard)(frame_idx)
                if mask is not None:
                    output, memory_mask = self._mask_as_output(features, mask)
                else:
                    output = self._decode(state, obj, frame_idx, features, prompted, clicks, reverse)
                    memory_mask = output.low_res
                (obj.prompted if prompted else obj.tracked)[frame_idx] = output
                to_encode.append((output, memory_mask, clicks is not None or mask is not None))
            if not prompted:
                obj.tracked_frames.add(frame_idx)
            masks.append(output.low_res)
        self._encode_memories(features, to_encode)
        return np.stack(masks) if masks else np.zeros((0, LOW_RES_MASK_SIZE, LOW_RES_MASK_SIZE), np.float32)

    def _features(self, state: VideoState, frame_idx: int) -> dict[str, np.ndarray]:
        """The encoder's three maps of ``frame_idx`` (the last frame's are kept, as transformers' cache of one)."""
        if state.features is None or state.features[0] != frame_idx:
            result = self.encoder(sam2_encoder_input(state.frames[frame_idx]))
            names = ("image_embeddings", "high_res_feats_0", "high_res_feats_1")
            state.features = (frame_idx, {name: np.asarray(result[index]) for index, name in enumerate(names)})
        return state.features[1]

    def _decode(self, state, obj, frame_idx, features, prompted, clicks, reverse) -> FrameOutput:
        """The decoder on the frame's map, conditioned on the object's memory unless this is its first prompt."""
        settings = self.settings
        embedding = features["image_embeddings"]
        if not prompted:
            embedding = self._attend_to_memory(state, obj, frame_idx, embedding, reverse)
        count = 0 if clicks is None else len(clicks[1])
        multimask = (
            settings["multimask_output_in_sam"]
            and (prompted or settings["multimask_output_for_tracking"])
            and settings["multimask_min_pt_num"] <= count <= settings["multimask_max_pt_num"]
        )
        coords, labels = _with_padding(clicks)
        masks, scores, object_score, pointers = self.decoder(
            [
                embedding,
                features["high_res_feats_0"],
                features["high_res_feats_1"],
                coords[None],
                labels[None],
                np.zeros((1, 1, LOW_RES_MASK_SIZE, LOW_RES_MASK_SIZE), np.float32),
                np.zeros(1, np.float32),
            ]
        ).values()
        masks, scores, pointers, score = masks[0], scores[0], pointers[0], float(object_score[0, 0])
        best = 1 + int(np.argmax(scores[1:]))
        if multimask:
            mask, pointer = masks[best], pointers[best]
        else:  # the single-mask token's pointer, its mask unless unstable (transformers' dynamic multimask)
            mask, pointer = masks[0], pointers[0]
            if settings["dynamic_multimask_via_stability"]:
                delta = settings["dynamic_multimask_stability_delta"]
                stability = np.nan_to_num(stability_score(masks[0], 0.0, delta), nan=1.0)
                if stability < settings["dynamic_multimask_stability_thresh"]:
                    mask = masks[best]
        return self._visible_or_not(mask, pointer, score)

    def _visible_or_not(self, mask: np.ndarray, pointer: np.ndarray, score: float) -> FrameOutput:
        if score > 0:
            return FrameOutput(np.array(mask, np.float32), np.array(pointer, np.float32), score)
        return FrameOutput(np.full(mask.shape, NO_OBJECT_SCORE, np.float32), self.no_object_pointer.copy(), score)

    def _mask_as_output(self, features, mask: np.ndarray) -> tuple[FrameOutput, np.ndarray]:
        """A mask prompt taken as the frame's output (transformers' ``_use_mask_as_output``): its logits, and the
        pointer the decoder gives for it on the map without memory; returns the output and the 1024x1024 logits
        the memory encoder takes."""
        scale, bias = MASK_PROMPT_LOGITS
        high_res = mask * scale + bias
        low_res = antialiased_resize(high_res, (LOW_RES_MASK_SIZE, LOW_RES_MASK_SIZE))
        weight = np.array(self.settings["mask_downsample_weight"], np.float32).reshape(4, 4)
        stride = IMAGE_SIZE // LOW_RES_MASK_SIZE
        blocks = mask.reshape(LOW_RES_MASK_SIZE, stride, LOW_RES_MASK_SIZE, stride)
        mask_input = np.einsum("aibj,ij->ab", blocks, weight) + self.settings["mask_downsample_bias"][0]
        coords, labels = _with_padding(None)
        _, scores, object_score, pointers = self.decoder(
            [
                features["image_embeddings"] - self.no_memory,
                features["high_res_feats_0"],
                features["high_res_feats_1"],
                coords[None],
                labels[None],
                mask_input[None, None].astype(np.float32),
                np.ones(1, np.float32),
            ]
        ).values()
        # the decoder's pointer where both its own score and the mask say the object is there
        visible = bool((mask > 0).any())
        decoded = visible and float(object_score[0, 0]) > 0
        pointer = pointers[0, 1 + int(np.argmax(scores[0, 1:]))] if decoded else self.no_object_pointer
        score = scale * float(visible) + bias
        return FrameOutput(low_res.astype(np.float32), np.array(pointer, np.float32), score), high_res

    def _attend_to_memory(self, state, obj, frame_idx, embedding, reverse) -> np.ndarray:
        """The frame's map conditioned on the object's memory bank (transformers'
        ``_prepare_memory_conditioned_features``)."""
        settings, sign = self.settings, -1 if reverse else 1
        num_maskmem = settings["num_maskmem"]
        memories, time_index = [], []
        for output in obj.prompted.values():
            memories.append(output.memory)
            time_index.append(num_maskmem - 1)  # a prompted frame: the temporal encoding's last row
        for distance in range(num_maskmem - 1, 0, -1):
            output = obj.tracked.get(frame_idx - sign * distance)
            if output is not None and output.memory is not None:
                memories.append(output.memory)
                time_index.append(distance - 1)
        streaming = state.num_frames is None
        most = settings["max_object_pointers_in_encoder"]
        if not streaming:
            most = min(state.num_frames, most)
        offsets, pointers = [], []
        for frame, output in obj.prompted.items():
            if (frame >= frame_idx) if reverse else (frame <= frame_idx):
                offsets.append((frame_idx - frame) * sign)
                pointers.append(output.pointer)
        for distance in range(1, most):
            frame = frame_idx - sign * distance
            if frame < 0 or (not streaming and frame >= state.num_frames):
                break
            if frame in obj.tracked:
                offsets.append(distance)
                pointers.append(obj.tracked[frame].pointer)
        inputs = [
            embedding,
            np.stack(memories),
            np.array(time_index, np.int64),
            np.stack(pointers),
            np.array(offsets, np.float32) / max(most - 1, 1),
        ]
        return np.asarray(self.memory_attention(inputs)[0])

    def _encode_memories(self, features, to_encode: list[tuple[FrameOutput, np.ndarray, bool]]) -> None:
        """The memory encoder on this frame's new outputs, in one call per mask size and thresholding. A mask made
        from a prompt is thresholded, a tracked one goes through a sigmoid; SAM 2.1 (as transformers runs it)
        thresholds every object's where any was prompted, EdgeTAM each by its own."""
        if not to_encode:
            return
        any_prompted = any(from_prompt for _, _, from_prompt in to_encode)
        groups: dict[tuple, list[tuple[FrameOutput, np.ndarray]]] = {}
        for output, mask, from_prompt in to_encode:
            binarize = from_prompt if self.settings["memory_encoded_per_object"] else any_prompted
            groups.setdefault((mask.shape, binarize), []).append((output, mask))
        for (_, binarize), group in groups.items():
            masks = np.stack([mask for _, mask in group])[:, None].astype(np.float32)
            scores = np.array([[output.score] for output, _ in group], np.float32)
            flag = np.array([float(binarize)], np.float32)
            memory = np.asarray(self.memory_encoder([features["image_embeddings"], masks, scores, flag])[0])
            if self.settings["memory_in_bfloat16"]:
                memory = round_to_bfloat16(memory)
            for (output, _), rows in zip(group, memory):
                output.memory = rows

    def _windows(self) -> tuple[int, int]:
        """How many tracked frames back the memory attention reads memory from, and pointers from."""
        return self.settings["num_maskmem"] - 1, self.settings["max_object_pointers_in_encoder"] - 1

    def _forget_beyond_windows(self, state: VideoState, frame_idx: int) -> None:
        """Drop what no later frame can attend to: tracked outputs beyond the pointers' window of ``frame_idx`` and of
        every prompted frame (a pass the other way from a prompted frame reads its neighbours), their memory beyond
        the memory's window, and every tracked frame's mask (only a prompted frame's is shown again)."""
        memory_window, pointer_window = self._windows()
        for obj in state.objects.values():
            anchors = [frame_idx, *obj.prompted]
            for frame, output in list(obj.tracked.items()):
                distance = min(abs(frame - anchor) for anchor in anchors)
                if distance > pointer_window:
                    del obj.tracked[frame]
                    continue
                output.low_res = None
                if distance > memory_window:
                    output.memory = None

    def _restore_window(self, state: VideoState, frame_idx: int) -> None:
        """Before a correction on a frame tracking went through: the outputs of the frames before it that its
        memory reads, tracked again from the last prompted frame before them where they were forgotten (a long way
        back, that costs a frame's time per frame)."""
        memory_window, pointer_window = self._windows()
        objects = state.objects.values()

        def forgotten(obj: TrackedObject, frame: int) -> bool:
            output = obj.tracked.get(frame)
            needs_memory = frame_idx - frame <= memory_window
            return frame in obj.tracked_frames and (output is None or (needs_memory and output.memory is None))

        needed = range(max(frame_idx - pointer_window, 0), frame_idx)
        if not any(forgotten(obj, frame) for obj in objects for frame in needed):
            return
        starts = [frame for obj in objects for frame in obj.prompted if frame < frame_idx]
        for frame in range(min(starts, default=frame_idx), frame_idx):
            self._run_frame(state, frame, reverse=False, replay=True)
            self._forget_beyond_windows(state, frame)

    def _video_masks(self, state: VideoState, low_res: np.ndarray) -> np.ndarray:
        return sam2_postprocess_masks(low_res[:, None], state.video_size)

    # --- checks

    @staticmethod
    def _object(state: VideoState, obj_id: int) -> TrackedObject:
        if obj_id not in state.objects:
            known = ", ".join(map(str, state.objects)) or "none yet"
            raise KeyError(f"No object {obj_id} was prompted (objects: {known}).")
        return state.objects[obj_id]

    @staticmethod
    def _require_frame(state: VideoState, frame_idx: int) -> None:
        if not isinstance(frame_idx, (int, np.integer)) or not state.frames.has_frame(int(frame_idx)):
            total = state.num_frames
            extent = f"0 to {total - 1}" if total is not None else "a frame the stream has reached"
            raise IndexError(f"frame_idx {frame_idx} is not a frame of the video ({extent}).")

    @staticmethod
    def _require_inside(coords: np.ndarray, size: tuple[int, int], what: str) -> None:
        height, width = size
        outside = (coords[:, 0] < 0) | (coords[:, 0] > width) | (coords[:, 1] < 0) | (coords[:, 1] > height)
        if outside.any():
            raise ValueError(
                f"A {what} at {coords[outside][0].tolist()} is outside the {width}x{height} frame (x, y in pixels)."
            )


def _with_padding(clicks: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
    """A prompt's points as the decoder takes them: transformers' prompt encoder appends one padding point; with no
    prompt it starts from one and pads it, so there are two."""
    pad = 1 if clicks is not None else 2
    coords = [np.zeros((pad, 2), np.float32)]
    labels = [np.full(pad, PADDING_LABEL, np.float32)]
    if clicks is not None:
        coords.insert(0, clicks[0])
        labels.insert(0, clicks[1])
    return np.concatenate(coords).astype(np.float32), np.concatenate(labels).astype(np.float32)


def _count_from(start: int) -> Iterator[int]:
    frame = start
    while True:
        yield frame
        frame += 1


def round_to_bfloat16(values: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest bfloat16 (ties to even), kept as float32: torch's ``.to(bfloat16)``."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounded = (bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
    return rounded.view(np.float32)


def mask_at_model_size(mask: np.ndarray) -> np.ndarray:
    """A mask prompt at 1024x1024, 0/1: resized with an antialiasing bilinear filter and thresholded at 0.5, as
    transformers' processor does (a mask already 1024x1024 is kept as it is, nonzero as 1)."""
    if mask.shape == (IMAGE_SIZE, IMAGE_SIZE):
        return (mask != 0).astype(np.float32)
    return (antialiased_resize((mask != 0).astype(np.float32), (IMAGE_SIZE, IMAGE_SIZE)) >= 0.5).astype(np.float32)


def antialiased_resize(plane: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """torch's ``interpolate(mode="bilinear", align_corners=False, antialias=True)`` on one [H, W] plane, as two
    matrix products (its triangle filter, widened by the scale when shrinking)."""
    rows = _resize_weights(plane.shape[0], size[0])
    cols = _resize_weights(plane.shape[1], size[1])
    return (rows @ plane.astype(np.float64) @ cols.T).astype(np.float32)


def _resize_weights(source: int, target: int) -> np.ndarray:
    scale = source / target
    support = max(scale, 1.0)
    weights = np.zeros((target, source))
    for index in range(target):
        center = (index + 0.5) * scale
        low, high = max(int(center - support + 0.5), 0), min(int(center + support + 0.5), source)
        taps = np.arange(low, high)
        weight = np.clip(1.0 - np.abs((taps - center + 0.5) / support), 0.0, None)
        weights[index, low:high] = weight / weight.sum()
    return weights
