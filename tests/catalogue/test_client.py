"""erumlab.client.datasets against a live portal: open (cache, checksum, mount), upload."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.storage import default_storage

from erumlab.accounts.services import api_token_issue
from erumlab.catalogue.models import DatasetFile
from erumlab.client import Client
from erumlab.client.files import ChecksumMismatch
from tests.catalogue.conftest import hdf5_bytes

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def client(live_server, user):
    return Client(live_server.url, api_token_issue(user=user, name="t").secret)


def test_upload_publish_and_open_from_a_notebook(client, tmp_path, monkeypatch):
    monkeypatch.setenv("ERUMLAB_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "showers.h5"
    source.write_bytes(hdf5_bytes())
    slug = client.datasets.create("Showers for the notebook", visibility="private")["slug"]
    record = client.datasets.upload(slug, source)
    assert record["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    client.datasets.publish(slug, 1)

    opened = client.datasets.open(slug)
    path = opened.paths["showers.h5"]
    assert opened.identifier == f"erumlab:{slug}.v1"
    assert path.read_bytes() == source.read_bytes()
    assert str(path).startswith(str(tmp_path / "cache"))
    # Opened again: served from the cache, not downloaded again.
    mtime = path.stat().st_mtime_ns
    assert client.datasets.open(slug, version=1).paths["showers.h5"].stat().st_mtime_ns == mtime


def test_a_corrupted_download_is_refused(client, tmp_path, monkeypatch):
    monkeypatch.setenv("ERUMLAB_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "a.csv"
    source.write_text("x\n1\n2\n")
    slug = client.datasets.create("Will be corrupted", visibility="private")["slug"]
    client.datasets.upload(slug, source)
    client.datasets.publish(slug, 1)
    stored = DatasetFile.objects.get(version__dataset__slug=slug)
    with default_storage.open(stored.storage_key, "wb") as handle:
        handle.write(b"x\n1\n3\n")  # bit rot on the server
    with pytest.raises(ChecksumMismatch, match="expected SHA-256"):
        client.datasets.open(slug)
    assert not (tmp_path / "cache" / "datasets" / slug / "v1" / "a.csv").exists()


def test_a_session_with_the_storage_mounted_reads_in_place(client, tmp_path, monkeypatch,
                                                           settings):
    monkeypatch.setenv("ERUMLAB_MEDIA_MOUNT", str(settings.MEDIA_ROOT))
    monkeypatch.setenv("ERUMLAB_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "b.csv"
    source.write_text("y\n5\n")
    slug = client.datasets.create("Mounted", visibility="private")["slug"]
    client.datasets.upload(slug, source)
    client.datasets.publish(slug, 1)
    path = client.datasets.open(slug).paths["b.csv"]
    assert str(path).startswith(str(settings.MEDIA_ROOT))
    assert not (tmp_path / "cache").exists()


def test_a_dataset_made_by_a_job_points_at_the_job(live_server, user, start_worker):  # noqa: F811
    from erumlab.jobs import services as jobs
    from erumlab.jobs.models import Job, Template
    from tests.jobs.conftest import notebook, wait_for_state
    template = jobs.template_save(
        content=notebook(
            "from pathlib import Path\nfrom erumlab.client import Client\n"
            "c = Client()\nPath('out.csv').write_text('v\\n1\\n')\n"
            "slug = c.datasets.create('Made by a job')['slug']\n"
            "c.datasets.upload(slug, 'out.csv')\nc.datasets.publish(slug, 1)\nprint(slug)",
            parameters="n: int = 1"),
        slug="maker", source=Template.Source.UPLOADED, owner=user)
    start_worker(ERUMLAB_PORTAL_INTERNAL_URL=live_server.url)
    job = jobs.job_submit(owner=user, template=template, parameters={})
    wait_for_state(job, *Job.TERMINAL)
    assert job.state == Job.State.SUCCEEDED, job.message + job.log
    version = job.dataset_versions.get()
    assert version.dataset.title == "Made by a job" and version.is_published
