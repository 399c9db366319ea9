"""`search_model_versions` with `name = '<model>'` (what the mlflow client sends for one
model's versions) looks that model up and checks it alone instead of filtering by every
visible model: it must answer exactly what the general filter answers (`name IN ('<model>')`
takes the general path, with the same name rules), for every kind of caller and name."""

from __future__ import annotations

import pytest

from registry.models import ModelVersion, RegisteredModel

pytestmark = pytest.mark.django_db

ML = "/api/2.0/mlflow"

NAMES = [
    "main.ml.wine",  # visible to dana (catalog and schema grants)
    "MAIN.ML.Wine",  # the same, in other case
    "wine",  # bare: the default namespace main.default
    "main.ml.secret",  # in a visible schema, but dana holds nothing on the model
    "other.s.hidden",  # a catalog dana may not use
    "main.ml.nothing",  # does not exist
    "main.ml",  # not a model name
    "a.b.c.d",
]


@pytest.fixture
def world(tree, make_user, grant, admin_actor):
    tree("main.default.wine", "main.ml.wine", "main.ml.secret", "other.s.hidden")
    dana, eve = make_user("dana"), make_user("eve")
    grant("catalog", "main", "dana", "USE CATALOG")
    grant("schema", "main.ml", "dana", "USE SCHEMA", "EXECUTE")
    grant("schema", "main.default", "dana", "USE SCHEMA", "EXECUTE")
    grant("registered_model", "main.ml.secret", "eve", "EXECUTE")  # no USE gates: hidden
    for model in RegisteredModel.objects.all():
        for number in (1, 2, 3):
            ModelVersion.objects.create(
                model=model,
                version=number,
                status=ModelVersion.Status.READY,
                lifecycle=(
                    ModelVersion.Lifecycle.DELETED if number == 2 else ModelVersion.Lifecycle.ACTIVE
                ),
                source=f"models:/m-{number}",
            )
    return dana, eve, make_user("boss", admin=True)


def search(client, filter_string):
    r = client.get(f"{ML}/model-versions/search", {"filter": filter_string, "max_results": 50})
    assert r.status_code == 200, r.content
    return [(v["name"], v["version"]) for v in r.json().get("model_versions", [])]


@pytest.mark.parametrize("name", NAMES)
def test_name_equality_answers_what_the_general_filter_answers(world, api_as, name):
    found_any = False
    for user in world:
        client = api_as(user)
        fast = search(client, f"name = '{name}'")
        general = search(client, f"name IN ('{name}')")
        assert fast == general, (user.username, name)
        narrowed = search(client, f"name = '{name}' AND version_number > 1")
        assert narrowed == [v for v in general if int(v[1]) > 1]
        found_any |= bool(fast)
    if name.lower() in {"main.ml.wine", "wine", "main.ml.secret", "other.s.hidden"}:
        assert found_any  # someone (at least the admin) sees its live versions
        # the tombstone (version 2) is never listed
        assert all(v != "2" for _, v in search(api_as(world[2]), f"name = '{name}'"))


def test_a_model_the_caller_cannot_see_is_an_empty_answer_not_an_error(world, api_as):
    dana, eve, _ = world
    assert search(api_as(dana), "name = 'other.s.hidden'") == []
    assert search(api_as(eve), "name = 'main.ml.secret'") == []
    assert search(api_as(dana), "name = 'main.ml.wine'") == [
        ("main.ml.wine", "3"),
        ("main.ml.wine", "1"),
    ]
