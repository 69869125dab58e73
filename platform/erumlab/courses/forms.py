from __future__ import annotations

from django import forms

from erumlab.courses.models import Course, Lecture, Role


class OfferingForm(forms.Form):
    course = forms.ModelChoiceField(queryset=Course.objects.all())
    term = forms.CharField(max_length=100, help_text="e.g. Winter 2026/27")


class JoinForm(forms.Form):
    code = forms.CharField(max_length=16, label="Enrolment code")


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.TUTOR)


class InviteForm(forms.Form):
    emails = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}),
                             help_text="E-mail addresses, separated by spaces, commas or lines.")
    role = forms.ChoiceField(choices=Role.choices, initial=Role.STUDENT)


class ReleaseForm(forms.Form):
    lecture = forms.ModelChoiceField(queryset=Lecture.objects.none())
    opens_at = forms.DateTimeField(required=False, help_text="Empty: now.",
                                   widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    due_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    def __init__(self, *args, lectures=None, **kwargs) -> None:  # noqa: ANN001, ANN002, ANN003
        super().__init__(*args, **kwargs)
        if lectures is not None:
            self.fields["lecture"].queryset = lectures


class ExtensionForm(forms.Form):
    student = forms.CharField(max_length=150, label="Student's username")
    due_at = forms.DateTimeField(widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    reason = forms.CharField(max_length=300, required=False)


class OverrideForm(forms.Form):
    score = forms.FloatField(min_value=0)
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}),
                             help_text="The student sees it.")


class UploadForm(forms.Form):
    notebook = forms.FileField(help_text="Your exercise notebook (.ipynb).")
