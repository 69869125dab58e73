"""Stored files as local paths, whatever the storage backend."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path

from django.core.files.storage import default_storage

from erumlab.core.downloads import StoredFile

CHUNK = 1 << 20


@contextlib.contextmanager
def local_path(record: StoredFile) -> Iterator[Path]:
    """A path to a file's bytes: in place on local storage, a temporary copy otherwise."""
    try:
        path = Path(default_storage.path(record.storage_key))
    except NotImplementedError:  # object storage has no paths
        path = None
    if path is not None:
        yield path
        return
    with tempfile.NamedTemporaryFile(suffix=Path(record.name).suffix) as copy, \
            default_storage.open(record.storage_key) as source:
        for block in iter(lambda: source.read(CHUNK), b""):
            copy.write(block)
        copy.flush()
        yield Path(copy.name)
