"""Model types as data (`utils.model_spec`): one spec per model type, the families told apart by their models and
their IR, every reference naming code that exists, and a model type looked up once per public call."""

from __future__ import annotations

import openvino as ov
import pytest

from utils import model_spec as spec_module
from utils.checkpoints import load_sam, weights_id
from utils.convert import ensure_sam_ir
from utils.model_spec import (
    FAMILIES,
    MODEL_TYPES,
    SAM,
    SAM_2,
    family_of_encoder,
    family_of_model,
    model_spec,
    resolve,
)
from utils.quickstart import load_predictor


def test_every_model_type_has_one_spec_in_one_family():
    for model_type in MODEL_TYPES:
        spec = model_spec(model_type)
        assert spec.model_type == model_type and model_spec(spec) is spec
        assert [family for family in FAMILIES if model_type in family.model_types] == [spec.family]
    families = [model_spec(name).family for name in ("vit_b", "vit_tiny", "sam2.1_hiera_large", "edgetam")]
    assert families == [SAM, SAM, SAM_2, SAM_2]
    with pytest.raises(ValueError, match="Unknown SAM model type 'sam3'; choose one of: vit_b, vit_l"):
        model_spec("sam3")


def test_every_reference_names_code_that_exists():
    """Each family's builders, pre-processing, predictor and export wrappers, and SAM 1's fused attention; both
    families' parts are saved under the same file names, which the IR store lists once."""
    for family in FAMILIES:
        references = [family.preprocess, family.predictor, family.load, family.build_random, family.fetch]
        references += [part.wrapper for part in family.parts]
        for reference in references + [family.fused_attention_export] * bool(family.fused_attention_export):
            assert callable(resolve(reference)), reference
    assert [part.xml for part in SAM.parts] == [part.xml for part in SAM_2.parts]


def test_families_are_told_by_their_models_and_their_ir(tiny_sam, tiny_ir_f32):
    assert family_of_model(tiny_sam) is SAM
    assert family_of_encoder(ov.Core().read_model(tiny_ir_f32[0])) is SAM
    decoder = ov.Core().read_model(tiny_ir_f32[1])
    assert family_of_encoder(decoder) is None, "a decoder's outputs are no family's encoder's"
    with pytest.raises(TypeError, match="no model of a known family"):
        family_of_model(object())


def test_a_model_type_is_looked_up_once_per_public_call(monkeypatch, tmp_path):
    """Each public call resolves its string once (`model_spec`) and hands the spec on, converting included."""
    lookups = []
    family_of_type = spec_module._family_of_type
    monkeypatch.setattr(spec_module, "_family_of_type", lambda name: lookups.append(name) or family_of_type(name))
    calls = {
        "ensure_sam_ir, converting": lambda: ensure_sam_ir("vit_tiny", tmp_path, show_progress=False),
        "ensure_sam_ir, current": lambda: ensure_sam_ir("vit_tiny", tmp_path),
        "load_predictor": lambda: load_predictor("vit_tiny", tmp_path),
        "load_sam": lambda: load_sam("vit_tiny"),
        "weights_id": lambda: weights_id("edgetam"),
    }
    for name, call in calls.items():
        lookups.clear()
        call()
        assert len(lookups) == 1, (name, lookups)
