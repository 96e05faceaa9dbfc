"""The workshop kit: ready IR made by the full install, used by a light install (no PyTorch) that converts nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers import DATA
from utils.checkpoints import weights_id
from utils.convert import ensure_sam_ir
from utils.download import MIRROR_ENV
from utils.ir_store import (
    INT8_STAMP_FILE,
    KIT_IR_FOLDER,
    STAMP_FILE,
    VIDEO_STAMP_FILE,
    conversion_stamp,
    int8_files,
    ir_directory,
    ir_files,
    take_from_kit,
    video_files,
)

ROOT = DATA.parent
LIGHT_INSTALL = """
import sys
sys.modules["torch"] = None  # the light install: any import of torch fails
sys.modules["segment_anything"] = None
sys.modules["nncf"] = None
sys.path.insert(0, sys.argv[1])
from utils.convert import ensure_sam_ir
"""


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    """A kit made by the command a workshop organiser runs (random weights here, so no checkpoint is fetched)."""
    kit_dir = tmp_path_factory.mktemp("kit")
    command = ["-m", "utils.prefetch", str(kit_dir), "--with-ir", "--models", "vit_b", "--models-dir", "models"]
    # in a process of its own, as the organiser runs it: converting and quantizing stay out of pytest's own peak
    # (the memory report's bound on finished children counts them)
    done = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True, check=False)
    print(done.stdout)
    assert done.returncode == 0, done.stderr[-4000:]
    return kit_dir


def run_light(script: str, kit_dir, models_dir) -> subprocess.CompletedProcess:
    environment = {**os.environ, MIRROR_ENV: str(kit_dir)}
    return subprocess.run(
        [sys.executable, "-c", LIGHT_INSTALL + script, str(ROOT), str(models_dir)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
        check=False,
    )


def test_light_install_takes_the_ir_from_the_kit_and_segments(kit, tmp_path):
    kit_folder = kit / KIT_IR_FOLDER / ir_directory("vit_b", ".").name
    assert sorted(path.name for path in kit_folder.iterdir()) == [
        STAMP_FILE,
        "image_encoder.bin",
        "image_encoder.xml",
        "image_encoder_int8.bin",
        "image_encoder_int8.json",
        "image_encoder_int8.xml",
        "prompt_decoder.bin",
        "prompt_decoder.xml",
        "prompt_decoder_image_side.bin",
        "prompt_decoder_image_side.xml",
        "prompt_decoder_prompt_side.bin",
        "prompt_decoder_prompt_side.xml",
        "prompt_decoder_prompt_side_with_mask.bin",
        "prompt_decoder_prompt_side_with_mask.xml",
    ]
    done = run_light(
        """
import numpy as np
from utils.predictor import OVSamPredictor
encoder_xml, decoder_xml = ensure_sam_ir("vit_b", sys.argv[2])
predictor = OVSamPredictor(encoder_xml, decoder_xml)
predictor.set_image(np.zeros((60, 90, 3), np.uint8))
masks, scores, _ = predictor.predict(point_coords=np.array([[10, 10]]), point_labels=np.array([1]))
print("segmented without torch:", masks.shape)
""",
        kit,
        tmp_path / "models",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "segmented without torch: (3, 60, 90)" in done.stdout
    copied = ir_directory("vit_b", tmp_path / "models")
    assert (copied / STAMP_FILE).read_text() == (kit_folder / STAMP_FILE).read_text()
    assert not list(copied.glob(".from-kit-*")), "a temporary folder was left behind"


def test_light_install_takes_the_int8_encoder_from_the_kit(kit, tmp_path):
    done = run_light(
        """
import numpy as np
from utils.predictor import OVSamPredictor
from utils.quantize import ensure_int8_encoder
int8_xml = ensure_int8_encoder("vit_b", sys.argv[2])
predictor = OVSamPredictor(int8_xml, ensure_sam_ir("vit_b", sys.argv[2])[1])
predictor.set_image(np.zeros((60, 90, 3), np.uint8))
print("INT8 without NNCF:", int8_xml.name, predictor.get_image_embedding().shape)
""",
        kit,
        tmp_path / "models",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "INT8 without NNCF: image_encoder_int8.xml (1, 256, 64, 64)" in done.stdout
    kit_stamp = kit / KIT_IR_FOLDER / ir_directory("vit_b", ".").name / INT8_STAMP_FILE
    assert (ir_directory("vit_b", tmp_path / "models") / INT8_STAMP_FILE).read_text() == kit_stamp.read_text()


def test_light_install_with_a_kit_without_int8_says_nncf_is_missing(kit, tmp_path):
    older = tmp_path / "kit"
    shutil.copytree(kit, older)
    for path in int8_files(older / KIT_IR_FOLDER / ir_directory("vit_b", ".").name):
        path.unlink()
    done = run_light(
        'from utils.quantize import ensure_int8_encoder; ensure_int8_encoder("vit_b", sys.argv[2])',
        older,
        tmp_path / "models",
    )
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError: Quantizing needs NNCF") and "workshop kit" in last


def test_stale_int8_in_the_kit_is_an_error_without_nncf(kit, tmp_path):
    stale = tmp_path / "kit"
    shutil.copytree(kit, stale)
    stamp_path = stale / KIT_IR_FOLDER / ir_directory("vit_b", ".").name / INT8_STAMP_FILE
    stamp = json.loads(stamp_path.read_text())
    stamp["calibration"] = ["another-image.jpg"]
    stamp_path.write_text(json.dumps(stamp))
    done = run_light(
        'from utils.quantize import ensure_int8_encoder; ensure_int8_encoder("vit_b", sys.argv[2])',
        stale,
        tmp_path / "models",
    )
    last = done.stderr.strip().splitlines()[-1]
    assert "KitError" in last and "stale: calibration ['another-image.jpg']" in last and "needs NNCF" in last


def test_incomplete_kit_names_the_missing_file_and_the_command(kit, tmp_path):
    broken = tmp_path / "kit"
    shutil.copytree(kit, broken)
    (broken / KIT_IR_FOLDER / ir_directory("vit_b", ".").name / "prompt_decoder.bin").unlink()
    done = run_light('ensure_sam_ir("vit_b", sys.argv[2])', broken, tmp_path / "models")
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert "KitError" in last and "lacks prompt_decoder.bin" in last and "python -m utils.prefetch" in last


def test_kit_from_an_older_export_with_fewer_files_is_stale_not_incomplete(tmp_path, monkeypatch):
    """A kit made before the decoder gained a part lacks that part's files: skipped as stale, converted here."""
    folder = ir_directory("vit_b", tmp_path / "models")
    stamp = conversion_stamp(weights_id("vit_b"), True, True)
    source = tmp_path / "kit" / KIT_IR_FOLDER / folder.name
    source.mkdir(parents=True)
    for path in ir_files(source)[:-2]:  # every file but the newest part's .bin and .xml
        path.write_bytes(b"")
    (source / STAMP_FILE).write_text(json.dumps({**stamp, "export_code": "older-export-code"}))
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path / "kit"))
    with pytest.warns(UserWarning, match="is stale: export_code"):
        assert take_from_kit(folder, stamp) is False
    assert not folder.exists(), "nothing was copied from the stale kit"


