"""catalog/sql.py's statements on the suite's database (SQLite here, PostgreSQL in CI's first
phase): each answer checked against the same facts read through the ORM."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.db import connection

from catalog import securables, sql
from catalog.models import Catalog, Schema
from catalog.privileges import Privilege, SecurableType
from registry.models import RegisteredModel


def _db_id(node):
    user_table, _ = _tables(node.securable_type)
    field = user_table._meta.get_field("content_object").target_field
    return field.get_db_prep_value(node.pk, connection)


def _tables(securable_type):
    kind = securables.kind(securable_type)
    return kind.user_grants, kind.group_grants


@pytest.fixture
def world(tree, make_user, grant):
    tree("c1.s1.m1", "c1.s2.m2", "c2.s3.m3")
    alice = make_user("alice", groups=("team",))
    make_user("bob")
    team = Group.objects.get(name="team")
    grant("catalog", "c1", "alice", "USE CATALOG", "USE SCHEMA")
    grant("schema", "c1.s1", "team", "EXECUTE")
    grant("registered_model", "c1.s1.m1", "alice", "MODIFY")
    grant("registered_model", "c1.s1.m1", "bob", "MANAGE")  # someone else's: never listed
    Schema.objects.filter(full_name="c1.s2").update(owner_user=None, owner_group=team)
    Catalog.objects.filter(name="c2").update(owner_user=alice, owner_group=None)
    return alice, team


@pytest.mark.django_db
def test_chain_grants_lists_each_grant_of_the_user_and_groups_on_each_target(world):
    alice, team = world
    chain = [
        Catalog.objects.get(name="c1"),
        Schema.objects.get(full_name="c1.s1"),
        RegisteredModel.objects.get(full_name="c1.s1.m1"),
    ]
    targets = [(*_tables(node.securable_type), _db_id(node)) for node in chain]
    rows = sql.chain_grants(alice.pk, [team.pk], targets)
    assert sorted(rows) == [
        (0, "use_catalog"),
        (0, "use_schema"),
        (1, "execute"),
        (2, "modify"),
    ]
    assert sql.chain_grants(alice.pk, [], targets[1:2]) == []  # the schema grant is the team's
    assert sorted(sql.chain_grants(None, [team.pk], targets)) == [(1, "execute")]
    assert sql.chain_grants(None, [], targets) == []


@pytest.mark.django_db
def test_level_grants_lists_grants_and_ownerships_with_parents(world):
    alice, team = world
    levels = [
        (Catalog, None, *_tables(SecurableType.CATALOG)),
        (Schema, "catalog", *_tables(SecurableType.SCHEMA)),
    ]
    rows = sql.level_grants(alice.pk, [team.pk], levels, Privilege.ALL_PRIVILEGES.codename)
    c1, c2 = Catalog.objects.get(name="c1"), Catalog.objects.get(name="c2")
    s1, s2 = Schema.objects.get(full_name="c1.s1"), Schema.objects.get(full_name="c1.s2")
    as_id = Catalog._meta.pk.to_python  # the database's form of a UUID back to one
    got = sorted((lv, str(as_id(pk)), str(as_id(parent)), code) for lv, pk, parent, code in rows)
    assert got == sorted(
        [
            (0, str(c1.pk), str(c1.pk), "use_catalog"),
            (0, str(c1.pk), str(c1.pk), "use_schema"),
            (0, str(c2.pk), str(c2.pk), "all_privileges"),  # alice owns c2
            (1, str(s1.pk), str(c1.pk), "execute"),  # the team's grant
            (1, str(s2.pk), str(c1.pk), "all_privileges"),  # the team owns s2
        ]
    )
    assert sql.level_grants(None, [], levels, "all_privileges") == []
