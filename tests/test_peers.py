"""The benchmark's peers: ONNX Runtime on segment_anything's ONNX export matches SamPredictor; torch.compile's checks.

These need requirements-benchmarks.txt, and torch.compile a C++ compiler (CI installs both);
without onnxruntime they are skipped, and `benchmarks.compare` shows the ONNX Runtime row as not run.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

if not os.environ.get("CI"):  # in CI (.ci/run installs them) a missing package must fail, not skip
    pytest.importorskip("onnxruntime", reason="the peers' packages: pip install -r requirements-benchmarks.txt")

from benchmarks import peers  # noqa: E402 - after the skip
from utils.accuracy import (  # noqa: E402
    PARITY_EMBEDDING_TOLERANCE,
    PARITY_LOGIT_TOLERANCE,
    PARITY_MIN_MASK_IOU,
    PARITY_SCORE_TOLERANCE,
    agreement,
    fixed_prompts,
)
from utils.amg import OVSamAutomaticMaskGenerator  # noqa: E402

needs_compiler = pytest.mark.skipif(
    peers.torch_compile_missing() is not None and not os.environ.get("CI"),
    reason=f"{peers.torch_compile_missing()} (CI installs it, so there this test runs)",
)


@pytest.fixture(scope="module")
def onnx_files(tiny_sam, tmp_path_factory) -> tuple[Path, Path]:
    return peers.export_onnx(tiny_sam, tmp_path_factory.mktemp("onnx"))


@pytest.fixture(scope="module")
def ort_and_torch(tiny_sam, onnx_files, test_images):
    from segment_anything import SamPredictor

    image = test_images["landscape"]
    ort_predictor = peers.OrtSamPredictor(*onnx_files)
    ort_predictor.set_image(image)
    torch_predictor = SamPredictor(tiny_sam)
    torch_predictor.set_image(image)
    return ort_predictor, torch_predictor, image


def test_onnx_runtime_predictor_matches_sam_predictor_on_every_prompt_type(ort_and_torch):
    ort_predictor, torch_predictor, image = ort_and_torch
    result = agreement(ort_predictor, torch_predictor, fixed_prompts(image))
    assert result["embedding_relative_error"] <= PARITY_EMBEDDING_TOLERANCE, result
    assert result["min_mask_iou"] >= PARITY_MIN_MASK_IOU, result
    assert result["max_score_difference"] <= PARITY_SCORE_TOLERANCE, result


def test_onnx_runtime_refines_with_a_mask_input_like_sam_predictor(ort_and_torch):
    ort_predictor, torch_predictor, image = ort_and_torch
    one_point = fixed_prompts(image)["one point"]
    _, _, low_res = torch_predictor.predict(**one_point, multimask_output=False)
    ours = ort_predictor.predict(**one_point, mask_input=low_res, multimask_output=False, return_logits=True)
    reference = torch_predictor.predict(**one_point, mask_input=low_res, multimask_output=False, return_logits=True)
    assert np.abs(ours[2] - reference[2]).max() <= PARITY_LOGIT_TOLERANCE * np.abs(reference[2]).max()
    assert np.abs(ours[1] - reference[1]).max() <= PARITY_SCORE_TOLERANCE


def test_onnx_decoder_takes_batches_across_chunks_like_one_prompt_at_a_time(ort_and_torch):
    """20 prompts (two chunks of the predictor's 16) in one call give what 20 single calls give."""
    ort_predictor, _, image = ort_and_torch
    h, w = image.shape[:2]
    points = np.stack([np.linspace(5, w - 5, 20), np.linspace(5, h - 5, 20)], axis=1)[:, None, :]
    labels = np.ones((20, 1))
    low_res, scores = ort_predictor.predict_low_res(points, labels)
    assert low_res.shape == (20, 3, 256, 256) and scores.shape == (20, 3)
    for index in (0, 17):
        single, single_scores = ort_predictor.predict_low_res(points[index : index + 1], labels[index : index + 1])
        np.testing.assert_allclose(low_res[index], single[0], atol=1e-4)
        np.testing.assert_allclose(scores[index], single_scores[0], atol=1e-5)


def test_mask_generator_runs_on_onnx_runtime(ort_and_torch):
    ort_predictor, _, image = ort_and_torch
    generator = OVSamAutomaticMaskGenerator(
        ort_predictor, points_per_side=4, pred_iou_thresh=0, stability_score_thresh=0, show_progress=False
    )
    anns = generator.generate(image)
    assert generator.stage_counts["decoded"] == 16 * 3
    assert anns and all(ann["segmentation"].shape == image.shape[:2] for ann in anns)


def test_onnx_export_writes_every_file_or_none(tiny_sam, tmp_path, monkeypatch):
    """The encoder is exported, then the decoder's export fails: the folder must not hold the encoder alone."""
    real_export = peers.torch.onnx.export
    calls = []

    def decoder_export_fails(model, *args, **kwargs):
        calls.append(type(model).__name__)
        if isinstance(model, peers.LowResDecoder):
            raise RuntimeError("exporter broke")
        return real_export(model, *args, **kwargs)

    monkeypatch.setattr(peers.torch.onnx, "export", decoder_export_fails)
    with pytest.raises(RuntimeError, match="exporter broke"):
        peers.export_onnx(tiny_sam, tmp_path / "onnx")
    assert calls == ["ImageEncoderViT", "LowResDecoder"]
    assert list((tmp_path / "onnx").iterdir()) == []


def test_export_command_prints_the_paths_for_the_benchmark(tmp_path, tiny_sam):
    """`python -m benchmarks.peers FOLDER --model-type vit_tiny` (what benchmarks.compare runs as a worker, on
    random weights); the encoder's weights file holds its f32 weights."""
    from benchmarks.report import run_worker

    folder = tmp_path / "vit_tiny"
    result = run_worker("benchmarks.peers", [str(folder), "--model-type", "vit_tiny"])
    assert result == {"encoder": str(folder / peers.ONNX_ENCODER), "decoder": str(folder / peers.ONNX_DECODER)}
    names = sorted(path.name for path in folder.iterdir())
    assert names == sorted([peers.ONNX_ENCODER, peers.ONNX_ENCODER_WEIGHTS, peers.ONNX_DECODER])
    f32_bytes = sum(4 * tensor.numel() for tensor in tiny_sam.image_encoder.state_dict().values())
    assert (folder / peers.ONNX_ENCODER_WEIGHTS).stat().st_size == pytest.approx(f32_bytes, rel=0.05)


def test_missing_onnx_file_names_the_file_and_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="image_encoder.onnx.*export_onnx"):
        peers.OrtSamPredictor(tmp_path / "image_encoder.onnx", tmp_path / "prompt_decoder_low_res.onnx")


