"""Every model type on one CPU, SAM 1 against the SAM 2 family: each image encoder in PyTorch and OpenVINO, its work
and speed, and one prompt.

    .venv/bin/python -m benchmarks.sam2_encoders                       # vit_b, SAM 2.1 tiny and EdgeTAM
    .venv/bin/python -m benchmarks.sam2_encoders --model-types vit_b sam2.1_hiera_tiny sam2.1_hiera_large
    .venv/bin/python -m benchmarks.sam2_encoders --all --output benchmarks/published/sam2_encoders.json  # the README's

For each model type, one after another in this process: the encoder's work per image in GMAC
(`benchmarks.report.count_gmac` on the exported wrapper, attention included), its median latency in eager
PyTorch at f32 (segment_anything for vit_b, transformers for the SAM 2 family, on the same weights as the
IR), in OpenVINO at f32 and at the CPU's default precision, the GMAC per second each reached, and one point
prompt end to end (`predict`, upscaling included) in both. The ratios are against PyTorch on the same
model and against vit_b's OpenVINO encoder at the same precision, all from this one run. Each row also
holds the model's parameter count (the torch model this series loads: SAM 1's whole model, the SAM 2
family's image model, without the video memory) and the size of its IR folder. Writes
benchmarks/results/sam2_encoders.json and .md. Converts what is missing first (FP16 weights, as the
notebooks use; the compute precision is chosen at compile time). The README's model table
(`model_table`, through `benchmarks.readme_section`) is written from the committed run in benchmarks/published/.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmarks.report import ROOT, benchmark_parser, count_gmac, median_ms, print_header, write_json
from utils.model_spec import SAM2_ARCHITECTURES, SAM_2, model_spec, resolve
from utils.precision import F32, isa_line
from utils.sam2_models import SAM2_MODEL_TYPES
from utils.transforms import read_rgb_image

DEFAULT_MODEL_TYPES = ["vit_b", "sam2.1_hiera_tiny", "edgetam"]
ALL_MODEL_TYPES = ["vit_b", "vit_l", "vit_h", *SAM2_MODEL_TYPES]
BASELINE_MODEL = "vit_b"


def encoder_module(model_type: str, model):
    """The module that is exported as the image encoder: the first of its family's parts (`utils.model_spec`)."""
    return resolve(model_spec(model_type).family.parts[0].wrapper)(model).eval()


def pytorch_prompt(model_type: str, model, image: np.ndarray, point: dict):
    """One point prompt end to end in PyTorch, the image already encoded: transformers' processor, `Sam2Model.forward`
    and `post_process_masks` for the SAM 2 family, `SamPredictor.predict` for SAM 1."""
    import torch

    if model_spec(model_type).family is not SAM_2:
        from segment_anything import SamPredictor

        predictor = SamPredictor(model)
        predictor.set_image(image)
        return lambda: predictor.predict(**point)
    from transformers import Sam2ImageProcessor, Sam2Processor

    processor = Sam2Processor(image_processor=Sam2ImageProcessor())
    sizes = [list(image.shape[:2])]
    with torch.no_grad():
        embeddings = model.get_image_embeddings(processor(images=image, return_tensors="pt")["pixel_values"])

    def predict():
        inputs = processor(
            input_points=[[point["point_coords"].tolist()]],
            input_labels=[[point["point_labels"].tolist()]],
            original_sizes=sizes,
            return_tensors="pt",
        )
        with torch.no_grad():
            out = model(
                image_embeddings=embeddings, input_points=inputs["input_points"], input_labels=inputs["input_labels"]
            )
        return processor.post_process_masks(out.pred_masks, sizes)

    return predict


