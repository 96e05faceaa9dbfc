"""The prompt decoder alone: milliseconds and multiply-adds per prompt, and the rate reached against the encoder's.

    .venv/bin/python -m benchmarks.decoder_speed              # vit_b, f32 and the default precision
    .venv/bin/python -m benchmarks.decoder_speed --profile    # and OpenVINO's time per layer type

For each precision (the f32 hint, then the device's default: bf16 where the CPU has it) it
times, for one point prompt and per prompt in a chunk of 16: PyTorch's prompt encoder + mask
decoder (eager, f32 only), the whole decoder IR (SAM's own split, what notebook 01 converts),
the prompt side of the split decoder, whose image side runs once per image and is timed
apart, and its prompt side with mask (the whole decoder's work, for prompts with a mask
input). The peers run SAM's whole decoder at f32, as the whole decoder IR does (bar ONNX
Runtime's mask input, one for the whole batch as in `SamOnnxModel`): ONNX Runtime on its export
and torch.compile (`benchmarks.peers`), where installed; torch.compile's compile time is
reported apart. GMAC per prompt are counted by torch's FlopCounterMode on the module each IR
was made from, and the rate (GMAC/s) is taken over the chunk; the OpenVINO encoder's rate at
the same precision, counted and timed the same way, is the practical limit the decoder is
measured against.
Then the decoder at the default precision is compared with f32 on the same f32 embedding: mask
IoU over fixed prompts on the images in data/ (``--agreement-dir``).
Writes benchmarks/results/decoder_speed.json.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import openvino as ov

from benchmarks.encoder_profile import markdown as profile_markdown
from benchmarks.encoder_profile import profile
from benchmarks.report import ROOT, benchmark_parser, count_gmac, median_ms, model_and_ir, print_header, publish
from utils.accuracy import fixed_prompts
from utils.precision import F32, compile_config
from utils.predictor import (
    DECODER_CHUNK,
    WITH_MASK_PER_IMAGE_INPUTS,
    decoder_points,
    per_prompt_mask_inputs,
    whole_decoder_inputs,
)
from utils.transforms import encoder_input, read_rgb_image

PRECISIONS = {"f32": F32, "default": {}}


def prompt_inputs(image: np.ndarray, batch: int) -> dict[str, np.ndarray]:
    """The one-point prompt of `utils.accuracy.fixed_prompts`, repeated ``batch`` times, as decoder points."""
    one_point = fixed_prompts(image)["one point"]
    coords, labels = decoder_points(
        (one_point["point_coords"][None], one_point["point_labels"][None]), None, image.shape[:2]
    )
    return {"point_coords": np.repeat(coords, batch, axis=0), "point_labels": np.repeat(labels, batch, axis=0)}


def torch_modules(sam) -> dict:
    from utils import decoder_split
    from utils.export_wrappers import ImageEncoderModel, PromptDecoderModel

    return {
        "encoder": ImageEncoderModel(sam).eval(),
        "whole": PromptDecoderModel(sam).eval(),
        "image side": decoder_split.DecoderImageSide(sam).eval(),
        "prompt side": decoder_split.DecoderPromptSide(sam).eval(),
        "prompt side with mask": decoder_split.DecoderPromptSideWithMask(sam).eval(),
    }


def mask_inputs(batch: int) -> np.ndarray:
    """Previous-mask logits [B,1,256,256] for the prompt side with mask (fixed: the values do not change the time)."""
    logits = np.random.default_rng(0).normal(scale=8.0, size=(1, 256, 256)).astype(np.float32)
    return per_prompt_mask_inputs(logits, batch)


def as_torch(inputs: dict) -> dict:
    import torch

    return {name: torch.as_tensor(np.asarray(value)) for name, value in inputs.items()}


def run(sam, ir_folder: Path, image: np.ndarray, repeats: int, profile_runs: int = 0) -> dict:
    """Every row of the table, for each precision; with ``profile_runs`` also the per-layer-type profiles."""
    from utils.ir_store import (
        DECODER_IMAGE_SIDE_XML,
        DECODER_PROMPT_SIDE_WITH_MASK_XML,
        DECODER_PROMPT_SIDE_XML,
        DECODER_XML,
        ENCODER_XML,
    )

    modules = torch_modules(sam)
    preprocessed = encoder_input(image)
    core = ov.Core()
    embedding = np.asarray(core.compile_model(ir_folder / ENCODER_XML, "CPU", F32)(preprocessed)[0])
    image_side_f32 = core.compile_model(ir_folder / DECODER_IMAGE_SIDE_XML, "CPU", F32)
    per_image = {port.get_any_name(): np.asarray(value) for port, value in image_side_f32(embedding).items()}
    points = {"one": prompt_inputs(image, 1), "chunk": prompt_inputs(image, DECODER_CHUNK)}
    inputs = {
        "whole": {
            size: whole_decoder_inputs(embedding, p["point_coords"], p["point_labels"]) for size, p in points.items()
        },
        "prompt side": {size: {**per_image, **p} for size, p in points.items()},
        "prompt side with mask": {
            size: {name: per_image[name] for name in WITH_MASK_PER_IMAGE_INPUTS}
            | p
            | {"mask_input": mask_inputs(len(p["point_coords"]))}
            for size, p in points.items()
        },
    }
    gmac = {name: count_gmac(modules[name], **as_torch(feeds["one"])) for name, feeds in inputs.items()}
    gmac["encoder"] = count_gmac(modules["encoder"], **as_torch({"image": preprocessed}))
    gmac["image side"] = count_gmac(modules["image side"], **as_torch({"image_embeddings": embedding}))

    rows = {
        "PyTorch eager f32, prompt encoder + mask decoder": _row(
            lambda feed: _torch_call(modules["whole"], feed), inputs["whole"], repeats
        )
    }
    peers, peers_not_run = _peer_rows(sam, modules["whole"], inputs["whole"], repeats)
    rows.update(peers)
    profiles = {}
    xml_files = {
        "whole": DECODER_XML,
        "prompt side": DECODER_PROMPT_SIDE_XML,
        "prompt side with mask": DECODER_PROMPT_SIDE_WITH_MASK_XML,
    }
    for precision, config in PRECISIONS.items():
        encoder = core.compile_model(ir_folder / ENCODER_XML, "CPU", compile_config(config))
        encoder_rate = gmac["encoder"] / median_ms(lambda encoder=encoder: encoder(preprocessed), 2) * 1e3
        image_side = core.compile_model(ir_folder / DECODER_IMAGE_SIDE_XML, "CPU", compile_config(config))
        for key in xml_files:
            name = "whole decoder" if key == "whole" else f"split decoder, {key}"
            compiled = core.compile_model(ir_folder / xml_files[key], "CPU", compile_config(config))
            request = compiled.create_infer_request()
            # inputs read in place, as OVSamPredictor runs them (a copy of the image side's 14 MB would be timed too)
            row = _row(lambda feed, request=request: request.infer(feed, share_inputs=True), inputs[key], repeats)
            row["encoder_gmac_per_s"], row["gmac_per_prompt"] = encoder_rate, gmac[key]
            if key == "prompt side":
                row["image_side_ms"] = median_ms(lambda image_side=image_side: image_side(embedding), repeats)
            rows[f"OpenVINO {precision}, {name}"] = row
            if profile_runs:
                profiles[f"{name}, {precision}"] = profile(
                    ir_folder / xml_files[key], inputs[key]["one"], config, profile_runs
                )
    for row in rows.values():
        row.setdefault("gmac_per_prompt", gmac["whole"])  # PyTorch and the peers run the whole decoder
        row["gmac_per_s"] = row["gmac_per_prompt"] / row["chunk_ms_per_prompt"] * 1e3
    return {"gmac": gmac, "rows": rows, "profiles": profiles, "peers_not_run": peers_not_run}


def _peer_rows(sam, whole, whole_inputs: dict, repeats: int):
    """ONNX Runtime and torch.compile on SAM's whole decoder at f32: (rows by name, {name: why not run})."""
    from benchmarks.peers import export_onnx_decoder, onnxruntime_missing, torch_compile_missing, with_one_mask_input

    rows, not_run = {}, {}
    name = "ONNX Runtime f32, whole decoder (SamOnnxModel)"
    if reason := onnxruntime_missing():
        not_run[name] = reason
    else:
        import onnxruntime

        with tempfile.TemporaryDirectory() as folder:
            export_onnx_decoder(sam, Path(folder) / "decoder.onnx")
            model = (Path(folder) / "decoder.onnx").read_bytes()
        session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
        feeds = {size: with_one_mask_input(feed) for size, feed in whole_inputs.items()}
        rows[name] = _row(lambda feed: session.run(None, feed), feeds, repeats)
    name = "PyTorch torch.compile f32, prompt encoder + mask decoder"
    if reason := torch_compile_missing():
        not_run[name] = reason
    else:
        import torch

        compiled = torch.compile(whole, dynamic=True)
        started = time.perf_counter()
        for feed in whole_inputs.values():  # compiles one prompt and the chunk's dynamic batch
            _torch_call(compiled, feed)
        compile_s = time.perf_counter() - started
        rows[name] = _row(lambda feed: _torch_call(compiled, feed), whole_inputs, repeats) | {"compile_s": compile_s}
    return rows, not_run