def test_missing_peers_are_named_with_what_installs_them(monkeypatch):
    assert peers.onnxruntime_missing() is None  # installed: this module would have been skipped otherwise
    monkeypatch.setattr(peers.importlib.util, "find_spec", lambda name: None)
    assert peers.onnxruntime_missing() == (
        "onnxruntime, onnx not installed: pip install -r requirements-benchmarks.txt -c constraints.txt"
    )
    if os.environ.get("CI"):
        assert peers.torch_compile_missing() is None  # .ci/run installs g++ and Python's headers
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr(peers.shutil, "which", lambda name: None)
    assert peers.torch_compile_missing() == (
        "torch.compile needs a C++ compiler (Debian/Ubuntu: apt-get install g++ python3-dev)"
    )


@needs_compiler
def test_torch_compile_row_compiles_in_its_warm_up_only(tiny_sam, test_images):
    """After the warm-up, the timed columns (one prompt, a generator batch of another size) compile nothing."""
    import copy

    import torch

    from benchmarks import compare

    parts = compare.pytorch_parts(copy.deepcopy(tiny_sam), autocast=False, amg_points_per_side=3, compiled=True)
    image = test_images["tiny"]
    parts.warm_up(image)
    settings = compare.settings(repeats=1, warmup=0, prompt_repeats=2, throughput_images=1)
    with torch.compiler.set_stance("fail_on_recompile"):  # any compilation from here on raises
        row = compare.measure(lambda: parts._replace(warm_up=lambda image: None), image, settings)
    for column in compare.COLUMNS:
        assert isinstance(row[column], float), (column, row[column])


def test_weights_spilled_by_the_exporter_are_gathered_into_one_file(tmp_path):
    """What export_onnx does with vit_h's encoder (over 2 GB, so the exporter writes a file per weight), in small."""
    import onnx
    import onnxruntime
    import torch

    linear = torch.nn.Linear(64, 32).eval()
    x = torch.randn(2, 64)
    source = tmp_path / "spilled" / "model.onnx"
    source.parent.mkdir()
    torch.onnx.export(linear, (x,), str(source), input_names=["x"], dynamo=False)
    spilled = onnx.load(str(source))
    onnx.save_model(spilled, str(source), save_as_external_data=True, all_tensors_to_one_file=False, size_threshold=0)
    assert len(list(source.parent.iterdir())) == 3  # the graph, the weight, the bias
    destination = tmp_path / "gathered" / "model.onnx"
    destination.parent.mkdir()
    peers._with_one_weights_file(source, destination, "model.onnx.data")
    assert sorted(path.name for path in destination.parent.iterdir()) == ["model.onnx", "model.onnx.data"]
    output = onnxruntime.InferenceSession(str(destination)).run(None, {"x": x.numpy()})[0]
    np.testing.assert_allclose(output, linear(x).detach().numpy(), atol=1e-5)
