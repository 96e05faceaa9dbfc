"""`OVSam2VideoPredictor` against transformers' `Sam2VideoModel` / `EdgeTamVideoModel` on the same seeded weights.

The case the issue names: a clip the tests make (a camera panning over a photo), two objects, a click on one and a
box on the other on frame 0, propagation, then a correcting click on a later frame and propagation from there.
Both sides read the same pixels (`utils.transforms.sam2_encoder_input`), so what is compared is the tracking; every
frame's masks must reach IoU 0.99 at the video's size.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.torch_reference import transformers_video_session
from tests.helpers import DATA, F32, camera_clip
from utils.accuracy import PARITY_MIN_MASK_IOU, mask_iou
from utils.checkpoints import load_sam
from utils.convert import ensure_video_ir
from utils.transforms import read_rgb_image
from utils.video_predictor import FrameSpans, OVSam2VideoPredictor

FRAMES, CORRECTED = 5, 2
CLICK, BOX, CORRECTION = [120, 100], [150, 60, 260, 170], [130, 110]
LOGIT_TOLERANCE = 5e-4


@pytest.fixture(scope="module")
def clip():
    return camera_clip(FRAMES)


@pytest.fixture(scope="module", params=["sam2.1_hiera_tiny", "edgetam"])
def pair(request, sam2_models_dir):
    folder = ensure_video_ir(request.param, sam2_models_dir, compress_to_fp16=False, show_progress=False)
    return load_sam(request.param, video=True), OVSam2VideoPredictor(folder, config=F32)


def reference_tracks(model, frames: list[np.ndarray]) -> dict[int, np.ndarray]:
    """transformers' mask logits [objects, H, W] per frame for the issue's case."""
    height, width = frames[0].shape[:2]
    processor, session = transformers_video_session(model, frames)
    logits = {}

    def keep(output):
        full = processor.post_process_masks([output.pred_masks], original_sizes=[[height, width]], binarize=False)[0]
        logits[output.frame_idx] = full[:, 0].numpy()

    with torch.no_grad():
        processor.add_inputs_to_inference_session(
            session, frame_idx=0, obj_ids=1, input_points=[[[CLICK]]], input_labels=[[[1]]]
        )
        model(session, frame_idx=0)
        processor.add_inputs_to_inference_session(session, frame_idx=0, obj_ids=2, input_boxes=[[BOX]])
        model(session, frame_idx=0)
        for output in model.propagate_in_video_iterator(session):
            keep(output)
        processor.add_inputs_to_inference_session(
            session,
            frame_idx=CORRECTED,
            obj_ids=1,
            input_points=[[[CORRECTION]]],
            input_labels=[[[0]]],
            clear_old_inputs=False,
        )
        keep(model(session, frame_idx=CORRECTED))
        for output in model.propagate_in_video_iterator(session, start_frame_idx=CORRECTED + 1):
            keep(output)
    return logits


def our_tracks(predictor: OVSam2VideoPredictor, frames: list[np.ndarray]) -> dict[int, np.ndarray]:
    """Our mask logits [objects, H, W] per frame for the same case, through sam2's calls."""
    state = predictor.init_state(frames)
    predictor.add_new_points_or_box(state, 0, 1, points=[CLICK], labels=[1])
    predictor.add_new_points_or_box(state, 0, 2, box=BOX)
    tracks = {frame: logits[:, 0] for frame, _, logits in predictor.propagate_in_video(state)}
    _, obj_ids, logits = predictor.add_new_points_or_box(
        state, CORRECTED, 1, points=[CORRECTION], labels=[0], clear_old_points=False
    )
    assert obj_ids == [1, 2]
    tracks[CORRECTED] = logits[:, 0]
    for frame, _, logits in predictor.propagate_in_video(state, start_frame_idx=CORRECTED + 1):
        tracks[frame] = logits[:, 0]
    return tracks


def test_two_objects_a_box_and_a_correction_track_as_transformers(pair, clip):
    """Every frame's masks at IoU 0.99 (the issue's bar), and the logits within 0.05% of their range: random
    weights give masks so alike from frame to frame that decoding without the tracked frames' memory still reached
    IoU 0.995 with SAM 2.1 tiny, but moved the logits by 0.2% to 0.4% of their range (as is: 0.001%)."""
    model, predictor = pair
    expected, ours = reference_tracks(model, clip), our_tracks(predictor, clip)
    assert sorted(ours) == sorted(expected) == list(range(FRAMES))
    for frame in range(FRAMES):
        assert ours[frame].shape == expected[frame].shape == (2, *clip[0].shape[:2])
        for index in range(2):
            iou = mask_iou(ours[frame][index] > 0, expected[frame][index] > 0)
            assert iou >= PARITY_MIN_MASK_IOU, (frame, index, iou)
        error = np.abs(ours[frame] - expected[frame]).max() / np.ptp(expected[frame])
        assert error < LOGIT_TOLERANCE, (frame, error)


