"""The checkpoint registry, the random-weights switch, and loading a real file over HTTP."""

from __future__ import annotations

import hashlib
import io

import pytest
import torch

from tests.http_server import FileServer
from utils import checkpoints, prefetch
from utils.checkpoints import RANDOM_WEIGHTS_ENV, Checkpoint, CheckpointError, load_sam
from utils.download import MIRROR_ENV
from utils.ir_store import ir_directory


def test_registry_matches_design():
    assert set(checkpoints.CHECKPOINTS) == {"vit_b", "vit_l", "vit_h"}
    for model_type, entry in checkpoints.CHECKPOINTS.items():
        assert entry.url.startswith("https://dl.fbaipublicfiles.com/segment_anything/sam_" + model_type)
        assert len(entry.sha256) == 64 and entry.size_bytes > 300_000_000
    assert checkpoints.CHECKPOINTS["vit_b"].sha256.startswith("ec2df627")


def test_unknown_model_type_lists_valid_ones():
    with pytest.raises(ValueError, match="vit_b, vit_l, vit_h, vit_tiny"):
        load_sam("vit_x")


def test_vit_tiny_is_random_weights_only(monkeypatch):
    """vit_tiny has no checkpoint: with the switch off it refuses clearly instead of downloading anything."""
    tiny = load_sam("vit_tiny")  # the switch is on in the test session
    assert tiny.image_encoder.patch_embed.proj.out_channels == 32 and len(tiny.image_encoder.blocks) == 1
    assert tiny.image_encoder.blocks[0].attn.rel_pos_h.abs().max() > 0, "relative positions are randomised too"
    assert checkpoints.weights_id("vit_tiny").startswith("vit_tiny:random-seed-")
    monkeypatch.setenv(RANDOM_WEIGHTS_ENV, "")
    for call in (load_sam, checkpoints.weights_id, checkpoints.describe_weights):
        with pytest.raises(ValueError, match="vit_tiny has no checkpoint: it is built with random weights only"):
            call("vit_tiny")


def test_random_weights_switch(monkeypatch, tmp_path):
    monkeypatch.setenv(RANDOM_WEIGHTS_ENV, "7")
    assert checkpoints.weights_id("vit_b") == "vit_b:random-seed-7"
    assert ir_directory("vit_b", tmp_path) == tmp_path / "sam_vit_b-random-seed7"
    assert ir_directory("vit_b", tmp_path, fused_attention=False) == tmp_path / "sam_vit_b-random-seed7-plain-attention"
    monkeypatch.setenv(RANDOM_WEIGHTS_ENV, "")
    assert checkpoints.weights_id("vit_b").endswith(checkpoints.CHECKPOINTS["vit_b"].sha256)
    assert ir_directory("vit_b", tmp_path) == tmp_path / "sam_vit_b"
    assert "official checkpoint" in checkpoints.describe_weights("vit_b")
    monkeypatch.setenv(RANDOM_WEIGHTS_ENV, "3")
    assert "MEANINGLESS" in checkpoints.describe_weights("vit_b")
    monkeypatch.setenv(RANDOM_WEIGHTS_ENV, "yes")
    with pytest.raises(ValueError, match="integer"):
        checkpoints.weights_id("vit_b")


def test_random_weights_warn_and_are_reproducible(monkeypatch, sam):
    monkeypatch.setenv(RANDOM_WEIGHTS_ENV, "0")
    with pytest.warns(UserWarning, match="MEANINGLESS"):
        again = load_sam("vit_b")
    first = next(iter(sam.state_dict().values()))
    assert torch.equal(first, next(iter(again.state_dict().values())))


@pytest.fixture
def served_checkpoint(monkeypatch, tmp_path):
    """Serve ``bytes`` as the vit_b checkpoint from a local server; yields a function to publish them."""
    monkeypatch.delenv(RANDOM_WEIGHTS_ENV)
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    with FileServer() as server:

        def publish(payload: bytes) -> Checkpoint:
            server.files["/sam_vit_b_01ec64.pth"] = payload
            entry = Checkpoint(
                "vit_b", f"{server.url}/sam_vit_b_01ec64.pth", hashlib.sha256(payload).hexdigest(), len(payload)
            )
            monkeypatch.setitem(checkpoints.CHECKPOINTS, "vit_b", entry)
            return entry

        yield publish


def test_load_sam_downloads_checks_and_loads(served_checkpoint, sam, tmp_path):
    buffer = io.BytesIO()
    torch.save(sam.state_dict(), buffer)
    served_checkpoint(buffer.getvalue())
    loaded = load_sam("vit_b", tmp_path / "ckpt", show_progress=False)
    assert not loaded.training
    for (name, expected), actual in zip(sam.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(expected, actual), name


def test_corrupt_checkpoint_gives_clear_error(served_checkpoint, tmp_path):
    served_checkpoint(b"this is not a torch checkpoint")
    with pytest.raises(CheckpointError, match="Delete it and run again"):
        load_sam("vit_b", tmp_path, show_progress=False)


def test_prefetch_fills_a_mirror(served_checkpoint, tmp_path, capsys):
    entry = served_checkpoint(b"checkpoint bytes")
    prefetch.main([str(tmp_path / "mirror"), "--models", "vit_b", "--clips"])  # no clip: tests/test_clips.py
    assert (tmp_path / "mirror" / entry.filename).read_bytes() == b"checkpoint bytes"
    assert sorted(path.name for path in (tmp_path / "mirror").iterdir()) == [entry.filename]
    assert MIRROR_ENV in capsys.readouterr().out
