from __future__ import annotations

from rest_framework import serializers

from erumlab.accounts.models import ApiToken, Collaboration, Membership, User


class CollaborationRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Collaboration
        fields = ("slug", "name")


class MeSerializer(serializers.ModelSerializer):
    collaborations = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ("username", "email", "first_name", "last_name", "orcid", "affiliation",
                  "is_staff", "collaborations")
        read_only_fields = ("username", "is_staff", "collaborations")

    def get_collaborations(self, user: User) -> list[dict[str, str]]:
        return [
            {"slug": m.collaboration.slug, "name": m.collaboration.name, "role": m.role}
            for m in user.memberships.select_related("collaboration")
        ]


class ApiTokenSerializer(serializers.ModelSerializer):
    expires_in_days = serializers.IntegerField(
        write_only=True, required=False, min_value=1, max_value=3650
    )

    class Meta:
        model = ApiToken
        fields = ("id", "name", "prefix", "created_at", "expires_at", "last_used_at",
                  "expires_in_days")
        read_only_fields = ("id", "prefix", "created_at", "expires_at", "last_used_at")


class IssuedApiTokenSerializer(ApiTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="Shown once; store it now.")

    class Meta(ApiTokenSerializer.Meta):
        fields = (*ApiTokenSerializer.Meta.fields, "token")


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")

    class Meta:
        model = Membership
        fields = ("username", "role", "joined_at")


class CollaborationSerializer(serializers.ModelSerializer):
    members = MembershipSerializer(source="memberships", many=True, read_only=True)

    class Meta:
        model = Collaboration
        fields = ("slug", "name", "description", "created_at", "members")
        read_only_fields = ("created_at", "members")
        extra_kwargs = {"slug": {"required": False}}
