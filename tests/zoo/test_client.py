"""erumlab.client.models against a live portal and real workers: publish, load, convert,
and the issue's whole story — a model fine-tuned in a job comes back with its lineage."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from erumlab.accounts.services import api_token_issue
from erumlab.client import Client
from erumlab.client.api import ApiError
from erumlab.zoo.models import Conversion, Model, ModelVersion
from tests.jobs.conftest import wait_for_state
from tests.zoo.conftest import CONFIG, SIGNATURE, tagger

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _own_media():
    """Workers are separate processes: they and the live server share the suite's data dir."""


@pytest.fixture
def portal(live_server, user, tmp_path, monkeypatch) -> Client:
    monkeypatch.setenv("ERUMLAB_CACHE_DIR", str(tmp_path / "cache"))
    return Client(live_server.url, api_token_issue(user=user, name="t").secret)


PRIVATE_JETS = {"task": "classification", "domain": "jets", "visibility": "private"}


def test_publish_from_the_client_and_load_back_bit_identically(portal, tmp_path):
    module = tagger(seed=3)
    record = portal.models.publish(
        module, name="jet-tagger", signature=SIGNATURE, card="# Jet tagger\nFive classes.",
        metrics={"auc": 0.94}, aliases=["production"], create=PRIVATE_JETS,
        example_input={"features": torch.randn(4, 16)})
    assert record["identifier"] == "erumlab:models/jet-tagger.v1"
    assert record["parameter_count"] == 4389

    loaded = portal.models.load("jet-tagger", alias="production")
    assert isinstance(loaded, torch.nn.Module) and not loaded.training
    expected, actual = module.state_dict(), loaded.state_dict()
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[k], actual[k]) for k in expected)
    x = torch.randn(32, 16)
    assert torch.equal(loaded(x), module.eval()(x))
    example = portal.models.example_input("jet-tagger@1")
    assert example["features"].shape == (4, 16)

    # Loaded again (by name@alias), the weights come from the cache, not the network.
    weights = tmp_path / "cache" / "models" / "jet-tagger" / "v1"
    [cached] = [p for p in weights.iterdir() if p.suffix == ".safetensors" and "example" not in
                p.name]
    stamp = cached.stat().st_mtime_ns
    again = portal.models.load("jet-tagger@production")
    assert cached.stat().st_mtime_ns == stamp
    assert torch.equal(again(x), loaded(x))

    # A fine-tuned copy remembers where it came from.
    with torch.no_grad():
        next(loaded.parameters()).add_(0.01)
    second = portal.models.publish(loaded, name="jet-tagger", signature=SIGNATURE,
                                   changelog="nudged")
    assert second["number"] == 2 and second["parent"] == record["identifier"]
    with pytest.raises(ValueError, match="either after @ or as an argument"):
        portal.models.load("jet-tagger@1", version=2)


