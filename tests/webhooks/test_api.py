"""The native webhook API (/api/v1/webhooks) and the MLflow door (/api/2.0/mlflow/webhooks)
through HTTP: shapes, clean 400s for bad input, who may manage what, the audit trail, and
deliveries listed with their outcomes."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from webhooks.models import Webhook, WebhookDelivery

pytestmark = pytest.mark.django_db

V1 = "/api/v1/webhooks"
ML = "/api/2.0/mlflow/webhooks"


def body(**overrides) -> dict:
    data = {
        "name": "ci-hook",
        "url": "https://hooks.example.com/steward",
        "events": ["model_version.created", "promotion_request.applied"],
        "secret": "top-secret",
        "description": "tell CI",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.fixture
def admin(api_as, admin_user):
    return api_as(admin_user)


@pytest.fixture
def people(make_user, grant, tree):
    """mona manages catalog c; rita may only read in it; nobody has no grants."""
    tree("c.s.m", "d.s.m")
    users = {n: make_user(n) for n in ("mona", "rita", "nobody")}
    grant("catalog", "c", "mona", "USE CATALOG", "USE SCHEMA", "MANAGE")
    grant("catalog", "c", "rita", "USE CATALOG", "USE SCHEMA", "BROWSE")
    return users


# --- native API ------------------------------------------------------------------------------


def test_create_read_update_delete(admin, admin_user):
    created = admin.post(V1, body(), format="json")
    assert created.status_code == 201, created.content
    out = created.json()
    assert out["securable_type"] == "metastore" and out["full_name"] is None
    assert (
        out["signed"] is True
        and "secret" not in out
        and "top-secret" not in created.content.decode()
    )
    assert out["events"] == ["model_version.created", "promotion_request.applied"]
    hook_id = out["id"]

    assert admin.get(f"{V1}/{hook_id}").json()["name"] == "ci-hook"
    assert [h["id"] for h in admin.get(V1).json()["webhooks"]] == [hook_id]

    patched = admin.patch(
        f"{V1}/{hook_id}", {"status": "DISABLED", "secret": "", "name": "renamed"}, format="json"
    )
    assert patched.status_code == 200, patched.content
    assert (patched.json()["status"], patched.json()["signed"]) == ("DISABLED", False)

    assert admin.delete(f"{V1}/{hook_id}").status_code == 204
    assert admin.get(f"{V1}/{hook_id}").status_code == 404
    actions = list(
        AuditEvent.objects.filter(action__startswith="webhook.", outcome="SUCCESS").values_list(
            "action", "actor"
        )
    )
    assert actions == [
        ("webhook.create", "root"),
        ("webhook.update", "root"),
        ("webhook.delete", "root"),
    ]
    update = AuditEvent.objects.get(action="webhook.update")
    assert update.details["signed"] is False and "top-secret" not in str(update.details)


@pytest.mark.parametrize(
    ("payload", "code", "words"),
    [
        (body(extra=1), "INVALID_PARAMETER_VALUE", "Unknown field"),
        (body(events="model_version.created"), "INVALID_PARAMETER_VALUE", "events"),
        (body(events=[]), "INVALID_PARAMETER_VALUE", "non-empty"),
        (body(events=["model_version.exploded"]), "INVALID_PARAMETER_VALUE", "Unknown event"),
        (body(events=["prompt.created"]), "INVALID_PARAMETER_VALUE", "does not serve"),
        (body(events=[1]), "INVALID_PARAMETER_VALUE", "events"),
        (body(name="-bad-"), "INVALID_PARAMETER_VALUE", "name"),
        (body(name=5), "INVALID_PARAMETER_VALUE", "name"),
        (body(url="http://hooks.example.com/"), "INVALID_PARAMETER_VALUE", "scheme"),
        (body(url="https://127.0.0.1/"), "INVALID_PARAMETER_VALUE", "loopback"),
        (body(url="https://[fe80::1]/"), "INVALID_PARAMETER_VALUE", "link-local"),
        (body(url="https://169.254.169.254/"), "INVALID_PARAMETER_VALUE", "link-local"),
        (body(url="https://u:p@hooks.example.com/"), "INVALID_PARAMETER_VALUE", "credentials"),
        (body(url="https://0x7f.1/"), "INVALID_PARAMETER_VALUE", "canonical"),
        (body(secret=123), "INVALID_PARAMETER_VALUE", "secret"),
        (body(secret="a\x00b"), "INVALID_PARAMETER_VALUE", "NUL"),
        (body(status="PAUSED"), "INVALID_PARAMETER_VALUE", "status"),
        (body(securable_type="catalog"), "INVALID_PARAMETER_VALUE", "go together"),
        (body(securable_type="catalog", full_name="nope"), "RESOURCE_DOES_NOT_EXIST", "nope"),
        (body(securable_type="planet", full_name="c"), "INVALID_PARAMETER_VALUE", ""),
    ],
)
def test_bad_input_is_a_clean_error(admin, people, payload, code, words):
    response = admin.post(V1, payload, format="json")
    assert response.status_code in (400, 404), response.content
    assert response.json()["error_code"] == code and words in response.json()["message"]
    assert Webhook.objects.count() == 0


@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [
        ("null", "application/json", 400),
        ("[]", "application/json", 400),
        ("{bad", "application/json", 400),
        ('{"name": "a", "name": "b"}', "application/json", 400),
        ("name=a", "application/x-www-form-urlencoded", 415),
    ],
)
def test_malformed_bodies_are_refused(admin, raw, content_type, status):
    response = admin.generic("POST", V1, raw, content_type=content_type)
    assert response.status_code == status and set(response.json()) == {"error_code", "message"}


def test_only_admins_subscribe_metastore_wide(api_as, people):
    response = api_as(people["mona"]).post(V1, body(), format="json")
    assert response.status_code == 403 and response.json()["error_code"] == "PERMISSION_DENIED"
    assert AuditEvent.objects.filter(action="webhook.create", outcome="DENIED").exists()


def test_manage_holders_manage_their_scope_and_see_only_that(api_as, admin, people):
    mona, rita, nobody = (api_as(people[n]) for n in ("mona", "rita", "nobody"))
    admin_hook = admin.post(V1, body(), format="json").json()["id"]
    created = mona.post(V1, body(securable_type="catalog", full_name="c"), format="json")
    assert created.status_code == 201, created.content
    hook_id = created.json()["id"]
    assert (created.json()["securable_type"], created.json()["full_name"]) == ("catalog", "c")
    scoped_to_model = mona.post(
        V1, body(securable_type="registered_model", full_name="c.s.m"), format="json"
    )
    assert scoped_to_model.status_code == 201
    # A catalog mona cannot manage: refused (d is hidden from her: 404).
    other = mona.post(V1, body(securable_type="catalog", full_name="d"), format="json")
    assert other.status_code == 404

    assert {h["id"] for h in mona.get(V1).json()["webhooks"]} == {
        hook_id,
        scoped_to_model.json()["id"],
    }
    assert mona.get(f"{V1}/{admin_hook}").status_code == 404
    filtered = mona.get(V1, {"securable_type": "catalog", "full_name": "c"}).json()["webhooks"]
    assert [h["id"] for h in filtered] == [hook_id]
    # Readers and strangers: nothing to list, and the webhook "does not exist".
    for client in (rita, nobody):
        assert client.get(V1).json()["webhooks"] == []
        assert client.get(f"{V1}/{hook_id}").status_code == 404
        assert client.patch(f"{V1}/{hook_id}", {"name": "x"}, format="json").status_code == 404
        assert client.delete(f"{V1}/{hook_id}").status_code == 404
        assert client.get(f"{V1}/{hook_id}/deliveries").status_code == 404
    assert AuditEvent.objects.filter(action="webhook.get", outcome="DENIED", actor="rita").exists()
    # A read-only token of the manager reads but cannot write.
    reader = api_as(people["mona"], scope="read")
    assert reader.get(f"{V1}/{hook_id}").status_code == 200
    assert reader.patch(f"{V1}/{hook_id}", {"name": "x"}, format="json").status_code == 403
    assert (
        reader.post(V1, body(securable_type="catalog", full_name="c"), format="json").status_code
        == 403
    )


def test_deliveries_are_listed_with_their_outcomes(admin, admin_actor, people, receiver, allow):
    from registry import services as registry

    r = receiver(status=503)
    allow(r)
    hook_id = admin.post(
        V1,
        body(
            url=r.url(),
            events=["registered_model.created"],
            securable_type="schema",
            full_name="c.s",
        ),
        format="json",
    ).json()["id"]
    for name in ("a", "b", "c"):
        registry.registered_model_create(
            actor=admin_actor, catalog_name="c", schema_name="s", name=name
        )
    from webhooks import services

    first = WebhookDelivery.objects.order_by("created_at").first()
    services.delivery_attempt(first.pk)

    page = admin.get(f"{V1}/{hook_id}/deliveries", {"max_results": 2}).json()
    assert len(page["deliveries"]) == 2 and page["next_page_token"]
    rest = admin.get(
        f"{V1}/{hook_id}/deliveries", {"max_results": 2, "page_token": page["next_page_token"]}
    ).json()
    assert rest["next_page_token"] is None
    listed = page["deliveries"] + rest["deliveries"]
    assert [d["payload"]["data"]["name"] for d in listed] == ["c.s.c", "c.s.b", "c.s.a"]
    attempted = listed[-1]
    assert attempted["status"] == "PENDING" and attempted["attempts"] == 1
    assert attempted["last_status_code"] == 503 and attempted["next_attempt_at"]
    assert attempted["attempt_log"][0]["status_code"] == 503
    pending = admin.get(f"{V1}/{hook_id}/deliveries", {"status": "PENDING"}).json()
    assert len(pending["deliveries"]) == 3
    bad = admin.get(f"{V1}/{hook_id}/deliveries", {"status": "LOST"})
    assert bad.status_code == 400
    forged = admin.get(f"{V1}/{hook_id}/deliveries", {"page_token": "bm9wZQ"})
    assert forged.status_code == 400


def test_test_endpoint_sends_an_example_now(admin, receiver, allow):
    r = receiver()
    allow(r)
    hook_id = admin.post(V1, body(url=r.url()), format="json").json()["id"]
    result = admin.post(
        f"{V1}/{hook_id}/test", {"event": "promotion_request.applied"}, format="json"
    )
    assert result.status_code == 200, result.content
    out = result.json()
    assert out["status"] == "SUCCEEDED" and out["is_test"] is True
    (got,) = r.requests
    assert got.signed_with("top-secret") and got.json["entity"] == "promotion_request"
    assert AuditEvent.objects.filter(action="webhook.test").count() == 1
    bad = admin.post(f"{V1}/{hook_id}/test", {"event": "nope.nope"}, format="json")
    assert bad.status_code == 400


def test_test_endpoint_reports_a_refused_address(admin, receiver, allow):
    r = receiver()
    allow()  # http allowed, but no address is
    hook_id = admin.post(V1, body(url=r.url(host="localhost")), format="json").json()["id"]
    out = admin.post(f"{V1}/{hook_id}/test", {}, format="json").json()
    assert out["status"] == "REFUSED" and "loopback" in out["last_error"]
    assert r.requests == []


def test_schema_documents_the_webhook_api(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").content.decode()
    assert "/api/v1/webhooks/{webhook_id}/deliveries" in schema
    assert "/api/2.0/mlflow/webhooks" in schema  # every door is documented (issue 12)


# --- the MLflow door --------------------------------------------------------------------------


def ml_body(**overrides) -> dict:
    data = {
        "name": "mlflow-hook",
        "url": "https://hooks.example.com/mlflow",
        "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}],
        "secret": "s",
        "status": "ACTIVE",
    }
    data.update(overrides)
    return data


def test_mlflow_door_shapes(admin):
    created = admin.post(ML, ml_body(description="d"), format="json")
    assert created.status_code == 200, created.content
    hook = created.json()["webhook"]
    assert set(hook) == {
        "webhook_id",
        "name",
        "description",
        "url",
        "events",
        "status",
        "creation_timestamp",
        "last_updated_timestamp",
    }
    assert hook["events"] == [{"entity": "MODEL_VERSION", "action": "CREATED"}]
    hook_id = hook["webhook_id"]
    assert admin.get(f"{ML}/{hook_id}").json() == {"webhook": hook}
    listed = admin.get(ML, {"max_results": 10}).json()
    assert listed == {"webhooks": [hook]}
    updated = admin.patch(
        f"{ML}/{hook_id}",
        {"events": [{"entity": "MODEL_VERSION_TAG", "action": "SET"}], "status": "DISABLED"},
        format="json",
    ).json()["webhook"]
    assert updated["status"] == "DISABLED"
    assert updated["events"] == [{"entity": "MODEL_VERSION_TAG", "action": "SET"}]
    assert admin.delete(f"{ML}/{hook_id}", {}, format="json").json() == {}
    missing = admin.get(f"{ML}/{hook_id}")
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_mlflow_door_keeps_stewards_events_out_of_sight(admin):
    steward_only = admin.post(V1, body(events=["promotion_request.created"]), format="json")
    mixed = admin.post(
        V1, body(events=["promotion_request.applied", "model_version.created"]), format="json"
    )
    listed = admin.get(ML).json()["webhooks"]
    assert [h["webhook_id"] for h in listed] == [mixed.json()["id"]]
    hidden = steward_only.json()["id"]
    assert admin.get(f"{ML}/{hidden}").status_code == 404
    # Not shown, so not writable through this door either (nothing applied, then a 404).
    assert admin.patch(f"{ML}/{hidden}", {"name": "x"}, format="json").status_code == 404
    assert admin.delete(f"{ML}/{hidden}", {}, format="json").status_code == 404
    assert Webhook.objects.get(pk=hidden).name == "ci-hook"
    admin.patch(
        f"{ML}/{mixed.json()['id']}",
        {"events": [{"entity": "REGISTERED_MODEL", "action": "CREATED"}]},
        format="json",
    )
    assert Webhook.objects.get(pk=mixed.json()["id"]).events == [
        "registered_model.created",
        "promotion_request.applied",
    ]


@pytest.mark.parametrize(
    "payload",
    [
        ml_body(events=[{"entity": "PROMPT", "action": "CREATED"}]),
        ml_body(events=[{"entity": "MODEL_VERSION", "action": "EXCEEDED"}]),
        ml_body(events=[{"entity": "SPACESHIP", "action": "CREATED"}]),
        ml_body(events=[{"entity": "MODEL_VERSION"}]),
        ml_body(events={"entity": "MODEL_VERSION", "action": "CREATED"}),
        ml_body(events=[]),
        ml_body(status="SLEEPING"),
        ml_body(url="https://10.0.0.8/hook"),
        ml_body(name=""),
    ],
)
def test_mlflow_door_bad_input(admin, payload):
    response = admin.post(ML, payload, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_mlflow_door_is_for_admins(api_as, people):
    response = api_as(people["mona"]).post(ML, ml_body(), format="json")
    assert response.status_code == 403 and response.json()["error_code"] == "PERMISSION_DENIED"


def test_mlflow_door_pages(admin):
    for n in range(3):
        admin.post(ML, ml_body(name=f"h{n}"), format="json")
    first = admin.get(ML, {"max_results": 2}).json()
    assert len(first["webhooks"]) == 2 and first["next_page_token"]
    second = admin.get(ML, {"max_results": 2, "page_token": first["next_page_token"]}).json()
    assert len(second["webhooks"]) == 1 and "next_page_token" not in second
