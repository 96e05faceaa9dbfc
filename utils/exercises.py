"""Self-checks for the notebooks' write-code exercises: call one with your answer; it prints pass, or what is off.

Each check works the answer out itself with the series' own functions, compares, and returns True on a pass, so a
solution cell can ``assert`` it (CI runs every solution that way). A check never shows the solution: its messages
say what differs and where to look.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

PASS, NOT_YET = "Pass:", "Not yet:"


def _verdict(problems: list[str], success: str) -> bool:
    """Print the first problem (one at a time, as a teacher would say it) or the success line; True on success."""
    print(f"{NOT_YET} {problems[0]}" if problems else f"{PASS} {success}")
    return not problems


def check_dynamic_sizes(outputs: Sequence, prompts: int = 3) -> bool:
    """01, exercise 1: the raw decoder's outputs for ``prompts`` prompts of one point each."""
    masks, ious = np.asarray(outputs[0]), np.asarray(outputs[1])  # a compiled model's result, or a list
    want_masks, want_ious = (prompts, 4, 256, 256), (prompts, 4)
    problems = []
    if masks.shape[:1] == (1,) and prompts > 1:
        problems.append(f"the outputs hold one prompt, {masks.shape}: stack the {prompts} prompts along the first axis")
    elif masks.shape != want_masks:
        problems.append(f"masks have shape {masks.shape}; the decoder gives 4 candidates of 256x256 logits per prompt")
    elif ious.shape != want_ious:
        problems.append(f"IoUs have shape {ious.shape}: one predicted IoU per candidate and prompt")
    return _verdict(problems, f"masks {masks.shape} and IoUs {ious.shape}: the open sizes followed the input")


def check_weights_on_disk(fp16_bin: str | Path, f32_bin: str | Path) -> bool:
    """01, exercise 2: the decoder's weights saved with and without FP16 compression."""
    fp16_size, f32_size = Path(fp16_bin).stat().st_size, Path(f32_bin).stat().st_size
    ratio = f32_size / fp16_size
    problems = []
    if ratio < 1:
        problems.append(f"the first file is the larger ({fp16_size} against {f32_size} bytes): pass the FP16 one first")
    elif ratio < 1.5:
        problems.append(f"a ratio of {ratio:.2f}: was the second one saved with compress_to_fp16=False?")
    return _verdict(problems, f"f32 takes {ratio:.2f}x the bytes of FP16")


def check_mask_iou(mask_iou: Callable[[np.ndarray, np.ndarray], float]) -> bool:
    """02, exercise 1: your ``mask_iou(a, b)`` against the series' on nested, disjoint, partial and empty masks."""
    from utils.accuracy import mask_iou as reference

    rng = np.random.default_rng(0)
    whole = np.zeros((40, 60), bool)
    whole[5:35, 10:50] = True
    part = whole.copy()
    part[5:20] = False
    cases = {
        "a mask and a part of it": (whole, part),
        "two random masks": (rng.random((40, 60)) > 0.5, rng.random((40, 60)) > 0.3),
        "two masks that do not touch": (whole, ~whole),
        "a mask and itself": (part, part),
        "two empty masks": (np.zeros((40, 60), bool), np.zeros((40, 60), bool)),
    }
    problems = []
    for name, (a, b) in cases.items():
        try:
            yours = float(mask_iou(a, b))
        except Exception as error:  # noqa: BLE001 - the learner's code may fail in any way: say how
            problems.append(f"on {name} it raised {type(error).__name__}: {error}")
            continue
        if not np.isclose(yours, reference(a, b)):
            problems.append(f"on {name} it gives {yours:.4f}: is it the shared pixels over the covered ones?")
    return _verdict(problems, f"your mask_iou agrees on {len(cases)} cases, two empty masks included")


