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
from benchmarks.report import ROOT, count_gmac, run_worker
from tests.helpers import make_test_images, quickest_compare_settings
from utils.accuracy import PARITY_EMBEDDING_TOLERANCE, PARITY_MIN_MASK_IOU
from utils.precision import BF16_ISA, ONEDNN_ISA_ORDER, cpu_description, isa_line, native_bf16
from utils.transforms import encoder_input


def test_prompt_latency_benchmark_reports_every_row(tiny_sam, tiny_ir_f32):
    """On vit_tiny: the parity tests already run vit_b's encoder in PyTorch and OpenVINO."""
    image = make_test_images()["tiny"]
    result = prompt_latency.run(tiny_sam, *tiny_ir_f32, image, repeats=1, prompt_repeats=2)
    assert set(result["timings"]) == {"PyTorch SamPredictor (f32)", "OpenVINO default precision", "OpenVINO f32 hint"}
    for row in result["timings"].values():
        assert row["encoder_ms"] > 0 and row["prompt_ms"] > 0
    f32 = result["agreement_with_pytorch"]["OpenVINO f32 hint"]
    assert f32["embedding_relative_error"] <= PARITY_EMBEDDING_TOLERANCE and f32["min_mask_iou"] >= PARITY_MIN_MASK_IOU
    table = prompt_latency.markdown(result)
    assert table.count("| PyTorch SamPredictor (f32) |") == 1
    for name in result["agreement_with_pytorch"]:
        assert table.count(f"| {name} |") == 2, name  # a timing row and an agreement row


def test_cpu_description_names_the_isa_and_decides_bf16_from_openvino_and_the_cap():
    cpu = cpu_description()
    assert cpu["cpu"] and set(cpu["isa"]) >= {"avx512_bf16", "amx_bf16"}
    cap = cpu["onednn_isa_cap"]
    capped_below_bf16 = cap is not None and ONEDNN_ISA_ORDER.index(cap) < ONEDNN_ISA_ORDER.index(BF16_ISA)
    assert native_bf16(cpu) == ("BF16" in cpu["openvino_capabilities"] and not capped_below_bf16)
    assert "amx_bf16" in isa_line(cpu) and "OpenVINO CPU capabilities" in isa_line(cpu)
    assert ("capped at" in isa_line(cpu)) == (cap is not None)
    if sys.platform.startswith("linux"):  # the flags OpenVINO relies on agree with the kernel's
        assert native_bf16(cpu) == (bool(cpu["isa"]["avx512_bf16"] or cpu["isa"]["amx_bf16"]) and not capped_below_bf16)


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


WORKER = (
    "import numpy as np; from utils.memory import peak_memory_mib; a = np.ones(300 * 2**20 // 8); "
    "print(peak_memory_mib())"
)
LARGE_PARENT = (
    "import subprocess, sys; import numpy as np; from utils.memory import peak_memory_mib; "
    "ballast = np.ones(2**30 // 8); "  # 1 GiB, touched
    f"worker = subprocess.run([sys.executable, '-c', {WORKER!r}], capture_output=True, text=True, check=True); "
    "print(peak_memory_mib(), worker.stdout.strip())"
)


def test_peak_memory_is_the_workers_own_also_under_a_large_parent():
    """ru_maxrss would report the parent's 1 GiB here on Linux; the worker holds about 300 MiB. The large parent is
    a process of its own, so the test does not raise the suite's peak by a gigabyte."""
    done = subprocess.run([sys.executable, "-c", LARGE_PARENT], cwd=ROOT, capture_output=True, text=True, check=True)
    parent, worker = map(float, done.stdout.split())
    assert 300 < worker < 600, worker
    assert parent > 1024 > worker


def test_worker_failure_is_returned_not_raised():
    assert "invalid choice: 'no such row'" in run_worker("benchmarks.compare", ["--worker", "no such row"])["error"]