SETTINGS = {
    "num_maskmem": 7,
    "max_object_pointers_in_encoder": 16,
    "multimask_output_in_sam": True,
    "multimask_min_pt_num": 0,
    "multimask_max_pt_num": 1,
    "multimask_output_for_tracking": True,
    "dynamic_multimask_via_stability": True,
    "dynamic_multimask_stability_delta": 0.05,
    "dynamic_multimask_stability_thresh": 0.98,
    "memory_in_bfloat16": False,
    "memory_encoded_per_object": False,
    "mask_downsample_weight": [0.0625] * 16,
    "mask_downsample_bias": [0.0],
}


def stand_in_predictor() -> OVSam2VideoPredictor:
    """The predictor's bookkeeping on stand-in networks of the right shapes (no IR): for what does not depend on
    the numbers, at no cost. The memory attention records how many memory frames and pointers it was given."""
    predictor = OVSam2VideoPredictor.__new__(OVSam2VideoPredictor)
    predictor.settings = SETTINGS
    predictor.no_object_pointer = np.zeros(256, np.float32)
    predictor.no_memory = np.zeros((1, 256, 1, 1), np.float32)
    predictor.encoder = lambda pixels: [
        np.zeros((1, 256, 64, 64), np.float32),
        np.zeros((1, 32, 256, 256), np.float32),
        np.zeros((1, 64, 128, 128), np.float32),
    ]
    predictor.clicks = []

    def decoder(inputs):
        predictor.clicks.append(int((inputs[4] >= 0).sum()))  # the prompt's points, padding (-1) left out
        return {
            "masks": np.ones((1, 4, 256, 256), np.float32),
            "iou_predictions": np.ones((1, 4), np.float32),
            "object_score_logits": np.ones((1, 1), np.float32),
            "object_pointers": np.zeros((1, 4, 256), np.float32),
        }

    predictor.decoder = decoder
    predictor.attended = []

    def memory_attention(inputs):
        predictor.attended.append((len(inputs[1]), len(inputs[3])))
        return [inputs[0]]

    predictor.memory_attention = memory_attention
    predictor.memory_encoder = lambda inputs: [np.zeros((len(inputs[1]), 512, 64), np.float32)]
    return predictor


def state_bytes(state) -> int:
    """The arrays a tracking state holds: every kept output, its memory, and the current frame's maps."""
    arrays = [array for _, maps in [state.features] for array in maps.values()]
    for obj in state.objects.values():
        for output in [*obj.prompted.values(), *obj.tracked.values()]:
            arrays += [array for array in (output.low_res, output.pointer, output.memory) if array is not None]
    return sum(array.nbytes for array in arrays)


def test_the_state_stops_growing_on_a_long_stream():
    """A camera-like stream of 60 frames: after the memory's window fills, the state holds the same bytes (and the
    tracked frames one run), and the memory attention sees at most the prompted frame and six tracked ones, and
    sixteen pointers. Kept: the fifteen frames after the prompted one (a reverse pass from it reads them), the fifteen
    before the current one and the current one."""
    predictor = stand_in_predictor()
    frame = np.zeros((24, 32, 3), np.uint8)
    state = predictor.init_state(frame for _ in range(60))
    predictor.add_new_points_or_box(state, 0, 1, points=[[10, 10]], labels=[1])
    sizes = {}
    for frame_idx, obj_ids, logits in predictor.propagate_in_video(state):
        assert obj_ids == [1] and logits.shape == (1, 1, 24, 32)
        sizes[frame_idx] = state_bytes(state)
    assert max(sizes) == 59, "the stream's end ends the propagation"
    assert sizes[35] == sizes[45] == sizes[59], "flat once the window leaves the frames kept by the prompt"
    assert max(memory for memory, _ in predictor.attended) == 7
    assert max(pointers for _, pointers in predictor.attended) == 16
    tracked = state.objects[1]
    assert sorted(tracked.tracked) == [*range(1, 16), *range(44, 60)]
    assert sorted(frame for frame, output in tracked.tracked.items() if output.memory is not None) == [
        *range(1, 7),
        *range(53, 60),
    ]
    assert (tracked.tracked_frames.starts, tracked.tracked_frames.ends) == ([1], [59])


