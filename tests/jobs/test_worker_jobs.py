"""Jobs on real Celery workers through the real broker (PostgreSQL and Redis on CI)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.urls import reverse

from erumlab.jobs import services
from erumlab.jobs.models import Job, Template
from erumlab.runtime.redis_server import redis_command, wait_for_redis
from erumlab.testing.processes import database_url
from tests.conftest import FAST_JOBS
from tests.jobs.conftest import notebook, wait_for, wait_for_state

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_job_runs_reports_progress_and_keeps_its_outputs(client, user, hello, start_worker):
    start_worker()
    job = services.job_submit(owner=user, template=hello,
                              parameters={"name": "Lise", "steps": 3, "pause": 0.3})
    seen = set()

    def progressed():
        job.refresh_from_db()
        seen.add(job.cells_done)
        return job.is_terminal

    wait_for(progressed, timeout=90, interval=0.05, what="the job to end")
    assert job.state == Job.State.SUCCEEDED, job.message + job.log
    assert len(seen - {0, job.cells_total}) >= 2, f"no intermediate progress seen: {seen}"
    assert job.progress_percent == 100
    assert "Hello, Lise!" in job.log and "step 3/3" in job.log
    assert job.wall_seconds > 0 and job.peak_memory_bytes > 10_000_000
    names = sorted(a.name for a in job.artifacts.all())
    assert names == ["squares.csv", "squares.png"]
    csv = job.artifacts.get(name="squares.csv")
    with default_storage.open(csv.storage_key) as handle:
        assert handle.read().decode().splitlines() == ["step,square", "0,0", "1,1", "2,4"]
    assert job.api_token is not None and not job.api_token.is_active  # revoked at the end

    client.force_login(user)
    page = client.get(reverse("jobs:detail", args=[job.pk]))
    assert b"squares.csv" in page.content and b'sandbox src=' in page.content
    html = client.get(reverse("jobs:output_html", args=[job.pk]))
    assert html["Content-Security-Policy"].startswith("default-src 'none'")
    assert b"Hello, Lise!" in html.content
    figure = client.get(reverse("jobs:figure", args=[job.pk, 0]))
    assert figure.content.startswith(b"\x89PNG")
    download = client.get(reverse("jobs:artifact", args=[job.pk, csv.pk]))
    assert download["Content-Disposition"].startswith('attachment; filename="squares.csv"')


def test_a_failing_cell_is_shown_with_its_exception(user, hello, start_worker):
    start_worker()
    job = services.job_submit(owner=user, template=hello,
                              parameters={"fail": True, "plot": False})
    wait_for_state(job, *Job.TERMINAL)
    assert job.state == Job.State.FAILED
    assert job.error["ename"] == "RuntimeError"
    assert "asked to fail after 3 steps" in job.error["evalue"]
    assert "raise RuntimeError" in job.error["source"]
    assert "RuntimeError in cell" in job.message
    assert job.output_notebook  # the output notebook is kept for failures too


def test_cancel_stops_the_kernel_of_a_running_job(user, slow_template, start_worker):
    start_worker()
    job = services.job_submit(owner=user, template=slow_template, parameters={"pause": 2.0})
    wait_for(lambda: Job.objects.get(pk=job.pk).cells_done >= 2, what="the job to run")
    services.job_cancel(job=job, actor=user)
    wait_for_state(job, *Job.TERMINAL, timeout=30)
    assert job.state == Job.State.CANCELLED
    assert job.cells_done < job.cells_total
    assert job.wall_seconds < 20


def test_the_wall_time_limit_ends_the_job_naming_the_limit(user, slow_template, start_worker):
    start_worker()
    job = services.job_submit(owner=user, template=slow_template, parameters={"pause": 1.0},
                              wall_time_limit=4)
    wait_for_state(job, *Job.TERMINAL, timeout=60)
    assert job.state == Job.State.FAILED
    assert "wall-time limit of 4 s" in job.message


def test_the_artifact_quota_ends_the_job_keeping_no_artifacts(user, start_worker, settings):
    settings.ERUMLAB_JOB_ARTIFACT_QUOTA_MB = 1
    template = services.template_save(
        content=notebook("open('big.bin', 'wb').write(b'0' * size)", parameters="size: int = 1"),
        slug="big", source=Template.Source.UPLOADED, owner=user)
    start_worker(ERUMLAB_JOB_ARTIFACT_QUOTA_MB="1")
    job = services.job_submit(owner=user, template=template, parameters={"size": 2_000_000})
    wait_for_state(job, *Job.TERMINAL)
    assert job.state == Job.State.FAILED
    assert "Artifact quota exceeded" in job.message and "2.0 MB" in job.message
    assert job.artifacts.count() == 0


def test_the_concurrency_limit_holds_jobs_in_the_queue_until_a_slot_frees(
        user, slow_template, start_worker, settings):
    settings.ERUMLAB_JOB_MAX_RUNNING_PER_USER = 1
    start_worker(concurrency="2", ERUMLAB_JOB_MAX_RUNNING_PER_USER="1")
    first = services.job_submit(owner=user, template=slow_template, parameters={"pause": 0.3})
    second = services.job_submit(owner=user, template=slow_template, parameters={"pause": 0.3})
    overlap = []

    def both_done():
        states = set(Job.objects.filter(pk__in=[first.pk, second.pk])
                     .values_list("state", flat=True))
        overlap.append(Job.objects.filter(owner=user, state=Job.State.RUNNING).count())
        return states == {Job.State.SUCCEEDED}

    wait_for(both_done, timeout=120, interval=0.1, what="both jobs to succeed")
    assert max(overlap) == 1
    first.refresh_from_db()
    second.refresh_from_db()
    later, earlier = sorted([first, second], key=lambda j: j.started_at, reverse=True)
    assert later.started_at >= earlier.finished_at


def test_a_job_survives_its_worker_being_killed(user, slow_template, start_worker):
    doomed = start_worker()
    job = services.job_submit(owner=user, template=slow_template, parameters={"pause": 0.5})
    wait_for(lambda: Job.objects.get(pk=job.pk).cells_done >= 3, what="the job to run")
    os.killpg(doomed.pid, signal.SIGKILL)  # the worker and its kernel, mid-job
    start_worker()
    # The heartbeat goes stale, the reconciler (beat, every 30 s in production) takes it back.
    wait_for(lambda: services.jobs_reconcile().requeued_lost, timeout=30,
             what="the reconciler to notice the lost worker")
    wait_for_state(job, *Job.TERMINAL, timeout=90)
    assert job.state == Job.State.SUCCEEDED, job.message
    assert job.attempts == 2
    assert "lost; job requeued" in job.log and "cell 11" in job.log


def test_queued_jobs_survive_a_redis_restart_that_lost_them(user, hello, tmp_path, start_worker):
    """The database is the truth: jobs queued in a Redis that restarted empty are re-sent."""
    socket = tmp_path / "r.sock"
    redis_url = f"unix://{socket}?db=0"
    argv = redis_command(socket_path=socket, data_dir=tmp_path / "redis")
    argv[argv.index("--appendonly") + 1] = "no"  # a restart loses everything
    env = {**os.environ, **FAST_JOBS, "REDIS_URL": redis_url,
           "DATABASE_URL": database_url(connection.settings_dict)}

    def manage(*args):
        return subprocess.run([sys.executable, "-m", "erumlab", "manage", "jobs", *args],
                              env=env, capture_output=True, text=True, timeout=120, check=True)

    redis = subprocess.Popen(argv)
    try:
        wait_for_redis(socket, process=redis)
        ids = [manage("submit", "hello", "--user", user.username, "--param", f"steps={n}",
                      "--param", "plot=false").stdout.strip() for n in (1, 2)]
        redis.terminate()
        redis.wait(timeout=10)
        redis = subprocess.Popen(argv)  # empty: the queued messages are gone
        wait_for_redis(socket, process=redis)
        # before the worker starts: its own reconcile at start-up would otherwise race this one
        # (under load it won, and this one found nothing left to re-send)
        assert "re-dispatched: 2" in manage("reconcile").stdout
        start_worker(REDIS_URL=redis_url)
        jobs = [wait_for_state(Job.objects.get(pk=pk), *Job.TERMINAL) for pk in ids]
        assert [job.state for job in jobs] == [Job.State.SUCCEEDED] * 2
    finally:
        redis.terminate()
        redis.wait(timeout=10)


def test_the_log_grows_while_a_long_cell_runs(user, start_worker):
    template = services.template_save(
        content=notebook("import time\nprint('first', flush=True)\ntime.sleep(pause)\n"
                         "print('second')", parameters="pause: float = 4.0"),
        slug="chatty", source=Template.Source.UPLOADED, owner=user)
    start_worker()
    job = services.job_submit(owner=user, template=template, parameters={})

    def first_printed_before_second():
        job.refresh_from_db()
        return "first" in job.log and "second" not in job.log and job.state == "running"

    wait_for(first_printed_before_second, timeout=60, interval=0.1,
             what="the first line to reach the log mid-cell")
    wait_for_state(job, *Job.TERMINAL)
    assert job.state == Job.State.SUCCEEDED and "second" in job.log


def test_a_notebook_uses_the_client_with_the_job_token_and_secrets_stay_out(
        live_server, user, start_worker):
    template = services.template_save(
        content=notebook(
            "import os\nfrom erumlab.client import Client\nme = Client().me()\n"
            "print('I am', me['username'], 'in job', os.environ['ERUMLAB_JOB_ID'])",
            "leaked = sorted(k for k in os.environ if k in ('SECRET_KEY', 'DATABASE_URL', "
            "'REDIS_URL', 'ERUMLAB_HUB_API_TOKEN', 'ERUMLAB_HUB_CLIENT_SECRET'))\n"
            "print('leaked:', leaked)",
            parameters="note: str = ''"),
        slug="whoami", source=Template.Source.UPLOADED, owner=user)
    start_worker(ERUMLAB_PORTAL_INTERNAL_URL=live_server.url, SECRET_KEY="worker-secret",
                 ERUMLAB_HUB_API_TOKEN="hub-secret")
    job = services.job_submit(owner=user, template=template, parameters={})
    wait_for_state(job, *Job.TERMINAL)
    assert job.state == Job.State.SUCCEEDED, job.message
    assert f"I am {user.username} in job {job.pk}" in job.log
    assert "leaked: []" in job.log


def test_the_client_submits_waits_and_downloads_artifacts(live_server, user, hello,
                                                          start_worker, tmp_path):
    from erumlab.accounts.services import api_token_issue
    from erumlab.client import Client
    from erumlab.client.jobs import JobFailed

    start_worker()
    client = Client(live_server.url, api_token_issue(user=user, name="t").secret)
    job = client.jobs.submit("hello", {"steps": 4, "plot": False})
    job.wait(timeout=90, poll=0.5)
    assert job.state == "succeeded"
    [artifact] = job.artifacts
    path = artifact.download(tmp_path)
    assert path.read_text().splitlines()[-1] == "3,9"
    assert job.download_output(tmp_path / "out.ipynb").stat().st_size > 1000

    failing = client.jobs.submit("hello", {"fail": True, "plot": False})
    with pytest.raises(JobFailed, match="asked to fail"):
        failing.wait(timeout=90, poll=0.5)
    rerun = failing.clone({"fail": False, "plot": False}).wait(timeout=90, poll=0.5)
    assert rerun.state == "succeeded" and rerun.data["cloned_from"] == failing.id
