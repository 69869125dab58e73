"""Reads for jobs. Who may see a job or a template is decided here only."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from erumlab.accounts.models import User
from erumlab.jobs.models import Job, Template


def jobs_visible_to(user: User) -> QuerySet[Job]:
    """The owner, members of the collaboration a job is shared with, and administrators."""
    if not user.is_authenticated:
        return Job.objects.none()
    jobs = Job.objects.select_related("owner", "collaboration", "template")
    if user.is_superuser:
        return jobs
    return jobs.filter(
        Q(owner=user) | Q(collaboration__memberships__user=user)
    ).distinct()


def jobs_manageable_by(user: User) -> QuerySet[Job]:
    """Jobs the user may cancel or requeue: their own, or any for administrators."""
    if not user.is_authenticated:
        return Job.objects.none()
    if user.is_superuser:
        return Job.objects.all()
    return Job.objects.filter(owner=user)


def templates_visible_to(user: User) -> QuerySet[Template]:
    """Bundled templates for everyone signed in; uploaded ones for their owner."""
    if not user.is_authenticated:
        return Template.objects.none()
    return Template.objects.filter(is_active=True).filter(
        Q(owner__isnull=True) | Q(owner=user)
    )


def jobs_filtered(jobs: QuerySet[Job], *, user: User, scope: str = "",
                  state: str = "", template: str = "") -> QuerySet[Job]:
    if scope == "mine":
        jobs = jobs.filter(owner=user)
    elif scope == "collaborations":
        jobs = jobs.filter(collaboration__memberships__user=user).distinct()
    if state:
        jobs = jobs.filter(state=state)
    if template:
        jobs = jobs.filter(template__slug=template)
    return jobs


def running_count(owner_id: int) -> int:
    return Job.objects.filter(owner_id=owner_id, state=Job.State.RUNNING).count()


def job_for_token(token: object) -> Job | None:
    """The batch job a request's API token belongs to (for lineage), if any."""
    if token is None or not hasattr(token, "pk"):
        return None
    return Job.objects.filter(api_token=token).first()
