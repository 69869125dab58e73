from __future__ import annotations

from typing import Any

from django import forms

from erumlab.catalogue.models import LICENCES, DataLevel, Dataset


class DatasetForm(forms.ModelForm):
    keywords_text = forms.CharField(required=False, label="Keywords",
                                    help_text="Comma-separated, e.g. calorimeter, GAN, electrons")

    class Meta:
        model = Dataset
        fields = ("title", "slug", "description", "experiment", "data_level", "licence",
                  "visibility", "collaboration")
        widgets = {"description": forms.Textarea(attrs={"rows": 6})}
        help_texts = {"description": "Markdown. Shown sanitized.",
                      "slug": "Part of the URL and of the identifier; cannot change later."}

    def __init__(self, *args: Any, collaborations, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["collaboration"].queryset = collaborations
        self.fields["collaboration"].required = False
        self.fields["slug"].required = False
        if self.instance.pk:
            self.fields["slug"].disabled = True
            self.fields["keywords_text"].initial = ", ".join(self.instance.keywords)

    def keywords(self) -> list[str]:
        return [w for w in self.cleaned_data.get("keywords_text", "").split(",") if w.strip()]


class VersionForm(forms.Form):
    changelog = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}),
                                help_text="What changed in this version.")
    creators = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line: Family, Given | ORCID (optional) | affiliation (optional)")

    @staticmethod
    def creators_text(creators: list[dict]) -> str:
        return "\n".join(" | ".join(filter(None, [c.get("name", ""), c.get("orcid", ""),
                                                  c.get("affiliation", "")]))
                         for c in creators)

    def creators_list(self) -> list[dict[str, str]]:
        creators = []
        for line in self.cleaned_data["creators"].splitlines():
            parts = [part.strip() for part in line.split("|")]
            if not parts[0]:
                continue
            entry = {"name": parts[0]}
            for part in parts[1:]:
                if part and part[:4].isdigit() and part.count("-") == 3:
                    entry["orcid"] = part
                elif part:
                    entry["affiliation"] = part
            creators.append(entry)
        return creators


class SearchForm(forms.Form):
    q = forms.CharField(required=False, label="Search")
    experiment = forms.CharField(required=False)
    data_level = forms.ChoiceField(required=False, choices=[("", "Any"), *DataLevel.choices])
    format = forms.CharField(required=False)
    licence = forms.ChoiceField(required=False, choices=[("", "Any"), *LICENCES])
    keyword = forms.CharField(required=False)
    collaboration = forms.CharField(required=False)


