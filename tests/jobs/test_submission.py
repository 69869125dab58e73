"""Submitting, claiming, cancelling and seeing jobs, without a worker."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from erumlab.jobs import services
from erumlab.jobs.models import Job, Template
from erumlab.jobs.parameters import ParameterError
from tests.factories import MembershipFactory, UserFactory
from tests.jobs.conftest import notebook

pytestmark = pytest.mark.django_db


def test_a_valid_submission_is_recorded_queued_with_a_snapshot(user, hello):
    job = services.job_submit(owner=user, template=hello, parameters={"steps": "2"},
                              from_form=True)
    assert job.state == Job.State.QUEUED
    assert job.parameters == {"steps": 2}
    assert job.template_hash == hello.content_hash
    assert job.input_notebook == hello.notebook
    assert job.wall_time_limit == 600  # from the template's metadata
    assert job.dispatch_token


def test_invalid_parameters_queue_nothing(user, hello):
    with pytest.raises(ParameterError):
        services.job_submit(owner=user, template=hello, parameters={"steps": "many"},
                            from_form=True)
    assert not Job.objects.exists()


def test_the_wall_time_limit_is_capped_by_the_site(user, hello, settings):
    settings.ERUMLAB_JOB_MAX_WALL_TIME = 100
    with pytest.raises(ValidationError, match="at most 100 s"):
        services.job_submit(owner=user, template=hello, parameters={}, wall_time_limit=101)
    assert not Job.objects.exists()


def test_an_unknown_queue_is_refused(user, hello):
    with pytest.raises(ValidationError, match="unknown queue"):
        services.job_submit(owner=user, template=hello, parameters={}, queue="fast")


def test_jobs_are_shared_only_with_the_owners_collaborations(user, hello):
    foreign = MembershipFactory().collaboration
    with pytest.raises(ValidationError, match="only with your collaborations"):
        services.job_submit(owner=user, template=hello, parameters={}, collaboration=foreign)


def test_a_message_with_a_stale_token_is_dropped(user, hello):
    job = services.job_submit(owner=user, template=hello, parameters={})
    assert services.job_claim(job_id=str(job.pk), token="old", worker="w") == services.Claim.DROP
    assert services.job_claim(job_id=str(job.pk), token=job.dispatch_token,
                              worker="w") == services.Claim.RUN
    job.refresh_from_db()
    assert (job.state, job.attempts, job.worker) == (Job.State.RUNNING, 1, "w")


def test_over_the_concurrency_limit_a_job_waits_in_the_queue(user, hello, settings):
    settings.ERUMLAB_JOB_MAX_RUNNING_PER_USER = 1
    first = services.job_submit(owner=user, template=hello, parameters={})
    second = services.job_submit(owner=user, template=hello, parameters={})
    assert services.job_claim(job_id=str(first.pk), token=first.dispatch_token,
                              worker="w") == services.Claim.RUN
    assert services.job_claim(job_id=str(second.pk), token=second.dispatch_token,
                              worker="w") == services.Claim.WAIT
    second.refresh_from_db()
    assert second.state == Job.State.QUEUED
    other = services.job_submit(owner=UserFactory(), template=hello, parameters={})
    assert services.job_claim(job_id=str(other.pk), token=other.dispatch_token,
                              worker="w") == services.Claim.RUN


def test_a_running_job_with_a_live_heartbeat_is_not_taken_twice(user, hello):
    job = services.job_submit(owner=user, template=hello, parameters={})
    services.job_claim(job_id=str(job.pk), token=job.dispatch_token, worker="a")
    assert services.job_claim(job_id=str(job.pk), token=job.dispatch_token,
                              worker="b") == services.Claim.WAIT


def test_a_job_that_lost_its_worker_too_often_fails_saying_so(user, hello, settings):
    settings.ERUMLAB_JOB_MAX_ATTEMPTS = 2
    job = services.job_submit(owner=user, template=hello, parameters={})
    Job.objects.filter(pk=job.pk).update(attempts=2)
    assert services.job_claim(job_id=str(job.pk), token=job.dispatch_token,
                              worker="w") == services.Claim.DROP
    job.refresh_from_db()
    assert job.state == Job.State.FAILED
    assert "lost 2 times" in job.message


def test_the_reconciler_requeues_a_running_job_whose_heartbeat_stopped(user, hello, settings):
    job = services.job_submit(owner=user, template=hello, parameters={})
    services.job_claim(job_id=str(job.pk), token=job.dispatch_token, worker="dead")
    Job.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(seconds=settings.ERUMLAB_JOB_STALE_AFTER + 1))
    report = services.jobs_reconcile()
    assert report.requeued_lost == [str(job.pk)]
    job.refresh_from_db()
    assert job.state == Job.State.QUEUED
    assert "worker dead lost" in job.log


def test_cancelling_a_queued_job_ends_it_at_once(user, hello):
    job = services.job_submit(owner=user, template=hello, parameters={})
    services.job_cancel(job=job, actor=user)
    job.refresh_from_db()
    assert job.state == Job.State.CANCELLED
    assert services.job_claim(job_id=str(job.pk), token=job.dispatch_token,
                              worker="w") == services.Claim.DROP


def test_nobody_else_cancels_a_job(user, other_user, hello):
    job = services.job_submit(owner=user, template=hello, parameters={})
    with pytest.raises(PermissionDenied):
        services.job_cancel(job=job, actor=other_user)


def test_uploaded_templates_are_private_and_validated(client, user, other_user):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(user)
    bad = client.post(reverse("jobs:templates"), {
        "notebook": SimpleUploadedFile("bad.ipynb", notebook("print(1)").encode())})
    assert b"no cell tagged" in bad.content
    good = client.post(reverse("jobs:templates"), {
        "notebook": SimpleUploadedFile("My Analysis.ipynb",
                                       notebook("print(x)", parameters="x: int = 1").encode())})
    template = Template.objects.get(owner=user)
    assert good.status_code == 302
    assert template.slug == "my-analysis"
    client.force_login(other_user)
    assert client.get(reverse("jobs:submit", args=[template.pk])).status_code == 404


class TestVisibility:
    """Only the owner, the collaboration it is shared with, and admins see a job."""

    @pytest.fixture
    def job(self, user, hello):
        return services.job_submit(owner=user, template=hello, parameters={})

    def test_another_user_gets_404_on_the_web(self, client, other_user, job):
        client.force_login(other_user)
        for name in ("jobs:detail", "jobs:live", "jobs:output_html", "jobs:output_notebook"):
            assert client.get(reverse(name, args=[job.pk])).status_code == 404, name
        assert client.post(reverse("jobs:cancel", args=[job.pk])).status_code == 404
        job.refresh_from_db()
        assert job.state == Job.State.QUEUED

    def test_another_user_gets_404_through_the_api(self, api_client, other_user, job):
        api_client.force_authenticate(other_user)
        assert api_client.get(f"/api/v1/jobs/{job.pk}/").status_code == 404
        assert api_client.post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 404
        assert api_client.get("/api/v1/jobs/").json()["results"] == []

    def test_collaboration_members_see_a_shared_job_but_cannot_cancel_it(
            self, api_client, user, other_user, hello):
        collaboration = MembershipFactory(user=user).collaboration
        MembershipFactory(user=other_user, collaboration=collaboration)
        job = services.job_submit(owner=user, template=hello, parameters={},
                                  collaboration=collaboration)
        api_client.force_authenticate(other_user)
        assert api_client.get(f"/api/v1/jobs/{job.pk}/").status_code == 200
        listed = api_client.get("/api/v1/jobs/", {"scope": "collaborations"}).json()["results"]
        assert [j["id"] for j in listed] == [str(job.pk)]
        assert api_client.post(f"/api/v1/jobs/{job.pk}/cancel/").status_code == 403

    def test_administrators_see_every_job(self, client, admin_user, job):
        client.force_login(admin_user)
        assert client.get(reverse("jobs:detail", args=[job.pk])).status_code == 200


def test_the_api_names_bad_parameters_and_queues_nothing(api_client, user, hello):
    api_client.force_authenticate(user)
    response = api_client.post("/api/v1/jobs/", {"template": "hello",
                                                 "parameters": {"steps": "3", "epochs": 1}},
                               format="json")
    assert response.status_code == 400
    assert set(response.json()["parameters"]) == {"steps", "epochs"}
    assert not Job.objects.exists()


def test_the_web_form_shows_errors_on_the_field(client, user, hello):
    client.force_login(user)
    response = client.post(reverse("jobs:submit", args=[hello.pk]),
                           {"param_steps": "lots", "param_name": "x", "queue": "default"})
    assert response.status_code == 200
    assert b"expected an integer" in response.content
    assert not Job.objects.exists()


def test_the_queues_page_is_for_staff(client, user, admin_user, hello):
    services.job_submit(owner=user, template=hello, parameters={})
    client.force_login(user)
    assert client.get(reverse("jobs:queues")).status_code == 302
    client.force_login(admin_user)
    page = client.get(reverse("jobs:queues"))
    assert page.status_code == 200
    assert b"1 waiting" in page.content


def test_importing_from_a_server_that_is_not_running_says_so(client, user, settings):
    from erumlab.testing.processes import free_port

    settings.ERUMLAB_HUB_PROXY_URL = f"http://127.0.0.1:{free_port()}"
    client.force_login(user)
    response = client.post(reverse("jobs:templates"),
                           {"source": "server", "path": "analysis.ipynb"})
    assert response.status_code == 200
    assert b"not reachable" in response.content
    assert not Template.objects.filter(owner=user).exists()


@pytest.mark.parametrize("path", ["../../etc/passwd.ipynb", "notes.txt"])
def test_server_paths_must_name_a_notebook_inside_the_home(client, user, path):
    client.force_login(user)
    response = client.post(reverse("jobs:templates"), {"source": "server", "path": path})
    assert b".ipynb file inside your home folder" in response.content


def test_administrators_requeue_a_stuck_job_with_a_fresh_token(client, user, admin_user, hello):
    job = services.job_submit(owner=user, template=hello, parameters={})
    old_token = job.dispatch_token
    with pytest.raises(PermissionDenied):
        services.job_requeue(job=job, actor=user)
    client.force_login(admin_user)
    response = client.post(reverse("jobs:requeue", args=[job.pk]), {"next": "https://evil.example"})
    assert response["Location"] == reverse("jobs:queues")
    job.refresh_from_db()
    assert job.dispatch_token != old_token and job.state == Job.State.QUEUED
    assert "requeued by" in job.log


def test_the_job_list_filters_by_state_and_template(client, user, hello, slow_template):
    queued = services.job_submit(owner=user, template=hello, parameters={})
    slow = services.job_submit(owner=user, template=slow_template, parameters={})
    services.job_cancel(job=slow, actor=user)
    client.force_login(user)
    by_state = client.get(reverse("jobs:list"), {"state": "cancelled"}).content.decode()
    assert slow.short_id in by_state and queued.short_id not in by_state
    by_template = client.get(reverse("jobs:list"), {"template": "hello"}).content.decode()
    assert queued.short_id in by_template and slow.short_id not in by_template


def test_the_job_lists_pager_keeps_the_filters(client, user, hello):
    jobs = [services.job_submit(owner=user, template=hello, parameters={}) for _ in range(26)]
    client.force_login(user)
    page = client.get(reverse("jobs:list"), {"state": "queued", "template": "hello"}).content.decode()
    following = page.split('aria-label="Pages"')[1].split("</nav>")[0]
    link = following.split('href="')[1].split('"')[0].replace("&amp;", "&")
    assert link == "?state=queued&template=hello&page=2"
    second = client.get(reverse("jobs:list") + link).content.decode()
    assert "Page 2 of 2" in second and jobs[0].short_id in second
