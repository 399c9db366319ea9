"""What every tracking door view shares."""

from django.core.exceptions import RequestDataTooBig

from accounts.permissions import DoorView
from core.errors import InvalidParameter


class TrackingView(DoorView):
    """The tracking doors' base: a body over the size limit is the client's error (400)."""

    def handle_exception(self, exc):
        # A body over DATA_UPLOAD_MAX_MEMORY_SIZE is the client's error: answer 400 (a 5xx
        # would make the mlflow client retry for minutes). core.errors maps it to 500 today.
        if isinstance(exc, RequestDataTooBig):
            exc = InvalidParameter(
                "The request body is too large; split the request (MLflow's own limit for a "
                "log-batch request is 1 MB)."
            )
        return super().handle_exception(exc)
