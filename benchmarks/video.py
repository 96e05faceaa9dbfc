"""Tracking's speed and work per frame, part by part: transformers' video model in eager PyTorch at f32 against
the OpenVINO tracker (`utils.video_predictor`) at f32 and at the CPU's default precision, on the same clip.

A tracked frame runs the image encoder once, then for each object the memory attention (the frame's 4096 tokens
against every memory frame's tokens and the object pointers) and the decoder, then the memory encoder. The work is
torch's count (`benchmarks.report.count_gmac`, attention included) on the wrappers that are exported
(`utils.sam2_export`, `utils.sam2_video_export`), for a frame with the memory full: `num_maskmem` memory frames
(the prompted one and the six before) and `max_object_pointers_in_encoder` pointers.

The clip is made from a photo (`utils.video_frames.camera_pan`, no real clip ships here); object 1 is a click, object
2 a box, both on frame 0. Times are per tracked frame once the memory is full (from frame `num_maskmem` on), each
part's share measured around its calls; GMAC/s is the frame's work over its time.

    python -m benchmarks.video --model-types sam2.1_hiera_tiny edgetam --objects 2
    python -m benchmarks.video --work-only      # the counts alone, in seconds
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

from benchmarks.report import ROOT, benchmark_parser, print_header, publish

OBJECTS = 2
"""Objects tracked at once in the issue's case (and in the figures)."""


def work_per_frame(model, objects: int = OBJECTS) -> dict[str, float]:
    """GMAC per tracked frame of each part of ``model`` (transformers' video model) with ``objects`` objects and a
    full memory, and their sum under "frame"."""
    import torch

    from benchmarks.report import count_gmac
    from utils.sam2_export import Sam2ImageEncoderModel
    from utils.sam2_video_export import MemoryAttentionModel, MemoryEncoderModel, VideoDecoderModel

    model.requires_grad_(False)  # torch's module tracker fails on the perceiver's expanded latents otherwise
    config = model.config
    attention = MemoryAttentionModel(model)
    memory_inputs = {name: example for name, (example, _) in attention.example_inputs().items()}
    frames, pointers = config.num_maskmem, config.max_object_pointers_in_encoder
    memory_inputs["memory"] = torch.zeros(frames, *memory_inputs["memory"].shape[1:])
    memory_inputs["memory_time_index"] = torch.arange(frames)
    memory_inputs["object_pointers"] = torch.zeros(pointers, model.hidden_dim)
    memory_inputs["pointer_time"] = torch.zeros(pointers)
    decoder = VideoDecoderModel(model)
    decoder_inputs = {name: example[:1] for name, (example, _) in decoder.example_inputs().items()}
    encoder = MemoryEncoderModel(model)
    encoder_inputs = {name: example for name, (example, _) in encoder.example_inputs().items()}
    encoder_inputs["mask_logits"] = torch.zeros(objects, 1, 256, 256)
    encoder_inputs["object_score_logits"] = torch.ones(objects, 1)
    work = {
        "image encoder": count_gmac(Sam2ImageEncoderModel(model), torch.zeros(1, 3, 1024, 1024)),
        "memory attention": objects * count_gmac(attention, **memory_inputs),
        "decoder": objects * count_gmac(decoder, **decoder_inputs),
        "memory encoder": count_gmac(encoder, **encoder_inputs),
    }
    return {**work, "frame": sum(work.values())}


PARTS = ("image encoder", "memory attention", "decoder", "memory encoder")


ROWS = ("transformers eager f32", "OpenVINO f32", "OpenVINO default")


