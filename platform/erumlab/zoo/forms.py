from __future__ import annotations

import json
from typing import Any

from django import forms

from erumlab.zoo.models import MODEL_LICENCES, Domain, Framework, Model, Task


class ModelForm(forms.ModelForm):
    keywords_text = forms.CharField(required=False, label="Keywords",
                                    help_text="Comma-separated, e.g. jets, b-tagging, FPGA")

    class Meta:
        model = Model
        fields = ("title", "name", "summary", "task", "domain", "licence", "visibility",
                  "collaboration")
        help_texts = {"name": "Used in URLs and in models.load(\"name\"); cannot change later."}

    def __init__(self, *args: Any, collaborations, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["collaboration"].queryset = collaborations
        self.fields["collaboration"].required = False
        self.fields["name"].required = False

    def keywords(self) -> list[str]:
        return [w for w in self.cleaned_data.get("keywords_text", "").split(",") if w.strip()]


def _json_field(label: str, help_text: str, rows: int = 4) -> forms.CharField:
    return forms.CharField(required=False, label=label, help_text=help_text,
                           widget=forms.Textarea(attrs={"rows": rows, "spellcheck": "false"}))


class PublishForm(forms.Form):
    weights = forms.FileField(
        help_text="safetensors weights, an ONNX model, or a PyTorch state dict (.pt/.pth, "
                  "converted safely by a worker). Pickle files (.pkl) are refused.")
    architecture = forms.CharField(required=False,
                                   help_text="For safetensors and .pt: an architecture "
                                             "erumlab.science knows, e.g. mlp.")
    config = _json_field("Architecture config (JSON)",
                         'e.g. {"inputs": 16, "hidden": [64, 32, 32], "outputs": 5}', 2)
    signature = _json_field(
        "Signature (JSON)", 'Inputs and outputs: {"inputs": [{"name": "features", "shape": '
        '[null, 16], "dtype": "float32", "unit": "GeV"}], "outputs": [...]}. Read from the '
        "graph for ONNX when empty.")
    card = forms.CharField(required=False, label="Model card (Markdown)",
                           widget=forms.Textarea(attrs={"rows": 10}),
                           help_text="Intended use, architecture, inputs and outputs with "
                                     "units, training data, limitations.")
    metrics = _json_field("Metrics (JSON)", 'e.g. {"accuracy": 0.93} or a list of {"name", '
                          '"value", "unit", "curve": {"kind": "roc", "x": [...], "y": [...]}}')
    example_input = forms.FileField(required=False, help_text="Optional safetensors file with "
                                    "one tensor per input: enables \"Try it\".")
    changelog = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    aliases = forms.CharField(required=False, help_text="Comma-separated, e.g. production")

    def _json(self, name: str, default: Any) -> Any:
        text = self.cleaned_data.get(name, "").strip()
        if not text:
            return default
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise forms.ValidationError({name: f"Not JSON: {error}"}) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        for name, default in (("config", {}), ("signature", {}), ("metrics", [])):
            data[f"{name}_value"] = self._json(name, default)
        data["alias_list"] = [a.strip() for a in data.get("aliases", "").split(",")
                              if a.strip()]
        return data


class AliasForm(forms.Form):
    name = forms.SlugField(max_length=50, label="Alias")
    version = forms.IntegerField(min_value=1)


class SearchForm(forms.Form):
    q = forms.CharField(required=False, label="Search")
    task = forms.ChoiceField(required=False, choices=[("", "Any"), *Task.choices])
    domain = forms.ChoiceField(required=False, choices=[("", "Any"), *Domain.choices])
    framework = forms.ChoiceField(required=False, choices=[("", "Any"), *Framework.choices])
    licence = forms.ChoiceField(required=False, choices=[("", "Any"), *MODEL_LICENCES])
    keyword = forms.CharField(required=False)
    collaboration = forms.CharField(required=False)