def test_compare_benchmark_writes_table_json_and_chart_with_every_row(tmp_path):
    """The one benchmark command on tiny settings and vit_tiny, every row in its own process. Sizes and ratios
    are checked against values computed here; vit_b runs one row of the same command in notebook 07."""
    from utils.checkpoints import load_sam
    from utils.ir_store import INT8_ENCODER_XML, ir_directory

    tiny = quickest_compare_settings("vit_tiny", tmp_path, throughput_images=2)
    result = compare.run(tiny)
    rows = result["rows"]
    assert list(rows) == list(compare.ROWS) and result["failed"] == []
    measured = {name for name in rows if not compare.not_run_reason(name, result["cpu"], tiny)}
    if os.environ.get("CI"):  # CI installs the peers, so there only the bf16 row may be left out (no native bf16)
        assert measured >= set(compare.ROWS) - {"PyTorch bf16 autocast"}
    for name in set(rows) - measured:
        reason = compare.not_run_reason(name, result["cpu"], tiny)
        assert all(rows[name][column] == {"not_measured": reason} for column in COLUMNS), name
    for name in measured:
        assert all(isinstance(rows[name][column], float) and rows[name][column] > 0 for column in COLUMNS), name

    fused, plain = (ir_directory("vit_tiny", tmp_path / "models", fused) for fused in (True, False))
    state = load_sam("vit_tiny").state_dict()
    expected_mb = {
        "PyTorch": sum(tensor.numel() * tensor.element_size() for tensor in state.values()) / 1e6,
        "OpenVINO default, plain export": _ir_size_mb(plain, "image_encoder.xml"),
        "OpenVINO INT8 encoder": _ir_size_mb(fused, INT8_ENCODER_XML),
        "ONNX Runtime f32": sum(
            path.stat().st_size for path in (tmp_path / "models" / "onnx").rglob("*") if path.is_file()
        )
        / 1e6,
    }
    for name in measured & {name for name in rows if name.startswith("OpenVINO")} - set(expected_mb):
        assert rows[name]["model_size_mb"] == pytest.approx(_ir_size_mb(fused, "image_encoder.xml")), name
    for name in measured & set(expected_mb):
        assert rows[name]["model_size_mb"] == pytest.approx(expected_mb[name]), name
    for name in measured & {name for name in rows if name.startswith("PyTorch")}:
        assert rows[name]["model_size_mb"] == pytest.approx(expected_mb["PyTorch"]), name

    base = rows[compare.BASELINE]
    for name in measured:
        ratios = rows[name]["ratios"]
        assert ratios["encoder_ms"] == pytest.approx(base["encoder_ms"] / rows[name]["encoder_ms"]), name
        assert ratios["throughput_fps"] == pytest.approx(rows[name]["throughput_fps"] / base["throughput_fps"]), name
    accuracy = result["int8_accuracy"]
    assert 0 <= accuracy["worst_mask_iou"] <= accuracy["mean_mask_iou"] <= 1

    table = (tmp_path / "compare.md").read_text()
    assert "avx512_bf16" in table and "amx_bf16" in table
    for name in compare.ROWS:
        assert table.count(f"| {name} |") == 1, name
    for name in measured - {compare.BASELINE}:
        line = next(line for line in table.splitlines() if line.startswith(f"| {name} |"))
        assert f" {rows[name]['ratios']['amg_s']:.2f} |" in line, (name, line)
    assert list(json.loads((tmp_path / "compare.json").read_text())["rows"]) == list(compare.ROWS)
    chart = matplotlib.image.imread(tmp_path / "compare.png")
    assert chart.shape[0] > 200 and chart.shape[1] > 800


def _ir_size_mb(folder, encoder_name: str) -> float:
    """The encoder's and SAM's whole decoder's .xml and .bin, the size the table reports for an OpenVINO row."""
    files = [folder / name for name in (encoder_name, "prompt_decoder.xml")]
    return sum(path.stat().st_size + path.with_suffix(".bin").stat().st_size for path in files) / 1e6