def test_stale_kit_says_what_differs(kit, tmp_path, monkeypatch):
    stale = tmp_path / "kit"
    shutil.copytree(kit, stale)
    stamp_path = stale / KIT_IR_FOLDER / ir_directory("vit_b", ".").name / STAMP_FILE
    stamp = json.loads(stamp_path.read_text())
    stamp["openvino"] = "2023.0.0"
    stamp_path.write_text(json.dumps(stamp))

    done = run_light('ensure_sam_ir("vit_b", sys.argv[2])', stale, tmp_path / "light-models")
    last = done.stderr.strip().splitlines()[-1]
    assert "KitError" in last and "stale" in last and "openvino '2023.0.0'" in last and "needs PyTorch" in last

    # with the full install, a stale kit is skipped with a warning and the IR is converted here instead
    monkeypatch.setenv(MIRROR_ENV, str(stale))

    def convert_instead(*args, **kwargs):
        raise RuntimeError("converting")

    monkeypatch.setattr("utils.convert.load_sam", convert_instead)
    with pytest.warns(UserWarning, match="stale"), pytest.raises(RuntimeError, match="converting"):
        ensure_sam_ir("vit_b", tmp_path / "full-models")


def test_light_install_without_a_kit_says_so_in_one_sentence(tmp_path):
    done = run_light('ensure_sam_ir("vit_b", sys.argv[2])', tmp_path / "no-kit", tmp_path / "models")
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError: This step builds SAM in PyTorch") and "workshop kit" in last


def test_light_install_tracks_with_the_video_ir_from_the_kit(sam2_models_dir, tmp_path, monkeypatch):
    """`utils.prefetch.add_ir` puts EdgeTAM's video parts in the kit beside its image IR (the tests' f32 IR here;
    its INT8 encoder is left out, SAM 1's tests cover that), and a light install tracks from them, converting
    nothing; a stale video stamp there is an error that names the difference."""
    from utils import prefetch
    from utils.convert import ensure_video_ir

    folder = ensure_video_ir("edgetam", sam2_models_dir, compress_to_fp16=False, show_progress=False)
    monkeypatch.setattr("utils.convert.ensure_sam_ir", lambda spec, models_dir: (folder / "image_encoder.xml", None))
    monkeypatch.setattr("utils.convert.ensure_video_ir", lambda spec, models_dir: folder)
    monkeypatch.setattr("utils.quantize.ensure_int8_encoder", lambda spec, models_dir: None)
    monkeypatch.setattr(prefetch, "copy_int8_ir", lambda source, target, prefix: None)
    kit_dir = tmp_path / "kit"
    (kit_folder,) = prefetch.add_ir(kit_dir, ["edgetam"], sam2_models_dir)
    assert {path.name for path in video_files(kit_folder)} <= {path.name for path in kit_folder.iterdir()}

    track = """
from tests.helpers import camera_clip
from utils.convert import ensure_video_ir
from utils.precision import F32
from utils.video_predictor import OVSam2VideoPredictor
predictor = OVSam2VideoPredictor(ensure_video_ir("edgetam", sys.argv[2], compress_to_fp16=False), config=F32)
state = predictor.init_state(camera_clip(3))
predictor.add_new_points_or_box(state, frame_idx=0, obj_id=1, points=[[160, 120]], labels=[1])
tracked = [(frame, logits.shape) for frame, _, logits in predictor.propagate_in_video(state)]
print("tracked without torch:", tracked)
"""
    done = run_light(track, kit_dir, tmp_path / "models")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "tracked without torch: [(0, (1, 1, 240, 320)), (1, (1, 1, 240, 320)), (2, (1, 1, 240, 320))]" in done.stdout
    copied = tmp_path / "models" / kit_folder.name
    assert (copied / VIDEO_STAMP_FILE).read_text() == (kit_folder / VIDEO_STAMP_FILE).read_text()

    stamp = json.loads((kit_folder / VIDEO_STAMP_FILE).read_text())
    (kit_folder / VIDEO_STAMP_FILE).write_text(json.dumps({**stamp, "export_code": "older"}))
    done = run_light(track, kit_dir, tmp_path / "other-models")
    last = done.stderr.strip().splitlines()[-1]
    assert "KitError" in last and "export_code 'older'" in last and "needs PyTorch" in last
