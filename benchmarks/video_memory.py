"""The tracker's memory over a long live stream: the process's resident memory (RSS) every ``--every`` frames while
`utils.video_predictor.OVSam2VideoPredictor` tracks ``--frames`` frames of a stream, one object clicked on frame 0.

The stream is a generator (`utils.video_frames.camera_pan_frames`, a camera panning over a photo at 480x640), read
as tracking reaches it, and each frame's masks are dropped once yielded, as a loop that writes or shows them would
do. The first sample is taken once the memory's and the pointers' windows are full (frame ``--every``); the bound
the series holds to: the last sample within 50 MB of the first.

For contrast, ``--transformers-frames N`` (the full install) samples transformers' video session after each of N
frames tracked the same way: its session keeps every frame's outputs, so it grows with the video.

    python -m benchmarks.video_memory --model-type edgetam --frames 1000 --every 100
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

from tqdm.auto import tqdm

from benchmarks.report import ROOT, benchmark_parser, print_header, publish
from benchmarks.video import prompt_transformers, prompts

STREAM_SIZE = (480, 640)
"""(height, width) of the stream's frames: a laptop camera's."""
BOUND_MB = 50.0
"""How far the last sample may be from the first (the issue's bound)."""


def rss_mb() -> float:
    """This process's resident memory now, in MB (10^6 bytes)."""
    import psutil  # every install has it (Jupyter's kernel needs it)

    return psutil.Process(os.getpid()).memory_info().rss / 1e6


def openvino_samples(folder, photo, frames: int, every: int, config: dict) -> list[dict]:
    """``[{"frame", "rss_mb"}]`` every ``every`` frames while the OpenVINO tracker follows one object through a
    stream of ``frames`` frames panned over ``photo``."""
    from utils.video_frames import camera_pan_frames
    from utils.video_predictor import OVSam2VideoPredictor

    predictor = OVSam2VideoPredictor(folder, config=config)
    state = predictor.init_state(camera_pan_frames(photo, frames, STREAM_SIZE))
    predictor.add_new_points_or_box(state, frame_idx=0, obj_id=1, **prompts(STREAM_SIZE, objects=1)[0])
    samples = []
    tracked = predictor.propagate_in_video(state)
    for frame_idx, _, _ in tqdm(tracked, total=frames, desc="OpenVINO tracker", unit="frame"):
        if (frame_idx + 1) % every == 0:
            samples.append({"frame": frame_idx + 1, "rss_mb": rss_mb()})
    return samples


def transformers_samples(model, photo, frames: int) -> list[dict]:
    """``[{"frame", "rss_mb"}]`` after each of ``frames`` frames tracked by transformers' session (given the whole
    clip first, as its video processor takes it, so what grows is what the session keeps per frame)."""
    import torch

    from benchmarks.torch_reference import transformers_video_session
    from utils.video_frames import camera_pan

    clip = camera_pan(photo, frames, STREAM_SIZE)
    processor, session = transformers_video_session(model, clip)
    samples = []
    with torch.no_grad():
        prompt_transformers(model, processor, session, STREAM_SIZE, objects=1)
        tracked = model.propagate_in_video_iterator(session, start_frame_idx=1)
        for output in tqdm(tracked, total=frames - 1, desc="transformers", unit="frame"):
            samples.append({"frame": output.frame_idx + 1, "rss_mb": rss_mb()})
    return samples


def summarise(samples: list[dict]) -> dict:
    """The samples, the growth from the first to the last, and the mean growth per frame between them."""
    first, last = samples[0], samples[-1]
    growth = last["rss_mb"] - first["rss_mb"]
    frames = last["frame"] - first["frame"]
    return {"samples": samples, "growth_mb": growth, "mb_per_frame": growth / frames if frames else 0.0}


def measure(
    model_type: str,
    models_dir,
    photo,
    frames: int,
    every: int,
    transformers_frames: int = 0,
    compress_to_fp16: bool = True,
) -> dict:
    """`summarise`'s figures for the OpenVINO tracker (f32) and, with ``transformers_frames``, for transformers'. The
    IR is the one a user converts (FP16 weights), or with ``compress_to_fp16=False`` the f32 one the tests convert."""
    from utils.convert import ensure_video_ir
    from utils.precision import F32

    if frames < 2 * every:
        raise ValueError(f"{frames} frames give fewer than two samples every {every}: give more.")
    folder = ensure_video_ir(model_type, models_dir, compress_to_fp16=compress_to_fp16, show_progress=False)
    rows = {"OpenVINO f32": summarise(openvino_samples(folder, photo, frames, every, F32))}
    if transformers_frames:
        from utils.checkpoints import load_sam

        model = load_sam(model_type, Path(models_dir) / "checkpoints", video=True)
        rows["transformers eager f32"] = summarise(transformers_samples(model, photo, transformers_frames))
    return rows


def markdown(result: dict) -> str:
    """A row per tracker: the frames, the first and last samples, the growth and the growth per frame."""
    lines = [
        "| tracker | frames | RSS first, MB | RSS last, MB | growth, MB | MB per frame |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, row in result["rows"].items():
        first, last = row["samples"][0], row["samples"][-1]
        lines.append(
            f"| {name} | {first['frame']} to {last['frame']} | {first['rss_mb']:.0f} | {last['rss_mb']:.0f} "
            f"| {row['growth_mb']:+.1f} | {row['mb_per_frame']:+.3f} |"
        )
    return "\n".join(lines)


def readme_markdown(result: dict) -> str:
    """The README's section: the CPU, the stream and the model, then `markdown`'s table."""
    from utils.precision import widest_isa

    cpu = result["cpu"]
    samples = result["rows"]["OpenVINO f32"]["samples"]
    spread = max(sample["rss_mb"] for sample in samples) - min(sample["rss_mb"] for sample in samples)
    return (
        f"{cpu['cpu']} with {widest_isa(cpu['isa'])}, {result['cores']} cores; {result['model_type']}, one object, "
        f"a stream of "
        f"{result['frames']} frames of {STREAM_SIZE[1]}x{STREAM_SIZE[0]}, sampled every {result['every']} frames "
        f"(the OpenVINO tracker's samples span {spread:.1f} MB, median "
        f"{statistics.median(sample['rss_mb'] for sample in samples):.0f} MB).\n\n{markdown(result)}"
    )


def main(argv: list[str] | None = None) -> dict:
    from utils.transforms import read_rgb_image

    parser = benchmark_parser(__doc__.split("\n\n")[0])
    parser.set_defaults(model_type="edgetam")
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument("--every", type=int, default=100, help="frames between samples")
    parser.add_argument("--transformers-frames", type=int, default=0, help="also sample transformers' session")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "video_memory.json")
    args = parser.parse_args(argv)
    cpu = print_header(args.model_type)
    photo = read_rgb_image(args.image)
    rows = measure(args.model_type, args.models_dir, photo, args.frames, args.every, args.transformers_frames)
    result = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "model_type": args.model_type,
        "frames": args.frames,
        "every": args.every,
        "bound_mb": BOUND_MB,
        "rows": rows,
    }
    return publish(result, readme_markdown(result), args.output)


if __name__ == "__main__":
    main()
