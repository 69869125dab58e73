"""Writes for the catalogue: datasets, draft versions, resumable uploads, publication.

Published versions never change. Files are checked (name, size, SHA-256,
quota) before anything becomes a record; a failed upload leaves no file row
and no stored object.
"""

from __future__ import annotations

import hashlib
import mimetypes
import unicodedata
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.text import slugify

from erumlab.accounts.models import Collaboration, User
from erumlab.catalogue.models import Dataset, DatasetFile, DatasetVersion, Upload, Visibility
from erumlab.catalogue.previews import detect_format
from erumlab.core import quota, storage
from erumlab.core import visibility as shared_visibility
from erumlab.core.search import refresh_search_vector

CHUNK = 1 << 20


# Permissions ---------------------------------------------------------------


def can_edit(user: User, dataset: Dataset) -> bool:
    """Owners, maintainers of the dataset's collaboration and administrators."""
    return shared_visibility.can_edit(user, dataset)


def _require_editor(user: User, dataset: Dataset) -> None:
    if not can_edit(user, dataset):
        raise PermissionDenied("Only the owner or the collaboration's maintainers can change "
                               "this dataset.")


def _require_draft(version: DatasetVersion) -> None:
    if version.is_published:
        raise ValidationError(f"Version {version.number} is published and cannot change; "
                              f"start a new version instead.")


# Datasets and versions -------------------------------------------------------


def _search_document(dataset: Dataset, creators: Iterable[dict]) -> str:
    parts = [dataset.title, dataset.description, dataset.experiment, " ".join(dataset.keywords),
             " ".join(c.get("name", "") for c in creators), dataset.slug]
    return "\n".join(p for p in parts if p)


def _refresh_search_vector(dataset: Dataset) -> None:
    refresh_search_vector(dataset)


def default_creators(user: User) -> list[dict[str, str]]:
    name = f"{user.last_name}, {user.first_name}" if user.last_name else user.username
    creator = {"name": name}
    if user.orcid:
        creator["orcid"] = user.orcid
    if user.affiliation:
        creator["affiliation"] = user.affiliation
    return [creator]


