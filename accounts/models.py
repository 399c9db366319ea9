"""Principals: users, service principals, nested groups and API tokens."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser, Group
from django.db import models


class User(AbstractUser):
    """A human user or a service principal (CI/CD); both may hold grants and tokens."""

    class Kind(models.TextChoices):
        USER = "user", "User"
        SERVICE_PRINCIPAL = "service_principal", "Service principal"

    kind = models.CharField(max_length=32, choices=Kind.choices, default=Kind.USER)
    display_name = models.CharField(max_length=255, blank=True)
    external_id = models.CharField(max_length=255, blank=True, db_index=True)

    class Meta:
        db_table = "accounts_user"

    @property
    def is_service_principal(self) -> bool:
        return self.kind == self.Kind.SERVICE_PRINCIPAL


class GroupNesting(models.Model):
    """`child` is a member of `parent`: a user in `child` holds what `parent` holds."""

    parent = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="member_groups")
    child = models.ForeignKey(Group, on_delete=models.CASCADE, related_name="parent_links")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["parent", "child"], name="uniq_group_nesting"),
            models.CheckConstraint(
                condition=~models.Q(parent=models.F("child")), name="group_not_own_member"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.child_id} in {self.parent_id}"


class GroupProfile(models.Model):
    """SCIM's externalId for a group (Django's Group has only a name)."""

    group = models.OneToOneField(Group, on_delete=models.CASCADE, related_name="profile")
    external_id = models.CharField(max_length=255, blank=True, db_index=True)

    def __str__(self) -> str:
        return f"{self.group_id}: {self.external_id}"


class ApiToken(models.Model):
    """A bearer token: random, stored only as its SHA-256, shown once, revocable, expiring."""

    class Scope(models.TextChoices):
        ALL = "all", "Everything the user may do"
        READ = "read", "Read only"

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16, db_index=True)
    token_hash = models.CharField(max_length=64, unique=True)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.ALL)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
