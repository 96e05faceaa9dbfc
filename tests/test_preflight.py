"""`python -m utils.preflight`: each problem made on purpose, with the line that fixes it, and the verdict.

No PyTorch here: the light install runs these tests too (.ci/light-tests), as a workshop laptop would. The IR is
built with OpenVINO's own operations, a convolution with real weights on SAM's 1024x1024 input.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from utils import preflight
from utils.checkpoints import weights_id
from utils.download import MIRROR_ENV
from utils.ir_store import ENCODER_XML, KIT_IR_FOLDER, STAMP_FILE, conversion_stamp, ir_directory
from utils.model_spec import CHECKPOINTS


def save_encoder(folder):
    """An encoder-shaped IR (1x3x1024x1024 in) with 48 KiB of weights, stamped as `ensure_sam_ir` stamps vit_b's."""
    image = ops.parameter([1, 3, 1024, 1024], ov.Type.f32, name="image")
    weights = ops.constant(np.full((16, 3, 16, 16), 0.01, np.float32))
    patches = ops.convolution(image, weights, [16, 16], [0, 0], [0, 0], [1, 1])
    folder.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov.Model([patches], [image], "encoder"), folder / ENCODER_XML, compress_to_fp16=False)
    stamp = conversion_stamp(weights_id("vit_b"), True, True)
    (folder / STAMP_FILE).write_text(json.dumps(stamp))
    return folder / ENCODER_XML


@pytest.fixture
def kit(tmp_path):
    """A kit with vit_b's (stand-in) IR, current for this install."""
    save_encoder(tmp_path / "kit" / KIT_IR_FOLDER / ir_directory("vit_b", tmp_path).name)
    return tmp_path / "kit"


def test_a_supported_python_passes_and_another_is_named_with_the_fix():
    assert preflight.check_python((3, 12, 1)).ok
    old = preflight.check_python((3, 9, 18))
    assert not old.ok and "Python 3.9.18 is not supported (supported: 3.10 to 3.13)" in old.detail
    assert "install Python 3.13" in old.fix


def test_packages_off_the_lock_or_missing_are_named_with_the_install_command():
    installed = preflight.installed_versions()
    assert preflight.check_packages("light", installed=installed).ok  # this venv is the lock's
    pinned = preflight.lock_pins(preflight.ROOT / "constraints.txt")["numpy"]
    off_lock = preflight.check_packages("light", installed=installed | {"numpy": "1.0.0"})
    assert not off_lock.ok and f"numpy 1.0.0 (lock: {pinned})" in off_lock.detail
    assert off_lock.fix == "python -m pip install -r requirements-light.txt -c constraints.txt"
    missing = preflight.check_packages("light", installed={k: v for k, v in installed.items() if k != "anywidget"})
    assert not missing.ok and "missing anywidget" in missing.detail
    brought = preflight.required_closure(["jupyterlab"])
    assert {"jupyterlab", "jupyter-server", "tornado"} <= brought and "pip" not in brought


def test_a_vendored_copy_further_on_the_path_is_not_the_installed_package(monkeypatch):
    """setuptools puts its _vendor folder, with platformdirs 4.4 in it, at the end of sys.path once it is imported
    (torch.compile imports it); the installed platformdirs, first on the path, is the one that counts."""
    setuptools = pytest.importorskip("setuptools")
    vendored = Path(setuptools.__file__).parent / "_vendor"
    if not list(vendored.glob("platformdirs-*.dist-info")):
        pytest.skip(f"this setuptools ({setuptools.__version__}) vendors no platformdirs")
    monkeypatch.setattr(sys, "path", [*sys.path, str(vendored)])
    assert preflight.installed_versions()["platformdirs"] == importlib.metadata.version("platformdirs")
    assert preflight.check_packages("light").ok


def test_a_repository_copy_without_the_lock_is_named(tmp_path):
    found = preflight.check_packages("light", lock=tmp_path / "constraints.txt")
    assert not found.ok and f"{tmp_path / 'constraints.txt'} not found" in found.detail


def test_a_local_build_label_matches_its_pin(tmp_path):
    """PyTorch's CPU wheel is 2.14.1+cpu for the lock's torch==2.14.1."""
    lock = tmp_path / "constraints.txt"
    lock.write_text("torch==2.14.1\nappnope==1.0.0 ; sys_platform == 'no such platform'\n")
    pins = preflight.lock_pins(lock)
    assert set(pins) == {"torch"} and pins["torch"].contains("2.14.1+cpu")


def test_a_kit_that_is_not_there_is_named(tmp_path):
    found = preflight.check_kit("light", {MIRROR_ENV: str(tmp_path / "no-kit")}, tmp_path / "models")
    assert not found.ok and str(tmp_path / "no-kit") in found.detail and "not there" in found.detail


