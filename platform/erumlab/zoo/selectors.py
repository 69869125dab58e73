"""Reads for the model zoo. Who may see a model, a version or a file is decided here only."""

from __future__ import annotations

from django.db.models import Exists, Max, OuterRef, QuerySet

from erumlab.accounts.models import User
from erumlab.core import search
from erumlab.core.search import facet_filter, text_search
from erumlab.core.visibility import editor_q, readable_q
from erumlab.zoo.models import Alias, Model, ModelFile, ModelVersion

LATEST = "latest"


def models_visible_to(user: User) -> QuerySet[Model]:
    """The catalogue's rule: public, internal, collaboration, private; a model with no
    version yet is seen only by those who may edit it."""
    models = Model.objects.select_related("owner", "collaboration")
    if user.is_authenticated and user.is_superuser:
        return models
    has_version = Exists(ModelVersion.objects.filter(model=OuterRef("pk")))
    if user.is_authenticated:
        return models.filter((readable_q(user) & has_version) | editor_q(user))
    return models.filter(readable_q(user) & has_version)


def versions_visible_to(user: User) -> QuerySet[ModelVersion]:
    """Versions of visible models (every version is published: none is a draft)."""
    return ModelVersion.objects.select_related("model", "produced_by", "parent__model").filter(
        model__in=models_visible_to(user))


def files_visible_to(user: User) -> QuerySet[ModelFile]:
    return ModelFile.objects.select_related("version__model").filter(
        version__model__in=models_visible_to(user))


def version_resolve(model: Model, *, number: int | None = None,
                    alias: str | None = None) -> ModelVersion | None:
    """A version by number, by alias, or the newest (the implicit ``latest`` alias)."""
    versions = model.versions.all()
    if number is not None:
        return versions.filter(number=number).first()
    if alias and alias != LATEST:
        found = Alias.objects.filter(model=model, name=alias).select_related("version").first()
        return found.version if found else None
    return versions.order_by("-number").first()


def lineage(user: User, version: ModelVersion) -> dict[str, object]:
    """Where a version came from and what came of it, limited to what the user may see."""
    visible = versions_visible_to(user)
    from erumlab.catalogue.selectors import datasets_visible_to

    parent = visible.filter(pk=version.parent_id).first() if version.parent_id else None
    return {
        "parent": parent,
        "derivatives": list(visible.filter(parent=version).order_by("model__name", "number")),
        "datasets": list(version.training_datasets.filter(
            dataset__in=datasets_visible_to(user)).select_related("dataset")),
        "job": version.produced_by,
    }


def models_search(models: QuerySet[Model], query: str) -> QuerySet[Model]:
    return text_search(models, query)


# facet -> the field its value is; in the order the list page shows them
FACET_FIELDS = {"task": "task", "domain": "domain", "framework": "versions__framework",
                "licence": "licence", "collaboration": "collaboration__slug",
                "keyword": "keywords"}
FACETS = tuple(FACET_FIELDS)


def models_filtered(models: QuerySet[Model], filters: dict[str, str]) -> QuerySet[Model]:
    return facet_filter(models, filters, FACET_FIELDS, many=("framework",))


def facet_counts(models: QuerySet[Model]) -> dict[str, list[tuple[str, int]]]:
    """For each facet, its values among ``models`` with how many models have each."""
    return search.facet_counts(models, FACET_FIELDS)


def with_latest_number(models: QuerySet[Model]) -> QuerySet[Model]:
    # An aggregate groups the query, and Django drops Meta.ordering from grouped
    # queries: order explicitly so that pages of the list are stable.
    return models.annotate(latest_number=Max("versions__number")).order_by("-updated_at", "pk")


def comparison(versions: list[ModelVersion]) -> tuple[list[str], list[list[object]]]:
    """Metric names (rows) against versions (columns): values or None where missing."""
    names: list[str] = []
    values: dict[tuple[int, str], float] = {}
    for version in versions:
        for metric in version.metrics.all():
            if metric.name not in names:
                names.append(metric.name)
            values[(version.pk, metric.name)] = metric.value
    rows = [[name, *[values.get((v.pk, name)) for v in versions]] for name in sorted(names)]
    return sorted(names), rows
