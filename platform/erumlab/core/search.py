"""Full-text search over a model's ``search_document`` (and its stored ``search_vector``)."""

from __future__ import annotations

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db import connection
from django.db.models import F, Model, QuerySet


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