def test_frame_spans_merge_runs_of_frames():
    spans = FrameSpans()
    for frame in (5, 7, 6, 1, 2, 9):
        spans.add(frame)
    assert (spans.starts, spans.ends) == ([1, 5, 9], [2, 7, 9])
    assert [frame for frame in range(11) if frame in spans] == [1, 2, 5, 6, 7, 9]
    spans.add(8)
    assert (spans.starts, spans.ends) == ([1, 5], [2, 9])


def test_a_correction_is_kept_when_a_later_one_tracks_again_what_was_forgotten():
    """Corrections on frames 20 and 35 of 40, each after a propagation: the second re-tracks frames 0 to 34 (their
    outputs were forgotten), and frame 20 is decoded with its click again, as transformers keeps its output."""
    predictor = stand_in_predictor()
    state = predictor.init_state([np.zeros((24, 32, 3), np.uint8)] * 40)
    predictor.add_new_points_or_box(state, 0, 1, points=[[10, 10]], labels=[1])
    list(predictor.propagate_in_video(state))
    predictor.add_new_points_or_box(state, 20, 1, points=[[12, 10]], labels=[0])
    list(predictor.propagate_in_video(state, start_frame_idx=21))
    predictor.clicks.clear()
    predictor.add_new_points_or_box(state, 35, 1, points=[[14, 10]], labels=[0])
    assert predictor.clicks.count(1) == 2, "frame 20's click replayed, then frame 35's"
    assert len(predictor.clicks) == 35, "frames 1 to 34 tracked again (the prompted frame 0 reused), then frame 35"


def test_an_object_added_after_a_long_pass_joins_without_error():
    predictor = stand_in_predictor()
    state = predictor.init_state([np.zeros((24, 32, 3), np.uint8)] * 40)
    predictor.add_new_points_or_box(state, 0, 1, points=[[10, 10]], labels=[1])
    list(predictor.propagate_in_video(state))
    frame_idx, obj_ids, logits = predictor.add_new_points_or_box(state, 30, 2, box=[2, 2, 20, 20])
    assert (frame_idx, obj_ids, logits.shape) == (30, [1, 2], (2, 1, 24, 32))
    assert [frame for frame, _, _ in predictor.propagate_in_video(state, start_frame_idx=30)] == list(range(30, 40))


def test_a_reverse_pass_after_a_forward_one_reads_the_frames_after_the_prompt():
    """Prompted on frame 10, tracked forwards to 39, then backwards: frame 9 attends to the prompted frame and the
    five tracked frames after it (11 to 15), and to their pointers and nine more (to frame 24), as sam2 and
    transformers do; had the forward pass forgotten them, it would see the prompted frame alone."""
    predictor = stand_in_predictor()
    state = predictor.init_state([np.zeros((24, 32, 3), np.uint8)] * 40)
    predictor.add_new_points_or_box(state, 10, 1, points=[[10, 10]], labels=[1])
    list(predictor.propagate_in_video(state))
    predictor.attended.clear()
    backwards = predictor.propagate_in_video(state, reverse=True, max_frame_num_to_track=1)
    assert [frame for frame, _, _ in backwards] == [10, 9]
    assert predictor.attended == [(6, 15)]


def test_frame_ranges_are_sam2s():
    predictor = stand_in_predictor()
    state = predictor.init_state([np.zeros((24, 32, 3), np.uint8)] * 10)
    predictor.add_new_points_or_box(state, 4, 1, points=[[10, 10]], labels=[1])

    def frames(**options):
        return [frame for frame, _, _ in predictor.propagate_in_video(state, **options)]

    assert frames(max_frame_num_to_track=0) == [4]
    assert frames(max_frame_num_to_track=0, reverse=True) == [4]
    assert frames(max_frame_num_to_track=2, reverse=True) == [4, 3, 2]
    assert frames(start_frame_idx=8) == [8, 9]
    assert frames(start_frame_idx=0, reverse=True) == []
    with pytest.raises(ValueError, match="first prompted on frame 4"):
        frames(start_frame_idx=2)
    with pytest.raises(ValueError, match="count of frames"):
        frames(max_frame_num_to_track=-1)