def decoder_precision_agreement(ir_folder: Path, images: dict[str, np.ndarray]) -> dict:
    """The decoder at the device's default precision against f32, both on the same f32 embedding.

    `utils.accuracy.compare_on_images` over its fixed prompts (multimask on and off) on
    every image; only the decoder's precision differs, because both predictors run the
    same compiled f32 encoder. Where the default precision is f32 the masks are the same.
    """
    from utils.accuracy import compare_on_images
    from utils.ir_store import DECODER_XML, ENCODER_XML
    from utils.predictor import OVSamPredictor

    reference = OVSamPredictor(ir_folder / ENCODER_XML, ir_folder / DECODER_XML, config=F32)
    default_decoder = OVSamPredictor(ir_folder / ENCODER_XML, ir_folder / DECODER_XML)
    default_decoder.encoder = reference.encoder
    result = compare_on_images(default_decoder, reference, images)
    precision = default_decoder.decoder_prompt_side.get_property("INFERENCE_PRECISION_HINT")
    keep = ("mean_mask_iou", "worst_mask_iou", "worst_score_difference")
    return {"precision": precision.get_type_name(), "images": list(images), **{key: result[key] for key in keep}}


def _torch_call(module, inputs: dict) -> None:
    import torch

    with torch.no_grad():
        module(**as_torch(inputs))


