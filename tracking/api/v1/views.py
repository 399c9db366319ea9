"""Native API for sharing an MLflow experiment: list, grant (or change) and revoke a level for
a user or group. Needs CAN_MANAGE on the experiment (its owner, a CAN_MANAGE holder, or an
admin); an experiment the caller cannot read answers 404."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from core.api import StrictCharField, StrictInputSerializer, json_body, validated
from tracking import selectors, services
from tracking.api.base import TrackingView
from tracking.models import ExperimentPermission


class ExperimentPermissionInputSerializer(StrictInputSerializer):
    principal = StrictCharField(max_length=255)
    level = serializers.ChoiceField(choices=ExperimentPermission.Level.values)


class ExperimentPermissionRemoveInputSerializer(StrictInputSerializer):
    principal = StrictCharField(max_length=255)


def permissions_out(actor, experiment_id) -> dict:
    experiment, rows = selectors.experiment_permissions(actor=actor, experiment_id=experiment_id)
    return {
        "experiment_id": experiment.experiment_id,
        "name": experiment.name,
        "owner": experiment.owner.username if experiment.owner is not None else None,
        "permissions": [
            {
                "principal": row.principal_name,
                "principal_type": row.principal_type,
                "level": row.level,
                "granted_by": row.granted_by,
                "granted_at": row.granted_at,
            }
            for row in rows
        ],
    }


class ExperimentPermissionsView(TrackingView):
    @extend_schema(responses=dict, operation_id="experiment_permissions_list")
    def get(self, request, experiment_id: str):
        return Response(permissions_out(self.actor(), experiment_id))

    @extend_schema(
        request=ExperimentPermissionInputSerializer,
        responses=dict,
        operation_id="experiment_permissions_set",
    )
    def post(self, request, experiment_id: str):
        data = validated(ExperimentPermissionInputSerializer, json_body(request))
        actor = self.actor()
        services.experiment_permission_set(
            actor=actor,
            experiment_id=experiment_id,
            principal=data["principal"],
            level=data["level"],
        )
        return Response(permissions_out(actor, experiment_id))

    @extend_schema(
        request=ExperimentPermissionRemoveInputSerializer,
        responses=dict,
        operation_id="experiment_permissions_remove",
    )
    def delete(self, request, experiment_id: str):
        data = validated(ExperimentPermissionRemoveInputSerializer, json_body(request))
        actor = self.actor()
        services.experiment_permission_remove(
            actor=actor, experiment_id=experiment_id, principal=data["principal"]
        )
        return Response(permissions_out(actor, experiment_id))
