"""OpenID Connect claims for JupyterHub (and any other relying party)."""

from __future__ import annotations

from oauth2_provider.oauth2_validators import OAuth2Validator

from erumlab.accounts.selectors import user_group_names


class ClaimsValidator(OAuth2Validator):
    # Which scope releases which claim; without these, userinfo holds only `sub`.
    oidc_claim_scope = {
        **OAuth2Validator.oidc_claim_scope,
        "preferred_username": "profile",
        "name": "profile",
        "groups": "profile",
        "email": "email",
        "email_verified": "email",
    }

    def get_additional_claims(self, request):  # noqa: ANN001 (oauthlib's signature)
        user = request.user
        return {
            "preferred_username": user.username,
            "name": user.display_name,
            "groups": user_group_names(user),
            "email": user.email,
            "email_verified": False,
        }
