"""Sign-up, log-in, log-out, password change and reset, and login rate limiting."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.urls import reverse

from erumlab.accounts.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _sign_up(client, **overrides):
    data = {
        "username": "marie",
        "email": "Marie@Example.org",
        "first_name": "Marie",
        "last_name": "Curie",
        "password1": "radium-and-polonium",
        "password2": "radium-and-polonium",
        **overrides,
    }
    return client.post(reverse("accounts:sign_up"), data)


def test_signing_up_creates_the_account_and_logs_in(client):
    response = _sign_up(client)
    assert response.status_code == 302
    assert response["Location"] == reverse("core:dashboard")
    user = User.objects.get(username="marie")
    assert user.email == "marie@example.org"
    dashboard = client.get(reverse("core:dashboard"))
    assert dashboard.status_code == 200
    assert b"Marie Curie" in dashboard.content


def test_sign_up_refuses_a_taken_email_and_keeps_nothing(client):
    UserFactory(email="marie@example.org")
    response = _sign_up(client)
    assert response.status_code == 200
    assert b"exists already" in response.content
    assert not User.objects.filter(username="marie").exists()


@pytest.mark.parametrize("username", ["Has Space", "a", "ünïcode", "-leading"])
def test_sign_up_refuses_usernames_unfit_for_notebook_servers(client, username):
    response = _sign_up(client, username=username)
    assert response.status_code == 200
    assert not User.objects.exists()


def test_sign_up_can_be_closed(client, settings):
    settings.ERUMLAB_ALLOW_SIGNUP = False
    assert client.get(reverse("accounts:sign_up")).status_code == 404


def test_log_in_and_log_out(client, user, password):
    response = client.post(
        reverse("accounts:login"), {"username": user.username, "password": password}
    )
    assert response.status_code == 302
    assert client.get(reverse("core:dashboard")).status_code == 200
    client.post(reverse("accounts:logout"))
    assert client.get(reverse("core:dashboard")).status_code == 302


def test_pages_need_a_login(client):
    for name in ("core:dashboard", "accounts:profile", "accounts:api_tokens",
                 "accounts:collaborations", "sessions:notebooks"):
        response = client.get(reverse(name))
        assert response.status_code == 302, name
        assert response["Location"].startswith(reverse("accounts:login"))


def test_repeated_failed_logins_lock_the_account_for_that_address(client, user, password,
                                                                 settings):
    settings.AXES_FAILURE_LIMIT = 3
    url = reverse("accounts:login")
    for _ in range(3):
        client.post(url, {"username": user.username, "password": "wrong"})
    locked = client.post(url, {"username": user.username, "password": password})
    assert locked.status_code == 429
    assert b"Too many failed login attempts" in locked.content
    assert client.get(reverse("core:dashboard")).status_code == 302


def test_a_successful_login_resets_the_failure_count(client, user, password, settings):
    settings.AXES_FAILURE_LIMIT = 3
    url = reverse("accounts:login")
    for _ in range(2):
        client.post(url, {"username": user.username, "password": "wrong"})
    assert client.post(url, {"username": user.username, "password": password}).status_code == 302
    client.post(reverse("accounts:logout"))
    for _ in range(2):
        client.post(url, {"username": user.username, "password": "wrong"})
    assert client.post(url, {"username": user.username, "password": password}).status_code == 302


def test_password_change(client, user, password):
    client.force_login(user)
    response = client.post(
        reverse("accounts:password_change"),
        {"old_password": password, "new_password1": "a-brand-new-secret-9",
         "new_password2": "a-brand-new-secret-9"},
    )
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password("a-brand-new-secret-9")


def test_password_reset_by_email(client, user, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    response = client.post(reverse("accounts:password_reset"), {"email": user.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(r"https?://[^/\s]+(/accounts/password/reset/\S+/)", mail.outbox[0].body)
    assert link, mail.outbox[0].body
    form = client.get(link.group(1), follow=True)
    assert form.status_code == 200
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "reset-works-fine-7", "new_password2": "reset-works-fine-7"},
    )
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password("reset-works-fine-7")


def test_password_reset_for_an_unknown_address_reveals_nothing(client, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    response = client.post(reverse("accounts:password_reset"), {"email": "nobody@example.org"})
    assert response.status_code == 302
    assert len(mail.outbox) == 0


def test_profile_saves_an_orcid_and_rejects_a_malformed_one(client, user):
    client.force_login(user)
    url = reverse("accounts:profile")
    base = {"first_name": "A", "last_name": "B", "email": user.email, "affiliation": "KIT"}
    bad = client.post(url, {**base, "orcid": "1234"})
    assert bad.status_code == 200
    assert b"ORCID" in bad.content
    ok = client.post(url, {**base, "orcid": "0000-0002-1825-0097"})
    assert ok.status_code == 302
    user.refresh_from_db()
    assert user.orcid == "0000-0002-1825-0097"


def test_the_django_admin_is_for_staff(client, user, admin_user):
    client.force_login(user)
    assert client.get("/admin/").status_code == 302
    client.force_login(admin_user)
    for url in ("/admin/", "/admin/accounts/user/", "/admin/accounts/collaboration/",
                "/admin/accounts/apitoken/"):
        assert client.get(url).status_code == 200, url
