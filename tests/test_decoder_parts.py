"""The decoder split for speed: its three IR files against the whole decoder, and how the predictor pairs them."""

from __future__ import annotations

import shutil

import numpy as np
import openvino as ov
import pytest

from tests.helpers import F32
from utils.decoder_split import IMAGE_SIDE_OUTPUTS, PARTS_TOLERANCE
from utils.ir_store import CONVERSION_ID_KEY, DECODER_PART_XML_FILES, DECODER_PROMPT_SIDE_XML
from utils.predictor import OVSamPredictor


def parts(ir_f32):
    """The image side, the prompt side and the prompt side with mask."""
    return tuple(ir_f32[1].parent / name for name in DECODER_PART_XML_FILES)


def names_every_part(message: str) -> bool:
    return all(name in message for name in DECODER_PART_XML_FILES)


def port_shapes(ports) -> dict[str, str]:
    return {port.get_any_name(): str(port.get_partial_shape()) for port in ports}


def test_parts_interface(ir_f32):
    image_xml, prompt_xml, _ = parts(ir_f32)
    image_side, prompt_side = ov.Core().read_model(image_xml), ov.Core().read_model(prompt_xml)
    per_image = {
        "image_tokens": "[1,4096,256]",
        "image_pe": "[1,4096,256]",
        "token_to_image_keys": "[1,4096,128]",
        "token_to_image_values": "[1,4096,128]",
        "image_to_token_queries": "[1,4096,128]",
    }
    assert list(per_image) == list(IMAGE_SIDE_OUTPUTS)
    assert port_shapes(image_side.inputs) == {"image_embeddings": "[1,256,64,64]"}
    assert port_shapes(image_side.outputs) == per_image
    assert port_shapes(prompt_side.inputs) == {**per_image, "point_coords": "[?,?,2]", "point_labels": "[?,?]"}
    assert set(port_shapes(prompt_side.outputs)) == {"masks", "iou_predictions"}
    with_mask = ov.Core().read_model(parts(ir_f32)[2])
    assert port_shapes(with_mask.inputs) == {
        "image_tokens": "[1,4096,256]",
        "image_pe": "[1,4096,256]",
        "point_coords": "[?,?,2]",
        "point_labels": "[?,?]",
        "mask_input": "[?,1,256,256]",
    }
    assert set(port_shapes(with_mask.outputs)) == {"masks", "iou_predictions"}


@pytest.mark.parametrize("batch, points", [(1, 1), (3, 2), (17, 5)])
def test_prompt_side_gives_the_whole_decoders_output_without_mask_input(ir_f32, batch, points):
    core = ov.Core()
    decoder = core.compile_model(ir_f32[1], "CPU", F32)
    image_side, prompt_side = (core.compile_model(xml, "CPU", F32) for xml in parts(ir_f32)[:2])
    rng = np.random.default_rng(batch)
    embedding = rng.normal(size=(1, 256, 64, 64)).astype(np.float32)
    coords = rng.uniform(0, 1024, (batch, points, 2)).astype(np.float32)
    labels = rng.choice([-1.0, 0.0, 1.0, 2.0, 3.0], (batch, points)).astype(np.float32)
    expected = decoder(
        {
            "image_embeddings": embedding,
            "point_coords": coords,
            "point_labels": labels,
            "mask_input": np.zeros((batch, 1, 256, 256), np.float32),
            "has_mask_input": np.zeros(batch, np.float32),
        }
    )
    per_image = image_side(embedding)
    actual = prompt_side(
        {
            **{port.get_any_name(): per_image[port] for port in image_side.outputs},
            "point_coords": coords,
            "point_labels": labels,
        }
    )
    scale = np.abs(expected["masks"]).max()
    print(f"B={batch} N={points}: max |masks difference| {np.abs(actual['masks'] - expected['masks']).max():.1e}")
    np.testing.assert_allclose(actual["masks"], expected["masks"], atol=PARTS_TOLERANCE * scale, rtol=0)
    np.testing.assert_allclose(actual["iou_predictions"], expected["iou_predictions"], atol=PARTS_TOLERANCE, rtol=0)


