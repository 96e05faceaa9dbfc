"""Where the image encoder spends its time: OpenVINO's per-layer counters, summed by layer type.

    .venv/bin/python -m benchmarks.encoder_profile                 # plain export, fused export, INT8
    .venv/bin/python -m benchmarks.encoder_profile --precision f32 --runs 5
    .venv/bin/python -m benchmarks.encoder_profile --model-type sam2.1_hiera_tiny --precision f32

Compiles each encoder IR with PERF_COUNT on, runs it on data/truck.jpg, and prints a markdown
table per IR: the runtime layer types (after the CPU plugin's own fusions, so a fused attention
shows as "Subgraph" or "ScaledDotProductAttention") with their share of the last run, plus the
median wall time. Converts and quantizes whatever is missing first. The SAM 2 family has one
export (transformers' attention as it is) and its INT8 encoder, so it gets two tables.

Under each table, the work split the way the CPU runs it (`work_by_kind`, counted on the IR's static
shapes): the linear layers, which the plugin runs as FullyConnected and which set the practical limit,
against everything else (attention, convolutions, and the reshapes, transposes and elementwise work
around them), each with the GMAC per second it reached. A model whose "else" rate is far below its
linear rate loses its time outside the matrix products. Writes
benchmarks/results/encoder_profile-<model type>-<precision>.md.
"""

from __future__ import annotations

import collections
import math
from pathlib import Path

import openvino as ov

from benchmarks.report import ROOT, benchmark_parser, median_ms, print_header
from utils.model_spec import SAM_2, model_spec
from utils.precision import F32, compile_config, isa_line
from utils.transforms import encoder_input, read_rgb_image, sam2_encoder_input


def profile(model_xml: Path, inputs: dict, config: dict, runs: int) -> dict:
    """Median wall time over ``runs`` after one warm-up, and milliseconds per runtime layer type in the last run.

    ``inputs``: what the model is run on, by input name or index (the decoder's profile uses this too).
    """
    compiled = ov.Core().compile_model(model_xml, "CPU", compile_config({**config, "PERF_COUNT": True}))
    request = compiled.create_infer_request()
    wall_ms = median_ms(lambda: request.infer(inputs), runs, warmup=1)
    by_type: collections.Counter = collections.Counter()
    for layer in request.profiling_info:
        by_type[layer.node_type] += layer.real_time.total_seconds() * 1000
    return {"wall_ms": wall_ms, "layer_ms": dict(by_type.most_common())}


def work_by_kind(model: ov.Model) -> dict[str, float]:
    """GMAC per run of ``model`` (static shapes), by kind: ``linear`` (a MatMul with constant weights: the CPU
    plugin's FullyConnected), ``attention`` (the other MatMuls and ScaledDotProductAttention) and
    ``convolution``."""
    gmac: collections.Counter = collections.Counter()
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        out = math.prod(op.get_output_shape(0)) if op.get_output_size() else 0
        if kind == "MatMul":
            a_shape = list(op.get_input_shape(0))
            inner = a_shape[-2] if op.get_attributes()["transpose_a"] else a_shape[-1]
            weights = op.input_value(1).get_node()
            while weights.get_type_name() in ("Convert", "Multiply", "Subtract", "Reshape", "Transpose"):
                weights = weights.input_value(0).get_node()  # FP16 or INT8 weights, decompressed
            gmac["linear" if weights.get_type_name() == "Constant" else "attention"] += out * inner / 1e9
        elif kind == "ScaledDotProductAttention":
            query, key = (list(op.get_input_shape(index)) for index in (0, 1))
            gmac["attention"] += math.prod(query) * key[-2] * 2 / 1e9  # q @ k^T, then weights @ v
        elif kind in ("Convolution", "GroupConvolution"):
            kernel = list(op.get_input_shape(1))[-3:]  # (input channels per group, kh, kw)
            gmac["convolution"] += out * math.prod(kernel) / 1e9
    return dict(gmac)