def measure_model(model_type: str, model, predictors: dict, image: np.ndarray, repeats: int) -> dict:
    """One model's row: GMAC, and the median ms of the encoder and of one prompt in PyTorch and in each OpenVINO
    predictor. ``predictors`` maps a precision ("f32", "default") to an OpenVINO predictor for ``model_type``."""
    import torch

    first = next(iter(predictors.values()))
    pixel_values = torch.from_numpy(first._encoder_input(image)[0])
    module = encoder_module(model_type, model)
    h, w = image.shape[:2]
    point = {"point_coords": np.array([[0.45 * w, 0.55 * h]]), "point_labels": np.array([1])}
    row = {"gmac": count_gmac(module, pixel_values), "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6}
    with torch.no_grad():
        row["pytorch_f32_ms"] = median_ms(lambda: module(pixel_values), repeats)
    row["pytorch_f32_prompt_ms"] = median_ms(pytorch_prompt(model_type, model, image, point), 3 * repeats)
    for precision, predictor in predictors.items():
        encoder_input = predictor._encoder_input(image)[0]
        row[f"openvino_{precision}_ms"] = median_ms(lambda p=predictor, x=encoder_input: p._encode(x), repeats)
        predictor.set_image(image)
        row[f"openvino_{precision}_prompt_ms"] = median_ms(lambda p=predictor: p.predict(**point), 3 * repeats)
    return row


def add_ratios(rows: dict) -> dict:
    """Per row: the GMAC/s of each encoder timing, each OpenVINO time against PyTorch's (encoder and prompt), and
    the encoder against vit_b's OpenVINO encoder at the same precision (when vit_b was measured)."""
    baseline = rows.get(BASELINE_MODEL)
    for row in rows.values():
        for backend in ("pytorch_f32", "openvino_f32", "openvino_default"):
            row[f"{backend}_gmac_per_s"] = row["gmac"] / (row[f"{backend}_ms"] / 1000)
        for precision in ("f32", "default"):
            name = f"openvino_{precision}"
            row[f"{name}_vs_pytorch"] = row["pytorch_f32_ms"] / row[f"{name}_ms"]
            row[f"{name}_prompt_vs_pytorch"] = row["pytorch_f32_prompt_ms"] / row[f"{name}_prompt_ms"]
            if baseline is not None:
                row[f"{name}_vs_vit_b"] = baseline[f"{name}_ms"] / row[f"{name}_ms"]
    return rows


TABLE = [
    ("GMAC", "gmac", "{:.1f}"),
    ("PyTorch f32 ms", "pytorch_f32_ms", "{:.0f}"),
    ("OpenVINO f32 ms", "openvino_f32_ms", "{:.0f}"),
    ("OpenVINO default ms", "openvino_default_ms", "{:.0f}"),
    ("OV f32 / PyTorch", "openvino_f32_vs_pytorch", "{:.2f}x"),
    ("OV f32 / vit_b's", "openvino_f32_vs_vit_b", "{:.2f}x"),
    ("OV default / vit_b's", "openvino_default_vs_vit_b", "{:.2f}x"),
    ("GMAC/s PyTorch f32", "pytorch_f32_gmac_per_s", "{:.0f}"),
    ("GMAC/s OV f32", "openvino_f32_gmac_per_s", "{:.0f}"),
    ("GMAC/s OV default", "openvino_default_gmac_per_s", "{:.0f}"),
    ("prompt ms: PyTorch f32", "pytorch_f32_prompt_ms", "{:.1f}"),
    ("prompt ms: OV f32", "openvino_f32_prompt_ms", "{:.1f}"),
    ("prompt: OV f32 / PyTorch", "openvino_f32_prompt_vs_pytorch", "{:.2f}x"),
]
"""The markdown table's columns: heading, key in a row, format. Speed-ups ("/") are times divided the other way."""


def markdown(rows: dict, cpu: dict) -> str:
    lines = [
        f"CPU: {cpu['cpu']}; OpenVINO {cpu['openvino']}; the default precision (the project's choice) on it: "
        f"{cpu['hardware_precision']}",
        "",
        "| model | " + " | ".join(heading for heading, _, _ in TABLE) + " |",
        "| --- |" + " ---: |" * len(TABLE),
    ]
    for model_type, row in rows.items():
        cells = [form.format(row[key]) if key in row else "-" for _, key, form in TABLE]
        lines.append(f"| {model_type} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def download(model_type: str) -> str:
    """What a user downloads for ``model_type``: SAM 1's checkpoint size from its registry; for the SAM 2 family the
    hub's file size could not be read where this was written, so the published parameter count at 4 bytes (the
    hub's model.safetensors is f32), marked as such, or "not known here"."""
    from utils.checkpoints import CHECKPOINTS

    if model_type in CHECKPOINTS:
        return f"{CHECKPOINTS[model_type].size_bytes / 1e6:.0f} MB"
    published = SAM2_ARCHITECTURES[model_type].published_parameters
    return f"about {published * 4:.0f} MB (estimated)" if published else "not known here"


def weights_source(model_type: str) -> str:
    from utils.checkpoints import CHECKPOINTS

    if model_type in CHECKPOINTS:
        return f"`{CHECKPOINTS[model_type].filename}`"
    return f"`{SAM2_ARCHITECTURES[model_type].repo_id}` (hub)"


def parameters(model_type: str, row: dict) -> str:
    """The counted parameters, with the published count where it includes more (SAM 2.1's video memory)."""
    published = SAM2_ARCHITECTURES[model_type].published_parameters if model_type in SAM2_ARCHITECTURES else None
    return f"{row['parameters_m']:.1f} M" + (f" ({published:g} M with video memory)" if published else "")


def model_table(result: dict) -> str:
    """The README's table of every model type: weights, download, parameters, IR size, work and encoder time."""
    cpu = result["cpu"]
    weights = "seeded random weights of each architecture" if result.get("random_weights") else "the official weights"
    lines = [
        f"Measured on: {cpu['cpu']}; {isa_line(cpu)}. OpenVINO {cpu['openvino']}. Times are medians of "
        f"{result['repeats']} runs on {Path(result['image']).name}, with {weights} (times do not depend on them).",
        "",
        "| `MODEL_TYPE` | weights | download | parameters | IR on disk | GMAC per image "
        "| encoder, OpenVINO default (ms) | OpenVINO f32 (ms) | PyTorch f32 (ms) | one prompt, OpenVINO f32 (ms) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for model_type, row in result["rows"].items():
        cells = [
            weights_source(model_type),
            download(model_type),
            parameters(model_type, row),
            f"{row['ir_mb']:.0f} MB",
            f"{row['gmac']:.1f}",
            f"{row['openvino_default_ms']:.0f}",
            f"{row['openvino_f32_ms']:.0f}",
            f"{row['pytorch_f32_ms']:.0f}",
            f"{row['openvino_f32_prompt_ms']:.1f}",
        ]
        lines.append(f"| `{model_type}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    from utils.checkpoints import load_sam, random_weights_seed
    from utils.convert import ensure_sam_ir
    from utils.ir_store import ir_files
    from utils.predictor import open_predictor

    parser = benchmark_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--model-types", nargs="+", default=DEFAULT_MODEL_TYPES)
    parser.add_argument("--all", action="store_true", help=f"every model type: {' '.join(ALL_MODEL_TYPES)}")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "sam2_encoders.json")
    args = parser.parse_args(argv)

    model_types = ALL_MODEL_TYPES if args.all else args.model_types
    cpu = print_header(model_types[0])
    image = read_rgb_image(args.image)
    rows = {}
    for model_type in model_types:
        xml = ensure_sam_ir(model_type, args.models_dir)
        predictors = {"f32": open_predictor(*xml, config=F32), "default": open_predictor(*xml)}
        model = load_sam(model_type, args.models_dir / "checkpoints")
        rows[model_type] = measure_model(model_type, model, predictors, image, args.repeats)
        rows[model_type]["ir_mb"] = sum(path.stat().st_size for path in ir_files(xml[0].parent)) / 1e6
        del predictors, model
        print(f"{model_type}: {json.dumps({key: round(value, 1) for key, value in rows[model_type].items()})}")
    rows = add_ratios(rows)
    table = markdown(rows, cpu)
    print("\n" + table)
    result = {"cpu": cpu, "image": str(args.image), "repeats": args.repeats, "rows": rows}
    write_json(result | {"random_weights": random_weights_seed() is not None}, args.output)
    args.output.with_suffix(".md").write_text(table + "\n")
    return rows


if __name__ == "__main__":
    main()
