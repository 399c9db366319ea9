"""Who may do what with experiments, runs and logged models (tracking.selectors rules), checked
at the service layer: owner, shares at each level to users and (nested) groups, admins,
strangers (404, no existence leak), readers trying to write (403), revocation, read-only
tokens, and the selectors the registry calls."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from accounts.models import GroupNesting
from audit.models import AuditEvent
from core.errors import NotFound, PermissionDenied
from tests.tracking.conftest import actor, share
from tracking import selectors, services
from tracking.models import Experiment, Metric, Param, Run

pytestmark = pytest.mark.django_db


def _log(user, run, key="acc", value=0.5):
    services.run_log_metric(actor=actor(user), run_id=run.run_id, key=key, value=value, timestamp=1)


def _model(user, experiment, run=None):
    return services.logged_model_create(
        actor=actor(user),
        experiment_id=experiment.experiment_id,
        name="model",
        source_run_id=run.run_id if run else None,
    )


def test_owner_holds_every_level(alice, carol, experiment, run):
    _log(alice, run)
    services.run_log_param(actor=actor(alice), run_id=run.run_id, key="C", value="1")
    model = _model(alice, experiment, run)
    services.logged_model_finalize(
        actor=actor(alice), model_id=model.model_id, status="LOGGED_MODEL_READY"
    )
    share(alice, experiment, "carol", "CAN_READ")
    services.run_delete(actor=actor(alice), run_id=run.run_id)
    services.experiment_delete(actor=actor(alice), experiment_id=experiment.experiment_id)
    services.experiment_restore(actor=actor(alice), experiment_id=experiment.experiment_id)
    assert selectors.experiment_get(actor=actor(alice), experiment_id=experiment.experiment_id)


def test_stranger_gets_not_found_for_everything_and_changes_nothing(alice, carol, experiment, run):
    _log(alice, run)
    model = _model(alice, experiment, run)
    stranger = actor(carol)
    attempts = [
        lambda: selectors.experiment_get(actor=stranger, experiment_id=experiment.experiment_id),
        lambda: selectors.experiment_get_by_name(actor=stranger, name="exp"),
        lambda: selectors.run_get(actor=stranger, run_id=run.run_id),
        lambda: selectors.metric_history(actor=stranger, run_id=run.run_id, metric_key="acc"),
        lambda: selectors.logged_model_get(actor=stranger, model_id=model.model_id),
        lambda: services.run_create(actor=stranger, experiment_id=experiment.experiment_id),
        lambda: _log(carol, run, value=0.99),
        lambda: services.run_log_param(actor=stranger, run_id=run.run_id, key="x", value="1"),
        lambda: services.run_tag_set(actor=stranger, run_id=run.run_id, key="x", value="1"),
        lambda: services.run_update(actor=stranger, run_id=run.run_id, status="KILLED"),
        lambda: services.run_delete(actor=stranger, run_id=run.run_id),
        lambda: services.experiment_update(
            actor=stranger, experiment_id=experiment.experiment_id, new_name="mine"
        ),
        lambda: services.experiment_delete(actor=stranger, experiment_id=experiment.experiment_id),
        lambda: services.experiment_permission_set(
            actor=stranger,
            experiment_id=experiment.experiment_id,
            principal="carol",
            level="CAN_MANAGE",
        ),
        lambda: services.logged_model_finalize(
            actor=stranger, model_id=model.model_id, status="LOGGED_MODEL_READY"
        ),
        lambda: services.logged_model_tags_set(
            actor=stranger, model_id=model.model_id, tags=[{"key": "k", "value": "v"}]
        ),
        lambda: services.logged_model_create(
            actor=stranger, experiment_id=experiment.experiment_id
        ),
    ]
    for attempt in attempts:
        with pytest.raises(NotFound):
            attempt()
    run.refresh_from_db()
    assert run.status == "RUNNING" and run.is_active
    assert list(Metric.objects.filter(run=run).values_list("value", flat=True)) == [0.5]
    assert not Param.objects.filter(run=run).exists()
    assert Experiment.objects.get().name == "exp"


def test_hidden_and_missing_answer_the_same(alice, carol, experiment):
    stranger = actor(carol)
    with pytest.raises(NotFound) as hidden:
        selectors.experiment_get(actor=stranger, experiment_id=experiment.experiment_id)
    with pytest.raises(NotFound) as missing:
        selectors.experiment_get(actor=stranger, experiment_id="999999")
    assert hidden.value.message.replace(experiment.experiment_id, "N") == (
        missing.value.message.replace("999999", "N")
    )


def test_reader_reads_but_cannot_write(alice, carol, experiment, run):
    _log(alice, run)
    share(alice, experiment, "carol", "CAN_READ")
    reader = actor(carol)
    assert selectors.run_get(actor=reader, run_id=run.run_id).run_id == run.run_id
    items, _ = selectors.run_search(actor=reader, experiment_ids=[experiment.experiment_id])
    assert [r.run_id for r in items] == [run.run_id]
    writes = [
        lambda: _log(carol, run, value=0.99),
        lambda: services.run_create(actor=reader, experiment_id=experiment.experiment_id),
        lambda: services.run_tag_set(actor=reader, run_id=run.run_id, key="x", value="1"),
        lambda: services.experiment_tag_set(
            actor=reader, experiment_id=experiment.experiment_id, key="k", value="v"
        ),
        lambda: services.logged_model_create(actor=reader, experiment_id=experiment.experiment_id),
        lambda: services.experiment_delete(actor=reader, experiment_id=experiment.experiment_id),
    ]
    for write in writes:
        with pytest.raises(PermissionDenied):
            write()
    assert Metric.objects.filter(run=run).count() == 1
    assert Run.objects.count() == 1


def test_editor_writes_but_cannot_delete_or_share(alice, carol, experiment, run):
    share(alice, experiment, "carol", "CAN_EDIT")
    editor = actor(carol)
    _log(carol, run, value=0.7)
    own = services.run_create(actor=editor, experiment_id=experiment.experiment_id)
    assert own.user_id == "carol" and own.owner == carol
    model = _model(carol, experiment, own)
    services.logged_model_finalize(
        actor=editor, model_id=model.model_id, status="LOGGED_MODEL_READY"
    )
    services.experiment_update(
        actor=editor, experiment_id=experiment.experiment_id, new_name="renamed"
    )
    for attempt in [
        lambda: services.run_delete(actor=editor, run_id=run.run_id),
        lambda: services.run_delete(actor=editor, run_id=own.run_id),
        lambda: services.experiment_delete(actor=editor, experiment_id=experiment.experiment_id),
        lambda: services.logged_model_delete(actor=editor, model_id=model.model_id),
        lambda: services.experiment_permission_set(
            actor=editor,
            experiment_id=experiment.experiment_id,
            principal="carol",
            level="CAN_MANAGE",
        ),
        lambda: selectors.experiment_permissions(
            actor=editor, experiment_id=experiment.experiment_id
        ),
    ]:
        with pytest.raises(PermissionDenied):
            attempt()


def test_manager_deletes_and_shares(alice, bob, carol, experiment, run):
    share(alice, experiment, "carol", "CAN_MANAGE")
    manager = actor(carol)
    share(carol, experiment, "bob", "CAN_READ")
    assert selectors.experiment_get(actor=actor(bob), experiment_id=experiment.experiment_id)
    services.run_delete(actor=manager, run_id=run.run_id)
    services.run_restore(actor=manager, run_id=run.run_id)
    services.experiment_delete(actor=manager, experiment_id=experiment.experiment_id)


def test_group_share_reaches_members_and_nested_groups(alice, make_user, experiment, run):
    parent = Group.objects.create(name="ml_platform")
    child = Group.objects.create(name="ml_interns")
    GroupNesting.objects.create(parent=parent, child=child)
    member = make_user("dave", groups=("ml_platform",))
    intern = make_user("erin", groups=("ml_interns",))
    outsider = make_user("frank", groups=("other",))
    share(alice, experiment, "ml_platform", "CAN_EDIT")
    _log(member, run, value=0.1)
    _log(intern, run, value=0.2)
    with pytest.raises(NotFound):
        _log(outsider, run)


def test_highest_of_user_and_group_levels_wins(alice, bob, experiment, run):
    share(alice, experiment, "bob", "CAN_READ")
    share(alice, experiment, "data_science", "CAN_EDIT")  # bob's group
    _log(bob, run)
    with pytest.raises(PermissionDenied):
        services.run_delete(actor=actor(bob), run_id=run.run_id)


def test_admin_sees_and_manages_everything(alice, carol, admin_user, experiment, run):
    admin = actor(admin_user)
    items, _ = selectors.experiment_search(actor=admin)
    assert [e.name for e in items] == ["exp"]
    _log(admin_user, run)
    services.run_delete(actor=admin, run_id=run.run_id)
    share(admin_user, experiment, "carol", "CAN_READ")
    services.experiment_delete(actor=admin, experiment_id=experiment.experiment_id)


def test_revoking_takes_effect_on_the_next_call(alice, carol, experiment, run):
    share(alice, experiment, "carol", "CAN_EDIT")
    _log(carol, run)
    services.experiment_permission_remove(
        actor=actor(alice), experiment_id=experiment.experiment_id, principal="carol"
    )
    with pytest.raises(NotFound):
        _log(carol, run)
    with pytest.raises(NotFound):
        selectors.run_get(actor=actor(carol), run_id=run.run_id)


def test_lists_and_searches_show_only_what_the_actor_may_read(alice, bob, carol):
    for name, owner in [("a1", alice), ("a2", alice), ("b1", bob)]:
        services.experiment_create(actor=actor(owner), name=name)
    shared = Experiment.objects.get(name="a2")
    share(alice, shared, "carol", "CAN_READ")
    runs = {
        e.name: services.run_create(actor=actor(e.owner), experiment_id=e.experiment_id)
        for e in Experiment.objects.all()
    }
    items, token = selectors.experiment_search(actor=actor(carol))
    assert [e.name for e in items] == ["a2"] and token is None
    items, _ = selectors.experiment_search(actor=actor(carol), filter="name LIKE 'a%'")
    assert [e.name for e in items] == ["a2"]
    all_ids = [e.experiment_id for e in Experiment.objects.all()]
    found, _ = selectors.run_search(actor=actor(carol), experiment_ids=all_ids)
    assert [r.run_id for r in found] == [runs["a2"].run_id]
    found, _ = selectors.run_search(actor=actor(bob), experiment_ids=all_ids)
    assert [r.run_id for r in found] == [runs["b1"].run_id]
    models, _ = selectors.logged_model_search(actor=actor(carol), experiment_ids=all_ids)
    assert models == []


def test_search_costs_a_constant_number_of_queries(
    alice, carol, experiment, django_assert_max_num_queries
):
    share(alice, experiment, "carol", "CAN_READ")
    for _ in range(15):
        run = services.run_create(actor=actor(alice), experiment_id=experiment.experiment_id)
        services.run_log_batch(
            actor=actor(alice),
            run_id=run.run_id,
            metrics=[{"key": "acc", "value": 0.5, "timestamp": 1}],
            params=[{"key": "C", "value": "1"}],
        )
    with django_assert_max_num_queries(10):
        items, _ = selectors.run_search(
            actor=actor(carol),
            experiment_ids=[experiment.experiment_id],
            filter="metrics.acc > 0.1 and params.C = '1'",
            order_by=["metrics.acc DESC"],
        )
        assert len(items) == 15
        for run in items:
            list(run.params.all()), list(run.tags.all()), list(run.latest_metrics.all())


def test_read_only_actor_cannot_write_even_as_owner(alice, experiment, run):
    from accounts.services import api_token_issue
    from core.actor import Actor

    token, _ = api_token_issue(actor=actor(alice), user=alice, name="ro", scope="read")
    reader = Actor(user=alice, auth_method="token", token=token)
    assert selectors.run_get(actor=reader, run_id=run.run_id)
    with pytest.raises(PermissionDenied, match="read-only"):
        services.run_log_param(actor=reader, run_id=run.run_id, key="C", value="1")
    with pytest.raises(PermissionDenied, match="read-only"):
        services.experiment_create(actor=reader, name="new")
    # Listing shares is a read: allowed to the owner through a read-only token.
    selectors.experiment_permissions(actor=reader, experiment_id=experiment.experiment_id)


def test_selectors_for_other_apps(alice, carol, experiment, run):
    model = _model(alice, experiment, run)
    assert selectors.run_for_actor(actor=actor(alice), run_id=run.run_id).pk == run.pk
    assert (
        selectors.logged_model_for_actor(actor=actor(alice), model_id=model.model_id, need="edit")
        == model
    )
    with pytest.raises(NotFound):
        selectors.run_for_actor(actor=actor(carol), run_id=run.run_id)
    with pytest.raises(NotFound):
        selectors.logged_model_for_actor(actor=actor(carol), model_id=model.model_id)
    share(alice, experiment, "carol", "CAN_READ")
    assert selectors.run_for_actor(actor=actor(carol), run_id=run.run_id, need="read")
    with pytest.raises(PermissionDenied):
        selectors.run_for_actor(actor=actor(carol), run_id=run.run_id, need="edit")
    with pytest.raises(PermissionDenied):
        selectors.logged_model_for_actor(actor=actor(carol), model_id=model.model_id, need="manage")
    with pytest.raises(ValueError):
        selectors.run_for_actor(actor=actor(alice), run_id=run.run_id, need="write")
    services.logged_model_delete(actor=actor(alice), model_id=model.model_id)
    with pytest.raises(NotFound):
        selectors.logged_model_for_actor(actor=actor(alice), model_id=model.model_id)


def test_denied_attempts_are_audited(alice, carol, experiment, run):
    with pytest.raises(NotFound):
        _log(carol, run)
    share(alice, experiment, "carol", "CAN_READ")
    with pytest.raises(PermissionDenied):
        _log(carol, run)
    events = AuditEvent.objects.filter(actor="carol", outcome="DENIED", action="run.log_metric")
    assert [(e.securable_type, e.securable) for e in events] == [("run", run.run_id)] * 2
    assert [e.details["privilege"] for e in events] == ["CAN_EDIT", "CAN_EDIT"]