def _row(run: Callable[[dict], object], inputs: dict, repeats: int) -> dict:
    """Median ms of ``run`` on ``inputs["one"]`` (one prompt), and per prompt on ``inputs["chunk"]``."""
    return {
        "one_ms": median_ms(lambda: run(inputs["one"]), repeats, warmup=3),
        "chunk_ms_per_prompt": median_ms(lambda: run(inputs["chunk"]), max(repeats // 4, 2)) / DECODER_CHUNK,
    }


def markdown(result: dict) -> str:
    gmac = result["gmac"]
    lines = [
        f"GMAC: encoder {gmac['encoder']:.1f} per image; whole decoder {gmac['whole']:.3f} per prompt; "
        f"split decoder {gmac['image side']:.3f} per image + {gmac['prompt side']:.3f} per prompt "
        f"({gmac['prompt side with mask']:.3f} per prompt with a mask input).",
        "",
        f"| decoder | one prompt (ms) | per prompt in a chunk of {DECODER_CHUNK} (ms) | GMAC per prompt | GMAC/s "
        "| encoder GMAC/s, same precision | share of the encoder's rate | image side, once per image (ms) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in result["rows"].items():
        image_side = f"{row['image_side_ms']:.1f}" if "image_side_ms" in row else "-"
        encoder_rate = row.get("encoder_gmac_per_s")
        limit = f"{encoder_rate:.0f} | {100 * row['gmac_per_s'] / encoder_rate:.0f}%" if encoder_rate else "- | -"
        lines.append(
            f"| {name} | {row['one_ms']:.1f} | {row['chunk_ms_per_prompt']:.1f} | {row['gmac_per_prompt']:.3f} | "
            f"{row['gmac_per_s']:.0f} | {limit} | {image_side} |"
        )
    lines += [f"{name}: not run, {reason}." for name, reason in result.get("peers_not_run", {}).items()]
    lines += [
        f"{name}: compiled in {row['compile_s']:.0f} s before timing."
        for name, row in result["rows"].items()
        if "compile_s" in row
    ]
    agreement = result.get("precision_agreement")
    if agreement:
        lines += [
            "",
            f"Decoder at the default precision ({agreement['precision']}) against f32, on the same f32 embedding, "
            f"over the fixed prompts (multimask on and off) on {', '.join(agreement['images'])}: mask IoU mean "
            f"{agreement['mean_mask_iou']:.4f}, worst {agreement['worst_mask_iou']:.4f}; largest score difference "
            f"{agreement['worst_score_difference']:.1e}.",
        ]
    for name, layers in result["profiles"].items():
        lines += ["", profile_markdown(f"{name}, one prompt", layers, top=10)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    from utils.quantize import image_files

    parser = benchmark_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed runs of one prompt (median)")
    parser.add_argument("--profile", action="store_true", help="also print OpenVINO's time per layer type")
    parser.add_argument(
        "--agreement-dir", type=Path, default=ROOT / "data", help="images for the default-precision decoder's mask IoU"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "decoder_speed.json")
    args = parser.parse_args(argv)

    cpu = print_header(args.model_type)
    sam, encoder_xml, _ = model_and_ir(args)
    result = run(sam, encoder_xml.parent, read_rgb_image(args.image), args.repeats, 5 if args.profile else 0)
    images = {path.name: read_rgb_image(path) for path in image_files(args.agreement_dir)}
    result["precision_agreement"] = decoder_precision_agreement(encoder_xml.parent, images)
    result.update(cpu=cpu, model_type=args.model_type, settings={"repeats": args.repeats})
    return publish(result, markdown(result), args.output)


if __name__ == "__main__":
    main()
