"""The bundled examples run as batch jobs, with small parameters, on a real worker, and
feed the platform: the jet tagger publishes its float and fixed-point networks to the zoo
and registers its jets, the shower GAN publishes its generator and registers its showers,
track seeding registers its events, each with the job as their producer; information field
theory writes its report."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings as django_settings

from erumlab.catalogue.models import Dataset
from erumlab.jobs import services
from erumlab.jobs.models import Job, Template
from erumlab.zoo.models import ModelVersion
from tests.jobs.conftest import wait_for_state

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def bundled(db):
    services.templates_sync_bundled(folder=Path(django_settings.ERUMLAB_TEMPLATES_DIR))
    return lambda slug: Template.objects.get(slug=slug, owner__isnull=True)


def test_the_jet_tagger_job_publishes_both_networks_and_registers_its_jets(
        live_server, user, bundled, start_worker, tmp_path):
    start_worker(ERUMLAB_PORTAL_INTERNAL_URL=live_server.url,
                 ERUMLAB_CACHE_DIR=str(tmp_path / "cache"))
    job = services.job_submit(owner=user, template=bundled("jet-tagger"), parameters={
        "jets_per_class": 30, "epochs": 2, "precisions": ["ap_fixed<8,3>"], "pruning_steps": 1,
        "pruning_epochs": 1, "qat_epochs": 1, "use_hls4ml": False})
    wait_for_state(job, *Job.TERMINAL, timeout=600)
    assert job.state == Job.State.SUCCEEDED, job.message + job.log[-3000:]

    for name in ("jet-tagger-float", "jet-tagger-ap-fixed-16-6"):
        version = ModelVersion.objects.get(model__name=name)
        assert version.produced_by == job and version.model.owner == user
        assert {m.name for m in version.metrics.all()} >= {"accuracy"}
        assert version.card.strip()
    dataset = Dataset.objects.get(slug="jet-tagger-jets")
    assert dataset.owner == user and dataset.versions.filter(produced_by=job).exists()
    assert {"metrics.json", "roc.png"} <= {a.name for a in job.artifacts.all()}


def test_the_track_seeding_job_registers_its_events_as_a_published_dataset(
        live_server, user, bundled, start_worker, tmp_path):
    start_worker(ERUMLAB_PORTAL_INTERNAL_URL=live_server.url,
                 ERUMLAB_CACHE_DIR=str(tmp_path / "cache"))
    job = services.job_submit(owner=user, template=bundled("tracking"), parameters={
        "pileups": "0,10", "events": 2, "display_pileup": 10})
    wait_for_state(job, *Job.TERMINAL, timeout=600)
    assert job.state == Job.State.SUCCEEDED, job.message + job.log[-3000:]

    dataset = Dataset.objects.get(owner=user, slug__startswith="tracking-events-")
    version = dataset.versions.get(produced_by=job)
    assert version.state == "published" and version.identifier
    assert version.files.count() == 2  # one file of events per pileup
    assert {"metrics.json", "event_display.png"} <= {a.name for a in job.artifacts.all()}


def test_the_information_field_theory_job_shows_all_three_scenarios(
        live_server, user, bundled, start_worker):
    start_worker(ERUMLAB_PORTAL_INTERNAL_URL=live_server.url)
    job = services.job_submit(owner=user, template=bundled("ift"), parameters={
        "size_1d": 128, "size_2d": 32, "samples": 30, "spectrum_iterations": 3,
        "spectrum_samples": 2, "spectrum_bins": 8, "poisson_size": 32, "poisson_samples": 4,
        "mgvi_iterations": 1, "compare_nifty": False})
    wait_for_state(job, *Job.TERMINAL, timeout=600)
    assert job.state == Job.State.SUCCEEDED, job.message + job.log[-3000:]
    assert {"wiener_1d.png", "wiener_2d.png", "power_spectrum.png", "spectrum_field.png",
            "poisson.png", "metrics.json"} <= {a.name for a in job.artifacts.all()}


def test_the_shower_gan_job_publishes_its_generator_with_lineage_to_its_showers(
        live_server, user, bundled, start_worker, tmp_path):
    start_worker(ERUMLAB_PORTAL_INTERNAL_URL=live_server.url,
                 ERUMLAB_CACHE_DIR=str(tmp_path / "cache"))
    job = services.job_submit(owner=user, template=bundled("calo-wgan"), parameters={
        "train_energies": "20,40", "held_out_energy": 30.0, "showers_per_energy": 24,
        "iterations": 3, "batch_size": 16, "classifier_epochs": 2, "speed_showers": 8})
    wait_for_state(job, *Job.TERMINAL, timeout=600)
    assert job.state == Job.State.SUCCEEDED, job.message + job.log[-3000:]

    version = ModelVersion.objects.get(model__name="calo-wgan")
    assert version.produced_by == job and version.model.owner == user
    assert version.card.strip() and version.metrics.exists()
    # the template's default generator: the flow's layer energies and hit counts, the basis,
    # the hits' fluctuating shares and MIP's floor, the wandering axis with its learnt spread,
    # the low-rank cell head
    assert version.config["flow_hits"] and version.config["layer_flow"]
    assert version.config["lateral_basis"] and not version.config["sparse_gate"]
    assert version.config["share_noise"] and version.config["axis_shift"]
    assert version.config["axis_gain"] > 0 and version.config["hit_floor_mev"] > 0.042
    assert version.config["cell_rank"] == 128
    showers = Dataset.objects.get(slug="calo-wgan-showers")
    assert showers.versions.filter(produced_by=job).exists()
    assert {"metrics.json", "speedup.png"} <= {a.name for a in job.artifacts.all()}
