"""Tracking's work per frame, part by part: what each of SAM 2.1's and EdgeTAM's networks costs on one tracked frame.

A tracked frame runs the image encoder once, then for each object the memory attention (the frame's 4096 tokens
against every memory frame's tokens and the object pointers) and the decoder, then the memory encoder once for all
objects. The count is torch's (`benchmarks.report.count_gmac`, attention included) on the wrappers that are
exported (`utils.sam2_export`, `utils.sam2_video_export`), for a frame with the memory full: `num_maskmem` memory
frames (the prompted one and the six before) and `max_object_pointers_in_encoder` pointers.

    python -m benchmarks.video --model-types sam2.1_hiera_tiny edgetam
"""

from __future__ import annotations

import argparse

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


def markdown(work: dict[str, dict[str, float]]) -> str:
    """A table of `work_per_frame`'s counts, a row per model type."""
    parts = list(next(iter(work.values())))
    lines = [
        "| model | " + " | ".join(f"{part}, GMAC" for part in parts) + " |",
        "| --- |" + " ---: |" * len(parts),
    ]
    lines += [f"| {name} | " + " | ".join(f"{row[part]:.1f}" for part in parts) + " |" for name, row in work.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    from utils.checkpoints import load_sam

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-types", nargs="+", default=["sam2.1_hiera_tiny", "edgetam"])
    parser.add_argument("--objects", type=int, default=OBJECTS)
    args = parser.parse_args(argv)
    work = {name: work_per_frame(load_sam(name, video=True), args.objects) for name in args.model_types}
    print(f"Work per tracked frame with {args.objects} objects and a full memory:\n")
    print(markdown(work))
    return work


if __name__ == "__main__":
    main()
