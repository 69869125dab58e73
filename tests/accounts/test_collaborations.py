"""Collaborations: who may see them, who may change their members."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from erumlab.accounts import selectors, services
from erumlab.accounts.models import Membership
from tests.factories import CollaborationFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_the_creator_becomes_maintainer(user):
    collaboration = services.collaboration_create(creator=user, name="CMS Tracking")
    assert collaboration.slug == "cms-tracking"
    assert selectors.collaboration_role(collaboration, user) == Membership.Role.MAINTAINER


def test_the_admin_group_name_is_reserved(user):
    with pytest.raises(ValidationError):
        services.collaboration_create(creator=user, name="Admins", slug="erumlab-admins")


def test_members_see_their_collaborations_and_others_do_not(user, other_user):
    mine = MembershipFactory(user=user).collaboration
    CollaborationFactory()
    assert list(selectors.collaborations_visible_to(user)) == [mine]
    assert list(selectors.collaborations_visible_to(other_user)) == []


def test_a_collaboration_page_is_not_found_for_outsiders(client, other_user):
    collaboration = MembershipFactory().collaboration
    client.force_login(other_user)
    response = client.get(reverse("accounts:collaboration", args=[collaboration.slug]))
    assert response.status_code == 404


def test_only_maintainers_add_members(user, other_user):
    collaboration = MembershipFactory(user=user, role=Membership.Role.MEMBER).collaboration
    with pytest.raises(PermissionDenied):
        services.membership_add(collaboration=collaboration, actor=user,
                                username=other_user.username)


def test_a_maintainer_adds_and_removes_a_member_through_the_page(client, user, other_user):
    collaboration = services.collaboration_create(creator=user, name="IceCube ML")
    client.force_login(user)
    url = reverse("accounts:collaboration", args=[collaboration.slug])
    response = client.post(url, {"username": other_user.username, "role": "member"})
    assert response.status_code == 302
    assert selectors.collaboration_role(collaboration, other_user) == "member"
    client.post(reverse("accounts:collaboration_member_remove",
                        args=[collaboration.slug, other_user.username]))
    assert selectors.collaboration_role(collaboration, other_user) is None


def test_adding_an_unknown_user_names_the_problem(client, user):
    collaboration = services.collaboration_create(creator=user, name="Auger")
    client.force_login(user)
    response = client.post(reverse("accounts:collaboration", args=[collaboration.slug]),
                           {"username": "ghost", "role": "member"})
    assert response.status_code == 200
    assert b"No active user named" in response.content


def test_the_last_maintainer_cannot_leave(user):
    collaboration = services.collaboration_create(creator=user, name="Belle II")
    with pytest.raises(ValidationError, match="at least one maintainer"):
        services.membership_remove(collaboration=collaboration, actor=user,
                                   username=user.username)


def test_a_member_can_leave(user):
    owner = UserFactory()
    collaboration = services.collaboration_create(creator=owner, name="LHCb")
    services.membership_add(collaboration=collaboration, actor=owner, username=user.username)
    services.membership_remove(collaboration=collaboration, actor=user, username=user.username)
    assert selectors.collaboration_role(collaboration, user) is None
