"""One way to hand a service's ValidationError to a form or to an API response."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from rest_framework import exceptions


def add_to_form(form: forms.BaseForm, error: ValidationError) -> None:
    """Errors naming a form field land on it; the rest go to the top of the form."""
    if hasattr(error, "error_dict"):
        for field, problems in error.message_dict.items():
            form.add_error(field if field in form.fields else None, problems)
    else:
        form.add_error(None, error.messages)


def as_api_error(error: ValidationError) -> exceptions.ValidationError:
    """A 400 response body keyed by field, or by "detail" when no field is named."""
    if hasattr(error, "error_dict"):
        return exceptions.ValidationError(error.message_dict)
    return exceptions.ValidationError({"detail": error.messages})
