"""download_file against a real HTTP server on 127.0.0.1 (no mocks of urllib)."""

from __future__ import annotations

import hashlib

import pytest

from tests.http_server import FileServer, refused_url
from utils.download import MIRROR_ENV, ChecksumError, DownloadError, download_file

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, several chunks
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def server():
    with FileServer() as running:
        running.files["/file.bin"] = PAYLOAD
        yield running


@pytest.fixture(autouse=True)
def no_mirror(monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)


def leftovers(directory):
    return sorted(path.name for path in directory.iterdir())


def test_download_success(server, tmp_path):
    path = download_file(f"{server.url}/file.bin", tmp_path / "dl", sha256=DIGEST, show_progress=False)
    assert path == tmp_path / "dl" / "file.bin"
    assert path.read_bytes() == PAYLOAD
    assert leftovers(path.parent) == ["file.bin"]


def test_filename_override(server, tmp_path):
    path = download_file(f"{server.url}/file.bin", tmp_path, filename="renamed.bin", show_progress=False)
    assert path.name == "renamed.bin" and path.read_bytes() == PAYLOAD


def test_cache_hit_makes_no_request(server, tmp_path):
    download_file(f"{server.url}/file.bin", tmp_path, sha256=DIGEST, show_progress=False)
    assert len(server.requests) == 1
    download_file(f"{server.url}/file.bin", tmp_path, sha256=DIGEST, show_progress=False)
    assert len(server.requests) == 1


def test_stale_cached_file_is_fetched_again(server, tmp_path):
    (tmp_path / "file.bin").write_bytes(b"half a checkpoint")
    path = download_file(f"{server.url}/file.bin", tmp_path, sha256=DIGEST, show_progress=False)
    assert path.read_bytes() == PAYLOAD and len(server.requests) == 1


def test_wrong_checksum_removes_data_and_names_both_digests(server, tmp_path):
    expected = "0" * 64
    with pytest.raises(ChecksumError) as err:
        download_file(f"{server.url}/file.bin", tmp_path, sha256=expected, show_progress=False)
    assert expected in str(err.value) and DIGEST in str(err.value)
    assert leftovers(tmp_path) == []


def test_404_names_url_destination_and_ways_out(server, tmp_path):
    url = f"{server.url}/missing.bin"
    with pytest.raises(DownloadError) as err:
        download_file(url, tmp_path, show_progress=False)
    message = str(err.value)
    assert url in message and str(tmp_path / "missing.bin") in message and "404" in message
    assert "by hand" in message and MIRROR_ENV in message
    assert leftovers(tmp_path) == []


def test_connection_refused(tmp_path):
    url = refused_url()
    with pytest.raises(DownloadError, match="by hand") as err:
        download_file(url, tmp_path, show_progress=False)
    assert url in str(err.value)
    assert leftovers(tmp_path) == []


def test_transfer_cut_midway_leaves_no_file(server, tmp_path):
    server.files["/cut.bin"] = PAYLOAD
    server.truncated.add("/cut.bin")
    with pytest.raises(DownloadError):
        download_file(f"{server.url}/cut.bin", tmp_path, show_progress=False)
    assert leftovers(tmp_path) == []


def test_mirror_is_used_before_the_network(server, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "file.bin").write_bytes(PAYLOAD)
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    path = download_file(f"{server.url}/file.bin", tmp_path / "dl", sha256=DIGEST, show_progress=False)
    assert path.read_bytes() == PAYLOAD
    assert server.requests == []


def test_corrupt_mirror_file_is_rejected(server, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "file.bin").write_bytes(b"corrupt")
    monkeypatch.setenv(MIRROR_ENV, str(mirror))
    with pytest.raises(ChecksumError, match="mirror"):
        download_file(f"{server.url}/file.bin", tmp_path / "dl", sha256=DIGEST, show_progress=False)
    assert leftovers(tmp_path / "dl") == []
    assert server.requests == []


def test_mirror_without_the_file_falls_back_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, str(tmp_path))
    with pytest.raises(DownloadError, match=f"{MIRROR_ENV}=") as err:
        download_file(refused_url(), tmp_path / "dl", show_progress=False)
    assert "does not have it" in str(err.value)
