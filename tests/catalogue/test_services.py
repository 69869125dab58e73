"""Versions, uploads and publication: checks first, nothing half-written, published is final."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.storage import default_storage

from erumlab.catalogue import metadata, services
from erumlab.catalogue.models import DatasetFile, DatasetVersion, Upload
from tests.catalogue.conftest import add, hdf5_bytes
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def draft(user):
    return services.dataset_create(owner=user, title="Cosmic-ray footprints",
                                   experiment="toy array", keywords=["air showers"]
                                   ).versions.get()


def _nothing_left(version, name):
    assert not version.files.filter(name=name).exists()
    assert not Upload.objects.filter(version=version, name=name).exists()


def test_a_published_version_gets_an_identifier_and_a_frozen_citation(user, draft):
    user.first_name, user.last_name, user.orcid = "Marie", "Curie", "0000-0002-1825-0097"
    user.save()
    services.version_update(version=draft, actor=user,
                            creators=services.default_creators(user), changelog="first")
    add(draft, user, "showers.h5", hdf5_bytes())
    version = services.version_publish(version=draft, actor=user)
    assert version.identifier == f"erumlab:{draft.dataset.slug}.v1"
    text = metadata.citation_text(version)
    assert text.startswith("Curie, Marie (")
    assert "Cosmic-ray footprints (Version 1)" in text and version.identifier in text
    bib = metadata.bibtex(version)
    assert bib.startswith("@misc{Curie") and "author = {Curie, Marie}" in bib
    datacite = metadata.datacite(version)
    assert datacite["creators"][0]["nameIdentifiers"][0]["nameIdentifier"].endswith(
        "0000-0002-1825-0097")
    assert datacite["types"]["resourceTypeGeneral"] == "Dataset"
    assert metadata.schema_org(version)["@type"] == "Dataset"


def test_published_versions_never_change(user, draft):
    record = add(draft, user, "a.csv", b"x\n1\n")
    services.version_publish(version=draft, actor=user)
    with pytest.raises(ValidationError, match="published and cannot change"):
        add(draft, user, "b.csv", b"x\n2\n")
    with pytest.raises(ValidationError, match="published and cannot change"):
        services.file_remove(file=record, actor=user)
    with pytest.raises(ValidationError, match="published and cannot change"):
        services.version_update(version=draft, actor=user, changelog="sneaky")


def test_a_new_version_starts_from_the_last_ones_files_and_shares_their_bytes(user, draft):
    first = add(draft, user, "a.csv", b"x\n1\n")
    services.version_publish(version=draft, actor=user)
    second = services.version_new_draft(dataset=draft.dataset, actor=user)
    assert second.number == 2
    copy = second.files.get()
    assert copy.storage_key == first.storage_key
    services.file_remove(file=copy, actor=user)
    assert default_storage.exists(first.storage_key)  # version 1 still needs them


def test_publishing_without_files_is_refused(user, draft):
    with pytest.raises(ValidationError, match="at least one file"):
        services.version_publish(version=draft, actor=user)
    draft.refresh_from_db()
    assert draft.state == DatasetVersion.State.DRAFT and draft.identifier is None


@pytest.mark.parametrize(("name", "problem"), [
    ("../escape.csv", "cannot contain '/'"),
    ("sub\\dir.csv", "cannot contain '/'"),
    ("bell\x07.csv", "control characters"),
    ("  ", "needs a name"),
    ("..", "are not file names"),
])
def test_file_names_that_could_be_paths_are_refused(user, draft, name, problem):
    with pytest.raises(ValidationError, match=problem):
        add(draft, user, name, b"data")
    assert not DatasetFile.objects.exists() and not Upload.objects.exists()


def test_empty_and_duplicate_files_are_refused(user, draft):
    with pytest.raises(ValidationError, match="empty"):
        add(draft, user, "empty.csv", b"")
    add(draft, user, "a.csv", b"x\n1\n")
    with pytest.raises(ValidationError, match="already has a file of that name"):
        add(draft, user, "a.csv", b"x\n2\n")
    with pytest.raises(ValidationError, match="identical to a.csv"):
        add(draft, user, "copy.csv", b"x\n1\n")
    assert draft.files.count() == 1 and not Upload.objects.exists()


def test_a_checksum_mismatch_discards_the_upload(user, draft):
    scratch = Path(services.settings.ERUMLAB_UPLOAD_SCRATCH)
    before = set(default_storage.listdir("datasets")[1]) if default_storage.exists(
        "datasets") else set()
    with pytest.raises(ValidationError, match="checksum mismatch"):
        add(draft, user, "a.csv", b"x\n1\n", sha256=hashlib.sha256(b"other").hexdigest())
    _nothing_left(draft, "a.csv")
    assert not list(scratch.glob("*.part"))
    after = set(default_storage.listdir("datasets")[1]) if default_storage.exists(
        "datasets") else set()
    assert after == before


def test_a_truncated_upload_cannot_complete_and_can_resume(user, draft):
    content = b"0123456789" * 100
    upload = services.upload_start(version=draft, actor=user, name="data.bin",
                                   size=len(content),
                                   sha256=hashlib.sha256(content).hexdigest())
    services.upload_append(upload=upload, actor=user, offset=0, chunk=io.BytesIO(content[:600]),
                           length=600)
    with pytest.raises(ValidationError, match="truncated upload, 600 of 1000 bytes"):
        services.upload_complete(upload=upload, actor=user)
    with pytest.raises(services.OffsetMismatch) as mismatch:
        services.upload_append(upload=upload, actor=user, offset=0,
                               chunk=io.BytesIO(content[:10]), length=10)
    assert mismatch.value.expected == 600
    services.upload_append(upload=upload, actor=user, offset=600,
                           chunk=io.BytesIO(content[600:]), length=400)
    record = services.upload_complete(upload=upload, actor=user)
    assert record.sha256 == hashlib.sha256(content).hexdigest()
    with default_storage.open(record.storage_key) as handle:
        assert handle.read() == content


def test_an_upload_over_quota_is_refused_before_any_bytes(user, draft, settings):
    settings.ERUMLAB_QUOTA_USER_BYTES = 1000
    add(draft, user, "a.bin", b"x" * 600)
    with pytest.raises(ValidationError, match="Over quota"):
        services.upload_start(version=draft, actor=user, name="b.bin", size=500)
    assert not Upload.objects.exists()


def test_only_editors_change_a_draft(user, other_user, draft):
    with pytest.raises(PermissionDenied):
        add(draft, other_user, "a.csv", b"x")
    with pytest.raises(PermissionDenied):
        services.version_publish(version=draft, actor=other_user)


def test_collaboration_maintainers_edit_collaboration_datasets(user):
    from erumlab.accounts.services import collaboration_create, membership_add

    maintainer, member = UserFactory(), UserFactory()
    collaboration = collaboration_create(creator=maintainer, name="IceCube ML")
    membership_add(collaboration=collaboration, actor=maintainer, username=member.username)
    membership_add(collaboration=collaboration, actor=maintainer, username=user.username)
    dataset = services.dataset_create(owner=user, title="Shared", visibility="collaboration",
                                      collaboration=collaboration)
    assert services.can_edit(maintainer, dataset)
    assert not services.can_edit(member, dataset)


def test_creators_need_names_and_valid_orcids(user, draft):
    with pytest.raises(ValidationError, match="not an ORCID"):
        services.version_update(version=draft, actor=user,
                                creators=[{"name": "Noether, Emmy", "orcid": "123"}])


def test_an_unreadable_file_gets_a_reason_not_an_error_page(user, draft, client):
    record = add(draft, user, "broken.h5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 200)
    record = services.file_compute_preview(file_id=str(record.pk))
    assert record.preview_state == DatasetFile.Preview.FAILED
    assert record.preview_error.startswith("cannot preview: ")
    assert "cannot preview: cannot preview" not in record.preview_error
    client.force_login(user)
    page = client.get(f"/datasets/{draft.dataset.slug}/v1/files/{record.pk}/")
    assert page.status_code == 200
    assert record.preview_error.encode() in page.content


def test_a_readable_hdf5_file_gets_its_tree_and_histogrammable_columns(user, draft, client):
    record = add(draft, user, "showers.h5", hdf5_bytes())
    record = services.file_compute_preview(file_id=str(record.pk))
    assert record.preview_state == DatasetFile.Preview.READY
    paths = [node["path"] for node in record.preview["tree"]]
    assert "/showers/energy" in paths
    client.force_login(user)
    plot = client.get(f"/datasets/{draft.dataset.slug}/v1/files/{record.pk}/histogram.png",
                      {"column": "/showers/energy"})
    assert plot.status_code == 200 and plot.content.startswith(b"\x89PNG")
    assert client.get(f"/datasets/{draft.dataset.slug}/v1/files/{record.pk}/histogram.png",
                      {"column": "/nope"}).status_code == 404


def test_collaboration_datasets_count_against_the_collaborations_quota(user, settings):
    from erumlab.accounts.services import collaboration_create

    settings.ERUMLAB_QUOTA_COLLABORATION_BYTES = 1000
    settings.ERUMLAB_QUOTA_USER_BYTES = 10**12
    collaboration = collaboration_create(creator=user, name="Quota test")
    shared = services.dataset_create(owner=user, title="Shared data",
                                     visibility="collaboration", collaboration=collaboration)
    add(shared.versions.get(), user, "a.bin", b"x" * 900)
    with pytest.raises(ValidationError, match="collaboration quota-test uses"):
        services.upload_start(version=shared.versions.get(), actor=user, name="b.bin",
                              size=200)
    # The user's own quota is separate.
    own = services.dataset_create(owner=user, title="Mine")
    add(own.versions.get(), user, "c.bin", b"y" * 900)


def test_nobody_writes_into_someone_elses_upload(user, other_user, draft, api_client):
    upload = services.upload_start(version=draft, actor=user, name="d.bin", size=10)
    api_client.force_authenticate(other_user)
    response = api_client.put(f"/api/v1/uploads/{upload.pk}/", b"0123456789",
                              content_type="application/octet-stream",
                              HTTP_CONTENT_RANGE="bytes 0-9/10",
                              HTTP_CONTENT_DISPOSITION="attachment; filename=chunk")
    assert response.status_code == 404
    upload.refresh_from_db()
    assert upload.received == 0
