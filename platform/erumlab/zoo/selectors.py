"""Reads for the model zoo. Who may see a model, a version or a file is decided here only."""

from __future__ import annotations

from django.db import connection
from django.db.models import Count, Exists, Max, OuterRef, QuerySet

from erumlab.accounts.models import User
from erumlab.core.search import text_search
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


FACETS = ("task", "domain", "framework", "licence", "keyword", "collaboration")


def models_filtered(models: QuerySet[Model], filters: dict[str, str]) -> QuerySet[Model]:
    for field in ("task", "domain", "licence"):
        if filters.get(field):
            models = models.filter(**{field: filters[field]})
    if filters.get("collaboration"):
        models = models.filter(collaboration__slug=filters["collaboration"])
    if filters.get("framework"):
        models = models.filter(versions__framework=filters["framework"]).distinct()
    if filters.get("keyword"):
        models = models.filter(keywords__contains=[filters["keyword"]]) \
            if connection.vendor == "postgresql" else models.filter(
                keywords__icontains=f'"{filters["keyword"]}"')
    return models


def facet_counts(models: QuerySet[Model]) -> dict[str, list[tuple[str, int]]]:
    base = Model.objects.filter(pk__in=models.values("pk"))

    def count(field: str) -> list[tuple[str, int]]:
        rows = (base.exclude(**{f"{field}__isnull": True}).values_list(field)
                .annotate(n=Count("pk", distinct=True)).order_by("-n", field))
        return [(value, n) for value, n in rows if value not in ("", None)]

    keywords: dict[str, int] = {}
    for words in base.values_list("keywords", flat=True):
        for word in set(words or []):
            keywords[word] = keywords.get(word, 0) + 1
    return {
        "task": count("task"),
        "domain": count("domain"),
        "framework": count("versions__framework"),
        "licence": count("licence"),
        "collaboration": count("collaboration__slug"),
        "keyword": sorted(keywords.items(), key=lambda item: (-item[1], item[0]))[:30],
    }


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