def test_the_light_install_without_a_kit_or_ir_is_told_to_set_the_kit(tmp_path):
    found = preflight.check_kit("light", {}, tmp_path / "models")
    assert not found.ok and found.fix.startswith(f"export {MIRROR_ENV}=")
    assert preflight.check_kit("full", {}, tmp_path / "models").ok  # the full install converts


def test_a_kit_without_ir_is_a_problem_for_the_light_install_only(tmp_path):
    (tmp_path / "kit").mkdir()
    found = preflight.check_kit("light", {MIRROR_ENV: str(tmp_path / "kit")}, tmp_path / "models")
    assert not found.ok and "holds no IR" in found.detail
    assert preflight.check_kit("full", {MIRROR_ENV: str(tmp_path / "kit")}, tmp_path / "models").ok


def test_a_current_kit_passes(kit, tmp_path):
    found = preflight.check_kit("light", {MIRROR_ENV: str(kit)}, tmp_path / "models")
    assert found.ok, found.detail
    assert ir_directory("vit_b", tmp_path).name in found.detail


def test_a_stale_kit_names_what_differs(kit, tmp_path):
    stamp_file = next((kit / KIT_IR_FOLDER).glob("*")) / STAMP_FILE
    stamp_file.write_text(json.dumps(json.loads(stamp_file.read_text()) | {"openvino": "2024.0.0"}))
    found = preflight.check_kit("light", {MIRROR_ENV: str(kit)}, tmp_path / "models")
    assert not found.ok and "stale or unstamped (openvino differ" in found.detail
    assert f"python -m utils.prefetch {kit} --with-ir" in found.fix


def test_a_truncated_ir_in_the_kit_is_unreadable(kit, tmp_path):
    weights = next((kit / KIT_IR_FOLDER).glob("*")) / "image_encoder.bin"
    weights.write_bytes(weights.read_bytes()[:100])
    found = preflight.check_kit("light", {MIRROR_ENV: str(kit)}, tmp_path / "models")
    assert not found.ok and "image_encoder.xml is unreadable (Incorrect weights in bin file" in found.detail


def test_a_corrupt_checkpoint_in_the_kit_is_named(kit, tmp_path):
    name = CHECKPOINTS["vit_b"].url.rsplit("/", 1)[-1]
    (kit / name).write_bytes(b"not the checkpoint")
    found = preflight.check_kit("full", {MIRROR_ENV: str(kit)}, tmp_path / "models")
    assert not found.ok and f"{name} is corrupt (sha256 differs)" in found.detail


def test_a_bad_precision_override_is_a_problem():
    assert preflight.check_cpu({}).ok
    found = preflight.check_cpu({"SAM_OV_PRECISION": "f64"})
    assert not found.ok and "f64" in found.detail and found.fix == "unset SAM_OV_PRECISION"


def test_too_little_free_memory_is_a_problem():
    assert preflight.check_memory("full", available_mib=preflight.PEAK_MEMORY_MIB["full"]).ok
    found = preflight.check_memory("light", available_mib=1000)
    assert not found.ok and "1000 MiB free" in found.detail and "close other programs" in found.fix
    assert preflight.available_memory_mib() > 0


def test_a_missing_widget_extension_is_a_problem(tmp_path):
    assert preflight.check_widget().ok  # every install has anywidget's extension
    found = preflight.check_widget(prefix=tmp_path)
    assert not found.ok and "-c constraints.txt" in found.fix


def test_the_encoder_is_timed_from_the_kit_and_a_broken_one_fails(kit, tmp_path):
    environ = {**preflight.os.environ, MIRROR_ENV: str(kit)}
    timed = preflight.check_encoder(tmp_path / "models", environ)
    assert timed.ok and "s per image, peak" in timed.detail and str(kit) in timed.detail
    models_dir = tmp_path / "models"
    broken = ir_directory("vit_b", models_dir) / ENCODER_XML  # models/ comes before the kit
    shutil.copytree(next((kit / KIT_IR_FOLDER).glob("*")), broken.parent)
    broken.write_text("<net>not an IR")
    found = preflight.check_encoder(models_dir, environ)
    assert not found.ok and f"failed to run from {broken}" in found.detail


def test_the_command_ends_with_the_verdict(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path / "missing-kit"))
    assert preflight.main(["--no-encoder", "--models-dir", str(tmp_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("verdict: NOT ready: fix kit (above)")
    assert any(line.startswith("FAIL kit:") for line in lines) and any("fix: copy the kit" in line for line in lines)
    assert sum(line.startswith(("ok  ", "FAIL")) for line in lines) == 6