def test_onnx_publish_and_run_through_the_client(portal, tmp_path):
    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Linear(16, 8), torch.nn.ReLU(),
                                  torch.nn.Linear(8, 3)).eval()
    path = tmp_path / "tagger.onnx"
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter needs no onnxscript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(network, (torch.zeros(1, 16),), buffer, input_names=["features"],
                          output_names=["scores"], dynamic_axes={"features": {0: "batch"},
                                                                 "scores": {0: "batch"}},
                          dynamo=False)
    path.write_bytes(buffer.getvalue())
    record = portal.models.publish(path, name="onnx-tagger", create=PRIVATE_JETS)
    assert record["format"] == "onnx" and record["framework"] == "onnx"
    assert record["signature"]["inputs"][0]["shape"] == [None, 16]

    session = portal.models.load("onnx-tagger")
    x = np.random.default_rng(1).normal(size=(5, 16)).astype(np.float32)
    [scores] = session.run(None, {"features": x})
    with torch.no_grad():
        reference = network(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(scores, reference, rtol=1e-5, atol=1e-6)


def test_a_state_dict_is_converted_by_a_worker_and_a_bad_one_leaves_nothing(
        portal, user, tmp_path, start_worker):  # noqa: F811
    start_worker()
    module = tagger(seed=5)
    state = tmp_path / "tagger.pt"
    torch.save(module.state_dict(), state)
    record = portal.models.publish(state, name="converted", architecture="mlp", config=CONFIG,
                                   signature=SIGNATURE, create=PRIVATE_JETS, wait=90)
    assert record["format"] == "safetensors" and record["number"] == 1
    loaded = portal.models.load("converted")
    assert all(torch.equal(module.state_dict()[k], v) for k, v in loaded.state_dict().items())

    wrong = tmp_path / "wrong.pt"
    torch.save({"not": torch.zeros(2)}, wrong)
    from erumlab.client.models import PublishFailed

    with pytest.raises(PublishFailed, match="(?i)state dict|missing|unexpected"):
        portal.models.publish(wrong, name="converted", architecture="mlp", config=CONFIG,
                              signature=SIGNATURE, wait=90)
    assert ModelVersion.objects.filter(model__name="converted").count() == 1
    assert Conversion.objects.filter(state=Conversion.State.FAILED).count() == 1


def test_pickles_are_refused_before_any_upload_reaches_storage(portal, tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(ApiError) as refused:
        portal.models.publish(path, name="pickled", create=PRIVATE_JETS)
    assert refused.value.status == 400 and "pickle" in str(refused.value.detail).lower()
    assert not ModelVersion.objects.filter(model__name="pickled").exists()


def _seed(admin) -> None:
    from django.conf import settings

    from erumlab.jobs.services import templates_sync_bundled
    from erumlab.zoo.seeding import seed_models

    templates_sync_bundled(folder=Path(settings.ERUMLAB_TEMPLATES_DIR))
    assert [s.outcome for s in seed_models()] == ["published v1"]


@pytest.mark.slow
def test_a_model_fine_tuned_in_a_job_comes_back_with_its_lineage(
        live_server, admin_user, user, client, start_worker):  # noqa: F811
    """The issue's story: the shipped model, "Fine-tune in a job", a new version with lineage."""
    from django.urls import reverse

    from erumlab.jobs import services as jobs
    from erumlab.jobs.models import Job

    _seed(admin_user)
    base = ModelVersion.objects.get(model__name="ising-phase-classifier", number=1)
    client.force_login(user)
    page = client.get(reverse("zoo:model", args=["ising-phase-classifier"]))
    template = base.model.finetune_template
    link = reverse("jobs:submit", args=[template.pk]) + \
        "?base_model=ising-phase-classifier@1"
    assert link in page.content.decode().replace("&amp;", "&")
    form = client.get(link)
    assert b'value="ising-phase-classifier@1"' in form.content

    start_worker(ERUMLAB_PORTAL_INTERNAL_URL=live_server.url)
    job = jobs.job_submit(owner=user, template=template, parameters={
        "base_model": "ising-phase-classifier@1", "epochs": 1, "temperatures": 6,
        "per_temperature": 8, "test_temperatures": 6, "test_per_temperature": 4, "seed": 2})
    wait_for_state(job, *Job.TERMINAL, timeout=240)
    assert job.state == Job.State.SUCCEEDED, job.message + job.log

    # The user may not publish into the administrator's model: their own copy gets it.
    derived = ModelVersion.objects.get(model__name=f"ising-phase-classifier-{user.username}")
    assert derived.model.owner == user and derived.model.visibility == "private"
    assert derived.parent == base and derived.produced_by == job
    assert {m.name for m in derived.metrics.all()} >= {"accuracy", "roc_auc"}
    assert "Fine-tuned from `erumlab:models/ising-phase-classifier.v1`" in derived.card
    assert derived.example_input is not None
    assert sorted(a.name for a in job.artifacts.all()) == ["metrics.json", "phase_curve.png"]
    # Lineage both ways, each seen by whom it may be.
    mine = client.get(reverse("zoo:model", args=[derived.model.name])).content.decode()
    assert "ising-phase-classifier.v1" in mine and str(job.pk) in mine
    theirs = client.get(reverse("zoo:model", args=["ising-phase-classifier"])).content.decode()
    assert derived.identifier in theirs
    client.logout()
    anonymous = client.get(reverse("zoo:model", args=["ising-phase-classifier"]))
    assert derived.identifier not in anonymous.content.decode()  # private stays private


def test_the_shipped_model_is_published_once_and_classifies_fresh_samples(admin_user):
    from erumlab.science import ising
    from erumlab.zoo import seeding

    _seed(admin_user)
    assert [s.outcome for s in seeding.seed_models()] == ["up to date"]
    model = Model.objects.get(name="ising-phase-classifier")
    assert model.visibility == "public" and model.finetune_template.slug == "ising-finetune"
    version = model.versions.get()
    assert [a.name for a in version.aliases.all()] == ["production"]
    assert version.example_input is not None and version.parameter_count > 1000

    from erumlab.core.storage import local_path
    from erumlab.science import modelio

    with local_path(version.weights) as path:
        network = modelio.load_weights(path, version.architecture, version.config)
    spins, temperatures = ising.sample(16, [1.2, 1.6, 3.2, 3.8], 16, seed=7)
    predicted = ising.predict(network, spins) >= 0.5
    assert np.mean(predicted == (temperatures < ising.T_CRITICAL)) > 0.95


def test_a_bundled_name_taken_by_a_user_is_left_alone(admin_user, user):
    from erumlab.zoo import seeding, services

    services.model_create(owner=user, title="Mine", name="ising-phase-classifier")
    [seeded] = seeding.seed_models()
    assert seeded.outcome.startswith("skipped") and user.username in seeded.outcome
    assert not ModelVersion.objects.exists()
