"""Where the image encoder spends its time: OpenVINO's per-layer counters, summed by layer type.

    .venv/bin/python -m benchmarks.encoder_profile                 # plain export, fused export, INT8
    .venv/bin/python -m benchmarks.encoder_profile --precision f32 --runs 5
    .venv/bin/python -m benchmarks.encoder_profile --model-type sam2.1_hiera_tiny --precision f32

Compiles each encoder IR with PERF_COUNT on, runs it on data/truck.jpg, and prints a markdown
table per IR: the runtime layer types (after the CPU plugin's own fusions, so a fused attention
shows as "Subgraph" or "ScaledDotProductAttention") with their share of the last run, plus the
median wall time. Converts and quantizes whatever is missing first. The SAM 2 family has one
export (transformers' attention as it is, no INT8 yet), so it gets one table.
"""

from __future__ import annotations

import collections
from pathlib import Path

import openvino as ov

from benchmarks.report import benchmark_parser, median_ms, print_header
from utils.precision import F32
from utils.sam2_models import is_sam2
from utils.transforms import encoder_input, read_rgb_image, sam2_encoder_input


def profile(model_xml: Path, inputs: dict, config: dict, runs: int) -> dict:
    """Median wall time over ``runs`` after one warm-up, and milliseconds per runtime layer type in the last run.

    ``inputs``: what the model is run on, by input name or index (the decoder's profile uses this too).
    """
    compiled = ov.Core().compile_model(model_xml, "CPU", {**config, "PERF_COUNT": True})
    request = compiled.create_infer_request()
    wall_ms = median_ms(lambda: request.infer(inputs), runs, warmup=1)
    by_type: collections.Counter = collections.Counter()
    for layer in request.profiling_info:
        by_type[layer.node_type] += layer.real_time.total_seconds() * 1000
    return {"wall_ms": wall_ms, "layer_ms": dict(by_type.most_common())}


def markdown(name: str, result: dict, top: int = 8) -> str:
    total = sum(result["layer_ms"].values())
    lines = [
        f"**{name}**: median {result['wall_ms']:.0f} ms, sum of layers {total:.0f} ms",
        "",
        "| layer type | ms | share |",
        "| --- | ---: | ---: |",
    ]
    for layer_type, ms in list(result["layer_ms"].items())[:top]:
        lines.append(f"| {layer_type} | {ms:.0f} | {100 * ms / total:.1f}% |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    from utils.convert import ensure_sam_ir
    from utils.quantize import ensure_int8_encoder

    parser = benchmark_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--precision", choices=["default", "f32"], default="default")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--exports", nargs="+", choices=["plain", "fused", "int8"], default=["plain", "fused", "int8"], help="SAM 1's"
    )
    args = parser.parse_args(argv)

    print_header(args.model_type)
    image = read_rgb_image(args.image)
    if is_sam2(args.model_type):
        encoders = {"export": ensure_sam_ir(args.model_type, args.models_dir)[0]}
        preprocessed = sam2_encoder_input(image)
    else:
        model_type, models_dir = args.model_type, args.models_dir
        makers = {
            "plain": ("plain export", lambda: ensure_sam_ir(model_type, models_dir, fused_attention=False)[0]),
            "fused": ("fused export", lambda: ensure_sam_ir(model_type, models_dir)[0]),
            "int8": ("fused export, INT8", lambda: ensure_int8_encoder(model_type, models_dir)),
        }
        encoders = {makers[key][0]: makers[key][1]() for key in args.exports}
        preprocessed = encoder_input(image)
    config = F32 if args.precision == "f32" else {}
    results = {}
    for name, xml in encoders.items():
        results[name] = profile(xml, {0: preprocessed}, config, args.runs)
        print("\n" + markdown(f"{name}, {args.precision} precision", results[name]))
    return results


if __name__ == "__main__":
    main()
