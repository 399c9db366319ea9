from django.contrib import admin

from catalog.models import Catalog, Schema
from registry.models import RegisteredModel


class ReadOnlySecurableAdmin(admin.ModelAdmin):
    """Securables change only through the services (grants, audit); the admin only shows them."""

    list_display = ["full_name", "owner_user", "owner_group", "updated_at", "updated_by"]
    search_fields = ["name"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


admin.site.register(Catalog, ReadOnlySecurableAdmin)
admin.site.register(Schema, ReadOnlySecurableAdmin)
admin.site.register(RegisteredModel, ReadOnlySecurableAdmin)
