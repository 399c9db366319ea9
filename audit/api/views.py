"""GET /api/v1/audit-events: the audit trail for admins, filtered and paginated."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response

from accounts.permissions import DoorView, IsMetastoreAdmin
from audit.models import AuditEvent
from audit.selectors import audit_event_search
from core.api import query_one
from core.errors import InvalidParameter
from core.openapi import PAGE_PARAMETERS
from core.pagination import decode_token, encode_token, page_size


class AuditEventOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "occurred_at",
            "actor",
            "auth_method",
            "source_address",
            "action",
            "securable_type",
            "securable",
            "outcome",
            "request_id",
            "details",
            "prev_hash",
            "hash",
        ]


FILTERS = ["actor", "action", "securable", "outcome", "since", "until"]


class AuditEventsView(DoorView):
    permission_classes = [IsMetastoreAdmin]

    @extend_schema(
        parameters=[OpenApiParameter(name, str) for name in FILTERS] + PAGE_PARAMETERS,
        responses=inline_serializer(
            "AuditEventPage",
            {
                "events": AuditEventOutputSerializer(many=True),
                "next_page_token": serializers.CharField(allow_null=True),
            },
        ),
        operation_id="audit_events_list",
    )
    def get(self, request):
        filters = {name: query_one(request, name) for name in FILTERS}
        qs = audit_event_search(
            actor=self.actor(),
            actor_name=filters["actor"],
            action=filters["action"],
            securable=filters["securable"],
            outcome=filters["outcome"],
            since=filters["since"],
            until=filters["until"],
        )
        size = page_size(query_one(request, "max_results"))
        after = decode_token(query_one(request, "page_token"))
        if after is not None:
            if not after.isdigit():
                raise InvalidParameter("Invalid page_token.")
            qs = qs.filter(id__lt=int(after))
        items = list(qs[: size + 1])
        token = encode_token(str(items[size - 1].id)) if len(items) > size else None
        return Response(
            {
                "events": AuditEventOutputSerializer(items[:size], many=True).data,
                "next_page_token": token,
            }
        )