@pytest.mark.parametrize("batch, points", [(1, 1), (3, 2), (17, 5)])
def test_prompt_side_with_mask_gives_the_whole_decoders_output_with_mask_input(ir_f32, batch, points):
    core = ov.Core()
    decoder = core.compile_model(ir_f32[1], "CPU", F32)
    image_side, _, with_mask = (core.compile_model(xml, "CPU", F32) for xml in parts(ir_f32))
    rng = np.random.default_rng(batch)
    embedding = rng.normal(size=(1, 256, 64, 64)).astype(np.float32)
    prompts = {
        "point_coords": rng.uniform(0, 1024, (batch, points, 2)).astype(np.float32),
        "point_labels": rng.choice([-1.0, 0.0, 1.0, 2.0, 3.0], (batch, points)).astype(np.float32),
        "mask_input": rng.normal(scale=8.0, size=(batch, 1, 256, 256)).astype(np.float32),  # logits-like
    }
    expected = decoder({"image_embeddings": embedding, **prompts, "has_mask_input": np.ones(batch, np.float32)})
    per_image = image_side(embedding)
    actual = with_mask({"image_tokens": per_image["image_tokens"], "image_pe": per_image["image_pe"], **prompts})
    scale = np.abs(expected["masks"]).max()
    print(f"B={batch} N={points}: max |masks difference| {np.abs(actual['masks'] - expected['masks']).max():.1e}")
    np.testing.assert_allclose(actual["masks"], expected["masks"], atol=PARTS_TOLERANCE * scale, rtol=0)
    np.testing.assert_allclose(actual["iou_predictions"], expected["iou_predictions"], atol=PARTS_TOLERANCE, rtol=0)


def test_predictor_runs_the_prompt_side_and_the_whole_decoder_alike(ov_predictor, ir_f32, test_images, tmp_path):
    """Without the parts beside the decoder the predictor runs the whole decoder, with the same result."""
    whole_only = tmp_path / "whole-decoder-only"
    whole_only.mkdir()
    for xml in ir_f32:
        for suffix in (".xml", ".bin"):
            shutil.copyfile(xml.with_suffix(suffix), whole_only / xml.with_suffix(suffix).name)
    whole = OVSamPredictor(whole_only / ir_f32[0].name, whole_only / ir_f32[1].name, config=F32)
    assert whole.decoder_prompt_side is None and whole.decoder_prompt_side_with_mask is None
    assert ov_predictor.decoder_prompt_side is not None and ov_predictor.decoder_prompt_side_with_mask is not None
    image = test_images["portrait"]
    for predictor in (whole, ov_predictor):
        predictor.set_image(image)
    box = np.array([100, 200, 400, 700])
    points = dict(point_coords=np.array([[300, 500], [50, 60]]), point_labels=np.array([1, 0]))
    previous = whole.predict(**points, multimask_output=False)[2]
    for prompt in (points, dict(box=box), dict(**points, mask_input=previous), dict(box=box, mask_input=previous)):
        fast, reference = ov_predictor.predict(**prompt), whole.predict(**prompt)
        np.testing.assert_allclose(fast[2], reference[2], atol=1e-4, rtol=0)
        np.testing.assert_allclose(fast[1], reference[1], atol=PARTS_TOLERANCE, rtol=0)


def copy_ir_folder(ir_f32, target):
    shutil.copytree(ir_f32[0].parent, target)
    return target / ir_f32[0].name, target / ir_f32[1].name


def test_parts_of_two_conversions_are_refused_naming_them(ir_f32, tmp_path):
    encoder_xml, decoder_xml = copy_ir_folder(ir_f32, tmp_path / "mixed")
    other = ov.Core().read_model(parts(ir_f32)[1])  # read from the original: its .bin is mapped, not rewritten
    other.set_rt_info("another-conversion", CONVERSION_ID_KEY)
    ov.save_model(other, decoder_xml.parent / DECODER_PROMPT_SIDE_XML, compress_to_fp16=False)
    with pytest.raises(ValueError, match="do not come from the same conversion") as error:
        OVSamPredictor(encoder_xml, decoder_xml)
    assert names_every_part(str(error.value))


@pytest.mark.parametrize("removed", DECODER_PART_XML_FILES)
def test_an_incomplete_set_of_parts_is_refused_naming_them(ir_f32, tmp_path, removed):
    encoder_xml, decoder_xml = copy_ir_folder(ir_f32, tmp_path / "incomplete")
    (decoder_xml.parent / removed).unlink()
    with pytest.raises(FileNotFoundError, match="go together") as error:
        OVSamPredictor(encoder_xml, decoder_xml)
    assert names_every_part(str(error.value)) and f"not found: {decoder_xml.parent / removed}." in str(error.value)


def test_parts_from_another_conversion_than_the_whole_decoder_are_refused(ir_f32, tmp_path):
    """Same shapes for every SAM decoder: only the conversion id tells a vit_h decoder beside vit_b parts."""
    encoder_xml, decoder_xml = copy_ir_folder(ir_f32, tmp_path / "other-whole-decoder")
    other = ov.Core().read_model(ir_f32[1])  # read from the original: its .bin is mapped, not rewritten
    other.set_rt_info("another-conversion", CONVERSION_ID_KEY)
    ov.save_model(other, decoder_xml, compress_to_fp16=False)
    with pytest.raises(ValueError, match="do not come from the same conversion") as error:
        OVSamPredictor(encoder_xml, decoder_xml)
    assert decoder_xml.name in str(error.value) and "another-conversion" in str(error.value)
