from __future__ import annotations

import factory

from erumlab.accounts.models import Collaboration, Membership, User

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"physicist{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.org")
    first_name = "Emmy"
    last_name = factory.Sequence(lambda n: f"Noether{n}")
    password = factory.django.Password(PASSWORD)


class CollaborationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Collaboration

    name = factory.Sequence(lambda n: f"Collaboration {n}")
    slug = factory.Sequence(lambda n: f"collab-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    collaboration = factory.SubFactory(CollaborationFactory)
    role = Membership.Role.MEMBER
