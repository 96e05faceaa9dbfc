"""The benchmark scripts: their plumbing on tiny settings, and every CPU-dependent branch on every CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import weakref

import matplotlib.image
import numpy as np
import pytest

from benchmarks import compare, decoder_speed, prompt_latency
from benchmarks.compare_table import COLUMNS, failed_measurements, markdown
from benchmarks.report import ROOT, peak_memory_mib, run_worker
from tests.helpers import make_test_images
from utils.precision import cpu_description, isa_line, native_bf16


def test_prompt_latency_benchmark_reports_every_row(sam, ir_f32):
    image = make_test_images()["tiny"]
    result = prompt_latency.run(sam, *ir_f32, image, repeats=1, prompt_repeats=2)
    assert set(result["timings"]) == {"PyTorch SamPredictor (f32)", "OpenVINO default precision", "OpenVINO f32 hint"}
    for row in result["timings"].values():
        assert row["encoder_ms"] > 0 and row["prompt_ms"] > 0
    f32 = result["agreement_with_pytorch"]["OpenVINO f32 hint"]
    assert f32["embedding_relative_error"] <= 1e-4 and f32["min_mask_iou"] >= 0.99
    table = prompt_latency.markdown(result)
    assert table.count("| PyTorch SamPredictor (f32) |") == 1
    for name in result["agreement_with_pytorch"]:
        assert table.count(f"| {name} |") == 2, name  # a timing row and an agreement row


def test_cpu_description_names_the_isa_and_decides_bf16_from_openvino():
    cpu = cpu_description()
    assert cpu["cpu"] and set(cpu["isa"]) >= {"avx512_bf16", "amx_bf16"}
    assert native_bf16(cpu) == ("BF16" in cpu["openvino_capabilities"])
    assert "amx_bf16" in isa_line(cpu) and "OpenVINO CPU capabilities" in isa_line(cpu)
    if sys.platform.startswith("linux"):  # the flags OpenVINO relies on agree with the kernel's
        assert native_bf16(cpu) == bool(cpu["isa"]["avx512_bf16"] or cpu["isa"]["amx_bf16"])


@pytest.mark.parametrize("autocast", [False, True], ids=["f32", "bf16-autocast"])
def test_pytorch_row_measures_every_column_in_f32_and_under_bf16_autocast(tiny_sam, autocast):
    """The PyTorch rows' code, bf16 outputs included, runs on every CPU (on one without bf16 too)."""
    parts = compare.pytorch_parts(tiny_sam, autocast=autocast, amg_points_per_side=2)
    image = make_test_images()["tiny"]
    settings = compare.settings(repeats=1, warmup=0, prompt_repeats=1, throughput_images=1)
    row = compare.measure(lambda: parts, image, settings)
    for column in COLUMNS:
        assert isinstance(row[column], float) and row[column] > 0, (column, row[column])
    masks, scores, logits = parts.predictor.predict(**compare.fixed_prompts(image)["one point"])
    assert masks.dtype == bool and scores.dtype == logits.dtype == np.float32


def test_failed_measurement_is_a_table_cell_and_a_failure():
    """A column that raises becomes "failed: ..." in the table and in result["failed"]; the others are measured."""

    def broken_throughput(preprocessed, images):
        raise RuntimeError("no throughput today")

    parts = compare.RowParts(
        _InstantPredictor(), _InstantGenerator, broken_throughput, 1.0, compare.contextlib.nullcontext()
    )
    image = make_test_images()["tiny"]
    settings = compare.settings(repeats=1, warmup=0, prompt_repeats=1, throughput_images=1)
    row = compare.measure(lambda: parts, image, settings)
    assert row["throughput_fps"] == {"error": "RuntimeError: no throughput today"}
    rows = {name: dict(row) for name in compare.ROWS}
    rows["PyTorch bf16 autocast"] = compare.unmeasured_row("not_measured", "no native bf16 here")
    compare.add_ratios(rows)
    result = {"cpu": cpu_description(), "model_type": "vit_b", "weights": "test weights", "rows": rows}
    table = markdown(result)
    assert table.count("failed: RuntimeError: no throughput today") == len(rows) - 1
    assert "PyTorch bf16 autocast: not run, no native bf16 here." in table
    assert failed_measurements(rows) == [f"{name}: throughput_fps" for name in rows if name != "PyTorch bf16 autocast"]


def test_throughput_runs_after_the_predictor_is_released():
    """OpenVINO's THROUGHPUT encoder is a second compiled model: the row's peak must not hold both."""
    predictor = _InstantPredictor()
    predictor_alive = weakref.ref(predictor)
    seen_alive = []

    def throughput(preprocessed, images):
        seen_alive.append(predictor_alive() is not None)
        return 1.0

    parts = [compare.RowParts(predictor, _InstantGenerator, throughput, 1.0, compare.contextlib.nullcontext())]
    del predictor
    settings = compare.settings(repeats=1, warmup=0, prompt_repeats=1, throughput_images=1)
    row = compare.measure(parts.pop, make_test_images()["tiny"], settings)  # measure holds the only reference
    assert row["encoder_ms"] >= 0 and row["throughput_fps"] == 1.0
    assert seen_alive == [False]


class _InstantPredictor:
    def set_image(self, image):
        pass

    def predict(self, **prompt):
        return None


class _InstantGenerator:
    def generate(self, image):
        return []


def test_settings_reject_unknown_names_and_make_paths_absolute():
    with pytest.raises(TypeError, match="repeat"):
        compare.settings(repeat=1)
    assert compare.settings(image="data/truck.jpg")["image"].startswith("/") or sys.platform == "win32"


