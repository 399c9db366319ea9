from django.contrib import admin

from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only view of the trail for admins."""

    list_display = ["occurred_at", "actor", "action", "securable", "outcome", "source_address"]
    list_filter = ["outcome", "action"]
    search_fields = ["actor", "securable", "request_id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
