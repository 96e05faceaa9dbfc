"""The README's picture of utils/ is the code's, and utils/ has no import cycle (`tools.module_graph`)."""

from __future__ import annotations

from tools import module_graph


def test_readme_draws_the_modules_as_they_are():
    readme = module_graph.README.read_text(encoding="utf-8")
    assert module_graph.section() in readme, "the README's module graph is stale: python -m tools.module_graph --write"


def test_utils_has_no_import_cycle():
    assert module_graph.cycles() == []


def test_a_cycle_is_found(monkeypatch):
    """The check can fail: a made-up import back from checkpoints to convert closes a cycle."""
    imports = module_graph.imports
    monkeypatch.setattr(
        module_graph, "imports", lambda name: imports(name) | ({"convert"} if name == "checkpoints" else set())
    )
    assert ["checkpoints", "convert"] in module_graph.cycles()


def test_family_references_are_drawn():
    """The families' wrappers, named by references built from parts, are dashed arrows from model_spec."""
    assert {"export_wrappers", "decoder_split", "sam2_export", "sam2_models"} <= module_graph.references("model_spec")
