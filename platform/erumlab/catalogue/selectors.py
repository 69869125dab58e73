"""Reads for the catalogue. Who may see a dataset, a version or a file is decided here only."""

from __future__ import annotations

from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from erumlab.accounts.models import User
from erumlab.catalogue.models import Dataset, DatasetFile, DatasetVersion
from erumlab.core.search import text_search
from erumlab.core.visibility import editor_q, readable_q


def _editor_q(user: User, prefix: str = "") -> Q:
    """Datasets the user may edit: owned, or of a collaboration they maintain."""
    return editor_q(user, prefix)


def datasets_visible_to(user: User) -> QuerySet[Dataset]:
    """Public datasets for everyone; internal ones for users; collaboration ones for
    members; private ones for the owner; everything for administrators. A dataset
    with no published version is seen only by those who may edit it."""
    datasets = Dataset.objects.select_related("owner", "collaboration")
    if user.is_authenticated and user.is_superuser:
        return datasets
    published = DatasetVersion.objects.filter(dataset=OuterRef("pk"),
                                              state=DatasetVersion.State.PUBLISHED)
    readable = readable_q(user)
    if user.is_authenticated:
        return datasets.filter((readable & Exists(published)) | _editor_q(user))
    return datasets.filter(readable & Exists(published))


def versions_visible_to(user: User, dataset: Dataset) -> QuerySet[DatasetVersion]:
    """Published versions of a visible dataset; drafts only for its editors."""
    from erumlab.catalogue.services import can_edit

    versions = dataset.versions.all()
    if can_edit(user, dataset):
        return versions
    return versions.filter(state=DatasetVersion.State.PUBLISHED)


def latest_version(user: User, dataset: Dataset) -> DatasetVersion | None:
    versions = versions_visible_to(user, dataset)
    return (versions.filter(state=DatasetVersion.State.PUBLISHED).order_by("-number").first()
            or versions.order_by("-number").first())


def files_visible_to(user: User) -> QuerySet[DatasetFile]:
    """Files of versions the user may see (through the dataset selector)."""
    files = DatasetFile.objects.select_related("version__dataset").filter(
        version__dataset__in=datasets_visible_to(user))
    if user.is_authenticated and user.is_superuser:
        return files
    published = Q(version__state=DatasetVersion.State.PUBLISHED)
    if not user.is_authenticated:
        return files.filter(published)
    return files.filter(published | _editor_q(user, prefix="version__dataset__"))


def datasets_search(datasets: QuerySet[Dataset], query: str) -> QuerySet[Dataset]:
    """Full-text search: PostgreSQL's text search when available, word matching on SQLite."""
    return text_search(datasets, query)


FACETS = ("experiment", "data_level", "format", "licence", "keyword", "collaboration")


def datasets_filtered(datasets: QuerySet[Dataset], filters: dict[str, str]) -> QuerySet[Dataset]:
    if filters.get("experiment"):
        datasets = datasets.filter(experiment=filters["experiment"])
    if filters.get("data_level"):
        datasets = datasets.filter(data_level=filters["data_level"])
    if filters.get("licence"):
        datasets = datasets.filter(licence=filters["licence"])
    if filters.get("collaboration"):
        datasets = datasets.filter(collaboration__slug=filters["collaboration"])
    if filters.get("format"):
        datasets = datasets.filter(versions__files__format=filters["format"]).distinct()
    if filters.get("keyword"):
        datasets = datasets.filter(keywords__contains=[filters["keyword"]]) \
            if connection.vendor == "postgresql" else datasets.filter(
                keywords__icontains=f'"{filters["keyword"]}"')
    return datasets


def facet_counts(datasets: QuerySet[Dataset]) -> dict[str, list[tuple[str, int]]]:
    """For each facet, its values among ``datasets`` with how many datasets have each."""
    ids = datasets.values("pk")
    base = Dataset.objects.filter(pk__in=ids)

    def count(field: str) -> list[tuple[str, int]]:
        rows = (base.exclude(**{f"{field}__isnull": True}).values_list(field)
                .annotate(n=Count("pk", distinct=True)).order_by("-n", field))
        return [(value, n) for value, n in rows if value not in ("", None)]

    keywords: dict[str, int] = {}
    for words in base.values_list("keywords", flat=True):
        for word in set(words or []):
            keywords[word] = keywords.get(word, 0) + 1
    return {
        "experiment": count("experiment"),
        "data_level": count("data_level"),
        "licence": count("licence"),
        "collaboration": count("collaboration__slug"),
        "format": count("versions__files__format"),
        "keyword": sorted(keywords.items(), key=lambda item: (-item[1], item[0]))[:30],
    }
