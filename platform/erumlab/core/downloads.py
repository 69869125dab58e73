"""Streaming file downloads with Range, ETag and optional hand-off to the reverse proxy.

Files are never read whole into memory: responses iterate over 1 MiB blocks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Protocol
from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse


class StoredFile(Protocol):
    """A record naming stored bytes: a dataset file, a model file."""

    name: str
    storage_key: str
    size: int
    sha256: str
    media_type: str

BLOCK = 1 << 20
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _blocks(key: str, start: int, length: int) -> Iterator[bytes]:
    with default_storage.open(key, "rb") as handle:
        handle.seek(start)
        remaining = length
        while remaining > 0:
            block = handle.read(min(BLOCK, remaining))
            if not block:
                return
            remaining -= len(block)
            yield block


def _disposition(name: str) -> str:
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"


def file_response(request: HttpRequest, record: StoredFile) -> HttpResponse:
    etag = f'"{record.sha256}"'
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Content-Disposition": _disposition(record.name),
        # Content addressed: a given ETag never changes.
        "Cache-Control": "private, max-age=31536000, immutable",
        "X-Content-Type-Options": "nosniff",
        "Digest": f"sha-256={record.sha256}",
    }
    if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
        return HttpResponse(status=304, headers=headers)

    if settings.ERUMLAB_DOWNLOAD_ACCEL:
        # The proxy reads the file itself (and handles Range): Django only authorises.
        response = HttpResponse(content_type=record.media_type, headers=headers)
        if settings.ERUMLAB_DOWNLOAD_ACCEL == "nginx":
            response["X-Accel-Redirect"] = settings.ERUMLAB_ACCEL_PREFIX + record.storage_key
        else:
            response["X-Sendfile"] = default_storage.path(record.storage_key)
        return response

    size = record.size
    start, length, status = 0, size, 200
    wanted = request.headers.get("Range", "")
    if_range = request.headers.get("If-Range")
    if wanted and (if_range is None or if_range == etag):
        match = _RANGE.match(wanted.strip())
        first, last = (match.groups() if match else ("", ""))
        if not match or (first == "" and last == ""):
            return HttpResponse(status=416, headers={"Content-Range": f"bytes */{size}"})
        if first == "":  # the last N bytes
            start = max(0, size - int(last))
            end = size - 1
        else:
            start = int(first)
            end = min(int(last), size - 1) if last else size - 1
        if start >= size or end < start:
            return HttpResponse(status=416, headers={"Content-Range": f"bytes */{size}"})
        length, status = end - start + 1, 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    if status == 200:
        # The whole file: FileResponse hands the open file to the WSGI server's
        # file wrapper, which gunicorn sends with sendfile() (no copy through Python).
        response = FileResponse(default_storage.open(record.storage_key, "rb"),
                                content_type=record.media_type, headers=headers)
        response["Content-Length"] = str(size)
        response["Content-Disposition"] = headers["Content-Disposition"]
        return response
    response = StreamingHttpResponse(_blocks(record.storage_key, start, length), status=status,
                                     content_type=record.media_type, headers=headers)
    response["Content-Length"] = str(length)
    return response


# A notebook rendered to HTML is whatever its code printed: no scripts, nothing
# from elsewhere, shown only inside a sandboxed frame of our own pages.
RENDERED_NOTEBOOK_CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
                         "font-src data:; frame-ancestors 'self'; sandbox")


def rendered_notebook_response(storage_key: str) -> HttpResponse:
    """A stored notebook rendering, under a policy that lets nothing in it run or load."""
    with default_storage.open(storage_key) as handle:
        response = HttpResponse(handle.read(), content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = RENDERED_NOTEBOOK_CSP
    response["X-Content-Type-Options"] = "nosniff"
    return response
