"""Who sees what: the visibility matrix through the web and the API, and downloads."""

from __future__ import annotations

import hashlib

import pytest
from django.test import Client
from rest_framework.test import APIClient

from erumlab.accounts.services import collaboration_create, membership_add
from erumlab.catalogue import services
from erumlab.catalogue.models import Visibility
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

CONTENT = b"energy\n" + b"".join(f"{i}.5\n".encode() for i in range(2000))


@pytest.fixture
def people():
    owner, member, stranger = UserFactory(), UserFactory(), UserFactory()
    collaboration = collaboration_create(creator=owner, name="Auger ML")
    membership_add(collaboration=collaboration, actor=owner, username=member.username)
    return {"owner": owner, "member": member, "stranger": stranger, "anonymous": None,
            "collaboration": collaboration}


# visibility -> who may see a published dataset of it
MATRIX = {
    Visibility.PUBLIC: {"owner", "member", "stranger", "anonymous"},
    Visibility.INTERNAL: {"owner", "member", "stranger"},
    Visibility.COLLABORATION: {"owner", "member"},
    Visibility.PRIVATE: {"owner"},
}


def _clients(people, who):
    web, api = Client(), APIClient()
    if people[who] is not None:
        web.force_login(people[who])
        api.force_authenticate(people[who])
    return web, api


@pytest.mark.parametrize("visibility", list(MATRIX))
def test_the_visibility_matrix_holds_on_the_web_and_the_api(people, make_dataset, visibility):
    dataset = make_dataset(owner=people["owner"], visibility=visibility,
                           collaboration=people["collaboration"]
                           if visibility == Visibility.COLLABORATION else None,
                           content=CONTENT)
    record = dataset.versions.get().files.get()
    for who in ("owner", "member", "stranger", "anonymous"):
        web, api = _clients(people, who)
        allowed = who in MATRIX[visibility]
        expected = 200 if allowed else 404
        urls = [
            (web, f"/datasets/{dataset.slug}/"),
            (web, f"/datasets/{dataset.slug}/v1/files/{record.pk}/"),
            (web, f"/datasets/{dataset.slug}/v1/files/{record.pk}/download"),
            (api, f"/api/v1/datasets/{dataset.slug}/"),
            (api, f"/api/v1/datasets/{dataset.slug}/versions/1/files/{record.pk}/"),
            (api, f"/api/v1/datasets/{dataset.slug}/versions/1/files/{record.pk}/download/"),
        ]
        for client, url in urls:
            assert client.get(url).status_code == expected, (visibility, who, url)
        listed = [d["slug"] for d in api.get("/api/v1/datasets/").json()["results"]]
        assert (dataset.slug in listed) == allowed, (visibility, who)


def test_drafts_are_seen_only_by_their_editors(people, make_dataset):
    dataset = make_dataset(owner=people["owner"], visibility=Visibility.PUBLIC, publish=False)
    for who in ("member", "stranger", "anonymous"):
        web, api = _clients(people, who)
        assert web.get(f"/datasets/{dataset.slug}/").status_code == 404
        assert api.get(f"/api/v1/datasets/{dataset.slug}/versions/1/").status_code == 404
    web, _ = _clients(people, "owner")
    assert web.get(f"/datasets/{dataset.slug}/").status_code == 200


def test_a_file_id_from_another_dataset_is_not_found(people, make_dataset):
    secret = make_dataset(owner=people["owner"], visibility=Visibility.PRIVATE,
                          title="Secret", content=b"s\n1\n")
    public = make_dataset(owner=people["stranger"], visibility=Visibility.PUBLIC,
                          title="Open", content=b"p\n1\n")
    secret_file = secret.versions.get().files.get()
    web, _ = _clients(people, "stranger")
    url = f"/datasets/{public.slug}/v1/files/{secret_file.pk}/download"
    assert web.get(url).status_code == 404


def test_downloads_stream_with_etag_and_ranges(people, make_dataset):
    dataset = make_dataset(owner=people["owner"], content=CONTENT)
    record = dataset.versions.get().files.get()
    web, _ = _clients(people, "anonymous")
    url = f"/datasets/{dataset.slug}/v1/files/{record.pk}/download"
    whole = web.get(url)
    assert whole.streaming
    body = b"".join(whole.streaming_content)
    assert hashlib.sha256(body).hexdigest() == record.sha256
    assert whole["ETag"] == f'"{record.sha256}"' and whole["Accept-Ranges"] == "bytes"
    assert web.get(url, HTTP_IF_NONE_MATCH=whole["ETag"]).status_code == 304
    part = web.get(url, HTTP_RANGE="bytes=7-16")
    assert part.status_code == 206
    assert part["Content-Range"] == f"bytes 7-16/{len(CONTENT)}"
    assert b"".join(part.streaming_content) == CONTENT[7:17]
    tail = web.get(url, HTTP_RANGE="bytes=-5")
    assert b"".join(tail.streaming_content) == CONTENT[-5:]
    assert web.get(url, HTTP_RANGE=f"bytes={len(CONTENT)}-").status_code == 416
    stale = web.get(url, HTTP_RANGE="bytes=0-3", HTTP_IF_RANGE='"other"')
    assert stale.status_code == 200  # the file changed: send it whole


