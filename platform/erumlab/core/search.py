"""Search for the catalogue and the zoo: full text over a model's ``search_document`` (and its
stored ``search_vector``), and facets (narrowing by a field's value, counting the values)."""

from __future__ import annotations

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db import connection
from django.db.models import Count, F, Model, QuerySet
from django.forms import Form


def chosen_filters(form: Form) -> tuple[dict, dict]:
    """A list page's search form: (the filters to apply, the chosen facets without the query).

    Fields that do not validate (an unknown facet value) are left out and keep their error
    for the page to show; the valid ones still apply.
    """
    if form.is_bound:
        form.is_valid()
    filters = getattr(form, "cleaned_data", {})
    return filters, {k: v for k, v in filters.items() if v and k != "q"}


def text_search(objects: QuerySet, query: str) -> QuerySet:
    """PostgreSQL's text search when available, word matching on SQLite."""
    query = query.strip()
    if not query:
        return objects
    if connection.vendor == "postgresql":
        # The stored, GIN-indexed vector: nothing is parsed again per query.
        parsed = SearchQuery(query, config="english", search_type="websearch")
        return (objects.filter(search_vector=parsed)
                .annotate(rank=SearchRank(F("search_vector"), parsed))
                .order_by("-rank", "-updated_at"))
    for word in query.split():
        objects = objects.filter(search_document__icontains=word.strip('"'))
    return objects


def refresh_search_vector(obj: Model) -> None:
    """PostgreSQL keeps a parsed copy of the search document for its text search."""
    if connection.vendor == "postgresql":
        type(obj).objects.filter(pk=obj.pk).update(
            search_vector=SearchVector("search_document", config="english"))


def keyword_filter(objects: QuerySet, word: str) -> QuerySet:
    """Objects whose JSON list ``keywords`` holds ``word``."""
    if connection.vendor == "postgresql":
        return objects.filter(keywords__contains=[word])
    return objects.filter(keywords__icontains=f'"{word}"')


def facet_filter(objects: QuerySet, filters: dict[str, str], fields: dict[str, str],
                 many: tuple[str, ...] = ()) -> QuerySet:
    """Narrow ``objects`` by the chosen facets.

    ``fields`` maps each facet to the lookup its value must equal; the facet
    ``keyword`` matches an entry of ``keywords``. Facets in ``many`` look
    across a to-many relation, whose joins repeat rows: those get distinct().
    """
    for facet, lookup in fields.items():
        value = filters.get(facet)
        if not value:
            continue
        if facet == "keyword":
            objects = keyword_filter(objects, value)
        else:
            objects = objects.filter(**{lookup: value})
            if facet in many:
                objects = objects.distinct()
    return objects


def facet_counts(objects: QuerySet, fields: dict[str, str],
                 keywords_shown: int = 30) -> dict[str, list[tuple[str, int]]]:
    """For each facet (in the order of ``fields``), its values among ``objects`` with their counts.

    Most frequent first; ``keyword`` counts the entries of ``keywords``, the
    ``keywords_shown`` most frequent of them.
    """
    base = objects.model.objects.filter(pk__in=objects.values("pk"))

    def count(lookup: str) -> list[tuple[str, int]]:
        rows = (base.exclude(**{f"{lookup}__isnull": True}).values_list(lookup)
                .annotate(n=Count("pk", distinct=True)).order_by("-n", lookup))
        return [(value, n) for value, n in rows if value not in ("", None)]

    found = {}
    for facet, lookup in fields.items():
        if facet != "keyword":
            found[facet] = count(lookup)
            continue
        keywords: dict[str, int] = {}
        for words in base.values_list("keywords", flat=True):
            for word in set(words or []):
                keywords[word] = keywords.get(word, 0) + 1
        found[facet] = sorted(keywords.items(), key=lambda item: (-item[1], item[0]))[:keywords_shown]
    return found