def prompts(size: tuple[int, int], objects: int) -> list[dict]:
    """Object 1: a click at the middle; object 2: a box around the middle third."""
    height, width = size
    click = {"points": [[width // 2, height // 2]], "labels": [1]}
    box = {"box": [width // 3, height // 3, 2 * width // 3, 2 * height // 3]}
    return [click, box][:objects]


class PartTimer:
    """Seconds spent in each named call, summed: wraps a callable so that its calls count towards ``part``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, function, part: str):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[part] = self.seconds.get(part, 0.0) + time.perf_counter() - start

        return timed


def track_openvino(folder, config: dict, frames: list, objects: int) -> list[tuple[float, dict[str, float]]]:
    """Each frame's seconds and per-part seconds, tracked by `OVSam2VideoPredictor` compiled with ``config``."""
    from utils.video_predictor import OVSam2VideoPredictor

    predictor = OVSam2VideoPredictor(folder, config=config)
    timer = PartTimer()
    for attribute, part in (
        ("encoder", "image encoder"),
        ("memory_attention", "memory attention"),
        ("decoder", "decoder"),
        ("memory_encoder", "memory encoder"),
    ):
        setattr(predictor, attribute, timer.wrap(getattr(predictor, attribute), part))
    state = predictor.init_state(frames)
    for obj_id, prompt in enumerate(prompts(frames[0].shape[:2], objects), start=1):
        predictor.add_new_points_or_box(state, 0, obj_id, **prompt)
    return _timed_frames(predictor.propagate_in_video(state, start_frame_idx=1), timer)


def track_transformers(model, frames: list, objects: int) -> list[tuple[float, dict[str, float]]]:
    """The same with transformers' video model, its session fed the same pixels (`sam2_encoder_input`)."""
    import torch

    from benchmarks.torch_reference import transformers_video_session

    height, width = frames[0].shape[:2]
    processor, session = transformers_video_session(model, frames)
    timer = PartTimer()
    model.get_image_features = timer.wrap(model.get_image_features, "image encoder")
    model.memory_attention.forward = timer.wrap(model.memory_attention.forward, "memory attention")
    model._single_frame_forward = timer.wrap(model._single_frame_forward, "decoder")
    model._encode_new_memory = timer.wrap(model._encode_new_memory, "memory encoder")
    with torch.no_grad():
        prompt_transformers(model, processor, session, (height, width), objects)
        return _timed_frames(model.propagate_in_video_iterator(session, start_frame_idx=1), timer)


def prompt_transformers(model, processor, session, size: tuple[int, int], objects: int) -> None:
    """`prompts` on frame 0 of transformers' ``session``, each object segmented there (call it under no_grad)."""
    for obj_id, prompt in enumerate(prompts(size, objects), start=1):
        if "box" in prompt:
            inputs = {"input_boxes": [[prompt["box"]]]}
        else:
            inputs = {"input_points": [[prompt["points"]]], "input_labels": [[prompt["labels"]]]}
        processor.add_inputs_to_inference_session(session, frame_idx=0, obj_ids=obj_id, **inputs)
        model(session, frame_idx=0)


def _timed_frames(frames, timer: PartTimer) -> list[tuple[float, dict[str, float]]]:
    timed = []
    while True:
        timer.seconds.clear()
        start = time.perf_counter()
        if next(frames, None) is None:
            return timed
        timed.append((time.perf_counter() - start, dict(timer.seconds)))


def summarise(timed: list[tuple[float, dict[str, float]]], full_from: int, work: float) -> dict:
    """Mean seconds per frame (and per part) over the frames from ``full_from`` on, frames per second, GMAC/s."""
    kept = timed[full_from - 1 :]  # timed[0] is frame 1
    seconds = statistics.mean(total for total, _ in kept)
    parts = {part: statistics.mean(each.get(part, 0.0) for _, each in kept) for part in kept[0][1]}
    return {"seconds_per_frame": seconds, "fps": 1 / seconds, "parts": parts, "gmac_per_s": work / seconds}


def measure(model_type: str, models_dir, frames: list, objects: int, rows=ROWS, compress_to_fp16: bool = True) -> dict:
    """Every row of ``rows`` for ``model_type``: `summarise`'s figures, and the frame's work. The IR is the one a
    user converts (FP16 weights), or with ``compress_to_fp16=False`` the f32 one the tests convert."""
    from utils.checkpoints import load_sam
    from utils.convert import ensure_video_ir
    from utils.precision import F32

    model = load_sam(model_type, Path(models_dir) / "checkpoints", video=True)
    work = work_per_frame(model, objects)
    full_from = model.config.num_maskmem
    if len(frames) <= full_from:
        raise ValueError(f"{len(frames)} frames never fill the memory ({full_from} frames): give more.")
    folder = ensure_video_ir(model_type, models_dir, compress_to_fp16=compress_to_fp16, show_progress=False)
    result = {"work_gmac": work, "rows": {}}
    for name in rows:
        if name == "transformers eager f32":
            timed = track_transformers(model, frames, objects)
        else:
            timed = track_openvino(folder, F32 if name == "OpenVINO f32" else {}, frames, objects)
        result["rows"][name] = summarise(timed, full_from, work["frame"])
    baseline = result["rows"].get(ROWS[0])
    for row in result["rows"].values():
        if baseline:
            row["speed_up"] = baseline["seconds_per_frame"] / row["seconds_per_frame"]
    return result


def markdown(result: dict) -> str:
    """The time per tracked frame of every row and model, and each part's share of it."""
    lines = [
        "| model | objects | configuration | s per frame | x | frames per s | GMAC/s "
        "| image encoder | memory attention | decoder | memory encoder |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for model_type, measured in result["models"].items():
        for name, row in measured["rows"].items():
            shares = [f"{100 * row['parts'].get(part, 0.0) / row['seconds_per_frame']:.0f}%" for part in PARTS]
            ratio = f"{row['speed_up']:.2f}" if "speed_up" in row else "n/a"
            cells = [model_type, str(result["objects"]), name, f"{row['seconds_per_frame']:.2f}", ratio]
            cells += [f"{row['fps']:.2f}", f"{row['gmac_per_s']:.0f}", *shares]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def readme_markdown(result: dict) -> str:
    """The README's section: the CPU (and its oneDNN cap), the clip, then `markdown`'s table."""
    from utils.precision import widest_isa

    cpu = result["cpu"]
    cap = cpu.get("onednn_isa_cap")
    where = f"{cpu['cpu']} with {widest_isa(cpu['isa'])}" + (f" under the cap ONEDNN_MAX_CPU_ISA={cap}" if cap else "")
    clip = f"{result['frames']} frames, the memory full from frame 7 on"
    return (
        f"{where}, {result['cores']} cores; the default precision there: {result['default_precision']}; {clip}; "
        f"random weights (the times are real, the masks are not).\n\n{markdown(result)}"
    )


def work_markdown(work: dict[str, dict[str, float]]) -> str:
    """A table of `work_per_frame`'s counts, a row per model type."""
    parts = list(next(iter(work.values())))
    lines = [
        "| model | " + " | ".join(f"{part}, GMAC" for part in parts) + " |",
        "| --- |" + " ---: |" * len(parts),
    ]
    lines += [f"| {name} | " + " | ".join(f"{row[part]:.1f}" for part in parts) + " |" for name, row in work.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    from utils.checkpoints import load_sam
    from utils.precision import choose_precision
    from utils.transforms import read_rgb_image
    from utils.video_frames import camera_pan

    parser = benchmark_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--model-types", nargs="+", default=["sam2.1_hiera_tiny", "edgetam"])
    parser.add_argument("--objects", type=int, default=OBJECTS, choices=(1, 2))
    parser.add_argument("--frames", type=int, default=12, help="frames of the clip (the memory is full from 7 on)")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    parser.add_argument("--work-only", action="store_true", help="count the work per frame, time nothing")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "video.json")
    args = parser.parse_args(argv)
    if args.work_only:
        work = {name: work_per_frame(load_sam(name, video=True), args.objects) for name in args.model_types}
        print(f"Work per tracked frame with {args.objects} object(s) and a full memory:\n")
        print(work_markdown(work))
        return work
    cpu = print_header(args.model_types[0])
    frames = camera_pan(read_rgb_image(args.image), args.frames)
    models = {name: measure(name, args.models_dir, frames, args.objects, args.rows) for name in args.model_types}
    result = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "default_precision": choose_precision(),
        "objects": args.objects,
        "frames": args.frames,
        "models": models,
    }
    return publish(result, readme_markdown(result), args.output)


if __name__ == "__main__":
    main()
