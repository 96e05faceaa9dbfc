"""How `benchmarks.compare` presents its result: the markdown table and the bar chart. No measuring here."""

from __future__ import annotations

from pathlib import Path

from utils.precision import isa_line

COLUMNS = {  # key: (heading, unit, higher is better)
    "encoder_ms": ("encoder", "ms", False),
    "prompt_ms": ("one prompt", "ms", False),
    "amg_s": ("AMG end to end", "s", False),
    "throughput_fps": ("throughput", "img/s", True),
}
BASELINE = "PyTorch eager f32"
WARM_UP_WORTH_SAYING_S = 1.0
PEER_COLOURS = {"PyTorch": "#888", "ONNX": "#d98c00"}  # bar colours by first word of the row name


def add_ratios(rows: dict) -> None:
    """Speed-up of every row against PyTorch eager f32, per column (>1 means faster; None where either failed)."""
    base = rows[BASELINE]
    for row in rows.values():
        row["ratios"] = {}
        for column, (_, _, higher_is_better) in COLUMNS.items():
            value, reference = row[column], base[column]
            if isinstance(value, dict) or isinstance(reference, dict):
                row["ratios"][column] = None
            else:
                row["ratios"][column] = value / reference if higher_is_better else reference / value


def failed_measurements(rows: dict) -> list[str]:
    """'row: column' for every measurement that raised, the warm-up included (a row not run on purpose is no failure).

    A failed warm-up counts because the columns after it may then include compilation.
    """
    return [
        f"{name}: {column}"
        for name, row in rows.items()
        for column in (*COLUMNS, "warm_up_s")
        if isinstance(row.get(column), dict) and "error" in row[column]
    ]


def markdown(result: dict) -> str:
    """The header lines (CPU, weights, rows not run) and the table; failed cells say so with their error."""
    cpu = result["cpu"]
    gmac = result.get("encoder_gmac")  # absent in results from before it was counted
    lines = [
        f"CPU: {cpu['cpu']}; {isa_line(cpu)}. OpenVINO {cpu['openvino']}. {result['weights']}",
        f"Model: {result['model_type']}. {_work_line(gmac)}",
        *[
            f"{name}: not run, {row['encoder_ms']['not_measured']}."
            for name, row in result["rows"].items()
            if isinstance(row["encoder_ms"], dict) and "not_measured" in row["encoder_ms"]
        ],
        "Per prompt, the PyTorch and ONNX Runtime rows run SAM's whole decoder, the OpenVINO rows its split "
        "decoder's prompt side (python -m benchmarks.decoder_speed compares the runtimes on the whole decoder).",
        *[
            f"{name}: first calls (compilation) took {row['warm_up_s']:.0f} s before timing, not in the columns."
            for name, row in result["rows"].items()
            if isinstance(row.get("warm_up_s"), float) and row["warm_up_s"] >= WARM_UP_WORTH_SAYING_S
        ],
        *[
            f"{name}: the warm-up failed ({row['warm_up_s']['error']}), so its columns may include compilation."
            for name, row in result["rows"].items()
            if isinstance(row.get("warm_up_s"), dict) and "error" in row["warm_up_s"]
        ],
        "",
        "| configuration | encoder (ms) | x | GMAC/s | one prompt (ms) | x | AMG end to end (s) | x "
        "| throughput (img/s) | x | peak memory (MiB) | size (MB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, row in result["rows"].items():
        cells = []
        for column in COLUMNS:
            value, ratio = row[column], row.get("ratios", {}).get(column)
            cells += [_format(value), "" if ratio is None else f"{ratio:.2f}"]
            if column == "encoder_ms":
                cells.append(_gmac_per_s(gmac, value))
        cells += [_format(row["peak_memory_mib"], 0), _format(row["model_size_mb"], 0)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    accuracy = result.get("int8_accuracy")
    if accuracy:
        lines += [
            "",
            "| INT8 vs FP encoder (OpenVINO) | mean | worst |",
            "| --- | ---: | ---: |",
            f"| embedding relative error | {accuracy['mean_embedding_relative_error']:.2e} "
            f"| {accuracy['worst_embedding_relative_error']:.2e} |",
            f"| mask IoU over fixed prompts | {accuracy['mean_mask_iou']:.4f} | {accuracy['worst_mask_iou']:.4f} |",
            f"| images: {', '.join(accuracy['per_image'])} | | |",
        ]
    return "\n".join(lines)


def _work_line(gmac) -> str:
    if isinstance(gmac, float):
        return f"Encoder work: {gmac:.1f} GMAC per image (attention included); GMAC/s is that over the encoder's time."
    if isinstance(gmac, dict):
        return f"Encoder work: not counted ({gmac.get('error', '')[:80]})."
    return "Encoder work: not counted in this run."


def _gmac_per_s(gmac, encoder_ms) -> str:
    """The encoder's GMAC per second in a row, or "n/a" where the work or the latency is missing."""
    if not isinstance(gmac, float) or not isinstance(encoder_ms, float):
        return "n/a"
    return f"{gmac / (encoder_ms / 1000):.0f}"


def _format(value, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, dict):
        return "not run" if "not_measured" in value else f"failed: {value['error'][:60]}"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}f}" if value >= 1 else f"{value:.3g}"


def plot(result: dict, path: Path) -> None:
    """One panel per timed column: the speed-up of each configuration over PyTorch eager f32."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["rows"])
    figure, axes = plt.subplots(1, len(COLUMNS), figsize=(4.2 * len(COLUMNS), 0.5 * len(names) + 1.6), sharey=True)
    for axis, (column, (heading, unit, _)) in zip(axes, COLUMNS.items()):
        ratios = [result["rows"][name]["ratios"][column] for name in names]
        colours = [PEER_COLOURS.get(name.split()[0], "#0068b5") for name in names]  # OpenVINO blue
        bars = axis.barh(names, [ratio or 0 for ratio in ratios], color=colours)
        for bar, name, ratio in zip(bars, names, ratios):
            label = f" {ratio:.2f}x" if ratio is not None else " " + _format(result["rows"][name][column]).split(":")[0]
            axis.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, label, va="center")
        axis.axvline(1.0, color="black", linewidth=0.8)
        axis.set_title(f"{heading} ({unit})")
        axis.set_xlabel("x PyTorch eager f32")
        axis.set_xlim(0, max([ratio or 0 for ratio in ratios] + [1]) * 1.35)
    axes[0].invert_yaxis()
    figure.suptitle(f"SAM {result['model_type']} on {result['cpu']['cpu']}")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