def _clean_keywords(keywords: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for keyword in keywords:
        word = keyword.strip().lower()
        if word and word not in seen:
            seen.append(word[:50])
    return seen


_check_collaboration = shared_visibility.check_collaboration


def _check_creators(creators: list[dict[str, Any]]) -> list[dict[str, str]]:
    from erumlab.accounts.models import orcid_validator

    clean = []
    for index, creator in enumerate(creators, start=1):
        if not isinstance(creator, dict) or not str(creator.get("name", "")).strip():
            raise ValidationError({"creators": f"creator {index} needs a name"})
        entry = {"name": str(creator["name"]).strip()[:200]}
        if creator.get("orcid"):
            try:
                orcid_validator(str(creator["orcid"]).strip())
            except ValidationError:
                raise ValidationError(
                    {"creators": f"creator {index}: {creator['orcid']!r} is not an ORCID iD"}
                ) from None
            entry["orcid"] = str(creator["orcid"]).strip()
        if creator.get("affiliation"):
            entry["affiliation"] = str(creator["affiliation"]).strip()[:200]
        clean.append(entry)
    return clean


@transaction.atomic
def dataset_create(*, owner: User, title: str, slug: str = "", description: str = "",
                   visibility: str = Visibility.PRIVATE,
                   collaboration: Collaboration | None = None, experiment: str = "",
                   data_level: str = "simulated", licence: str = "CC-BY-4.0",
                   keywords: Iterable[str] = (), creators: list[dict] | None = None,
                   produced_by: Any = None) -> Dataset:
    """A dataset with its first (draft) version; ``produced_by`` is the job making it."""
    _check_collaboration(owner, visibility, collaboration)
    dataset = Dataset(
        owner=owner, title=title.strip(), slug=(slug or slugify(title))[:100],
        description=description, visibility=visibility, collaboration=collaboration,
        experiment=experiment.strip(), data_level=data_level, licence=licence,
        keywords=_clean_keywords(keywords),
    )
    creators = _check_creators(creators) if creators else default_creators(owner)
    dataset.search_document = _search_document(dataset, creators)
    dataset.full_clean()
    dataset.save()
    _refresh_search_vector(dataset)
    DatasetVersion.objects.create(dataset=dataset, number=1, creators=creators,
                                  produced_by=produced_by)
    return dataset


EDITABLE = ("title", "description", "visibility", "collaboration", "experiment", "data_level",
            "licence", "keywords")


@transaction.atomic
def dataset_update(*, dataset: Dataset, actor: User, **fields: Any) -> Dataset:
    """Descriptive metadata and visibility; citations of published versions stay frozen."""
    _require_editor(actor, dataset)
    unknown = set(fields) - set(EDITABLE)
    if unknown:
        raise ValidationError({name: "cannot be changed here" for name in unknown})
    for name, value in fields.items():
        setattr(dataset, name, _clean_keywords(value) if name == "keywords" else value)
    _check_collaboration(dataset.owner, dataset.visibility, dataset.collaboration)
    latest = dataset.versions.order_by("-number").first()
    dataset.search_document = _search_document(dataset, latest.creators if latest else [])
    dataset.updated_at = timezone.now()
    dataset.full_clean()
    dataset.save()
    _refresh_search_vector(dataset)
    return dataset


@transaction.atomic
def version_new_draft(*, dataset: Dataset, actor: User, produced_by: Any = None
                      ) -> DatasetVersion:
    """The next version, starting from the latest published one's files and creators."""
    _require_editor(actor, dataset)
    dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
    if dataset.versions.filter(state=DatasetVersion.State.DRAFT).exists():
        raise ValidationError("There is already a draft version; publish or edit it first.")
    latest = dataset.versions.order_by("-number").first()
    draft = DatasetVersion.objects.create(
        dataset=dataset, number=(latest.number if latest else 0) + 1,
        creators=latest.creators if latest else default_creators(actor),
        produced_by=produced_by,
    )
    if latest is not None:
        DatasetFile.objects.bulk_create([
            DatasetFile(version=draft, name=f.name, storage_key=f.storage_key, size=f.size,
                        sha256=f.sha256, media_type=f.media_type, format=f.format,
                        preview_state=f.preview_state, preview=f.preview,
                        preview_error=f.preview_error)
            for f in latest.files.all()
        ])
    return draft


@transaction.atomic
def version_update(*, version: DatasetVersion, actor: User, changelog: str | None = None,
                   creators: list[dict] | None = None,
                   derived_from: Iterable[DatasetVersion] | None = None) -> DatasetVersion:
    version = DatasetVersion.objects.select_for_update().select_related("dataset").get(
        pk=version.pk)
    _require_editor(actor, version.dataset)
    _require_draft(version)
    if changelog is not None:
        version.changelog = changelog
    if creators is not None:
        if not creators:
            raise ValidationError({"creators": "A version needs at least one creator."})
        version.creators = _check_creators(creators)
    version.save()
    if derived_from is not None:
        sources = list(derived_from)
        if any(not source.is_published for source in sources):
            raise ValidationError({"derived_from": "Only published versions can be sources."})
        version.derived_from.set(sources)
    return version


def identifier_for(version: DatasetVersion) -> str:
    return f"{settings.ERUMLAB_PID_PREFIX}:{version.dataset.slug}.v{version.number}"


@transaction.atomic
def version_publish(*, version: DatasetVersion, actor: User) -> DatasetVersion:
    version = DatasetVersion.objects.select_for_update().select_related("dataset").get(
        pk=version.pk)
    _require_editor(actor, version.dataset)
    _require_draft(version)
    if not version.files.exists():
        raise ValidationError("A version needs at least one file before it can be published.")
    if version.uploads.exists():
        raise ValidationError("Uploads to this version are still in progress: finish or "
                              "cancel them first.")
    if not version.creators:
        raise ValidationError({"creators": "A version needs at least one creator."})
    dataset = version.dataset
    now = timezone.now()
    version.state = DatasetVersion.State.PUBLISHED
    version.published_at = now
    version.identifier = identifier_for(version)
    version.citation = {
        "title": dataset.title,
        "creators": version.creators,
        "year": now.year,
        "publisher": settings.ERUMLAB_PUBLISHER,
        "licence": dataset.licence,
        "version": version.number,
        "identifier": version.identifier,
        "url": f"{settings.ERUMLAB_PORTAL_URL}/datasets/{dataset.slug}/v{version.number}/",
        "size": version.files.aggregate(total=Sum("size"))["total"],
        "formats": sorted(set(version.files.values_list("format", flat=True))),
    }
    version.save()
    Dataset.objects.filter(pk=dataset.pk).update(updated_at=now)
    return version


# Files: names, quotas, resumable uploads ---------------------------------------


def clean_file_name(name: str) -> str:
    """A file name as a label: no folders, no control characters, not empty."""
    name = unicodedata.normalize("NFC", name or "").strip()
    if not name:
        raise ValidationError({"name": "The file needs a name."})
    if "/" in name or "\\" in name:
        raise ValidationError({"name": f"{name!r}: a file name cannot contain '/' or '\\'."})
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        raise ValidationError({"name": f"{name!r}: control characters are not allowed."})
    if name in (".", ".."):
        raise ValidationError({"name": "'.' and '..' are not file names."})
    if len(name) > 255:
        raise ValidationError({"name": "File names are limited to 255 characters."})
    return name


def usage_bytes(*, user: User | None = None, collaboration: Collaboration | None = None) -> int:
    """Bytes counted against a quota (datasets and models share it)."""
    return quota.usage_bytes(user=user, collaboration=collaboration)


def _check_quota(dataset: Dataset, size: int) -> None:
    quota.check_quota(owner=dataset.owner, collaboration=dataset.collaboration, size=size)


def _scratch(upload: Upload) -> Path:
    folder = Path(settings.ERUMLAB_UPLOAD_SCRATCH)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{upload.pk}.part"


@transaction.atomic
def upload_start(*, version: DatasetVersion, actor: User, name: str, size: int,
                 sha256: str = "") -> Upload:
    """Reserve room for a file; its bytes follow in chunks (``upload_append``)."""
    # The caller's object may be stale: decide on the row as it is now, locked.
    version = DatasetVersion.objects.select_for_update().select_related("dataset").get(
        pk=version.pk)
    dataset = version.dataset
    _require_editor(actor, dataset)
    _require_draft(version)
    name = clean_file_name(name)
    if size <= 0:
        raise ValidationError({"size": f"{name}: the file is empty."})
    sha256 = sha256.strip().lower()
    if sha256 and (len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256)):
        raise ValidationError({"sha256": "A SHA-256 is 64 hexadecimal digits."})
    if version.files.filter(name=name).exists() or version.uploads.filter(name=name).exists():
        raise ValidationError({"name": f"{name}: this version already has a file of that name."})
    # Serialise quota decisions of one owner (or collaboration).
    Dataset.objects.select_for_update().filter(pk=dataset.pk).first()
    _check_quota(dataset, size)
    upload = Upload.objects.create(version=version, user=actor, name=name, size=size,
                                   sha256=sha256)
    _scratch(upload).touch()
    return upload


