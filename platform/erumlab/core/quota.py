"""Storage quotas: one budget per user (own objects) and per collaboration.

Dataset files, open uploads, model files and pending model conversions all
count; bytes shared between versions (one stored object) count once.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q, Sum

from erumlab.accounts.models import Collaboration, User


def _scope(prefix: str, user: User | None, collaboration: Collaboration | None) -> Q:
    if collaboration is not None:
        return Q(**{f"{prefix}collaboration": collaboration})
    return Q(**{f"{prefix}owner": user, f"{prefix}collaboration__isnull": True})


def usage_bytes(*, user: User | None = None, collaboration: Collaboration | None = None) -> int:
    from erumlab.catalogue.models import DatasetFile, Upload
    from erumlab.zoo.models import Conversion, ModelFile

    stored = 0
    for files, prefix in ((DatasetFile.objects, "version__dataset__"),
                          (ModelFile.objects, "version__model__")):
        rows = files.filter(_scope(prefix, user, collaboration)).values_list(
            "storage_key", "size").distinct()
        stored += sum(size for _, size in rows)
    pending = 0
    for rows, prefix in ((Upload.objects, "version__dataset__"),
                         (Conversion.objects.filter(state="pending"), "model__")):
        pending += rows.filter(_scope(prefix, user, collaboration)).aggregate(
            total=Sum("size"))["total"] or 0
    return stored + pending


def check_quota(*, owner: User, collaboration: Collaboration | None, size: int) -> None:
    """Refuse ``size`` more bytes, before they are stored, if the budget would overflow."""
    if collaboration is not None:
        limit = settings.ERUMLAB_QUOTA_COLLABORATION_BYTES
        used = usage_bytes(collaboration=collaboration)
        whose = f"collaboration {collaboration.slug}"
    else:
        limit = settings.ERUMLAB_QUOTA_USER_BYTES
        used = usage_bytes(user=owner)
        whose = f"user {owner.username}"
    if used + size > limit:
        raise ValidationError(
            {"size": f"Over quota: {whose} uses {used / 1e9:.3f} GB of {limit / 1e9:.3f} GB; "
                     f"this file needs {size / 1e9:.3f} GB more."})
