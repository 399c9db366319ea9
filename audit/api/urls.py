from django.urls import path

from audit.api.views import AuditEventsView

urlpatterns = [path("audit-events", AuditEventsView.as_view())]