class OffsetMismatch(ValidationError):
    def __init__(self, expected: int) -> None:
        self.expected = expected
        super().__init__(f"This upload continues at byte {expected}.")


def upload_append(*, upload: Upload, actor: User, offset: int, chunk: IO[bytes],
                  length: int) -> Upload:
    """Write ``length`` bytes at ``offset`` (which must be where the upload stands)."""
    if upload.user_id != actor.pk:
        raise PermissionDenied("This upload belongs to someone else.")
    with transaction.atomic():
        upload = Upload.objects.select_for_update().get(pk=upload.pk)
        if offset != upload.received:
            raise OffsetMismatch(upload.received)
        if upload.received + length > upload.size:
            raise ValidationError({"size": f"More bytes than declared ({upload.size})."})
        written = 0
        with open(_scratch(upload), "r+b") as handle:
            handle.seek(offset)
            while written < length:
                block = chunk.read(min(CHUNK, length - written))
                if not block:
                    break
                handle.write(block)
                written += len(block)
            handle.truncate(offset + written)
        if written != length:
            raise ValidationError({"chunk": f"The chunk ended after {written} of {length} bytes."})
        upload.received += written
        upload.save(update_fields=["received"])
    return upload


def upload_cancel(*, upload: Upload, actor: User) -> None:
    if upload.user_id != actor.pk and not actor.is_superuser:
        raise PermissionDenied("This upload belongs to someone else.")
    _scratch(upload).unlink(missing_ok=True)
    upload.delete()


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def upload_complete(*, upload: Upload, actor: User) -> DatasetFile:
    """Check the whole file, store it under a generated key, and record it."""
    upload = Upload.objects.select_related("version").get(pk=upload.pk)
    if upload.user_id != actor.pk:
        raise PermissionDenied("This upload belongs to someone else.")
    path = _scratch(upload)
    if upload.received != upload.size or path.stat().st_size != upload.size:
        raise ValidationError({"size": f"{upload.name}: truncated upload, {upload.received} of "
                                       f"{upload.size} bytes arrived; send the rest."})
    sha256 = _sha256_of(path)
    if upload.sha256 and sha256 != upload.sha256:
        upload_cancel(upload=upload, actor=actor)
        raise ValidationError({"sha256": f"{upload.name}: checksum mismatch: declared "
                                         f"{upload.sha256}, received {sha256}. "
                                         f"The upload was discarded."})
    version = upload.version
    if version.is_published:
        upload_cancel(upload=upload, actor=actor)
        raise ValidationError(f"Version {version.number} was published meanwhile; start a new "
                              f"version for this file.")
    twin = version.files.filter(sha256=sha256).first()
    if twin is not None:
        upload_cancel(upload=upload, actor=actor)
        raise ValidationError({"sha256": f"{upload.name} is identical to {twin.name} in this "
                                         f"version."})
    with open(path, "rb") as handle:
        head = handle.read(512)
    fmt = detect_format(upload.name, head)
    media_type = mimetypes.guess_type(upload.name)[0] or "application/octet-stream"
    key = f"datasets/{version.dataset_id}/{uuid.uuid4().hex}"
    with open(path, "rb") as handle:
        stored_key = default_storage.save(key, File(handle))
    try:
        with transaction.atomic():
            Upload.objects.select_for_update().get(pk=upload.pk)  # still ours to finish
            record = DatasetFile.objects.create(
                version=version, name=upload.name, storage_key=stored_key, size=upload.size,
                sha256=sha256, media_type=media_type, format=fmt)
            upload.delete()
            transaction.on_commit(lambda: _enqueue_preview(record.pk))
    except Exception:
        default_storage.delete(stored_key)  # nothing half-written
        raise
    path.unlink(missing_ok=True)
    return record


