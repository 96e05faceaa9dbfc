"""Checked, cached, resumable-safe file downloads with an offline mirror.

`download_file` is the one way this series fetches anything. It never leaves a
half-written file where a later run would trust it: data goes to a temporary folder
beside the destination (`utils.atomic.staged_files`) and is renamed into place only
after its size and sha256 match. A folder named by the
``SAM_OV_MIRROR`` environment variable is looked at before the network, so a
workshop room can run with no network at all (``python -m utils.prefetch`` fills
such a folder).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import BinaryIO

from tqdm.auto import tqdm

from utils.atomic import staged_files

MIRROR_ENV = "SAM_OV_MIRROR"
"""Environment variable naming a folder that holds files to use instead of the network."""

CHUNK_BYTES = 1 << 20
TIMEOUT_SECONDS = 30


class DownloadError(RuntimeError):
    """A file could not be fetched; the message says where from, where to and what to do."""


class ChecksumError(DownloadError):
    """A fetched or cached file does not have the expected sha256."""


def sha256_of(path: Path) -> str:
    """Return the hex sha256 of a file, read in chunks so large checkpoints fit in memory."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download_file(
    url: str,
    directory: str | os.PathLike,
    filename: str | None = None,
    sha256: str | None = None,
    show_progress: bool = True,
) -> Path:
    """Fetch ``url`` into ``directory`` and return the path of the verified file.

    Order of sources: a file already in ``directory`` with the right checksum (no
    request at all), then ``$SAM_OV_MIRROR/<filename>``, then the network. Data is
    written to ``<filename>.part`` and renamed only once its sha256 matches, so an
    interrupted or corrupt transfer never leaves a file that looks finished.

    Raises:
        ChecksumError: the data's sha256 differs from ``sha256`` (the bad data is removed).
        DownloadError: the network failed; the message names the URL, the destination
            and the two ways out (place the file by hand, or use a mirror).
    """
    directory = Path(directory)
    filename = filename or Path(urllib.parse.urlparse(url).path).name
    if not filename:
        raise ValueError(f"Cannot tell a file name from {url!r}; pass filename=...")
    target = directory / filename
    if target.exists():
        if sha256 is None or sha256_of(target) == sha256:
            return target
        # A stale or corrupt file from an earlier run: fetch it again rather than trust it.
        target.unlink()

    directory.mkdir(parents=True, exist_ok=True)
    mirror_file = _mirror_candidate(filename)
    if mirror_file is not None:
        with mirror_file.open("rb") as source:
            total = mirror_file.stat().st_size
            _fetch_into(source, total, target, sha256, f"{filename} (mirror)", show_progress, str(mirror_file))
        return target

    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            _fetch_into(response, total, target, sha256, filename, show_progress, url)
    except ChecksumError:
        raise
    except (urllib.error.URLError, http.client.HTTPException, socket.timeout, ConnectionError, _Truncated) as err:
        raise DownloadError(_network_failure_message(url, target, err)) from err
    return target


class _Truncated(IOError):
    """The server closed the connection before sending Content-Length bytes."""


def _mirror_candidate(filename: str) -> Path | None:
    """Return ``$SAM_OV_MIRROR/filename`` when the variable is set and the file is there."""
    mirror = os.environ.get(MIRROR_ENV)
    if not mirror:
        return None
    candidate = Path(mirror) / filename
    return candidate if candidate.is_file() else None


def _fetch_into(
    source: BinaryIO,
    total: int | None,
    target: Path,
    sha256: str | None,
    description: str,
    show_progress: bool,
    origin: str,
) -> None:
    """Stream ``source`` to a staged copy of ``target``, check size and sha256, then rename into place."""
    digest = hashlib.sha256()
    received = 0
    with staged_files(target.parent, [target.name], prefix=".downloading-") as (part,):
        with (
            part.open("wb") as out,
            tqdm(
                total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=description, disable=not show_progress
            ) as bar,
        ):
            for chunk in iter(lambda: source.read(CHUNK_BYTES), b""):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if total is not None and received != total:
            raise _Truncated(f"received {received} of {total} bytes")
        actual = digest.hexdigest()
        if sha256 is not None and actual != sha256:
            raise ChecksumError(
                f"Checksum mismatch for {target.name} from {origin}: expected sha256 {sha256}, got {actual}. "
                "The data was deleted. If it came from a mirror folder, replace the file there; "
                "otherwise try again (the transfer may have been corrupted)."
            )


def _network_failure_message(url: str, target: Path, err: BaseException) -> str:
    is_url_error = isinstance(err, urllib.error.URLError) and not isinstance(err, urllib.error.HTTPError)
    reason = err.reason if is_url_error else err
    mirror = os.environ.get(MIRROR_ENV)
    mirror_note = (
        f"or put {target.name} into the mirror folder {MIRROR_ENV}={mirror}, which does not have it"
        if mirror
        else f"or set {MIRROR_ENV} to a folder holding {target.name} (`python -m utils.prefetch` fills one)"
    )
    return (
        f"Could not download {url} to {target}: {reason}. "
        f"Ways out: download the file on a machine with network and place it at {target} by hand, "
        f"{mirror_note}."
    )
