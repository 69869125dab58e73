from __future__ import annotations

from django import forms
from django.contrib.auth.forms import UserCreationForm

from erumlab.accounts.models import Collaboration, Membership, User


class SignUpForm(UserCreationForm):
    class Meta:
        model = User
        fields = ("username", "email", "first_name", "last_name")

    def clean_username(self) -> str:
        return self.cleaned_data["username"].strip().lower()

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this e-mail address exists already.")
        return email


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ("first_name", "last_name", "email", "orcid", "affiliation")


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. 'laptop'.")
    expires_in_days = forms.IntegerField(
        min_value=1, max_value=3650, required=False,
        help_text="Leave empty for a token that lives until you revoke it.",
    )


class CollaborationForm(forms.ModelForm):
    class Meta:
        model = Collaboration
        fields = ("name", "slug", "description")
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    slug = forms.SlugField(
        max_length=60, required=False, help_text="Leave empty to derive it from the name."
    )


class MemberForm(forms.Form):
    username = forms.CharField(max_length=39)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.MEMBER)
