"""The README's measured figures, written from the benchmark results committed in benchmarks/published/.

    .venv/bin/python -m benchmarks.compare --output-dir benchmarks/published    # measure (writes compare.json)
    .venv/bin/python -m benchmarks.decoder_speed --profile --output benchmarks/published/decoder_speed.json
    .venv/bin/python -m benchmarks.sam2_encoders --all --output benchmarks/published/sam2_encoders.json
    .venv/bin/python -m benchmarks.compare --model-type sam2.1_hiera_tiny \
        --output-dir benchmarks/published/compare-sam2.1_hiera_tiny
    .venv/bin/python -m benchmarks.label_throughput --output benchmarks/published/label_throughput-bf16.json
    (and with the AVX2 cap exported, --output benchmarks/published/label_throughput-avx2.json)
    .venv/bin/python -m benchmarks.video --objects 2 --output benchmarks/published/video-bf16.json
    (and with the AVX2 cap exported, --model-types edgetam --objects 1 --output benchmarks/published/video-avx2.json)
    .venv/bin/python -m benchmarks.video_memory --transformers-frames 30 --output benchmarks/published/video-memory.json
    .venv/bin/python -m benchmarks.readme_section            # rewrite README.md between the markers
    .venv/bin/python -m benchmarks.readme_section --check    # exit 1 where README.md differs (the tests do this)

Each section of README.md between ``<!-- generated: NAME -->`` and ``<!-- end: NAME -->`` is the
markdown that the benchmark itself prints (`benchmarks.compare_table.markdown`,
`benchmarks.decoder_speed.markdown`, `benchmarks.sam2_encoders.model_table`) for the committed JSON, so no
figure in it is typed in.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Callable

from benchmarks.report import ROOT

PUBLISHED = ROOT / "benchmarks" / "published"
README = ROOT / "README.md"


def _compare_markdown(result: dict) -> str:
    from benchmarks.compare_table import markdown

    return markdown(result)


def _decoder_speed_markdown(result: dict) -> str:
    """The CPU, then the decoder benchmark's own table, without the per-layer profiles (they stay in the JSON)."""
    from benchmarks.decoder_speed import markdown
    from utils.precision import isa_line

    cpu = result["cpu"]
    return f"CPU: {cpu['cpu']}; {isa_line(cpu)}. OpenVINO {cpu['openvino']}.\n\n" + markdown(result | {"profiles": {}})


def _label_throughput_markdown(result: dict) -> str:
    from benchmarks.label_throughput import readme_markdown

    return readme_markdown(result)


def _video_markdown(result: dict) -> str:
    from benchmarks.video import readme_markdown

    return readme_markdown(result)


def _video_memory_markdown(result: dict) -> str:
    from benchmarks.video_memory import readme_markdown

    return readme_markdown(result)


def _model_table(result: dict) -> str:
    from benchmarks.sam2_encoders import model_table

    return model_table(result)


SECTIONS: dict[str, tuple[str, Callable[[dict], str]]] = {
    "compare": ("compare.json", _compare_markdown),
    "decoder_speed": ("decoder_speed.json", _decoder_speed_markdown),
    "models": ("sam2_encoders.json", _model_table),
    "compare_sam2": ("compare-sam2.1_hiera_tiny/compare.json", _compare_markdown),
    "label_throughput_avx2": ("label_throughput-avx2.json", _label_throughput_markdown),
    "label_throughput_bf16": ("label_throughput-bf16.json", _label_throughput_markdown),
    "video_bf16": ("video-bf16.json", _video_markdown),
    "video_avx2": ("video-avx2.json", _video_markdown),
    "video_memory": ("video-memory.json", _video_memory_markdown),
}
"""Section name -> (results file in benchmarks/published/, the benchmark's own markdown for it)."""


def section_text(name: str, published: Path = PUBLISHED) -> str:
    """What README.md holds between the markers of section ``name``: the file, its numeric settings, its tables."""
    filename, render = SECTIONS[name]
    result = json.loads((published / filename).read_text())
    numeric = {
        key: value
        for key, value in result.get("settings", {}).items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)
    }
    settings = f" (settings: {json.dumps(numeric)})" if numeric else ""
    return f"From `benchmarks/published/{filename}`{settings}:\n\n{render(result)}"


def regenerate(readme: str, published: Path = PUBLISHED) -> str:
    """``readme`` with every generated section rewritten from the results in ``published``."""
    for name in SECTIONS:
        pattern = re.compile(rf"(<!-- generated: {name} -->\n).*?(<!-- end: {name} -->)", re.DOTALL)
        if not pattern.search(readme):
            raise ValueError(f"README.md has no markers for the generated section {name!r}")
        text = section_text(name, published)
        readme = pattern.sub(lambda match, text=text: f"{match[1]}{text}\n{match[2]}", readme)
    return readme


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 where README.md differs")
    args = parser.parse_args(argv)
    current = README.read_text(encoding="utf-8")
    wanted = regenerate(current)
    if args.check:
        if wanted != current:
            print(
                "README.md's generated sections differ from benchmarks/published/: run "
                "python -m benchmarks.readme_section",
                file=sys.stderr,
            )
            return 1
        return 0
    README.write_text(wanted, encoding="utf-8")
    print(f"written: {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
