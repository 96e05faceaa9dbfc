"""The runtimes a user might pick instead of OpenVINO, for `benchmarks.compare`: ONNX Runtime and torch.compile.

ONNX Runtime runs SAM as a user of `segment_anything` would export it: the image encoder
with ``torch.onnx.export``, and SAM's own prompt encoder and mask decoder traced through
`SamOnnxModel`'s export-friendly code (its point and mask embedding, then
``mask_decoder.predict_masks``), the way ``scripts/export_onnx_model.py`` exports the
decoder. So every prompt runs SAM's whole decoder, as `SamPredictor` does; the split decoder
of the OpenVINO rows (`utils.decoder_split.DecoderPromptSide`) is this project's own
optimisation, and ``python -m benchmarks.decoder_speed`` compares the runtimes on the same
whole-decoder graph. One thing is left out of the graph on purpose: `SamOnnxModel`'s in-graph
upscaling of all four masks to the image size. ONNX Runtime computes every node whether or
not its output is asked for, so that upscaling would be paid for each of the mask
generator's 1024 prompts; here the graph stops at the low-res logits, and `OrtSamPredictor`
upscales the masks it returns in NumPy as `OVSamPredictor` does (it is `OVSamPredictor` with
ONNX Runtime sessions in place of the compiled IR: prompt handling, validation and upscaling
are the same code).

    .venv/bin/python -m benchmarks.peers models/onnx/vit_b      # export vit_b to ONNX there

Its packages are in requirements-benchmarks.txt, not in the learner's install.
torch.compile needs no package, but a C++ compiler and Python's headers (Inductor builds C++).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import sysconfig
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from segment_anything.modeling import Sam
from segment_anything.utils.onnx import SamOnnxModel

from utils.atomic import staged_files
from utils.predictor import OVSamPredictor, whole_decoder_inputs

ONNX_ENCODER = "image_encoder.onnx"
ONNX_ENCODER_WEIGHTS = "image_encoder.onnx.data"  # external data: vit_h's encoder is over protobuf's 2 GB
ONNX_DECODER = "prompt_decoder_low_res.onnx"
ONNX_OPSET = 17  # segment_anything's export script's default
ONNX_PACKAGES = ("onnxruntime", "onnx")
INSTALL_HINT = "pip install -r requirements-benchmarks.txt -c constraints.txt"


# ------------------------------------------------------------------ can this machine run them?
def onnxruntime_missing() -> str | None:
    """Why the ONNX Runtime row cannot run here (its packages are not installed), or None."""
    missing = [name for name in ONNX_PACKAGES if importlib.util.find_spec(name) is None]
    return f"{', '.join(missing)} not installed: {INSTALL_HINT}" if missing else None


def torch_compile_missing() -> str | None:
    """Why torch.compile cannot build its CPU kernels here (no C++ compiler or no Python headers), or None."""
    compiler = os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++")
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if compiler and headers.is_file():
        return None
    found = {"a C++ compiler": compiler, "Python's headers": headers.is_file()}
    needs = [what for what, present in found.items() if not present]
    return f"torch.compile needs {' and '.join(needs)} (Debian/Ubuntu: apt-get install g++ python3-dev)"


# ------------------------------------------------------------------ torch.compile
def compile_sam(sam: Sam) -> Sam:
    """Compile ``sam``'s image encoder and mask decoder in place with torch.compile (Inductor) and return it.

    The decoder is compiled with dynamic shapes, so the mask generator's batches of any size
    share one compiled graph (one prompt is a graph of its own: torch specialises size 1).
    Compilation happens on the first calls, which `compare` runs before it times anything.
    """
    sam.image_encoder = torch.compile(sam.image_encoder)
    sam.mask_decoder = torch.compile(sam.mask_decoder, dynamic=True)
    return sam


# ------------------------------------------------------------------ ONNX export
class LowResDecoder(torch.nn.Module):
    """`SamOnnxModel`'s prompt encoding and mask decoding, stopping at the low-res logits and all four scores.

    Inputs as `SamOnnxModel`'s, less ``orig_im_size``: image_embeddings [1,256,64,64],
    point_coords [B,N,2] in the 1024 frame, point_labels [B,N], mask_input [1,1,256,256],
    has_mask_input [1]. Outputs: masks [B,4,256,256] and iou_predictions [B,4].
    """

    def __init__(self, sam: Sam) -> None:
        super().__init__()
        self.onnx_model = SamOnnxModel(sam, return_single_mask=False)

    def forward(self, image_embeddings, point_coords, point_labels, mask_input, has_mask_input):
        model = self.onnx_model
        return model.mask_decoder.predict_masks(
            image_embeddings=image_embeddings,
            image_pe=model.model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=model._embed_points(point_coords, point_labels),
            dense_prompt_embeddings=model._embed_masks(mask_input, has_mask_input),
        )


def export_onnx(sam: Sam, folder: str | os.PathLike) -> tuple[Path, Path]:
    """Export ``sam`` to ``folder`` as ONNX: the image encoder and `LowResDecoder`. Returns both paths.

    Uses torch.onnx's TorchScript exporter (``dynamo=False``), as segment_anything's export
    script does, at its opset. The encoder's weights go to one external-data file beside it
    (``image_encoder.onnx.data``), so vit_h's 2.5 GB fit. The files appear together or not
    at all. It prints how long the export took.
    """
    started = time.perf_counter()
    names = [ONNX_ENCODER_WEIGHTS, ONNX_ENCODER, ONNX_DECODER]
    with staged_files(folder, names) as (weights_path, encoder_path, decoder_path):
        traced = encoder_path.with_name("traced_" + ONNX_ENCODER)  # may spill weights beside it (> 2 GB)
        _export(
            sam.image_encoder,
            {"x": torch.zeros(1, 3, sam.image_encoder.img_size, sam.image_encoder.img_size)},
            traced,
            ["image_embeddings"],
            {},
        )
        _with_one_weights_file(traced, encoder_path, weights_path.name)
        export_onnx_decoder(sam, decoder_path)
    print(f"exported SAM to ONNX in {time.perf_counter() - started:.0f} s: {folder}", flush=True)
    return Path(folder) / ONNX_ENCODER, Path(folder) / ONNX_DECODER


def export_onnx_decoder(sam: Sam, path: Path) -> None:
    """Export `LowResDecoder` to ``path``, dynamic in the number of prompts and of points per prompt."""
    embed_size = sam.prompt_encoder.image_embedding_size
    example = {
        "image_embeddings": torch.randn(1, sam.prompt_encoder.embed_dim, *embed_size),
        "point_coords": torch.randint(0, 1024, (2, 3, 2), dtype=torch.float),
        "point_labels": torch.tensor([[1.0, 0.0, -1.0], [2.0, 3.0, 1.0]]),
        "mask_input": torch.zeros(1, 1, 4 * embed_size[0], 4 * embed_size[1]),
        "has_mask_input": torch.zeros(1),
    }
    prompt_axes = {0: "prompts", 1: "points"}
    dynamic_axes = {"point_coords": prompt_axes, "point_labels": prompt_axes, "masks": {0: "prompts"}}
    dynamic_axes["iou_predictions"] = {0: "prompts"}
    _export(LowResDecoder(sam).eval(), example, path, ["masks", "iou_predictions"], dynamic_axes)


def _export(module: torch.nn.Module, example: dict, path: Path, output_names: list[str], dynamic_axes: dict) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        # the tracer's warnings about Python control flow in SAM, which upstream's script silences too
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            module,
            tuple(example.values()),
            str(path),
            input_names=list(example),
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            opset_version=ONNX_OPSET,
            dynamo=False,
        )


def _with_one_weights_file(source: Path, destination: Path, weights_name: str) -> None:
    """Save the ONNX model at ``source`` as ``destination`` with all its weights in ``weights_name`` beside it."""
    import onnx

    model = onnx.load(str(source))  # with any external data the exporter wrote beside it
    onnx.save_model(model, str(destination), save_as_external_data=True, location=weights_name)


# ------------------------------------------------------------------ ONNX Runtime
class OrtSamPredictor(OVSamPredictor):
    """`OVSamPredictor` with ONNX Runtime sessions on `export_onnx`'s files in place of the OpenVINO IR.

    Everything but running the two models is inherited: prompt validation, the 1024-frame
    transforms, chunking, NumPy upscaling. There is no split decoder here (SAM's own two
    models only), so every prompt runs the whole decoder, as SamPredictor does.
    ``options`` are an ``onnxruntime.SessionOptions`` (default: all graph optimisations).
    """

    def __init__(self, encoder_onnx: str | os.PathLike, decoder_onnx: str | os.PathLike, options=None) -> None:
        import onnxruntime

        for path in (encoder_onnx, decoder_onnx):
            if not Path(path).is_file():
                raise FileNotFoundError(
                    f"No ONNX model at {path}: make it with benchmarks.peers.export_onnx(sam, folder)."
                )
        if options is None:
            options = onnxruntime.SessionOptions()
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        self.encoder_session = onnxruntime.InferenceSession(str(encoder_onnx), options, providers=providers)
        self.decoder_session = onnxruntime.InferenceSession(str(decoder_onnx), options, providers=providers)
        self._without_openvino_models()

    def _encode(self, encoder_input: np.ndarray) -> np.ndarray:
        name = self.encoder_session.get_inputs()[0].name
        return self.encoder_session.run(None, {name: encoder_input})[0].astype(np.float32)

    def _run_decoder(self, coords: np.ndarray, labels: np.ndarray, mask_input: np.ndarray | None) -> dict:
        inputs = with_one_mask_input(whole_decoder_inputs(self.features, coords, labels, mask_input))
        masks, scores = self.decoder_session.run(["masks", "iou_predictions"], inputs)
        return {"masks": masks, "iou_predictions": scores}


def with_one_mask_input(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`utils.predictor.whole_decoder_inputs` in SamOnnxModel's form: one mask input and flag for the whole batch.

    (SamOnnxModel multiplies the flag into the mask embedding, so a flag per prompt would not
    broadcast; every prompt of a batch shares the mask input anyway.)
    """
    return inputs | {"mask_input": inputs["mask_input"][:1], "has_mask_input": inputs["has_mask_input"][:1]}


def main(argv: list[str] | None = None) -> None:
    """The command line: export a model type's weights (the checkpoint, or random ones) to ONNX in a folder.

    Prints the two paths as JSON on its last line, so `benchmarks.compare` can run it as a worker.
    """
    from utils.checkpoints import load_sam

    parser = argparse.ArgumentParser(description="Export SAM to ONNX for ONNX Runtime (benchmarks.compare's peer).")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--model-type", default="vit_b")
    parser.add_argument("--models-dir", type=Path, default=Path(__file__).resolve().parent.parent / "models")
    args = parser.parse_args(argv)
    sam = load_sam(args.model_type, args.models_dir / "checkpoints", show_progress=False)
    encoder, decoder = export_onnx(sam, args.folder)
    print(json.dumps({"encoder": str(encoder), "decoder": str(decoder)}))


if __name__ == "__main__":
    main()
