from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group

from accounts.models import ApiToken, GroupNesting, User


@admin.register(User)
class StewardUserAdmin(UserAdmin):
    """Users are created through SCIM or `manage.py create_user` / `create_service_principal`,
    which apply the principal-name rules and write the audit event; here they can be looked at
    and changed, not added."""

    fieldsets = (
        *(UserAdmin.fieldsets or ()),  # Django's own, never None
        ("Steward", {"fields": ("kind", "display_name", "external_id")}),
    )
    list_display = ["username", "kind", "email", "is_active", "is_staff"]
    list_filter = ["kind", "is_active", "is_staff"]

    def has_add_permission(self, request):
        return False


admin.site.unregister(Group)


@admin.register(Group)
class StewardGroupAdmin(GroupAdmin):
    """Groups are created through SCIM or `manage.py create_group` (audited), not here."""

    def has_add_permission(self, request):
        return False


@admin.register(GroupNesting)
class GroupNestingAdmin(admin.ModelAdmin):
    list_display = ["child", "parent"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are issued through the API or `issue_token`; here they can only be looked at."""

    list_display = ["name", "user", "prefix", "scope", "expires_at", "last_used_at", "revoked_at"]
    readonly_fields = [f.name for f in ApiToken._meta.fields]

    def has_add_permission(self, request):
        return False
