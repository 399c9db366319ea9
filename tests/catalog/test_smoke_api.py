"""End-to-end through the UC door for the basic lifecycle (more detailed suites live beside)."""

import pytest

UC = "/api/2.1/unity-catalog"


@pytest.mark.django_db
def test_catalog_schema_model_lifecycle(admin_user, api_as):
    api = api_as(admin_user)
    assert api.post(f"{UC}/catalogs", {"name": "Main"}, format="json").json()["name"] == "main"
    r = api.post(f"{UC}/schemas", {"name": "ml", "catalog_name": "main"}, format="json")
    assert r.status_code == 200 and r.json()["full_name"] == "main.ml"
    r = api.post(
        f"{UC}/models",
        {"name": "churn", "catalog_name": "main", "schema_name": "ml"},
        format="json",
    )
    assert r.json()["full_name"] == "main.ml.churn"
    r = api.delete(f"{UC}/catalogs/main")
    assert r.status_code == 400 and r.json()["error_code"] == "FAILED_PRECONDITION"
    assert api.delete(f"{UC}/catalogs/main?force=true").status_code == 200
    assert api.get(f"{UC}/models/main.ml.churn").status_code == 404