def test_the_proxy_can_take_over_the_transfer(people, make_dataset, settings):
    settings.ERUMLAB_DOWNLOAD_ACCEL = "nginx"
    dataset = make_dataset(owner=people["owner"])
    record = dataset.versions.get().files.get()
    response = Client().get(f"/datasets/{dataset.slug}/v1/files/{record.pk}/download")
    assert response["X-Accel-Redirect"] == f"/protected-media/{record.storage_key}"
    assert response.content == b""


def test_the_api_round_trip_upload_publish_download(people):
    owner = people["owner"]
    _, api = _clients(people, "owner")
    created = api.post("/api/v1/datasets/", {"title": "Ising configurations",
                                              "visibility": "internal",
                                              "keywords": ["ising", "lecture 5"]}, format="json")
    assert created.status_code == 201, created.json()
    slug = created.json()["slug"]
    digest = hashlib.sha256(CONTENT).hexdigest()
    upload = api.post("/api/v1/uploads/", {"dataset": slug, "version": 1, "name": "spins.csv",
                                           "size": len(CONTENT), "sha256": digest},
                      format="json").json()
    half = len(CONTENT) // 2
    first = api.put(f"/api/v1/uploads/{upload['id']}/", CONTENT[:half],
                    content_type="application/octet-stream",
                    HTTP_CONTENT_RANGE=f"bytes 0-{half - 1}/{len(CONTENT)}",
                    HTTP_CONTENT_DISPOSITION="attachment; filename=chunk")
    assert first.json()["received"] == half
    # Resuming from the wrong place is refused with where to continue.
    wrong = api.put(f"/api/v1/uploads/{upload['id']}/", CONTENT[:10],
                    content_type="application/octet-stream",
                    HTTP_CONTENT_RANGE=f"bytes 0-9/{len(CONTENT)}",
                    HTTP_CONTENT_DISPOSITION="attachment; filename=chunk")
    assert wrong.status_code == 409 and wrong.json()["received"] == half
    api.put(f"/api/v1/uploads/{upload['id']}/", CONTENT[half:],
            content_type="application/octet-stream",
            HTTP_CONTENT_RANGE=f"bytes {half}-{len(CONTENT) - 1}/{len(CONTENT)}",
            HTTP_CONTENT_DISPOSITION="attachment; filename=chunk")
    done = api.post(f"/api/v1/uploads/{upload['id']}/complete/")
    assert done.status_code == 201 and done.json()["sha256"] == digest
    published = api.post(f"/api/v1/datasets/{slug}/versions/1/publish/")
    assert published.json()["identifier"] == f"erumlab:{slug}.v1"
    file_id = done.json()["id"]
    got = api.get(f"/api/v1/datasets/{slug}/versions/1/files/{file_id}/download/")
    assert hashlib.sha256(b"".join(got.streaming_content)).hexdigest() == digest
    datacite = api.get(f"/api/v1/datasets/{slug}/versions/1/datacite/").json()
    assert datacite["data"]["attributes"]["identifiers"][0]["identifier"] == f"erumlab:{slug}.v1"
    assert owner.datasets.get().keywords == ["ising", "lecture 5"]


def test_strangers_cannot_upload_into_someone_elses_draft(people, make_dataset):
    dataset = make_dataset(owner=people["owner"], visibility=Visibility.PUBLIC, publish=False)
    services.version_update(version=dataset.versions.get(), actor=people["owner"],
                            changelog="wip")
    _, api = _clients(people, "stranger")
    response = api.post("/api/v1/uploads/", {"dataset": dataset.slug, "version": 1,
                                             "name": "x.csv", "size": 3}, format="json")
    assert response.status_code == 404  # the draft is not even visible


