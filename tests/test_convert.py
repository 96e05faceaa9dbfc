"""The IR files: their interface, dynamic shapes, mask_input wiring and the conversion stamp."""

from __future__ import annotations

import ast
import json

import numpy as np
import openvino as ov
import pytest

from tests.helpers import F32
from utils.checkpoints import weights_id
from utils.convert import convert_sam, ensure_sam_ir
from utils.ir_store import STAMP_FILE, definition_source, ir_directory, ir_is_current, read_stamp


def port_shapes(ports) -> dict[str, str]:
    return {port.get_any_name(): str(port.get_partial_shape()) for port in ports}


def test_encoder_interface(ir_f32):
    model = ov.Core().read_model(ir_f32[0])
    assert port_shapes(model.inputs) == {"image": "[1,3,1024,1024]"}
    assert port_shapes(model.outputs) == {"image_embeddings": "[1,256,64,64]"}


def test_decoder_interface(ir_f32):
    model = ov.Core().read_model(ir_f32[1])
    assert port_shapes(model.inputs) == {
        "image_embeddings": "[1,256,64,64]",
        "point_coords": "[?,?,2]",
        "point_labels": "[?,?]",
        "mask_input": "[?,1,256,256]",
        "has_mask_input": "[?]",
    }
    assert set(port_shapes(model.outputs)) == {"masks", "iou_predictions"}


def decoder_inputs(batch: int, points: int, has_mask: float, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "image_embeddings": rng.normal(size=(1, 256, 64, 64)).astype(np.float32),
        "point_coords": rng.uniform(0, 1024, (batch, points, 2)).astype(np.float32),
        "point_labels": rng.integers(0, 2, (batch, points)).astype(np.float32),
        "mask_input": rng.normal(scale=5, size=(batch, 1, 256, 256)).astype(np.float32),
        "has_mask_input": np.full(batch, has_mask, dtype=np.float32),
    }


def test_decoder_batch_and_points_are_dynamic(ir_f32):
    decoder = ov.Core().compile_model(ir_f32[1], "CPU", F32)
    for batch, points in [(1, 1), (5, 1), (1, 7), (64, 2)]:
        result = decoder(decoder_inputs(batch, points, has_mask=0.0))
        assert result["masks"].shape == (batch, 4, 256, 256)
        assert result["iou_predictions"].shape == (batch, 4)


def test_decoder_matches_torch_wrapper_and_uses_mask_input(sam, ir_f32):
    """mask_input must change the output when has_mask_input is 1 (the reference tutorial lost it)."""
    import torch

    from utils.export_wrappers import PromptDecoderModel

    decoder = ov.Core().compile_model(ir_f32[1], "CPU", F32)
    with_mask = decoder_inputs(3, 2, has_mask=1.0)
    without_mask = dict(with_mask, has_mask_input=np.zeros(3, np.float32))
    with torch.no_grad():
        expected = PromptDecoderModel(sam)(*(torch.as_tensor(v) for v in with_mask.values()))
    actual = decoder(with_mask)
    np.testing.assert_allclose(actual["masks"], expected[0].numpy(), atol=1e-3)
    assert np.abs(actual["masks"] - decoder(without_mask)["masks"]).max() > 1e-2


def test_convert_skips_when_stamp_matches(sam, ir_f32):
    output_dir = ir_f32[0].parent
    stamp = json.loads((output_dir / STAMP_FILE).read_text())
    assert stamp["compress_to_fp16"] is False and stamp["weights"].startswith("state-dict-sha256-")
    before = {path.name: path.stat().st_mtime_ns for path in output_dir.iterdir()}
    assert convert_sam(sam, output_dir, compress_to_fp16=False, show_progress=False) == ir_f32
    assert {path.name: path.stat().st_mtime_ns for path in output_dir.iterdir()} == before
    assert not list(output_dir.glob(".converting-*")), "a temporary folder was left behind"


def test_stamp_mismatch_means_not_current(ir_f32):
    output_dir = ir_f32[0].parent
    stamp = read_stamp(output_dir / STAMP_FILE)
    assert ir_is_current(output_dir, stamp)
    changes = (("compress_to_fp16", True), ("weights", "vit_b:random-seed-1"), ("openvino", "2020.1"))
    for key, other in (*changes, ("export_code", "older-export-code")):
        assert not ir_is_current(output_dir, {**stamp, key: other}), key