def test_rows_not_chosen_are_not_run_and_their_models_not_made(monkeypatch, tmp_path):
    """``rows`` picks rows: the others say why they were not run, and only the IR the chosen rows use is made."""
    made = []
    monkeypatch.setattr(
        "utils.convert.ensure_sam_ir",
        lambda model_type, models_dir, fused_attention=True, **_: made.append("fused" if fused_attention else "plain"),
    )
    monkeypatch.setattr("utils.quantize.ensure_int8_encoder", lambda *args: made.append("int8"))
    chosen = compare.settings(rows=["OpenVINO default, plain export", "PyTorch eager f32"])
    assert chosen["rows"] == ["PyTorch eager f32", "OpenVINO default, plain export"]  # in the table's order
    assert compare.not_run_reason("OpenVINO INT8 encoder", cpu_description(), chosen) == (
        "not among the chosen rows (--rows)"
    )
    assert compare.not_run_reason("OpenVINO default, plain export", cpu_description(), chosen) is None
    assert set(compare.prepare_models(chosen)) == {"plain"} and made == ["plain"]
    made.clear()
    compare.prepare_models(compare.settings(rows=["OpenVINO INT8 encoder"]))
    assert made == ["fused", "int8"]
    with pytest.raises(ValueError, match="unknown or no benchmark rows"):
        compare.settings(rows=["OpenVINO bf17"])
    assert compare.parse_settings(["--rows", "OpenVINO f32"])[0]["rows"] == ["OpenVINO f32"]