def check_refinement(
    predictor, scores: Sequence[float], start=(500, 375), extra_points=((600, 400), (700, 450), (800, 500))
) -> bool:
    """02, exercise 2: each round's score from the click-then-refine loop, run again here to compare."""
    points, logits, expected = [list(start)], None, []
    for point in extra_points:
        points.append(list(point))
        _, round_scores, logits = predictor.predict(
            point_coords=np.array(points), point_labels=np.ones(len(points)), mask_input=logits, multimask_output=False
        )
        expected.append(float(round_scores[0]))
    problems = []
    if len(scores) != len(expected):
        problems.append(f"{len(scores)} scores for {len(expected)} rounds: one score per round")
    else:
        for number, (yours, want) in enumerate(zip(scores, expected), start=1):
            if not np.isclose(float(np.ravel(yours)[0]), want, atol=1e-3):
                problems.append(
                    f"round {number}'s score differs: each round adds one point to the earlier ones and "
                    f"passes the last round's low-resolution logits (predict's third output) as mask_input, "
                    f"with multimask_output=False"
                )
                break
    return _verdict(problems, f"the {len(expected)} rounds give the same scores")


def check_without_padding(decoder_inputs: Mapping[str, np.ndarray]) -> bool:
    """02, exercise 4: decoder inputs with the click alone, no padding point."""
    coords, labels = np.asarray(decoder_inputs["point_coords"]), np.asarray(decoder_inputs["point_labels"])
    problems = []
    if -1 in labels:
        problems.append(f"labels {labels.tolist()}: the prompt still holds the padding point (label -1)")
    elif coords.shape != (1, 1, 2) or labels.ravel().tolist() != [1]:
        problems.append(f"point_coords {coords.shape}, labels {labels.tolist()}: one prompt of one foreground point")
    return _verdict(problems, "the click alone, labelled 1")


def check_box_and_point_inputs(decoder_inputs: Mapping[str, np.ndarray], point, box, image_shape) -> bool:
    """03, exercise 2: the decoder inputs for one negative point and a box, built by hand."""
    from utils.transforms import apply_boxes, apply_coords

    coords = np.asarray(decoder_inputs["point_coords"])
    labels = np.asarray(decoder_inputs["point_labels"])
    corners = apply_boxes(np.asarray(box, np.float32)[None], image_shape[:2]).reshape(2, 2)
    expected = np.concatenate([apply_coords(np.asarray(point, np.float32).reshape(1, 2), image_shape[:2]), corners])
    problems = []
    if labels.ravel().tolist() != [0, 2, 3]:
        problems.append(
            f"labels {labels.ravel().tolist()}: a background point is 0, a box's corners are 2 and 3, and "
            "with a box there is no padding point (-1)"
        )
    elif coords.shape != (1, 3, 2):
        problems.append(f"point_coords has shape {coords.shape}: one prompt (the first axis) of three points")
    elif not np.allclose(coords[0], expected, atol=0.5):
        problems.append(
            "the coordinates are not in the 1024 frame: map the point with apply_coords and the box "
            "with apply_boxes, point first, then the corners"
        )
    return _verdict(problems, "one prompt: the point, then the box's corners, labels 0, 2, 3")


def check_undo(widget, first_point) -> bool:
    """04, exercise 1: the widget's prompts after two points and an undo."""
    problems = []
    if [list(map(float, point)) for point in widget.points] != [list(map(float, first_point))]:
        problems.append(f"widget.points is {widget.points}: after two points and one undo, only the first is left")
    elif list(widget.labels) != [1]:
        problems.append(f"widget.labels is {widget.labels}: the first point was a foreground point (label 1)")
    return _verdict(problems, "undo took back the last point only")


def check_click_latency(widget_ms: float, predict_ms: float) -> bool:
    """04, exercise 2: the widget's milliseconds per click against one ``predict``."""
    problems = []
    if min(widget_ms, predict_ms) <= 0:
        problems.append("a time is not positive: take time.perf_counter() before and after")
    elif widget_ms > 5 * predict_ms:
        problems.append(
            f"{widget_ms:.0f} ms per click against {predict_ms:.0f} ms: is that the time of every click "
            "together? divide by the number of clicks"
        )
    return _verdict(problems, f"{widget_ms:.0f} ms per click in the widget, {predict_ms:.0f} ms for one predict")