def test_the_dataset_page_sanitizes_the_description_and_embeds_json_ld(people, make_dataset):
    dataset = make_dataset(owner=people["owner"],
                           description="**bold** <script>alert(1)</script> "
                                       "[x](javascript:alert(2)) </script><script>")
    page = Client().get(f"/datasets/{dataset.slug}/").content.decode()
    description = page.split('aria-label="Description">')[1].split("</section>")[0]
    assert "<strong>bold</strong>" in description
    assert "<script" not in description and "javascript:" not in description
    assert "<script>alert(1)" not in page
    assert '<script type="application/ld+json">' in page
    jsonld = page.split('<script type="application/ld+json">')[1].split("</script>")[0]
    assert "<script>" not in jsonld and "\\u003Cscript\\u003E" in jsonld


def test_search_and_facets(user, make_dataset):
    make_dataset(title="Electron showers in a sampling calorimeter", experiment="toy calo",
                 keywords=["calorimeter", "gan"], data_level="simulated")
    make_dataset(title="Pixel tracker hits with pileup", experiment="toy tracker",
                 keywords=["tracking"], data_level="reconstructed", content=b"h\n2\n")
    client = Client()
    found = client.get("/datasets/", {"q": "calorimeter showers"})
    assert b"Electron showers" in found.content and b"Pixel tracker" not in found.content
    faceted = client.get("/datasets/", {"data_level": "reconstructed"})
    assert b"Pixel tracker" in faceted.content and b"Electron showers" not in faceted.content
    by_keyword = client.get("/datasets/", {"keyword": "gan"})
    assert b"Electron showers" in by_keyword.content and b"Pixel tracker" not in by_keyword.content
    api = APIClient().get("/api/v1/datasets/", {"q": "pileup"}).json()["results"]
    assert [d["title"] for d in api] == ["Pixel tracker hits with pileup"]


def test_pages_of_a_faceted_search_keep_the_query_and_the_facets(user, make_dataset):
    for number in range(21):
        make_dataset(title=f"Electron showers run {number}", keywords=["gan"], data_level="simulated")
    make_dataset(title="Electron showers, reconstructed", data_level="reconstructed")
    first = Client().get("/datasets/", {"q": "electron showers", "data_level": "simulated"})
    page = first.content.decode()
    assert "21 datasets" in page and "reconstructed" not in page.split('aria-label="Results"')[1]
    following = page.split('aria-label="Pages"')[1].split("</nav>")[0]
    link = following.split('href="')[1].split('"')[0].replace("&amp;", "&")
    assert link == "?q=electron%20showers&data_level=simulated&page=2"
    second = Client().get("/datasets/" + link).content.decode()
    assert "Page 2 of 2" in second and "Electron showers run" in second
    assert "reconstructed" not in second.split('aria-label="Results"')[1]
    previous = second.split('aria-label="Pages"')[1].split('href="')[1].split('"')[0]
    assert previous.replace("&amp;", "&") == "?q=electron%20showers&data_level=simulated&page=1"


@pytest.mark.parametrize("url", ["/api/v1/datasets/", "/api/v1/models/"])
def test_the_apis_share_only_into_a_collaboration_the_caller_belongs_to(people, url):
    """Datasets and models: the same rule for ``collaboration_slug`` (one mixin)."""
    body = {"title": "Shower GAN inputs", "visibility": "collaboration",
            "collaboration_slug": people["collaboration"].slug}
    _, outsider = _clients(people, "stranger")
    refused = outsider.post(url, body, format="json")
    assert refused.status_code == 400
    assert refused.json()["collaboration_slug"] == "Not one of your collaborations."
    _, member = _clients(people, "member")
    created = member.post(url, body, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["collaboration"] == people["collaboration"].slug


def test_an_invalid_facet_value_is_named_and_the_valid_ones_still_apply(make_dataset):
    make_dataset(title="Electron showers", data_level="simulated", keywords=["gan"])
    make_dataset(title="Muon tracks", data_level="reconstructed", keywords=["tracking"])
    page = Client().get("/datasets/", {"data_level": "bogus", "keyword": "gan"}).content.decode()
    alert = page.split('role="alert">')[1].split("</ul>")[0]
    assert "Data level" in alert and "bogus is not one of the available choices" in alert
    results = page.split('aria-label="Results"')[1]
    assert "Electron showers" in results and "Muon tracks" not in results
    assert 'role="alert"' not in Client().get("/datasets/").content.decode()


def test_keywords_must_be_a_list_of_words(people):
    _, api = _clients(people, "owner")
    response = api.post("/api/v1/datasets/", {"title": "Bad keywords", "keywords": "muons"},
                        format="json")
    assert response.status_code == 400 and "keywords" in response.json()
