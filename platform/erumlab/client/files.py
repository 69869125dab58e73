"""Downloads the client keeps: SHA-256-checked copies in the local cache (datasets, models)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from erumlab.client.api import Client


class ChecksumMismatch(RuntimeError):
    pass


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_download(client: Client, api_path: str, record: dict[str, Any], folder: Path) -> Path:
    """``record`` (name, size, sha256) as a verified file in ``folder``, downloaded when needed.

    A copy is reused when its marker (``.<name>.sha256``) names this content
    and its size still matches; a download whose SHA-256 differs is deleted
    and raises ``ChecksumMismatch``.
    """
    target = folder / record["name"]
    verified = target.with_name(f".{target.name}.sha256")
    if target.is_file() and verified.is_file() and \
            verified.read_text().strip() == record["sha256"] and \
            target.stat().st_size == record["size"]:
        return target
    client.download(api_path, target)
    actual = sha256_file(target)
    if actual != record["sha256"]:
        target.unlink(missing_ok=True)
        raise ChecksumMismatch(f"{record['name']}: expected SHA-256 {record['sha256']}, "
                               f"got {actual}; the download was discarded")
    verified.write_text(actual)
    return target
