"""SAM 1's vit_b against the SAM 2 family on one CPU: each image encoder in PyTorch and OpenVINO, its work and speed.

    .venv/bin/python -m benchmarks.sam2_encoders                       # vit_b, SAM 2.1 tiny and EdgeTAM
    .venv/bin/python -m benchmarks.sam2_encoders --model-types vit_b sam2.1_hiera_tiny sam2.1_hiera_large

For each model type, one after another in this process: the encoder's work per image in GMAC
(`benchmarks.report.count_gmac` on the exported wrapper, attention included), its median latency in eager
PyTorch at f32 (segment_anything for vit_b, transformers for the SAM 2 family, on the same weights as the
IR), in OpenVINO at f32 and at the CPU's default precision, the GMAC per second each reached, and one point
prompt end to end (`predict`, upscaling included) in both. The ratios are against PyTorch on the same
model and against vit_b's OpenVINO encoder at the same precision, all from this one run. Writes
benchmarks/results/sam2_encoders.json and .md. Converts what is missing first (FP16 weights, as the
notebooks use; the compute precision is chosen at compile time).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchmarks.report import ROOT, benchmark_parser, count_gmac, median_ms, print_header, write_json
from utils.precision import F32
from utils.transforms import read_rgb_image

DEFAULT_MODEL_TYPES = ["vit_b", "sam2.1_hiera_tiny", "edgetam"]
BASELINE_MODEL = "vit_b"


def encoder_module(model_type: str, model):
    """The module that is exported as the image encoder (`utils.export_wrappers` or `utils.sam2_export`)."""
    from utils.sam2_models import is_sam2

    if is_sam2(model_type):
        from utils.sam2_export import Sam2ImageEncoderModel

        return Sam2ImageEncoderModel(model).eval()
    from utils.export_wrappers import ImageEncoderModel

    return ImageEncoderModel(model).eval()


def pytorch_prompt(model_type: str, model, image: np.ndarray, point: dict):
    """One point prompt end to end in PyTorch, the image already encoded: transformers' processor, `Sam2Model.forward`
    and `post_process_masks` for the SAM 2 family, `SamPredictor.predict` for SAM 1."""
    import torch

    from utils.sam2_models import is_sam2

    if not is_sam2(model_type):
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
    row = {"gmac": count_gmac(module, pixel_values)}
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
        f"CPU: {cpu['cpu']}; OpenVINO {cpu['openvino']}; OpenVINO's default precision on it: "
        f"{'bf16' if 'BF16' in cpu['openvino_capabilities'] else 'f32'}",
        "",
        "| model | " + " | ".join(heading for heading, _, _ in TABLE) + " |",
        "| --- |" + " ---: |" * len(TABLE),
    ]
    for model_type, row in rows.items():
        cells = [form.format(row[key]) if key in row else "-" for _, key, form in TABLE]
        lines.append(f"| {model_type} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    from utils.checkpoints import load_sam
    from utils.convert import ensure_sam_ir
    from utils.predictor import open_predictor

    parser = benchmark_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--model-types", nargs="+", default=DEFAULT_MODEL_TYPES)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "sam2_encoders.json")
    args = parser.parse_args(argv)

    cpu = print_header(args.model_types[0])
    image = read_rgb_image(args.image)
    rows = {}
    for model_type in args.model_types:
        xml = ensure_sam_ir(model_type, args.models_dir)
        predictors = {"f32": open_predictor(*xml, config=F32), "default": open_predictor(*xml)}
        rows[model_type] = measure_model(model_type, load_sam(model_type), predictors, image, args.repeats)
        print(f"{model_type}: {json.dumps({key: round(value, 1) for key, value in rows[model_type].items()})}")
    rows = add_ratios(rows)
    table = markdown(rows, cpu)
    print("\n" + table)
    write_json({"cpu": cpu, "image": str(args.image), "repeats": args.repeats, "rows": rows}, args.output)
    args.output.with_suffix(".md").write_text(table + "\n")
    return rows


if __name__ == "__main__":
    main()
