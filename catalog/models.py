"""The securable tree: metastore -> catalog -> schema (-> registered model in registry/).

Grants are django-guardian object permissions in direct foreign-key tables (one pair per
securable type), which is what lets catalog.authz resolve inheritance in a few set queries.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from catalog.privileges import SecurableType, guardian_permissions


class Securable(models.Model):
    """Fields every securable shares: identity, owner (a user or a group), audit stamps."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255)
    comment = models.TextField(blank=True, default="")
    properties = models.JSONField(default=dict, blank=True)
    owner_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    owner_group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=150, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.CharField(max_length=150, blank=True, default="")

    securable_type: SecurableType

    if TYPE_CHECKING:
        # Each concrete securable has one: a stored column (schemas, models) or a property.
        @property
        def full_name(self) -> str: ...

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return getattr(self, "full_name", self.name)

    @property
    def owner_name(self) -> str:
        if self.owner_user_id and self.owner_user is not None:
            return self.owner_user.username
        if self.owner_group_id and self.owner_group is not None:
            return self.owner_group.name
        return ""


class Metastore(models.Model):
    """The single root of the tree; holds metastore-level grants such as CREATE CATALOG."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    securable_type = SecurableType.METASTORE

    class Meta:
        default_permissions = ()
        permissions = guardian_permissions(SecurableType.METASTORE)

    def __str__(self) -> str:
        return self.name

    @property
    def full_name(self) -> str:
        return str(self.id)


class Catalog(Securable):
    """First level of the namespace."""

    securable_type = SecurableType.CATALOG

    class Meta:
        default_permissions = ()
        permissions = guardian_permissions(SecurableType.CATALOG)
        constraints = [
            models.UniqueConstraint(fields=["name"], name="uniq_catalog_name"),
            models.CheckConstraint(
                condition=~(
                    models.Q(owner_user__isnull=False) & models.Q(owner_group__isnull=False)
                ),
                name="catalog_single_owner",
            ),
        ]

    @property
    def full_name(self) -> str:
        return self.name


class Schema(Securable):
    """Second level: catalog.schema. `full_name` is kept in step on renames (for ordering)."""

    catalog = models.ForeignKey(Catalog, on_delete=models.CASCADE, related_name="schemas")
    full_name = models.CharField(max_length=511, unique=True)

    securable_type = SecurableType.SCHEMA

    class Meta:
        default_permissions = ()
        permissions = guardian_permissions(SecurableType.SCHEMA)
        constraints = [
            models.UniqueConstraint(fields=["catalog", "name"], name="uniq_schema_name"),
            models.CheckConstraint(
                condition=~(
                    models.Q(owner_user__isnull=False) & models.Q(owner_group__isnull=False)
                ),
                name="schema_single_owner",
            ),
        ]


class MetastoreUserGrant(UserObjectPermissionBase):
    content_object = models.ForeignKey(
        Metastore, on_delete=models.CASCADE, related_name="user_grants"
    )


class MetastoreGroupGrant(GroupObjectPermissionBase):
    content_object = models.ForeignKey(
        Metastore, on_delete=models.CASCADE, related_name="group_grants"
    )


class CatalogUserGrant(UserObjectPermissionBase):
    content_object = models.ForeignKey(
        Catalog, on_delete=models.CASCADE, related_name="user_grants"
    )


class CatalogGroupGrant(GroupObjectPermissionBase):
    content_object = models.ForeignKey(
        Catalog, on_delete=models.CASCADE, related_name="group_grants"
    )


class SchemaUserGrant(UserObjectPermissionBase):
    content_object = models.ForeignKey(Schema, on_delete=models.CASCADE, related_name="user_grants")


class SchemaGroupGrant(GroupObjectPermissionBase):
    content_object = models.ForeignKey(
        Schema, on_delete=models.CASCADE, related_name="group_grants"
    )
