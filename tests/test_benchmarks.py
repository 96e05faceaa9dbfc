"""The benchmark scripts run end to end on tiny settings and report every row."""

from __future__ import annotations

from benchmarks import prompt_latency, report

from tests.helpers import make_test_images


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


def test_cpu_description_names_the_isa():
    cpu = report.cpu_description()
    assert cpu["cpu"] and set(cpu["isa"]) >= {"avx512_bf16", "amx_bf16"}
