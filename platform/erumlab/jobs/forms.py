from __future__ import annotations

import json
from typing import Any

from django import forms

from erumlab.accounts.models import Collaboration
from erumlab.jobs.models import Job, Template
from erumlab.jobs.services import QUEUES

_TYPE_LABEL = {"int": "integer", "float": "number", "bool": "true/false", "str": "text",
               "list": "JSON list", "dict": "JSON object", "any": "any JSON value"}


def _initial(value: Any, kind: str) -> Any:
    if kind == "bool":
        return bool(value)
    if kind in ("list", "dict", "any") and not isinstance(value, str):
        return json.dumps(value)
    return "" if value is None else str(value)


class JobForm(forms.Form):
    """A form generated from the template's declared parameters.

    Fields only render and carry text; the values are validated and coerced
    against the declared types by the service, whose errors land on the fields.
    """

    queue = forms.ChoiceField(choices=[(q, {"default": "CPU (default)", "gpu": "GPU"}[q])
                                       for q in QUEUES])
    wall_time_limit = forms.IntegerField(
        min_value=1, required=False, label="Wall-time limit (s)",
        help_text="Leave empty for the template's or the site's default.",
    )
    collaboration = forms.ModelChoiceField(
        queryset=Collaboration.objects.none(), required=False,
        help_text="Share the job (read-only) with a collaboration.",
    )

    def __init__(self, *args: Any, template: Template, collaborations, initial_values=None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.template = template
        self.parameter_names = []
        values = initial_values or {}
        for declared in template.parameters:
            name, kind = declared["name"], declared["type"]
            key = f"param_{name}"
            self.parameter_names.append((name, key))
            value = values.get(name, declared["default"])
            label = f"{name} ({_TYPE_LABEL.get(kind, kind)})"
            if kind == "bool":
                field: forms.Field = forms.BooleanField(required=False, label=label,
                                                        initial=_initial(value, kind))
            else:
                field = forms.CharField(required=False, label=label, initial=_initial(value, kind),
                                        strip=False)
            field.help_text = declared.get("help", "")
            self.fields[key] = field
        self.fields["queue"].initial = template.default_queue
        self.fields["collaboration"].queryset = collaborations
        # Parameters first, then the run options.
        self.order_fields([key for _, key in self.parameter_names])

    def parameter_values(self) -> dict[str, str]:
        raw: dict[str, str] = {}
        for name, key in self.parameter_names:
            declared = next(p for p in self.template.parameters if p["name"] == name)
            if declared["type"] == "bool":
                raw[name] = "true" if self.data.get(key) in ("on", "true", "1") else "false"
            elif key in self.data:
                raw[name] = self.data[key]
        return raw

    def add_parameter_errors(self, errors: dict[str, str]) -> None:
        keys = dict(self.parameter_names)
        for name, problem in errors.items():
            self.add_error(keys.get(name), f"{name}: {problem}" if name not in keys else problem)


class TemplateUploadForm(forms.Form):
    notebook = forms.FileField(help_text="A .ipynb with a cell tagged 'parameters'.")


class TemplateFromServerForm(forms.Form):
    path = forms.CharField(
        max_length=500, label="Notebook on your server",
        help_text="Path inside your JupyterLab home, e.g. analysis/train.ipynb.",
    )


class JobFilterForm(forms.Form):
    scope = forms.ChoiceField(
        required=False,
        choices=[("", "All I can see"), ("mine", "Mine"), ("collaborations", "My collaborations'")],
    )
    state = forms.ChoiceField(required=False, choices=[("", "Any state"), *Job.State.choices])
    template = forms.ChoiceField(required=False)

    def __init__(self, *args: Any, templates, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["template"].choices = [("", "Any template")] + [
            (slug, title) for slug, title in templates.values_list("slug", "title").distinct()
        ]