def test_peak_memory_is_the_workers_own_also_under_a_large_parent():
    """ru_maxrss would report the parent's 1 GiB here on Linux; the worker holds about 300 MiB."""
    parent_ballast = np.ones(2**30 // 8)  # 1 GiB, touched
    script = (
        "import numpy as np; from benchmarks.report import peak_memory_mib; "
        "a = np.ones(300 * 2**20 // 8); print(peak_memory_mib())"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    worker = float(done.stdout.strip())
    assert 300 < worker < 600, worker
    assert peak_memory_mib() > 1024 + 300 > worker
    del parent_ballast


def test_worker_failure_is_returned_not_raised():
    assert "invalid choice: 'no such row'" in run_worker("benchmarks.compare", ["--worker", "no such row"])["error"]


def test_compare_benchmark_writes_table_json_and_chart_with_every_row(tmp_path):
    """The one benchmark command on tiny settings, on the real-size model. Uses the repository's models/ folder,
    like the notebooks, so the plain and INT8 IR it makes are reused by notebook 06 instead of converted twice."""
    tiny = compare.settings(
        repeats=1, warmup=0, prompt_repeats=1, amg_points_per_side=2, throughput_images=2, output_dir=tmp_path
    )
    result = compare.run(tiny)
    assert list(result["rows"]) == list(compare.ROWS) and result["failed"] == []
    for name, row in result["rows"].items():
        if compare.ROWS[name].get("autocast") and not native_bf16(result["cpu"]):
            assert all("not_measured" in row[column] for column in COLUMNS), row
            continue
        peer_missing = compare.not_run_reason(compare.ROWS[name], result["cpu"], tiny)
        if peer_missing and not os.environ.get("CI"):  # CI installs the peers, so there every peer row is measured
            assert all(row[column] == {"not_measured": peer_missing} for column in COLUMNS), row
            continue
        for column in COLUMNS:
            assert isinstance(row[column], float) and row[column] > 0, (name, column, row[column])
        assert row["peak_memory_mib"] > 100 and row["model_size_mb"] > 50, name
    assert all(ratio == 1.0 for ratio in result["rows"][compare.BASELINE]["ratios"].values())
    assert 0 <= result["int8_accuracy"]["worst_mask_iou"] <= 1

    table = (tmp_path / "compare.md").read_text()
    assert "avx512_bf16" in table and "amx_bf16" in table
    for name in compare.ROWS:
        assert table.count(f"| {name} |") == 1, name
    assert list(json.loads((tmp_path / "compare.json").read_text())["rows"]) == list(compare.ROWS)
    chart = matplotlib.image.imread(tmp_path / "compare.png")
    assert chart.shape[0] > 200 and chart.shape[1] > 800


def test_decoder_speed_counts_work_and_times_every_decoder(sam, ir_f32):
    """The decoder benchmark's rows at f32 and the default precision, with GMAC counted by torch, not typed in."""
    result = decoder_speed.run(sam, ir_f32[0].parent, make_test_images()["tiny"], repeats=2, profile_runs=1)
    gmac = result["gmac"]
    assert 1.0 < gmac["whole"] < 2.5, "vit_b's decoder does about 1.75 GMAC per prompt"
    assert gmac["prompt side"] < 0.8 * gmac["whole"], "the split leaves the per-image work to the image side"
    # with a mask the first block's projections run per prompt, but on heads*T rows instead of 4096 pixels
    assert gmac["prompt side"] < gmac["prompt side with mask"] < 0.8 * gmac["whole"]
    assert 300 < gmac["encoder"] < 600
    decoders = ("whole decoder", "split decoder, prompt side", "split decoder, prompt side with mask")
    for precision in ("f32", "default"):
        for decoder, key in zip(decoders, ("whole", "prompt side", "prompt side with mask"), strict=True):
            row = result["rows"][f"OpenVINO {precision}, {decoder}"]
            assert row["one_ms"] > 0 and row["chunk_ms_per_prompt"] > 0 and row["gmac_per_s"] > 0
            assert row["gmac_per_prompt"] == gmac[key]
    peers = (
        "ONNX Runtime f32, whole decoder (SamOnnxModel)",
        "PyTorch torch.compile f32, prompt encoder + mask decoder",
    )
    for name in peers:  # CI installs both, so there neither may be left out
        if name in result["peers_not_run"] and not os.environ.get("CI"):
            continue
        row = result["rows"][name]
        assert row["one_ms"] > 0 and row["chunk_ms_per_prompt"] > 0 and row["gmac_per_prompt"] == gmac["whole"]
    assert set(result["profiles"]) == {f"{d}, {p}" for d in decoders for p in ("f32", "default")}
    table = decoder_speed.markdown(result)
    assert table.count("| OpenVINO ") == 6 and "| PyTorch eager f32" in table and "FullyConnected" in table
    print(table)


def test_default_precision_decoder_is_compared_on_the_same_f32_embedding(ir_f32):
    images = {name: image for name, image in make_test_images().items() if name in ("tiny", "portrait")}
    agreement = decoder_speed.decoder_precision_agreement(ir_f32[0].parent, images)
    assert agreement["images"] == list(images) and agreement["precision"] in ("f32", "bf16")
    print(f"decoder at {agreement['precision']} against f32: {agreement}")
    if agreement["precision"] == "f32":  # a CPU without bf16: the very same computation
        assert agreement["worst_mask_iou"] >= 0.999 and agreement["worst_score_difference"] <= 1e-5
    else:
        assert 0.9 <= agreement["mean_mask_iou"] < 1.0