def work_line(work: dict[str, float], layer_ms: dict[str, float]) -> str:
    """The linear layers' GMAC/s in FullyConnected against the rest of the work in the rest of the layers' time.

    An INT8 IR runs its quantized linear layers as another FullyConnected type (FullyConnectedQuantizedLegacy in
    OpenVINO 2026), so every layer type whose name starts with FullyConnected counts as linear."""
    linear = work.get("linear", 0.0)
    linear_ms = sum(ms for layer_type, ms in layer_ms.items() if layer_type.startswith("FullyConnected"))
    rest_ms = sum(layer_ms.values()) - linear_ms
    rest = sum(work.values()) - linear
    parts = ", ".join(f"{kind} {value:.1f}" for kind, value in sorted(work.items()))
    return (
        f"work {sum(work.values()):.1f} GMAC ({parts}): linear layers {linear:.1f} GMAC in "
        f"{linear_ms:.0f} ms of FullyConnected, {rate(linear, linear_ms)}; everything else "
        f"{rest:.1f} GMAC in {rest_ms:.0f} ms, {rate(rest, rest_ms)}"
    )


def rate(gmac: float, ms: float) -> str:
    return f"{gmac / ms * 1000:.0f} GMAC/s" if ms > 0 else "no time measured"


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
    if "work_gmac" in result:
        lines += ["", work_line(result["work_gmac"], result["layer_ms"])]
    return "\n".join(lines)


SAM1_EXPORT_NAMES = {"plain": "plain export", "fused": "fused export", "int8": "fused export, INT8"}


def encoder_ir(export: str, model_type: str, models_dir: Path) -> Path:
    """The encoder IR of one export (a key of `SAM1_EXPORT_NAMES`; "int8" also for the SAM 2 family), made first
    when missing."""
    from utils.convert import ensure_sam_ir
    from utils.quantize import ensure_int8_encoder

    if export == "int8":
        return ensure_int8_encoder(model_type, models_dir)
    return ensure_sam_ir(model_type, models_dir, fused_attention=export == "fused")[0]


def main(argv: list[str] | None = None) -> dict:
    from utils.convert import ensure_sam_ir

    parser = benchmark_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--precision", choices=["default", "f32"], default="default")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--exports",
        nargs="+",
        choices=["plain", "fused", "int8"],
        default=["plain", "fused", "int8"],
        help="SAM 1's; the SAM 2 family has its one export, and int8",
    )
    args = parser.parse_args(argv)

    cpu = print_header(args.model_type)
    image = read_rgb_image(args.image)
    if model_spec(args.model_type).family is SAM_2:
        encoders = {"export": ensure_sam_ir(args.model_type, args.models_dir)[0]}
        if "int8" in args.exports:
            encoders["export, INT8"] = encoder_ir("int8", args.model_type, args.models_dir)
        preprocessed = sam2_encoder_input(image)
    else:
        encoders = {
            SAM1_EXPORT_NAMES[export]: encoder_ir(export, args.model_type, args.models_dir) for export in args.exports
        }
        preprocessed = encoder_input(image)
    config = F32 if args.precision == "f32" else {}
    results, tables = {}, []
    for name, xml in encoders.items():
        results[name] = profile(xml, {0: preprocessed}, config, args.runs)
        results[name]["work_gmac"] = work_by_kind(ov.Core().read_model(xml))
        tables.append(markdown(f"{args.model_type}, {name}, {args.precision} precision", results[name]))
        print("\n" + tables[-1])
    output = ROOT / "benchmarks" / "results" / f"encoder_profile-{args.model_type}-{args.precision}.md"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(f"CPU: {cpu['cpu']}; {isa_line(cpu)}\n\n" + "\n\n".join(tables) + "\n")
    print(f"\nwritten: {output}")
    return results


if __name__ == "__main__":
    main()
