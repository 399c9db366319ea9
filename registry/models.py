"""Registered models (third level of the namespace). Versions arrive in a later change."""

from __future__ import annotations

from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from catalog.models import Schema, Securable
from catalog.privileges import SecurableType, guardian_permissions


class RegisteredModel(Securable):
    """catalog.schema.model; `full_name` is kept in step on renames of any level."""

    schema = models.ForeignKey(Schema, on_delete=models.CASCADE, related_name="models")
    full_name = models.CharField(max_length=767, unique=True)
    storage_location = models.CharField(max_length=1024, blank=True, default="")

    securable_type = SecurableType.REGISTERED_MODEL

    class Meta:
        default_permissions = ()
        permissions = guardian_permissions(SecurableType.REGISTERED_MODEL)
        constraints = [
            models.UniqueConstraint(fields=["schema", "name"], name="uniq_model_name"),
            models.CheckConstraint(
                condition=~(
                    models.Q(owner_user__isnull=False) & models.Q(owner_group__isnull=False)
                ),
                name="model_single_owner",
            ),
        ]

    @property
    def catalog(self):
        return self.schema.catalog


class ModelUserGrant(UserObjectPermissionBase):
    content_object = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="user_grants"
    )


class ModelGroupGrant(GroupObjectPermissionBase):
    content_object = models.ForeignKey(
        RegisteredModel, on_delete=models.CASCADE, related_name="group_grants"
    )
