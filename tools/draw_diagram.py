"""Draw the README's picture of SAM's two OpenVINO models: ``.venv/bin/python -m tools.draw_diagram``.

The same figure as notebook 01's first picture (`utils.viz.draw_sam_diagram`), saved to docs/sam-pipeline.png.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from utils.viz import draw_sam_diagram  # noqa: E402 - after choosing the non-interactive backend

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "sam-pipeline.png"


def main() -> None:
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    draw_sam_diagram().savefig(OUTPUT, dpi=80)
    print(f"written: {OUTPUT}")


if __name__ == "__main__":
    main()
