"""Encoder and per-prompt latency of OVSamPredictor against segment_anything's SamPredictor, in one run.

    .venv/bin/python -m benchmarks.prompt_latency                 # vit_b on data/truck.jpg
    .venv/bin/python -m benchmarks.prompt_latency --model-type vit_l --prompt-repeats 50

Prints the CPU and its ISA (the ratios depend on AVX-512 BF16 / AMX), a markdown table of medians
and their ratio to PyTorch, and the agreement with PyTorch at f32 and at the device's default
precision. Writes the same as JSON to benchmarks/results/prompt_latency.json.
Uses the real checkpoint unless SAM_RANDOM_WEIGHTS_SEED is set (then timings are real, masks are not).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from benchmarks.report import ROOT, benchmark_parser, median_ms, model_and_ir, print_header, publish
from utils.accuracy import agreement, fixed_prompts
from utils.checkpoints import describe_weights
from utils.precision import F32
from utils.predictor import OVSamPredictor
from utils.transforms import read_rgb_image


def run(sam, encoder_xml: Path, decoder_xml: Path, image: np.ndarray, repeats: int, prompt_repeats: int) -> dict:
    """Time the encoder and one prompt end to end for PyTorch, OpenVINO default precision and OpenVINO f32."""
    from segment_anything import SamPredictor

    prompts = fixed_prompts(image)
    one_point = prompts["one point"]
    torch_predictor = SamPredictor(sam)
    candidates = {
        "PyTorch SamPredictor (f32)": torch_predictor,
        "OpenVINO default precision": OVSamPredictor(encoder_xml, decoder_xml),
        "OpenVINO f32 hint": OVSamPredictor(encoder_xml, decoder_xml, config=F32),
    }
    rows = {}
    for name, predictor in candidates.items():
        encoder_ms = median_ms(partial(predictor.set_image, image), repeats, warmup=0)
        prompt_ms = median_ms(partial(predictor.predict, **one_point), prompt_repeats, warmup=3)
        rows[name] = {"encoder_ms": encoder_ms, "prompt_ms": prompt_ms}
    base = rows["PyTorch SamPredictor (f32)"]
    for row in rows.values():
        row["encoder_speedup"] = base["encoder_ms"] / row["encoder_ms"]
        row["prompt_speedup"] = base["prompt_ms"] / row["prompt_ms"]
    parity = {
        name: agreement(predictor, torch_predictor, prompts)
        for name, predictor in candidates.items()
        if isinstance(predictor, OVSamPredictor)
    }
    return {"image_shape": list(image.shape), "timings": rows, "agreement_with_pytorch": parity}


def markdown(result: dict) -> str:
    lines = [
        "| predictor | encoder (ms) | x PyTorch | one prompt end to end (ms) | x PyTorch |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, row in result["timings"].items():
        lines.append(
            f"| {name} | {row['encoder_ms']:.0f} | {row['encoder_speedup']:.2f} | "
            f"{row['prompt_ms']:.1f} | {row['prompt_speedup']:.2f} |"
        )
    lines += ["", "| OpenVINO vs PyTorch | embedding rel. error | min mask IoU | mean mask IoU | max score diff |"]
    lines.append("| --- | ---: | ---: | ---: | ---: |")
    for name, row in result["agreement_with_pytorch"].items():
        lines.append(
            f"| {name} | {row['embedding_relative_error']:.1e} | {row['min_mask_iou']:.4f} | "
            f"{row['mean_mask_iou']:.4f} | {row['max_score_difference']:.1e} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = benchmark_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="encoder runs per predictor (median)")
    parser.add_argument("--prompt-repeats", type=int, default=30, help="prompt runs per predictor (median)")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "prompt_latency.json")
    args = parser.parse_args(argv)

    cpu = print_header(args.model_type)
    sam, encoder_xml, decoder_xml = model_and_ir(args)
    result = run(sam, encoder_xml, decoder_xml, read_rgb_image(args.image), args.repeats, args.prompt_repeats)
    result.update(cpu=cpu, model_type=args.model_type, image=str(args.image), weights=describe_weights(args.model_type))
    return publish(result, markdown(result), args.output)


if __name__ == "__main__":
    main()
