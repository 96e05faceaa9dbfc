"""SAM 2's weights from the Hugging Face hub, downloaded by `huggingface_hub` from a real HTTP server on 127.0.0.1
that answers as the hub does (a commit and an etag with each file), never a mock of its internals."""

from __future__ import annotations

import hashlib

import pytest

from tests.http_server import FileServer
from utils.checkpoints import CheckpointError
from utils.sam2_models import HUB_FILES, SAM2_ARCHITECTURES, hub_snapshot

MODEL_TYPE = "edgetam"
ARCHITECTURE = SAM2_ARCHITECTURES[MODEL_TYPE]
COMMIT = "4b1d" * 10  # what the hub names the revision's commit


def hub_path(name: str) -> str:
    return f"/{ARCHITECTURE.repo_id}/resolve/{ARCHITECTURE.revision}/{name}"


@pytest.fixture
def hub():
    """A hub holding the model's files (made-up bytes: the download does not read them), as the real hub sends
    them: the commit in X-Repo-Commit, the content's sha256 as the etag, and X-Error-Code on a 404."""
    with FileServer() as server:
        for index, name in enumerate(HUB_FILES):
            body = bytes([index]) * (300_000 if name.endswith(".safetensors") else 500)
            server.files[hub_path(name)] = body
            server.headers[hub_path(name)] = {"X-Repo-Commit": COMMIT, "ETag": f'"{hashlib.sha256(body).hexdigest()}"'}
        server.not_found_headers = {"X-Error-Code": "EntryNotFound"}
        yield server


def test_the_pinned_revision_is_downloaded_into_the_cache_and_reused_offline(hub, tmp_path):
    folder = hub_snapshot(MODEL_TYPE, tmp_path, offline=False, show_progress=False, endpoint=hub.url)
    assert folder.name == COMMIT
    assert sorted(path.name for path in folder.iterdir()) == sorted(HUB_FILES)
    for name in HUB_FILES:
        assert (folder / name).read_bytes() == hub.files[hub_path(name)]
    assert {path for method, path in hub.requests if method == "GET"} == {hub_path(name) for name in HUB_FILES}
    assert not list(tmp_path.rglob("*.incomplete"))

    requests = len(hub.requests)
    assert hub_snapshot(MODEL_TYPE, tmp_path, offline=True, show_progress=False, endpoint=hub.url) == folder
    assert len(hub.requests) == requests, "the offline call (a workshop kit) went to the network"


def test_a_transfer_cut_midway_leaves_no_file_and_says_to_run_again(hub, tmp_path):
    hub.truncated.add(hub_path("model.safetensors"))
    with pytest.raises(CheckpointError, match="Run again when the network is back"):
        hub_snapshot(MODEL_TYPE, tmp_path, offline=False, show_progress=False, endpoint=hub.url)
    assert not list(tmp_path.rglob("snapshots/*/model.safetensors")), "a half-written file is in the snapshot"

    hub.truncated.clear()
    folder = hub_snapshot(MODEL_TYPE, tmp_path, offline=False, show_progress=False, endpoint=hub.url)
    assert (folder / "model.safetensors").read_bytes() == hub.files[hub_path("model.safetensors")]


def test_a_file_missing_on_the_hub_names_the_repository_and_revision(hub, tmp_path):
    del hub.files[hub_path("model.safetensors")]
    with pytest.raises(CheckpointError, match=f"hub refused {ARCHITECTURE.repo_id}@{ARCHITECTURE.revision}"):
        hub_snapshot(MODEL_TYPE, tmp_path, offline=False, show_progress=False, endpoint=hub.url)


def test_offline_without_the_files_says_how_to_fill_a_kit(tmp_path):
    with pytest.raises(CheckpointError, match=f"utils.prefetch KIT --models {MODEL_TYPE}"):
        hub_snapshot(MODEL_TYPE, tmp_path, offline=True, show_progress=False)