def test_bad_prompts_are_refused_with_what_to_do():
    predictor = stand_in_predictor()
    state = predictor.init_state([np.zeros((24, 32, 3), np.uint8)] * 3)
    with pytest.raises(ValueError, match="prompt an object first"):
        next(predictor.propagate_in_video(state))
    with pytest.raises(IndexError, match="0 to 2"):
        predictor.add_new_points_or_box(state, 3, 1, points=[[1, 1]], labels=[1])
    with pytest.raises(ValueError, match="outside the 32x24 frame"):
        predictor.add_new_points_or_box(state, 0, 1, points=[[40, 1]], labels=[1])
    with pytest.raises(ValueError, match="outside"):
        predictor.add_new_points_or_box(state, 0, 1, box=[0, 0, 33, 10])
    with pytest.raises(ValueError, match="box goes first"):
        predictor.add_new_points_or_box(state, 0, 1, box=[0, 0, 10, 10], clear_old_points=False)
    with pytest.raises(ValueError, match="labels"):
        predictor.add_new_points_or_box(state, 0, 1, points=[[1, 1]], labels=[2])
    with pytest.raises(KeyError, match="No object 5"):
        predictor.remove_object(state, 5)
    predictor.add_new_points_or_box(state, 0, 1, points=[[1, 1]], labels=[1])
    assert predictor.remove_object(state, 1) == []


def test_a_mask_prompt_is_taken_as_the_frames_output():
    predictor = stand_in_predictor()
    state = predictor.init_state([np.zeros((24, 32, 3), np.uint8)] * 2)
    mask = np.zeros((24, 32), bool)
    mask[4:12, 8:20] = True
    _, _, logits = predictor.add_new_mask(state, 0, 7, mask)
    assert mask_iou(logits[0, 0] > 0, mask) > 0.9


def test_video_benchmark_times_every_row_on_the_same_clip(sam2_models_dir):
    """`benchmarks.video.measure` on EdgeTAM with one object, on frame 7 (the memory full), on the tests' f32 IR:
    every row timed, its parts within its time, its rate the frame's work over it."""
    from benchmarks import video

    result = video.measure("edgetam", sam2_models_dir, camera_clip(8), objects=1, compress_to_fp16=False)
    rows = result["rows"]
    assert list(rows) == list(video.ROWS) and rows[video.ROWS[0]]["speed_up"] == 1.0
    for name, row in rows.items():
        assert set(row["parts"]) == set(video.PARTS), name
        assert 0 < sum(row["parts"].values()) <= row["seconds_per_frame"], name
        assert row["gmac_per_s"] == pytest.approx(result["work_gmac"]["frame"] / row["seconds_per_frame"])
    table = video.markdown({"objects": 1, "models": {"edgetam": result}})
    assert table.count("| edgetam | 1 |") == 3


def test_memory_benchmark_samples_each_tracker_and_reports_the_growth(sam2_models_dir):
    """`benchmarks.video_memory.measure` on a short stream with the tests' f32 IR: a sample every 2 frames for the
    OpenVINO tracker and after each frame for transformers' session, their growth the last sample less the first."""
    from benchmarks import video_memory

    photo = read_rgb_image(DATA / "truck.jpg")
    rows = video_memory.measure(
        "edgetam", sam2_models_dir, photo, frames=4, every=2, transformers_frames=3, compress_to_fp16=False
    )
    assert [sample["frame"] for sample in rows["OpenVINO f32"]["samples"]] == [2, 4]
    assert [sample["frame"] for sample in rows["transformers eager f32"]["samples"]] == [2, 3]
    for row in rows.values():
        first, last = row["samples"][0]["rss_mb"], row["samples"][-1]["rss_mb"]
        assert first > 100 and row["growth_mb"] == pytest.approx(last - first)
    result = {
        "cpu": {"cpu": "a CPU", "isa": {"avx2": True}},
        "cores": 2,
        "model_type": "edgetam",
        "frames": 4,
        "every": 2,
        "rows": rows,
    }
    table = video_memory.readme_markdown(result)
    assert "| OpenVINO f32 | 2 to 4 |" in table and "| transformers eager f32 | 2 to 3 |" in table
    with pytest.raises(ValueError, match="fewer than two samples"):
        video_memory.measure("edgetam", sam2_models_dir, photo, frames=3, every=2)