def check_largest_masks(largest: Sequence[Mapping], anns: Sequence[Mapping], count: int = 10) -> bool:
    """05, exercise 1: the ``count`` records with the largest area, largest first."""
    want = sorted((record["area"] for record in anns), reverse=True)[:count]
    yours = [record["area"] for record in largest]
    problems = []
    if len(yours) != len(want):
        problems.append(f"{len(yours)} records: keep the {len(want)} largest")
    elif yours != want:
        problems.append("these are not the largest areas, largest first: check what you sort on, and in which order")
    elif any(record["area"] != np.count_nonzero(record["segmentation"]) for record in largest):
        problems.append("an 'area' differs from its segmentation's pixel count")
    sizes = f"from {yours[0]} pixels down to {yours[-1]}" if yours else "none: the generator kept no mask"
    return _verdict(problems, f"the {len(want)} largest masks, {sizes}")


def check_asymmetric_quantization(quantize: Callable, dequantize: Callable) -> bool:
    """06, exercise 1: ``quantize(x) -> (q, scale, zero_point)`` and ``dequantize(q, scale, zero_point)``."""
    rng = np.random.default_rng(0)
    x = np.maximum(rng.normal(0.5, 1.0, (64, 64)), -0.17).astype(np.float32)  # like a GELU's output: above -0.17
    q, scale, zero_point = quantize(x)
    q = np.asarray(q)
    error = np.abs(dequantize(q, scale, zero_point) - x).max()
    problems = []
    if q.dtype != np.uint8:
        problems.append(f"q is {q.dtype}: asymmetric INT8 stores uint8, 0 to 255")
    elif not np.isclose(scale, (x.max() - x.min()) / 255, rtol=1e-3):
        problems.append(f"scale {scale:.3g}: the range (max - min) over the 255 steps between 256 levels")
    elif error > scale / 2 * 1.001:
        problems.append(
            f"the round trip is off by {error:.3g}, more than half a step ({scale / 2:.3g}): check the "
            "zero point's sign and that dequantize subtracts it before scaling"
        )
    return _verdict(problems, f"every error within half a step ({error:.2e} <= {scale / 2:.2e})")


def check_one_scale_error(w: np.ndarray, relative_error: float) -> bool:
    """06, exercise 2: the relative error of ``w``'s INT8 round trip with one scale for the whole matrix."""
    scale = np.abs(w).max() / 127
    want = np.linalg.norm(np.clip(np.round(w / scale), -127, 127) * scale - w) / np.linalg.norm(w)
    problems = []
    if not np.isclose(relative_error, want, rtol=1e-3):
        problems.append(
            f"{relative_error:.3e}, where one scale gives another: use scale = np.abs(w).max() / 127 "
            "(one number), and the norm of the difference over the norm of w"
        )
    return _verdict(problems, f"one scale for the matrix: relative error {want:.2e}")


def check_per_prompt_times(per_prompt_ms: Mapping[int, float], batches: Sequence[int] = (1, 4, 16)) -> bool:
    """07, exercise 1: milliseconds per prompt at each batch size."""
    problems = []
    if sorted(per_prompt_ms) != sorted(batches):
        problems.append(f"batch sizes {sorted(per_prompt_ms)}: time {list(batches)}")
    elif min(per_prompt_ms.values()) <= 0:
        problems.append("a time is not positive")
    elif per_prompt_ms[max(batches)] / per_prompt_ms[min(batches)] > max(batches) / 2:
        problems.append("the largest batch's figure grows with the batch: divide each call's time by its batch size")
    return _verdict(
        problems, ", ".join(f"batch {b}: {ms:.1f} ms per prompt" for b, ms in sorted(per_prompt_ms.items()))
    )


