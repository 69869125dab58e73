from __future__ import annotations

import json
from typing import Any

from django import template
from django.utils.safestring import mark_safe

register = template.Library()

# The same escapes as Django's json_script: nothing in the JSON can close the
# script element or open a comment.
_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


@register.simple_tag
def jsonld(value: Any) -> str:
    """A JSON-LD script element (json_script cannot set the type)."""
    payload = json.dumps(value, sort_keys=True).translate(_ESCAPES)
    element = f'<script type="application/ld+json">{payload}</script>'
    return mark_safe(element)  # noqa: S308  # safe: escaped as json_script does


@register.filter
def filesize_exact(value: int) -> str:
    return f"{value:,} bytes"


@register.filter
def get_item(mapping: dict, key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, dict) else None