def test_ensure_sam_ir_reuses_stamped_ir_without_torch(ir_f32, tmp_path, monkeypatch):
    """A notebook re-run finds its IR by the stamp and never loads the checkpoint."""
    import shutil

    target = ir_directory("vit_b", tmp_path)
    shutil.copytree(ir_f32[0].parent, target)
    stamp = json.loads((target / STAMP_FILE).read_text())
    stamp["weights"] = weights_id("vit_b")
    (target / STAMP_FILE).write_text(json.dumps(stamp))

    def fail(*args, **kwargs):
        raise AssertionError("load_sam must not run when the IR is current")

    monkeypatch.setattr("utils.convert.load_sam", fail)
    assert ensure_sam_ir("vit_b", tmp_path, compress_to_fp16=False) == (
        target / "image_encoder.xml",
        target / "prompt_decoder.xml",
    )


def test_ir_from_an_older_export_is_rebuilt_not_loaded(ir_f32, tmp_path, monkeypatch):
    """IR from before the decoder split (older export code, no parts) is stale: ensure_sam_ir converts again."""
    import shutil

    from utils.ir_store import DECODER_PART_XML_FILES

    target = ir_directory("vit_b", tmp_path)
    shutil.copytree(ir_f32[0].parent, target)
    for name in DECODER_PART_XML_FILES:
        for suffix in (".xml", ".bin"):
            (target / name).with_suffix(suffix).unlink()
    stamp = json.loads((target / STAMP_FILE).read_text())
    (target / STAMP_FILE).write_text(
        json.dumps({**stamp, "weights": weights_id("vit_b"), "export_code": "older-export-code"})
    )

    class Rebuilding(Exception):
        pass

    def rebuild(*args, **kwargs):
        raise Rebuilding

    monkeypatch.setattr("utils.convert.load_sam", rebuild)
    with pytest.raises(Rebuilding):
        ensure_sam_ir("vit_b", tmp_path, compress_to_fp16=False)


def test_a_changed_export_wrapper_makes_the_ir_stale(tiny_ir_f32, tmp_path, monkeypatch):
    """Editing the wrappers' code, with nothing bumped by hand, reconverts; a docstring or comment alone does not."""
    import shutil

    from utils import ir_store

    target = ir_directory("vit_tiny", tmp_path)
    shutil.copytree(tiny_ir_f32[0].parent, target)
    stamp = {**json.loads((target / STAMP_FILE).read_text()), "weights": weights_id("vit_tiny")}
    (target / STAMP_FILE).write_text(json.dumps(stamp))
    sources = {name: ir_store.module_source(name) for name in ir_store.EXPORT_CODE_MODULES}
    assert stamp["export_code"] == ir_store.code_digest(sources)
    wrappers = sources["utils.export_wrappers"]
    reworded = wrappers.replace('"""', '"""Reworded. ', 1).replace("\n\n", "\n\n# a comment\n", 1)
    assert reworded != wrappers
    assert ir_store.code_digest(sources | {"utils.export_wrappers": reworded}) == stamp["export_code"]

    class Reconverting(Exception):
        pass

    def reconvert(*args, **kwargs):
        raise Reconverting

    monkeypatch.setattr("utils.convert.load_sam", reconvert)
    assert ensure_sam_ir("vit_tiny", tmp_path, compress_to_fp16=False)[0] == target / "image_encoder.xml"
    edited = wrappers.replace("self.image_encoder(image)", "self.image_encoder(image * 1.0)")
    assert edited != wrappers
    monkeypatch.setattr(
        ir_store, "export_code_digest", lambda: ir_store.code_digest(sources | {"utils.export_wrappers": edited})
    )
    with pytest.raises(Reconverting):
        ensure_sam_ir("vit_tiny", tmp_path, compress_to_fp16=False)


def test_export_code_digest_leaves_out_empty_fields_that_differ_between_pythons():
    """Python 3.12 gave functions an empty ``type_params`` and 3.13's ast.dump drops empty fields: the digest's text
    has no empty field, so it is the same on every Python (the Debian 13 check in .ci/run runs a kit across them)."""
    from utils.ir_store import _syntax_text

    text = _syntax_text(ast.parse("def f(x, *, y=None):\n    return g(x)[0]"))
    assert "FunctionDef(name='f'" in text and "Name(id='g', ctx=Load())" in text
    assert "=[]" not in text and "=None" not in text and "type_params" not in text and "lineno" not in text


def test_definition_source_reads_a_wrapper_without_importing_it():
    """What notebook 08 prints in the light install: the wrapper's code, as inspect would show it."""
    import inspect

    from utils.sam2_export import Sam2ImageEncoderModel

    expected = inspect.getsource(Sam2ImageEncoderModel).rstrip()
    assert definition_source("utils.sam2_export", "Sam2ImageEncoderModel") == expected
    with pytest.raises(NameError, match="defines no class or function Sam3"):
        definition_source("utils.sam2_export", "Sam3")
