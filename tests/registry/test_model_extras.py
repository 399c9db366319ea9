"""`selectors.model_extras`: what rendering registered models needs (tags, aliases, latest
version per stage with its tags and aliases) in one raw statement, checked against the same
facts read the plain ORM way, on models with every combination the statement distinguishes."""

from __future__ import annotations

import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry import selectors
from registry.models import (
    ModelAlias,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelTag,
)
from registry.selectors.search import STAGE_ORDER

pytestmark = pytest.mark.django_db

Stage, Lifecycle, Status = ModelVersion.Stage, ModelVersion.Lifecycle, ModelVersion.Status


def reference(models, stages=None):
    """The facts model_extras must return, read one query at a time through the ORM."""
    stages = list(stages or STAGE_ORDER)
    tags, aliases, latest, version_aliases = {}, {}, {}, {}
    for model in models:
        found = sorted(RegisteredModelTag.objects.filter(model=model).values_list("key", "value"))
        if found:
            tags[model.pk] = found
        found = sorted(
            ModelAlias.objects.filter(model=model).values_list("alias", "version__version")
        )
        if found:
            aliases[model.pk] = found
        versions = []
        for stage in stages:
            newest = (
                ModelVersion.objects.filter(model=model, stage=stage, lifecycle=Lifecycle.ACTIVE)
                .order_by("-version")
                .first()
            )
            if newest is not None:
                versions.append(newest)
        if versions:
            latest[model.pk] = [
                (
                    v.pk,
                    v.version,
                    v.stage,
                    sorted(v.tags.values_list("key", "value")),
                )
                for v in versions
            ]
            for v in versions:
                names = sorted(v.aliases.values_list("alias", flat=True))
                if names:
                    version_aliases[v.pk] = names
    return tags, aliases, latest, version_aliases


def flatten(extras):
    latest = {
        model_id: [
            (v.pk, v.version, v.stage, [(t.key, t.value) for t in v.tags.all()]) for v in versions
        ]
        for model_id, versions in extras.latest.items()
    }
    return extras.tags, extras.aliases, latest, extras.version_aliases


@pytest.fixture
def models(tree):
    """Six models: no versions at all; versions but nothing else; and four with random
    stages, lifecycles, tags and aliases (a fixed seed)."""
    rnd = random.Random(7)
    names = tree(*(f"main.extras.m{i}" for i in range(6)))
    out = [RegisteredModel.objects.get(full_name=n) for n in names]
    for i, model in enumerate(out[1:], start=1):
        for number in range(1, 13):
            version = ModelVersion.objects.create(
                model=model,
                version=number,
                status=Status.READY,
                stage=rnd.choice(list(Stage)) if i > 1 else Stage.NONE,
                lifecycle=rnd.choice(
                    [Lifecycle.ACTIVE, Lifecycle.ACTIVE, Lifecycle.ARCHIVED, Lifecycle.DELETED]
                ),
                source=f"models:/m-{i}-{number}",
            )
            if i > 1:
                for k in rnd.sample(["b", "a", "c", "z"], rnd.randint(0, 3)):
                    ModelVersionTag.objects.create(version=version, key=k, value=f"{k}{number}")
                if rnd.random() < 0.3:
                    ModelAlias.objects.create(model=model, alias=f"al{number}", version=version)
        if i > 1:
            for k in rnd.sample(["team", "domain", "a", "x"], rnd.randint(1, 4)):
                RegisteredModelTag.objects.create(model=model, key=k, value=f"{k}-{i}")
    return out


def test_model_extras_equals_the_orm_reading(models):
    with CaptureQueriesContext(connection) as queries:
        extras = selectors.model_extras(models)
    assert len(queries) == 1
    assert flatten(extras) == reference(models)
    assert extras.latest  # the data set is not empty
    assert extras.version_aliases and extras.tags and extras.aliases


@pytest.mark.parametrize("stages", [["Production"], ["Staging", "None"], ["Archived"]])
def test_model_extras_for_some_stages_in_the_asked_order(models, stages):
    extras = selectors.model_extras(models, stages)
    assert flatten(extras) == reference(models, stages)
    for versions in extras.latest.values():
        present = {v.stage for v in versions}
        assert [v.stage for v in versions] == [s for s in stages if s in present]


def test_model_extras_of_one_model_and_of_none(models):
    one = models[3]
    assert flatten(selectors.model_extras([one])) == reference([one])
    empty = selectors.model_extras([])
    assert (empty.tags, empty.aliases, empty.latest, empty.version_aliases) == ({}, {}, {}, {})


def test_version_extras_loads_tags_and_aliases_of_a_page_in_one_statement(models):
    versions = list(ModelVersion.objects.filter(model__in=models).order_by("model_id", "version"))
    assert len(versions) > 20
    with CaptureQueriesContext(connection) as queries:
        aliases = selectors.version_extras(versions)
        tags = {v.pk: [(t.key, t.value) for t in v.tags.all()] for v in versions}
    assert len(queries) == 1
    assert aliases == selectors.aliases_of([v.pk for v in versions])
    assert any(aliases.values())
    for version in versions:
        assert tags[version.pk] == sorted(
            ModelVersionTag.objects.filter(version=version).values_list("key", "value")
        )
    assert any(tags.values())
    assert selectors.version_extras([]) == {}
