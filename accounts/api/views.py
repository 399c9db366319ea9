"""Native API for one's own API tokens: list, issue (shown once), revoke."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from accounts.models import ApiToken
from accounts.permissions import DoorView
from accounts.services import api_token_issue, api_token_revoke
from core.api import StrictCharField, StrictInputSerializer, json_body, validated


class TokenInputSerializer(StrictInputSerializer):
    name = StrictCharField(required=False, allow_blank=True, max_length=200)
    days = serializers.IntegerField(required=False, min_value=1)
    scope = serializers.ChoiceField(choices=ApiToken.Scope.values, required=False)


class TokenOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = [
            "id",
            "name",
            "prefix",
            "scope",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ]


class IssuedTokenOutputSerializer(TokenOutputSerializer):
    """The new token, with its secret (shown this once)."""

    token = serializers.CharField(read_only=True)

    class Meta(TokenOutputSerializer.Meta):
        fields = [*TokenOutputSerializer.Meta.fields, "token"]


class TokensView(DoorView):
    # The answer is an object, so it can grow (a page token) without breaking clients.
    @extend_schema(
        responses=inline_serializer("TokenList", {"tokens": TokenOutputSerializer(many=True)}),
        operation_id="tokens_list",
    )
    def get(self, request):
        tokens = ApiToken.objects.filter(user=request.user).order_by("-created_at")[:1000]
        return Response({"tokens": TokenOutputSerializer(tokens, many=True).data})

    @extend_schema(
        request=TokenInputSerializer,
        responses={201: IssuedTokenOutputSerializer},
        operation_id="tokens_issue",
    )
    def post(self, request):
        data = validated(TokenInputSerializer, json_body(request))
        token, raw = api_token_issue(
            actor=self.actor(),
            user=request.user,
            name=data.get("name", ""),
            days=data.get("days"),
            scope=data.get("scope", "all"),
        )
        return Response({**TokenOutputSerializer(token).data, "token": raw}, status=201)


class TokenDetailView(DoorView):
    @extend_schema(responses=TokenOutputSerializer, operation_id="tokens_revoke")
    def delete(self, request, token_id: int):
        token = api_token_revoke(actor=self.actor(), token_id=token_id)
        return Response(TokenOutputSerializer(token).data)