def _enqueue_preview(file_id: uuid.UUID) -> None:
    from erumlab.catalogue.tasks import compute_preview

    try:
        compute_preview.apply_async(args=[str(file_id)], queue="default")
    except Exception:  # broker down: the page offers "compute preview" again
        import logging

        logging.getLogger(__name__).warning("preview of %s not queued", file_id, exc_info=True)


def file_add(*, version: DatasetVersion, actor: User, name: str, content: IO[bytes],
             size: int, sha256: str = "") -> DatasetFile:
    """A whole file in one call (API, client, jobs): the same checks as a resumable upload."""
    upload = upload_start(version=version, actor=actor, name=name, size=size, sha256=sha256)
    try:
        upload = upload_append(upload=upload, actor=actor, offset=0, chunk=content, length=size)
        return upload_complete(upload=upload, actor=actor)
    except Exception:
        if Upload.objects.filter(pk=upload.pk).exists():
            upload_cancel(upload=upload, actor=actor)
        raise


@transaction.atomic
def file_remove(*, file: DatasetFile, actor: User) -> None:
    file = DatasetFile.objects.select_related("version__dataset").get(pk=file.pk)
    _require_editor(actor, file.version.dataset)
    _require_draft(file.version)
    key = file.storage_key
    file.delete()
    # Versions share stored objects: delete the bytes only when nothing refers to them.
    if not DatasetFile.objects.filter(storage_key=key).exists():
        transaction.on_commit(lambda: default_storage.delete(key))


local_path = storage.local_path


def file_compute_preview(*, file_id: str) -> DatasetFile:
    """Compute and cache a file's preview (in a worker)."""
    from erumlab.catalogue.previews import PreviewError, preview

    record = DatasetFile.objects.get(pk=file_id)
    try:
        with local_path(record) as path:
            result = preview(path, record.format)
    except PreviewError as error:
        reason = str(error)
        if not reason.startswith("cannot preview"):
            reason = f"cannot preview: {reason}"
        DatasetFile.objects.filter(storage_key=record.storage_key).update(
            preview_state=DatasetFile.Preview.FAILED, preview=None, preview_error=reason)
    else:
        DatasetFile.objects.filter(storage_key=record.storage_key).update(
            preview_state=DatasetFile.Preview.READY, preview=result, preview_error="")
    record.refresh_from_db()
    return record
