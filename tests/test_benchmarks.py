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


def test_compare_benchmark_writes_table_json_and_chart_with_every_row(tmp_path):
    """The one benchmark command on tiny settings. Uses the repository's models/ folder, like the notebooks,
    so the plain and INT8 IR it makes are reused by notebook 06 instead of converted twice."""
    import json

    import matplotlib.image

    from benchmarks import compare

    tiny = ["--repeats", "1", "--warmup", "0", "--prompt-repeats", "1", "--amg-points-per-side", "2",
            "--throughput-images", "2", "--output-dir", str(tmp_path)]
    result = compare.main(tiny)
    assert list(result["rows"]) == list(compare.ROWS)
    for name, row in result["rows"].items():
        if compare.ROWS[name].get("autocast") and not compare.native_bf16(result["cpu"]):
            assert all("not_measured" in row[column] for column in compare.COLUMNS), row
            continue
        for column in compare.COLUMNS:
            assert isinstance(row[column], float) and row[column] > 0, (name, column, row[column])
        assert row["peak_rss_mib"] > 100 and row["model_size_mb"] > 50, name
    assert all(ratio == 1.0 for ratio in result["rows"][compare.BASELINE]["ratios"].values())
    assert 0 <= result["int8_accuracy"]["worst_mask_iou"] <= 1

    table = (tmp_path / "compare.md").read_text()
    assert "avx512_bf16" in table and "amx_bf16" in table
    for name in compare.ROWS:
        assert table.count(f"| {name} |") == 1, name
    assert list(json.loads((tmp_path / "compare.json").read_text())["rows"]) == list(compare.ROWS)
    chart = matplotlib.image.imread(tmp_path / "compare.png")
    assert chart.shape[0] > 200 and chart.shape[1] > 800
