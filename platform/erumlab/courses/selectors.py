"""Who may see what in courses: students their own work, teachers their offerings'."""

from __future__ import annotations

from django.db.models import QuerySet

from erumlab.accounts.models import User
from erumlab.courses.models import Member, Offering, Release, Role, Submission

TEACHING = (Role.INSTRUCTOR, Role.TUTOR)


def role_in(offering: Offering, user: User) -> str | None:
    if not user.is_authenticated:
        return None
    member = Member.objects.filter(offering=offering, user=user).values_list("role", flat=True)
    role = member.first()
    if role is None and user.is_superuser:
        return Role.INSTRUCTOR
    return role


def can_teach(offering: Offering, user: User) -> bool:
    """Instructors and tutors: gradebook, submissions, overrides, extensions, CSV."""
    return role_in(offering, user) in TEACHING


def can_instruct(offering: Offering, user: User) -> bool:
    """Instructors only: releases and the offering's people."""
    return role_in(offering, user) == Role.INSTRUCTOR


def can_create_offerings(user: User) -> bool:
    return user.is_authenticated and user.has_perm("courses.create_offering")


def offerings_of(user: User) -> QuerySet[Offering]:
    if not user.is_authenticated:
        return Offering.objects.none()
    if user.is_superuser:
        return Offering.objects.select_related("course")
    return Offering.objects.filter(members__user=user).select_related("course").distinct()


def offerings_taught_by(user: User) -> QuerySet[Offering]:
    if not user.is_authenticated:
        return Offering.objects.none()
    if user.is_superuser:
        return Offering.objects.all()
    return Offering.objects.filter(members__user=user, members__role__in=TEACHING)


def releases_visible_to(offering: Offering, user: User) -> QuerySet[Release]:
    """Teachers see every release, students the opened ones, others none."""
    from django.utils import timezone

    role = role_in(offering, user)
    releases = offering.releases.select_related("lecture")
    if role in TEACHING:
        return releases
    if role == Role.STUDENT:
        return releases.filter(opens_at__lte=timezone.now())
    return releases.none()


def submissions_visible_to(user: User) -> QuerySet[Submission]:
    """A student's own submissions, plus every submission of offerings the user teaches."""
    from django.db.models import Q

    base = Submission.objects.select_related("release__lecture", "release__offering__course",
                                             "student")
    if not user.is_authenticated:
        return base.none()
    if user.is_superuser:
        return base
    return base.filter(
        Q(student=user) | Q(release__offering__in=offerings_taught_by(user))).distinct()
