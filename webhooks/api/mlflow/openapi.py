"""MLflow's webhook API (3.x) in the OpenAPI document, as its client sends and reads it.
Applied to the views when the door's routes load; nothing here parses a request."""

from core.openapi import Op, mlflow_schema
from webhooks.api.mlflow import views as v

FIELDS = {
    "name": "str",
    "url": "str",
    "events": "objs",
    "description": "str",
    "secret": "str",
    "status": "str",
}

REQUIRED = {"name!": "str", "url!": "str", "events!": "objs"}

OPERATIONS = {
    v.WebhooksView: {
        "post": Op(
            "Create a webhook",
            {**REQUIRED, **{k: t for k, t in FIELDS.items() if f"{k}!" not in REQUIRED}},
            {"webhook": "obj"},
        ),
        "get": Op(
            "List webhooks",
            {"max_results": "size", "page_token": "str"},
            {"webhooks": "objs", "next_page_token": "str"},
        ),
    },
    v.WebhookView: {
        "get": Op("Get a webhook", answer={"webhook": "obj"}),
        "patch": Op("Update a webhook", FIELDS, {"webhook": "obj"}),
        "delete": Op("Delete a webhook"),
    },
    v.WebhookTestView: {"post": Op("Send a test event", {"event": "obj"}, {"result": "obj"})},
}

mlflow_schema("MlflowWebhook", OPERATIONS, tags=["mlflow webhooks"])
