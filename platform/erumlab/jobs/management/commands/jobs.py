"""Operate on jobs from a shell: submit, reconcile, cancel, requeue."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from erumlab.accounts.models import User
from erumlab.jobs import services
from erumlab.jobs.models import Job, Template
from erumlab.jobs.parameters import ParameterError


class Command(BaseCommand):
    help = "Submit, reconcile, cancel or requeue batch jobs."

    def add_arguments(self, parser):  # noqa: ANN001
        sub = parser.add_subparsers(dest="action", required=True)
        submit = sub.add_parser("submit", help="queue a job")
        submit.add_argument("template", help="template slug (bundled, or the user's)")
        submit.add_argument("--user", required=True, help="owner's username")
        submit.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                            help="a parameter, parsed as in the web form")
        submit.add_argument("--queue")
        sub.add_parser("reconcile", help="re-dispatch jobs whose message or worker was lost")
        for name in ("cancel", "requeue"):
            action = sub.add_parser(name)
            action.add_argument("job_id")
            action.add_argument("--as", dest="actor", required=True, help="acting username")

    def handle(self, *args, action, **options):  # noqa: ANN001, ANN002, ANN003
        try:
            getattr(self, f"_{action}")(**options)
        except (ValidationError, ParameterError) as error:
            raise CommandError(str(error)) from error

    def _user(self, username: str) -> User:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        return user

    def _submit(self, *, template, user, param, queue, **_):  # noqa: ANN001, ANN003
        owner = self._user(user)
        found = Template.objects.filter(slug=template, is_active=True).filter(
            owner__isnull=True).first() or Template.objects.filter(
            slug=template, owner=owner, is_active=True).first()
        if found is None:
            raise CommandError(f"no template {template!r} for {user}")
        values = {}
        for item in param:
            name, sep, value = item.partition("=")
            if not sep:
                raise CommandError(f"--param {item!r}: expected NAME=VALUE")
            values[name] = value
        job = services.job_submit(owner=owner, template=found, parameters=values, queue=queue,
                                  from_form=True)
        self.stdout.write(str(job.pk))

    def _reconcile(self, **_):  # noqa: ANN003
        report = services.jobs_reconcile()
        self.stdout.write(f"requeued after worker loss: {len(report.requeued_lost)}; "
                          f"re-dispatched: {len(report.redispatched)}")

    def _job(self, job_id: str) -> Job:
        job = Job.objects.filter(pk=job_id).first()
        if job is None:
            raise CommandError(f"no job {job_id}")
        return job

    def _cancel(self, *, job_id, actor, **_):  # noqa: ANN001, ANN003
        services.job_cancel(job=self._job(job_id), actor=self._user(actor))

    def _requeue(self, *, job_id, actor, **_):  # noqa: ANN001, ANN003
        services.job_requeue(job=self._job(job_id), actor=self._user(actor))
