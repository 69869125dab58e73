"""Datasets from a notebook or job.

    from erumlab.client import datasets
    data = datasets.open("calo-showers", version=2)
    data.paths["showers.h5"]          # a local path, checked against its SHA-256

Files are downloaded once into a cache (ERUMLAB_CACHE_DIR, default
~/.cache/erumlab) or, when the session has the platform's storage mounted
(ERUMLAB_MEDIA_MOUNT), read in place.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

# ChecksumMismatch is raised here and has been importable from here
from erumlab.client.files import ChecksumMismatch, cached_download, sha256_file  # noqa: F401

if TYPE_CHECKING:
    from erumlab.client.api import Client

CHUNK = 8 * 1000 * 1000


def cache_dir() -> Path:
    return Path(os.environ.get("ERUMLAB_CACHE_DIR") or Path.home() / ".cache" / "erumlab")


@dataclass
class OpenedDataset:
    slug: str
    version: int
    identifier: str | None
    files: list[dict[str, Any]]
    paths: dict[str, Path] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Path:
        return self.paths[name]


class Datasets:
    def __init__(self, client: Client) -> None:
        self.client = client

    def get(self, slug: str) -> dict[str, Any]:
        return self.client.request("GET", f"datasets/{slug}/")

    def list(self, q: str = "", **facets: str) -> list[dict[str, Any]]:
        return self.client.request("GET", "datasets/", params={"q": q, **facets})["results"]

    def version(self, slug: str, version: int | None = None) -> dict[str, Any]:
        if version is not None:
            return self.client.request("GET", f"datasets/{slug}/versions/{version}/")
        versions = self.client.request("GET", f"datasets/{slug}/versions/")
        published = [v for v in versions if v["state"] == "published"]
        if not published:
            raise LookupError(f"dataset {slug!r} has no published version")
        return max(published, key=lambda v: v["number"])

    def open(self, slug: str, version: int | None = None) -> OpenedDataset:
        """Local paths of a version's files (the latest published version by default)."""
        info = self.version(slug, version)
        opened = OpenedDataset(slug=slug, version=info["number"], identifier=info["identifier"],
                               files=info["files"])
        mount = os.environ.get("ERUMLAB_MEDIA_MOUNT")
        folder = cache_dir() / "datasets" / slug / f"v{info['number']}"
        for record in info["files"]:
            if mount and record.get("storage_key"):
                direct = Path(mount) / record["storage_key"]
                if direct.is_file() and direct.stat().st_size == record["size"]:
                    opened.paths[record["name"]] = direct
                    continue
            opened.paths[record["name"]] = cached_download(
                self.client, f"datasets/{slug}/versions/{info['number']}/files/{record['id']}/download",
                record, folder)
        return opened

    def create(self, title: str, **fields: Any) -> dict[str, Any]:
        return self.client.request("POST", "datasets/", json={"title": title, **fields})

    def upload(self, slug: str, path: str | Path, *, version: int | None = None,
               name: str | None = None) -> dict[str, Any]:
        """Add a file to a draft version, in resumable chunks, declaring its SHA-256."""
        path = Path(path)
        if version is None:
            drafts = [v for v in self.client.request("GET", f"datasets/{slug}/versions/")
                      if v["state"] == "draft"]
            if not drafts:
                raise LookupError(f"dataset {slug!r} has no draft version; start one first")
            version = drafts[0]["number"]
        size = path.stat().st_size
        upload = self.client.request("POST", "uploads/", json={
            "dataset": slug, "version": version, "name": name or path.name, "size": size,
            "sha256": sha256_file(path)})
        offset = 0
        with path.open("rb") as handle:
            while offset < size:
                block = handle.read(CHUNK)
                upload = self.client.request(
                    "PUT", f"uploads/{upload['id']}/", data=block,
                    headers={"Content-Type": "application/octet-stream",
                             "Content-Disposition": "attachment; filename=chunk",
                             "Content-Range": f"bytes {offset}-{offset + len(block) - 1}/{size}"})
                offset = upload["received"]
        return self.client.request("POST", f"uploads/{upload['id']}/complete/")

    def new_version(self, slug: str) -> dict[str, Any]:
        return self.client.request("POST", f"datasets/{slug}/versions/new/")

    def publish(self, slug: str, version: int) -> dict[str, Any]:
        return self.client.request("POST", f"datasets/{slug}/versions/{version}/publish/")


_default: Datasets | None = None


def _datasets() -> Datasets:
    global _default
    if _default is None:
        from erumlab.client.api import Client

        _default = Datasets(Client())
    return _default


def open(slug: str, version: int | None = None) -> OpenedDataset:  # noqa: A001
    """Open with the default client (ERUMLAB_URL and ERUMLAB_API_TOKEN)."""
    return _datasets().open(slug, version)


def get(slug: str) -> dict[str, Any]:
    return _datasets().get(slug)


def list(q: str = "", **facets: str) -> list[dict[str, Any]]:  # noqa: A001
    return _datasets().list(q, **facets)
