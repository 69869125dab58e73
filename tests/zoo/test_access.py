"""Who sees which model: the visibility matrix by name, through the web and the API."""

from __future__ import annotations

import json

import pytest

from erumlab.accounts.models import Membership
from erumlab.zoo.models import Visibility
from tests.factories import CollaborationFactory, MembershipFactory, UserFactory
from tests.zoo.conftest import CONFIG, SIGNATURE, tagger, weights_bytes

pytestmark = pytest.mark.django_db

# visibility -> who can read: owner, collaboration member, other user, anonymous
MATRIX = {
    Visibility.PUBLIC: (True, True, True, True),
    Visibility.INTERNAL: (True, True, True, False),
    Visibility.COLLABORATION: (True, True, False, False),
    Visibility.PRIVATE: (True, False, False, False),
}


@pytest.fixture
def people(user):
    collaboration = CollaborationFactory()
    MembershipFactory(user=user, collaboration=collaboration, role=Membership.Role.MEMBER)
    member = MembershipFactory(collaboration=collaboration).user
    return collaboration, {"owner": user, "member": member, "other": UserFactory(),
                           "anonymous": None}


@pytest.mark.parametrize("visibility", list(MATRIX))
def test_visibility_matrix_on_web_and_api(client, api_client, people, make_model, publish,
                                          user, visibility):
    collaboration, who = people
    model = make_model(name=f"m-{visibility}", visibility=visibility,
                       collaboration=collaboration)
    version = publish(model, user)
    weights = version.weights
    urls = [f"/models/{model.name}/", f"/models/{model.name}/v1/",
            f"/models/{model.name}/v1/files/{weights.pk}/download",
            f"/api/v1/models/{model.name}/", f"/api/v1/models/{model.name}/versions/",
            f"/api/v1/models/{model.name}/versions/1/",
            f"/api/v1/models/{model.name}/versions/latest/files/{weights.pk}/download/"]
    for (role, person), allowed in zip(who.items(), MATRIX[visibility], strict=True):
        for http in (client, api_client):
            http.logout()
            if person is not None:
                http.force_login(person)
        for url in urls:
            http = api_client if url.startswith("/api/") else client
            status = http.get(url).status_code
            assert status == (200 if allowed else 404), (role, visibility, url, status)
        listed = api_client.get("/api/v1/models/").json()["results"]
        assert (model.name in [m["name"] for m in listed]) is allowed, (role, visibility)


def test_a_model_without_versions_is_seen_by_its_editors_only(client, make_model, user,
                                                              other_user):
    model = make_model(visibility=Visibility.PUBLIC)
    client.force_login(other_user)
    assert client.get(f"/models/{model.name}/").status_code == 404
    client.force_login(user)
    assert client.get(f"/models/{model.name}/").status_code == 200


def test_publish_through_the_api_with_lineage_and_aliases(api_client, make_model, user,
                                                          other_user, tmp_path):
    model = make_model(visibility=Visibility.PUBLIC)
    api_client.force_login(user)
    metadata = {"architecture": "mlp", "config": CONFIG, "signature": SIGNATURE,
                "card": "## Intended use\nTagging.", "aliases": ["production"],
                "metrics": [{"name": "auc", "value": 0.93,
                             "curve": {"kind": "roc", "x": [0, 0.1, 1], "y": [0, 0.8, 1]}}]}

    def post(module, **extra):
        path = tmp_path / "w.safetensors"
        path.write_bytes(weights_bytes(module, tmp_path))
        with open(path, "rb") as handle:
            return api_client.post(f"/api/v1/models/{model.name}/versions/",
                                   {"weights": handle,
                                    "metadata": json.dumps({**metadata, **extra})},
                                   format="multipart")

    first = post(tagger())
    assert first.status_code == 201, first.json()
    assert first.json()["aliases"] == ["production"]
    second = post(tagger(seed=5), aliases=[], parent=first.json()["identifier"])
    assert second.json()["parent"] == first.json()["identifier"]
    bad = post(tagger(), signature={"inputs": [{"name": "features", "shape": [None, 17]}]})
    assert bad.status_code == 400
    assert "dry run" in json.dumps(bad.json())
    assert api_client.get(f"/api/v1/models/{model.name}/versions/production/").json()[
        "number"] == 1
    assert api_client.get(f"/api/v1/models/{model.name}/versions/latest/").json()[
        "number"] == 2
    moved = api_client.post(f"/api/v1/models/{model.name}/aliases/",
                            {"name": "production", "version": 2}, format="json")
    assert moved.status_code == 200
    assert moved.json()["aliases"] == ["production"]
    api_client.force_login(other_user)
    denied = api_client.post(f"/api/v1/models/{model.name}/aliases/",
                             {"name": "production", "version": 1}, format="json")
    assert denied.status_code == 403


def test_model_page_shows_card_metrics_plots_lineage_and_snippet(client, make_model, publish,
                                                                 user):
    model = make_model(visibility=Visibility.PUBLIC)
    v1 = publish(model, user, card="## Intended use\n<script>alert(1)</script>**tags** jets",
                 metrics=[{"name": "auc", "value": 0.93, "curve": {
                     "kind": "roc", "x": [0, 0.1, 1], "y": [0, 0.8, 1],
                     "x_label": "false positive rate", "y_label": "true positive rate"}}],
                 aliases=["production"])
    publish(model, user, module=tagger(seed=1), parent=v1, metrics={"auc": 0.95})
    page = client.get(f"/models/{model.name}/v1/").content.decode()
    assert "<strong>tags</strong>" in page
    assert "<script>alert" not in page
    assert 'models.load(&quot;jet-tagger&quot;, alias=&quot;production&quot;)' in page
    assert f"erumlab:models/{model.name}.v2" in page  # derived version in the lineage
    assert 'id="comparison"' in page
    plot = client.get(f"/models/{model.name}/v1/metrics/auc.png")
    assert plot.status_code == 200
    assert plot.content.startswith(b"\x89PNG")
    assert client.get(f"/models/{model.name}/v2/metrics/auc.png").status_code == 404


def test_the_model_list_narrows_by_facets_and_counts_models_not_versions(
        client, api_client, make_model, publish, user):
    showers = make_model(name="showers", title="Shower GAN", keywords=["gan", "calorimeter"])
    first = publish(showers, user)
    publish(showers, user)  # a second version of the same framework: still one model
    seeds = make_model(name="seeds", title="Track seeder", keywords=["tracking"])
    publish(seeds, user)
    make_model(name="draft", title="Draft without versions")  # only its editors see it
    framework = first.framework
    page = client.get("/models/", {"framework": framework}).content.decode()
    results = page.split('aria-label="Results"')[1]
    assert "2 models" in results and results.count('href="/models/showers/"') == 1
    facets = page.split('aria-label="Filter by"')[1].split("</aside>")[0]
    assert f"{framework}</a> <span class=\"muted small\">(2)</span>" in facets
    assert "gan</a> <span class=\"muted small\">(1)</span>" in facets
    by_keyword = client.get("/models/", {"keyword": "gan"}).content.decode()
    assert "Shower GAN" in by_keyword and "Track seeder" not in by_keyword
    listed = api_client.get("/api/v1/models/", {"keyword": "tracking",
                                                 "framework": framework}).json()["results"]
    assert [m["name"] for m in listed] == ["seeds"]
