"""A denial on the metastore names it as people know it: by its name, not by its id."""

from __future__ import annotations

import pytest

from catalog.selectors import metastore

pytestmark = pytest.mark.django_db

UC = "/api/2.1/unity-catalog"


def test_create_catalog_denial_names_the_metastore_by_name(make_user, api_as, settings):
    store = metastore()
    bob = make_user("bob")
    response = api_as(bob).post(f"{UC}/catalogs", {"name": "ml"}, format="json")
    assert response.status_code == 403
    body = response.json()
    assert body["error_code"] == "PERMISSION_DENIED"
    assert body["message"] == (
        f"User 'bob' does not have CREATE CATALOG on metastore '{settings.STEWARD_METASTORE_NAME}'."
    )
    assert str(store.id) not in body["message"]
