"""Reads for the catalogue. Who may see a dataset, a version or a file is decided here only."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from erumlab.accounts.models import User
from erumlab.catalogue.models import Dataset, DatasetFile, DatasetVersion
from erumlab.core import search
from erumlab.core.search import facet_filter, text_search
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


# facet -> the field its value is; in the order the list page shows them
FACET_FIELDS = {"experiment": "experiment", "data_level": "data_level", "licence": "licence",
                "collaboration": "collaboration__slug", "format": "versions__files__format",
                "keyword": "keywords"}
FACETS = tuple(FACET_FIELDS)


def datasets_filtered(datasets: QuerySet[Dataset], filters: dict[str, str]) -> QuerySet[Dataset]:
    return facet_filter(datasets, filters, FACET_FIELDS, many=("format",))


def facet_counts(datasets: QuerySet[Dataset]) -> dict[str, list[tuple[str, int]]]:
    """For each facet, its values among ``datasets`` with how many datasets have each."""
    return search.facet_counts(datasets, FACET_FIELDS)
