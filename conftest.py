"""Repository-wide pytest set-up: random SAM weights for every test and notebook run.

The real checkpoints cannot be downloaded on test machines, so the suite (and
every notebook nbval runs, whose kernels inherit this environment) builds SAM
with seeded random weights. Parity with `segment_anything` on the same weights
is what proves the OpenVINO path correct.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

RANDOM_SEED = "0"


def pytest_configure(config):
    os.environ["SAM_RANDOM_WEIGHTS_SEED"] = RANDOM_SEED
    os.environ["SAM_OV_SKIP_GRADIO_LAUNCH"] = "1"  # notebook 04 builds its gradio app but must not serve it
    # notebook 07's benchmark runs one row on vit_b (tests/test_benchmarks.py runs every row on vit_tiny)
    os.environ["SAM_OV_BENCHMARK_ROWS"] = "OpenVINO default, fused export"
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ.setdefault("TQDM_MININTERVAL", "5")
    os.environ["SAM_OV_PLAIN_PROGRESS"] = "1"  # NNCF's bars printed once, not redrawn (utils.quantize)