def test_count_gmac_counts_a_known_amount_of_work():
    """10 rows through a 64->32 linear layer, a [4,8,16] @ [4,16,5] product, and fused attention over 2 heads of 8
    queries and 6 keys of width 16 (q @ k^T, then the weights @ v): multiply-adds known by hand. The attention is
    what torch's counter misses inside the CPU's fused kernel (SAM 2's Hiera, the fused vit_b export)."""
    import torch

    class Known(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(64, 32)

        def forward(self, x, a, b, q, k):
            return self.linear(x), a @ b, torch.nn.functional.scaled_dot_product_attention(q, k, k)

    inputs = {"x": torch.ones(10, 64), "a": torch.ones(4, 8, 16), "b": torch.ones(4, 16, 5)}
    inputs |= {"q": torch.ones(1, 2, 8, 16), "k": torch.ones(1, 2, 6, 16)}
    expected = 10 * 64 * 32 + 4 * 8 * 16 * 5 + 2 * (2 * 8 * 6 * 16)
    assert count_gmac(Known(), **inputs) * 1e9 == pytest.approx(expected)


def test_decoder_speed_counts_work_and_times_every_decoder(tiny_sam, tiny_ir_f32, monkeypatch):
    """Every row at f32 and the default precision on vit_tiny, whose decoder is vit_b's. The work counted is
    checked against the layers' own multiply-adds (forward hooks, independent of torch's FlopCounterMode),
    and each rate against the times measured.

    The torch.compile row compiles with the eager backend here: the row's code runs, and Inductor, which
    took 100 s on the decoder on a 2-core AVX2 CPU, is exercised by the benchmark's own row
    (test_compare_benchmark_writes_table_json_and_chart_with_every_row) and tests/test_peers.py."""
    import functools

    import torch

    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    result = decoder_speed.run(tiny_sam, tiny_ir_f32[0].parent, make_test_images()["tiny"], repeats=2, profile_runs=1)
    gmac = result["gmac"]
    modules = decoder_speed.torch_modules(tiny_sam)
    image = make_test_images()["tiny"]
    whole_inputs = decoder_speed.as_torch(_whole_decoder_feed(image))
    layers = _layer_gmac(modules["whole"], whole_inputs)
    # the layers are most of the whole decoder's work; the rest is attention's products and the mask's product
    assert layers < gmac["whole"] < 1.5 * layers
    encoder_layers = _layer_gmac(modules["encoder"], decoder_speed.as_torch({"image": encoder_input(image)}))
    assert encoder_layers < gmac["encoder"] < 1.5 * encoder_layers
    assert gmac["prompt side"] < 0.8 * gmac["whole"], "the split leaves the per-image work to the image side"
    # with a mask the first block's projections run per prompt, but on heads*T rows instead of 4096 pixels
    assert gmac["prompt side"] < gmac["prompt side with mask"] < 0.8 * gmac["whole"]
    decoders = ("whole decoder", "split decoder, prompt side", "split decoder, prompt side with mask")
    expected_rows = {"PyTorch eager f32, prompt encoder + mask decoder"} | {
        f"OpenVINO {precision}, {decoder}" for precision in ("f32", "default") for decoder in decoders
    }
    peers = {
        "ONNX Runtime f32, whole decoder (SamOnnxModel)",
        "PyTorch torch.compile f32, prompt encoder + mask decoder",
    }
    if os.environ.get("CI"):  # CI installs both peers, so there neither may be left out
        assert result["peers_not_run"] == {}
    assert set(result["rows"]) == expected_rows | (peers - set(result["peers_not_run"]))
    for name, row in result["rows"].items():
        key = next((key for key in ("with mask", "prompt side") if key in name), "whole")
        work = {"with mask": gmac["prompt side with mask"], "prompt side": gmac["prompt side"], "whole": gmac["whole"]}
        assert row["gmac_per_prompt"] == work[key], name
        assert row["one_ms"] > 0 and row["gmac_per_s"] == pytest.approx(work[key] / row["chunk_ms_per_prompt"] * 1e3)
        if name.startswith("OpenVINO"):
            assert row["encoder_gmac_per_s"] > 0, name
    assert set(result["profiles"]) == {f"{d}, {p}" for d in decoders for p in ("f32", "default")}
    table = decoder_speed.markdown(result)
    assert table.count("| OpenVINO ") == 6 and "| PyTorch eager f32" in table and "FullyConnected" in table
    print(table)


def _whole_decoder_feed(image) -> dict:
    """The one-point prompt as SAM's whole decoder takes it, on a zero embedding (the work does not depend on it)."""
    from utils.predictor import whole_decoder_inputs

    points = decoder_speed.prompt_inputs(image, 1)
    return whole_decoder_inputs(np.zeros((1, 256, 64, 64), np.float32), points["point_coords"], points["point_labels"])


def _layer_gmac(module, inputs: dict) -> float:
    """Multiply-adds of the Linear, Conv2d and ConvTranspose2d layers in one forward pass, from their shapes."""
    import torch

    total = 0

    def count(layer, args, output):
        nonlocal total
        if isinstance(layer, torch.nn.Linear):
            total += output.numel() * layer.in_features
        else:  # each output value sums in_channels/groups * kernel taps, fewer where a transposed stride spreads them
            taps = layer.kernel_size[0] * layer.kernel_size[1]
            if isinstance(layer, torch.nn.ConvTranspose2d):
                taps //= layer.stride[0] * layer.stride[1]
            total += output.numel() * layer.in_channels // layer.groups * taps

    kinds = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    hooks = [layer.register_forward_hook(count) for layer in module.modules() if isinstance(layer, kinds)]
    with torch.no_grad():
        module(**inputs)
    for hook in hooks:
        hook.remove()
    return total / 1e9


def test_default_precision_decoder_is_compared_on_the_same_f32_embedding(ir_f32):
    images = {"portrait": make_test_images()["portrait"]}  # odd sizes; a second image doubled the vit_b encoder runs
    agreement = decoder_speed.decoder_precision_agreement(ir_f32[0].parent, images)
    assert agreement["images"] == list(images) and agreement["precision"] in ("f32", "bf16")
    print(f"decoder at {agreement['precision']} against f32: {agreement}")
    if agreement["precision"] == "f32":  # a CPU without bf16: the very same computation
        assert agreement["worst_mask_iou"] >= 0.999 and agreement["worst_score_difference"] <= 1e-5
    else:
        assert 0.9 <= agreement["mean_mask_iou"] < 1.0


def test_readme_sections_are_what_the_benchmarks_wrote():
    """README.md's generated sections equal what benchmarks.readme_section writes from benchmarks/published/."""
    from benchmarks import readme_section

    readme = readme_section.README.read_text(encoding="utf-8")
    assert readme_section.regenerate(readme) == readme, "run: python -m benchmarks.readme_section"
    for name, (filename, _) in readme_section.SECTIONS.items():
        assert f"<!-- generated: {name} -->\nFrom `benchmarks/published/{filename}`" in readme, name


def test_readme_section_follows_the_results_file(tmp_path):
    """A changed figure in the results file changes the README's section, and a README without markers is refused."""
    import shutil

    from benchmarks import readme_section

    published = tmp_path / "published"
    shutil.copytree(readme_section.PUBLISHED, published)
    result = json.loads((published / "compare.json").read_text())
    result["rows"]["OpenVINO f32"]["encoder_ms"] = 123456.0
    (published / "compare.json").write_text(json.dumps(result))
    readme = readme_section.README.read_text(encoding="utf-8")
    changed = readme_section.regenerate(readme, published)
    assert changed != readme and "| OpenVINO f32 | 123456 |" in changed
    with pytest.raises(ValueError, match="no markers for the generated section 'compare'"):
        readme_section.regenerate("# a README without markers\n", published)


def test_profile_counts_int8_linear_layers_as_linear():
    """An INT8 IR runs its quantized linear layers as a FullyConnected type of their own: they count as linear."""
    from benchmarks.encoder_profile import work_line

    layer_ms = {"FullyConnected": 30.0, "FullyConnectedQuantizedLegacy": 20.0, "Subgraph": 50.0}
    line = work_line({"linear": 10.0, "attention": 5.0}, layer_ms)
    assert "linear layers 10.0 GMAC in 50 ms" in line and "everything else 5.0 GMAC in 50 ms, 100 GMAC/s" in line


def test_label_throughput_times_every_way_on_the_same_images(tmp_path):
    from benchmarks import label_throughput

    result = label_throughput.main(
        [
            "--model-type",
            "vit_tiny",
            "--models-dir",
            str(tmp_path / "models"),
            "--copies",
            "1",
            "--points-per-side",
            "2",
            "--workers",
            "2",
            "--output",
            str(tmp_path / "label.json"),
            "--no-ray",  # label_folder(ray=True), its Ray row, is tests/test_label_ray.py's: a local Ray takes 30 s
        ]
    )
    assert set(result["rows"]) == {"plain", "async", "runner-2"}
    assert all(
        row["images"] == result["images"] == len(label_throughput.DEFAULT_IMAGES) for row in result["rows"].values()
    )
    assert set(result["profile"]) == {"encoder", "decoder", "rest", "whole image"}
    parts = sum(result["profile"][name]["seconds"] for name in ("encoder", "decoder", "rest"))
    assert (
        parts == pytest.approx(result["profile"]["whole image"]["seconds"])
        and result["profile"]["decoder"]["seconds"] > 0
    )
    assert "overlapping its parts alone can make it at most" in label_throughput.readme_markdown(result)
    table = label_throughput.markdown(result)
    assert "| runner, 2 worker(s) |" in table and "| one process, async" in table
    assert len({row["masks"] for row in result["rows"].values()}) == 1, "the ways labelled the images differently"
    assert json.loads((tmp_path / "label.json").read_text())["rows"]["runner-2"]["seconds"] > 0


def test_stolen_time_is_the_steal_share_of_the_cpu_time_between_readings():
    from benchmarks.report import cpu_times, stolen_percent

    assert stolen_percent([0] * 8, [10, 0, 0, 60, 0, 0, 0, 30]) == 30
    assert stolen_percent(None, [1] * 8) is None
    assert len(cpu_times()) == 8  # Linux, where CI runs


def test_label_throughput_shows_a_failed_row_and_keeps_the_others():
    from benchmarks import label_throughput

    plain = {"seconds": 30.0, "first_image_seconds": 10.0, "workers": 1, "images": 5, "masks": 10}
    result = {
        "cpu": {"cpu": "CPU A", "isa": {"avx2": True}, "onednn_isa_cap": None},
        "cores": 2,
        "model_type": "vit_b",
        "images": 5,
        "points_per_side": 16,
        "profile": {"error": "out of memory"},
        "rows": {"plain": plain, "runner-2": {"error": "a worker could not load the model"}},
    }
    text = label_throughput.readme_markdown(result)
    assert "| plain loop over generate() | 10.0 | 0.200 | 0.167 | 2.0 | 1.00x | - |" in text
    assert "| runner, 2 worker(s) | failed: a worker could not load the model |" in text
    assert "The profile failed: out of memory" in text and "No runner row finished" in text