def check_single_mask_choice(best: int, outputs: Mapping[str, np.ndarray]) -> bool:
    """08, exercise 1: which of the decoder's four outputs SAM 2 keeps for ``multimask_output=False``."""
    logits = np.asarray(outputs["masks"])[0, 0]
    stability = (logits > 0.05).sum() / max((logits > -0.05).sum(), 1)
    want = 0 if stability >= 0.98 else 1 + int(np.argmax(np.asarray(outputs["iou_predictions"])[0, 1:]))
    problems = []
    if int(best) != want:
        problems.append(
            f"output {best}, where the rule picks another: output 0's stability is {stability:.3f}; below "
            "0.98 the choice is among outputs 1 to 3, by predicted IoU"
        )
    return _verdict(problems, f"output {want} (output 0's stability {stability:.3f})")


def check_filtered_coco(filtered_path: str | Path, coco_path: str | Path, min_area: int, min_score: float) -> bool:
    """10, exercise: a COCO file with the annotations of ``coco_path`` whose area is at least ``min_area`` pixels and
    whose predicted IoU is at least ``min_score``, nothing else changed; pycocotools must load it."""
    import contextlib
    import io
    import json

    from pycocotools.coco import COCO

    source = json.loads(Path(coco_path).read_text())
    by_id = {annotation["id"]: annotation for annotation in source["annotations"]}
    want = [
        key
        for key, annotation in by_id.items()
        if annotation["area"] >= min_area and annotation["predicted_iou"] >= min_score
    ]
    problems = []
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
            filtered = COCO(str(filtered_path)).dataset
    except Exception as error:  # noqa: BLE001 - whatever pycocotools says is the message
        problems.append(f"pycocotools cannot load {filtered_path}: {type(error).__name__}: {error}")
        return _verdict(problems, "")
    yours = [annotation.get("id") for annotation in filtered.get("annotations", [])]
    if sorted(yours) != sorted(want):
        extra, missing = len(set(yours) - set(want)), len(set(want) - set(yours))
        problems.append(
            f"{len(yours)} annotations where {len(want)} pass both thresholds ({extra} too many, {missing} missing): "
            "keep those with area >= min_area and predicted_iou >= min_score"
        )
    elif filtered.get("images") != source["images"] or filtered.get("categories") != source["categories"]:
        problems.append("the images or categories changed: keep them as they are, so every image stays listed")
    elif any(annotation != by_id[annotation["id"]] for annotation in filtered["annotations"]):
        problems.append("an annotation changed on its way through: copy the kept ones as they are")
    kept = f"{len(want)} of {len(source['annotations'])} annotations kept"
    return _verdict(problems, kept + ("" if source["annotations"] else ": the job kept no mask, so none to filter"))


def check_memory_frames(memory_frames: Callable[[int], int], num_maskmem: int, last_frame: int = 40) -> bool:
    """09, exercise 1: how many memory frames the memory attention reads on frame ``frame_idx`` of a track prompted on
    frame 0 only: the prompted frame, and the tracked frames before this one, at most ``num_maskmem - 1``."""
    problems = []
    for frame_idx in range(1, last_frame + 1):
        want = 1 + min(frame_idx - 1, num_maskmem - 1)
        got = memory_frames(frame_idx)
        if got == want:
            continue
        if got == want - 1:
            problems.append(f"frame {frame_idx}: {got}, one short: the prompted frame's memory is read too")
        elif frame_idx >= num_maskmem and got > want:
            problems.append(
                f"frame {frame_idx}: {got}; the window stops growing: at most num_maskmem - 1 = {num_maskmem - 1} "
                "tracked frames besides the prompted one"
            )
        else:
            problems.append(
                f"frame {frame_idx}: {got}; frame 1 reads only frame 0's memory, each frame after it one more"
            )
        break
    return _verdict(problems, f"1 memory frame on frame 1, {num_maskmem} from frame {num_maskmem} on")
