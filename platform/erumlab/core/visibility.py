"""Who may read a shared object (a dataset, a model): one rule for every app.

Public objects are readable by anyone, internal ones by every logged-in user,
collaboration ones by the collaboration's members, private ones by their
owner; administrators read everything. Editors are owners and maintainers of
the object's collaboration.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from erumlab.accounts.models import Membership, User


class Visibility(models.TextChoices):
    PUBLIC = "public", "Public (anyone, also without an account)"
    INTERNAL = "internal", "All logged-in users"
    COLLABORATION = "collaboration", "Members of the collaboration"
    PRIVATE = "private", "Only me"


def readable_q(user: User, prefix: str = "") -> Q:
    """Objects whose visibility lets ``user`` read them (administrators aside)."""
    readable = Q(**{f"{prefix}visibility": Visibility.PUBLIC})
    if user.is_authenticated:
        member_of = Membership.objects.filter(user=user).values("collaboration")
        readable |= Q(**{f"{prefix}visibility": Visibility.INTERNAL})
        readable |= Q(**{f"{prefix}visibility": Visibility.COLLABORATION,
                         f"{prefix}collaboration__in": member_of})
        readable |= Q(**{f"{prefix}owner": user})
    return readable


def editor_q(user: User, prefix: str = "") -> Q:
    """Objects the user may change: owned, or of a collaboration they maintain."""
    maintained = Membership.objects.filter(user=user, role=Membership.Role.MAINTAINER)
    return (Q(**{f"{prefix}owner": user})
            | Q(**{f"{prefix}collaboration__in": maintained.values("collaboration")}))


def can_edit(user: User, obj: models.Model) -> bool:
    """Owners, maintainers of the object's collaboration and administrators."""
    if not user.is_authenticated:
        return False
    if user.is_superuser or obj.owner_id == user.pk:
        return True
    return obj.collaboration_id is not None and Membership.objects.filter(
        collaboration_id=obj.collaboration_id, user=user,
        role=Membership.Role.MAINTAINER).exists()


def check_collaboration(owner: User, visibility: str, collaboration) -> None:  # noqa: ANN001
    """A collaboration-visible object names a collaboration its owner belongs to."""
    from django.core.exceptions import ValidationError

    if visibility == Visibility.COLLABORATION and collaboration is None:
        raise ValidationError({"collaboration": "Choose the collaboration that may see it."})
    if collaboration is not None and not (
        owner.is_superuser
        or Membership.objects.filter(user=owner, collaboration=collaboration).exists()
    ):
        raise ValidationError({"collaboration": "You are not a member of that collaboration."})
