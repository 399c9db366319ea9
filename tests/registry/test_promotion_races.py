"""Promotion races on PostgreSQL with real concurrent connections (issue 4; SECURITY_CASES 21-23).

Every racer runs in its own thread with its own database connection, all released together by
a barrier. The windows are widened deterministically: a function inside the racers' critical
section is slowed down (so an implementation without the row locks would interleave there), a
head start decides which racer takes the lock first, or a helper thread holds the model row
lock while the racers queue up behind it. Each scenario runs several rounds on fresh data and
checks that exactly one outcome happened and nothing was lost, and that every error is a clean
Steward error (never an IntegrityError, a deadlock or a 500).
"""

from __future__ import annotations

import itertools
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from audit.models import AuditChainHead, AuditEvent
from core.actor import Actor
from core.errors import AlreadyExists, FailedPrecondition, StewardError
from registry import policies, services
from registry.models import (
    AliasHistory,
    ModelAlias,
    ModelVersion,
    PromotionDecision,
    PromotionRequest,
    RegisteredModel,
)
from registry.services import promotions
from registry.services import versions as version_services
from registry.services.promotions import ApprovalRequired

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

State = PromotionRequest.State
ROUNDS = 5
WIDEN = 0.4  # seconds a slowed critical section holds its locks
HEAD_START = 0.15  # seconds the second racer waits after the barrier


def act(user) -> Actor:
    return Actor.system(user)


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def team(make_user, grant, tree, admin_user):
    """dana and erin (data scientists: MODIFY), owen (MANAGE on the catalog, writes the
    policies), ann and bob (approvers through `reviewers`), root (admin)."""
    tree("main.ml")
    users = {
        "dana": make_user("dana"),
        "erin": make_user("erin"),
        "owen": make_user("owen"),
        "ann": make_user("ann", groups=("reviewers",)),
        "bob": make_user("bob", groups=("reviewers",)),
        "root": admin_user,
    }
    for name in users:
        grant("catalog", "main", name, "USE CATALOG", "USE SCHEMA")
    grant("catalog", "main", "owen", "MANAGE")
    return users


@pytest.fixture
def fresh_model(team, tree, grant, ready_version):
    """fresh_model(required_approvals) -> the name of a new model with READY versions 1-3,
    champion -> 1 (set before protection), then a model policy protecting `champion` with
    approvers `reviewers`. One per round, so rounds never share data."""
    counter = itertools.count()

    def make(required_approvals: int = 2) -> str:
        name = f"main.ml.race{next(counter)}"
        tree(name)
        grant("registered_model", name, "dana", "MODIFY", "MANAGE", "EXECUTE")
        grant("registered_model", name, "erin", "MODIFY", "EXECUTE")
        for _ in range(3):
            ready_version(team["dana"], name)
        services.alias_set(actor=act(team["dana"]), full_name=name, alias="champion", version=1)
        services.alias_policy_create(
            actor=act(team["owen"]),
            securable_type="registered_model",
            full_name=name,
            alias_patterns=["champion"],
            approvers=["reviewers"],
            required_approvals=required_approvals,
        )
        return name

    return make


@pytest.fixture(autouse=True)
def no_locks_left(transactional_db):
    """After each test: every racer closed its connection, and nothing is left locked."""
    yield
    deadline = time.monotonic() + 5  # a closed connection's server process takes a moment
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid, state, left(query, 200) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            others = cursor.fetchall()
        if not others or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert others == [], f"connections left open by racers: {others}"
    with transaction.atomic():
        for model in (RegisteredModel, PromotionRequest, ModelAlias, AuditChainHead):
            list(model.objects.select_for_update(nowait=True).values_list("pk", flat=True))


# --- racing helpers ----------------------------------------------------------------------------


def race(*calls, timeout: float = 60.0) -> list:
    """Run each call in its own thread and connection, released together by a barrier; the
    result or the exception of each, in order. A racer that hangs fails the test."""
    barrier = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def run(index, call):
        try:
            with connection.cursor() as cursor:  # a lost lock fails loudly instead of hanging
                cursor.execute("SET lock_timeout = '20s'")
            barrier.wait(timeout)
            outcomes[index] = call()
        except Exception as exc:  # collected and asserted by the caller
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(t.is_alive() for t in threads), "a racer never finished"
    return outcomes


def after(delay: float, call):
    """`call`, started `delay` seconds after the barrier (a deterministic head start)."""

    def delayed():
        time.sleep(delay)
        return call()

    return delayed


def slowed(monkeypatch, owner, name: str, seconds: float = WIDEN) -> None:
    """Make `owner.name` sleep first: called inside a critical section, it holds the locks
    that long, so racers without those locks would interleave right there."""
    original = getattr(owner, name)

    def slow(*args, **kwargs):
        time.sleep(seconds)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, slow)


def holding_model_lock(full_name: str, locked: threading.Event, seconds: float = WIDEN):
    """A racer that locks the model row (as every promotion service does first), lets the
    others go, and keeps the lock a while: they all queue on it and are let in together."""

    def hold():
        with transaction.atomic():
            RegisteredModel.objects.select_for_update().get(full_name=full_name)
            locked.set()
            time.sleep(seconds)
        return "held"

    return hold


def when_set(locked: threading.Event, call):
    """`call`, started once the lock holder has the lock."""

    def gated():
        assert locked.wait(10)
        return call()

    return gated


def clean_errors(outcomes) -> list[StewardError]:
    """The exceptions among the outcomes; each must be a Steward error below 500."""
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    for exc in errors:
        assert isinstance(exc, StewardError) and exc.status < 500, repr(exc)
    return errors


def approve(user, request_id):
    return lambda: services.promotion_request_approve(actor=act(user), request_id=request_id)


def request_champion(team, full_name, version=2, user="dana") -> PromotionRequest:
    with pytest.raises(ApprovalRequired) as caught:
        services.alias_set(
            actor=act(team[user]), full_name=full_name, alias="champion", version=version
        )
    return caught.value.request


def champion(full_name) -> int:
    return ModelAlias.objects.get(model__full_name=full_name, alias="champion").version.version


def events(action: str, request_id=None, full_name=None) -> int:
    qs = AuditEvent.objects.filter(action=action)
    if request_id is not None:
        qs = qs.filter(details__promotion_request=str(request_id))
    if full_name is not None:
        qs = qs.filter(securable=full_name)
    return qs.count()


def moves(full_name) -> list[AliasHistory]:
    return list(
        AliasHistory.objects.filter(model__full_name=full_name, alias="champion").order_by("id")
    )


def assert_history_consistent(full_name) -> list[AliasHistory]:
    """Each move starts where the previous one ended; the alias points at the last target."""
    history = moves(full_name)
    for before, move in itertools.pairwise(history):
        assert move.from_version == before.to_version, [str(m) for m in history]
    assert champion(full_name) == history[-1].to_version
    return history


# --- 1. two approvals arriving together ---------------------------------------------------------


def test_two_final_approvals_at_once_apply_exactly_once(team, fresh_model, monkeypatch):
    """required_approvals=2, ann and bob at once; counting the approvals (after the decision is
    written, before the move) is slowed, so without the locks each would count only its own
    approval (nothing applies) or both would apply."""
    for _ in range(ROUNDS):
        name = fresh_model(required_approvals=2)
        request = request_champion(team, name)
        with monkeypatch.context() as patch:
            slowed(patch, policies, "counted_approvals")
            outcomes = race(approve(team["ann"], request.id), approve(team["bob"], request.id))
        assert clean_errors(outcomes) == []
        assert sorted(o.state for o in outcomes) == [State.APPLIED, State.PENDING]
        request.refresh_from_db()
        assert request.state == State.APPLIED and champion(name) == 2
        assert PromotionDecision.objects.filter(request=request).count() == 2
        promoted = [m for m in moves(name) if m.promotion_id == request.id]
        assert [(m.from_version, m.to_version) for m in promoted] == [(1, 2)]
        assert events("promotion_request.approve", request.id) == 2
        assert events("promotion_request.approved", request.id) == 1
        assert events("promotion_request.apply", request.id) == 1
        assert events("alias.set", request.id) == 1


def test_two_approvers_at_once_when_one_suffices(team, fresh_model):
    """required_approvals=1, ann and bob queued together behind a held model lock: one
    applies, the other is told cleanly that the request is no longer PENDING."""
    for _ in range(ROUNDS):
        name = fresh_model(required_approvals=1)
        request = request_champion(team, name)
        locked = threading.Event()
        outcomes = race(
            holding_model_lock(name, locked),
            when_set(locked, approve(team["ann"], request.id)),
            when_set(locked, approve(team["bob"], request.id)),
        )
        assert outcomes[0] == "held"
        (error,) = clean_errors(outcomes)
        assert isinstance(error, FailedPrecondition) and "is APPLIED" in error.message
        (winner,) = [o for o in outcomes[1:] if isinstance(o, PromotionRequest)]
        assert winner.state == State.APPLIED
        request.refresh_from_db()
        assert request.state == State.APPLIED and champion(name) == 2
        assert PromotionDecision.objects.filter(request=request).count() == 1
        assert len([m for m in moves(name) if m.promotion_id == request.id]) == 1
        assert events("promotion_request.approve", request.id) == 1
        assert events("promotion_request.apply", request.id) == 1


# --- 2. the same approver twice at once --------------------------------------------------------


def test_same_approver_twice_at_once_decides_once(team, fresh_model, monkeypatch):
    """ann approves twice at once (a double click, a retried request): one decision; the other
    call gets AlreadyExists (409), never the unique constraint's IntegrityError."""
    for _ in range(ROUNDS):
        name = fresh_model(required_approvals=2)
        request = request_champion(team, name)
        with monkeypatch.context() as patch:
            slowed(patch, policies, "counted_approvals")
            outcomes = race(approve(team["ann"], request.id), approve(team["ann"], request.id))
        (error,) = clean_errors(outcomes)
        assert isinstance(error, AlreadyExists) and error.status == 409
        assert "already decided" in error.message
        request.refresh_from_db()
        assert request.state == State.PENDING and champion(name) == 1
        assert PromotionDecision.objects.filter(request=request).count() == 1
        assert events("promotion_request.approve", request.id) == 1


# --- 3. an approval while someone else moves the alias -----------------------------------------


def test_final_approval_races_a_break_glass_move(team, fresh_model, monkeypatch):
    """bob's final approval (to version 2) against root's break-glass move (to version 3).
    Both critical sections are slowed and the head start alternates, so both orders happen:
    the approval applies and break-glass then moves on from it, or break-glass goes first and
    the request ends STALE. Either way one final state and a consistent history."""
    seen = set()
    for round_ in range(ROUNDS + 1):
        name = fresh_model(required_approvals=2)
        request = request_champion(team, name)
        services.promotion_request_approve(actor=act(team["ann"]), request_id=request.id)

        def glass(name=name):
            return services.alias_break_glass(
                actor=act(team["root"]),
                full_name=name,
                alias="champion",
                version=3,
                reason="incident 7: v1 serves wrong prices",
            )

        approval = approve(team["bob"], request.id)
        approval_first = round_ % 2 == 0
        with monkeypatch.context() as patch:
            slowed(patch, policies, "counted_approvals")  # inside the approval's locks
            slowed(patch, policies, "policy_for")  # inside break-glass's locks
            if approval_first:
                outcomes = race(approval, after(HEAD_START, glass))
            else:
                outcomes = race(after(HEAD_START, approval), glass)
        approved, record = outcomes
        assert isinstance(record, PromotionRequest) and record.state == State.APPLIED
        request.refresh_from_db()
        history = assert_history_consistent(name)
        assert champion(name) == 3 and history[-1].promotion_id == record.id
        assert events("promotion_request.break_glass", record.id) == 1
        if request.state == State.APPLIED:
            assert clean_errors(outcomes) == []
            assert approved.state == State.APPLIED
            assert [(m.from_version, m.to_version) for m in history[-2:]] == [(1, 2), (2, 3)]
            assert history[-2].promotion_id == request.id
            assert events("promotion_request.apply", request.id) == 1
            assert PromotionDecision.objects.filter(request=request).count() == 2
        else:
            assert request.state == State.STALE and "break-glass" in request.state_message
            (error,) = clean_errors(outcomes)
            assert isinstance(error, FailedPrecondition) and "is STALE" in error.message
            assert (history[-1].from_version, history[-1].to_version) == (1, 3)
            assert not any(m.promotion_id == request.id for m in history)
            assert events("promotion_request.apply", request.id) == 0
            assert events("promotion_request.stale", request.id) == 1
            assert PromotionDecision.objects.filter(request=request).count() == 1
        seen.add((approval_first, request.state))
    assert seen == {(True, State.APPLIED), (False, State.STALE)}


# --- 4. two requests for the same alias at once ------------------------------------------------


def _ask(door: str, user, full_name: str, version: int):
    def call():
        if door == "alias_set":
            services.alias_set(
                actor=act(user), full_name=full_name, alias="champion", version=version
            )
            raise AssertionError("a protected alias moved without approval")
        return services.promotion_request_create(
            actor=act(user),
            full_name=full_name,
            alias="champion",
            version=version,
            justification=f"{user.username} wants {version}",
        )

    return call


@pytest.mark.parametrize(
    "doors",
    [("alias_set", "alias_set"), ("create", "create"), ("alias_set", "create")],
)
def test_two_requests_for_the_same_alias_at_once(team, fresh_model, monkeypatch, doors):
    """dana (to version 2) and erin (to version 3) ask at once. The gate evaluation between
    "is a request open?" and the insert is slowed, so without the model lock both would pass
    the check and the partial unique index would answer with an IntegrityError. Exactly one
    PENDING request; the other caller gets AlreadyExists (409) naming it."""
    for _ in range(ROUNDS):
        name = fresh_model(required_approvals=2)
        with monkeypatch.context() as patch:
            slowed(patch, policies, "evaluate_gates")
            outcomes = race(
                _ask(doors[0], team["dana"], name, 2), _ask(doors[1], team["erin"], name, 3)
            )
        open_requests = list(PromotionRequest.objects.filter(model__full_name=name))
        assert len(open_requests) == 1 and open_requests[0].state == State.PENDING
        (made,) = open_requests
        errors = clean_errors(outcomes)
        refused = [e for e in errors if isinstance(e, AlreadyExists)]
        assert len(refused) == 1 and refused[0].status == 409
        assert str(made.id) in refused[0].message and "already open" in refused[0].message
        created = [e.request for e in errors if isinstance(e, ApprovalRequired)]
        created += [o for o in outcomes if isinstance(o, PromotionRequest)]
        assert [r.id for r in created] == [made.id]
        assert events("promotion_request.create", made.id) == 1
        assert events("promotion_request.create", full_name=name) == 1
        assert champion(name) == 1


def test_same_requester_asking_twice_at_once_gets_the_same_request(team, fresh_model, monkeypatch):
    """dana retries alias_set at once: one request is created, the retry is told about it."""
    for _ in range(ROUNDS):
        name = fresh_model(required_approvals=2)
        with monkeypatch.context() as patch:
            slowed(patch, policies, "evaluate_gates")
            outcomes = race(
                _ask("alias_set", team["dana"], name, 2), _ask("alias_set", team["dana"], name, 2)
            )
        errors = clean_errors(outcomes)
        assert all(isinstance(e, ApprovalRequired) for e in errors) and len(errors) == 2
        assert len({e.request.id for e in errors}) == 1
        assert sorted("is already open" in e.message for e in errors) == [False, True]
        assert PromotionRequest.objects.filter(model__full_name=name).count() == 1
        assert events("promotion_request.create", full_name=name) == 1


# --- 5. a request expiring while it is approved ------------------------------------------------


def test_request_expiring_while_the_final_approval_arrives(team, fresh_model, monkeypatch):
    """bob's final approval against the expiry sweep, the request expiring about now.
    Four kinds of round: the approval holds the request first (expiry comes due while it is
    inside: the sweep skips the locked row and the request applies); the sweep holds it first
    (the approval waits and finds it EXPIRED); the request comes due after the approval's own
    expiry check but before it locks the request, with the sweep already past (the approval
    is refused, and the request must still end EXPIRED, not PENDING); and both released
    together with the expiry a few milliseconds away (either). Never both, never neither:
    APPLIED with the alias moved and no expiry event, or EXPIRED with the alias where it was,
    one expiry event and no apply event."""
    kinds = ["approval first", "expiry first", "due mid-approval", "together"] * 2
    seen = set()
    for kind in kinds:
        name = fresh_model(required_approvals=2)
        request = request_champion(team, name)
        services.promotion_request_approve(actor=act(team["ann"]), request_id=request.id)
        approval = approve(team["bob"], request.id)
        sweep = promotions.promotion_requests_expire
        with monkeypatch.context() as patch:
            if kind == "approval first":
                expires = timezone.now() + timedelta(seconds=0.3)
                slowed(patch, policies, "counted_approvals", 0.6)
                racers = (approval, after(0.45, sweep))
            elif kind == "expiry first":
                expires = timezone.now() - timedelta(milliseconds=1)
                slowed(patch, promotions, "_expire")  # inside the sweep's row lock
                racers = (after(HEAD_START, approval), sweep)
            elif kind == "due mid-approval":
                expires = timezone.now() + timedelta(seconds=0.15)
                slowed(patch, promotions, "promotion_request_lookup")  # before the row lock
                racers = (approval, sweep)
            else:
                expires = timezone.now() + timedelta(milliseconds=30)
                racers = (approval, sweep)
            PromotionRequest.objects.filter(pk=request.pk).update(expires_at=expires)
            approved, swept = race(*racers)
        request.refresh_from_db()
        errors = clean_errors([approved, swept])
        assert request.state in (State.APPLIED, State.EXPIRED)
        if request.state == State.APPLIED:
            assert errors == [] and approved.state == State.APPLIED and swept == 0
            assert champion(name) == 2
            assert [m.promotion_id for m in moves(name)][-1] == request.id
            assert events("promotion_request.apply", request.id) == 1
            assert events("promotion_request.expire", request.id) == 0
            assert PromotionDecision.objects.filter(request=request).count() == 2
        else:
            (error,) = errors
            assert isinstance(error, FailedPrecondition) and "expired" in error.message.lower()
            assert swept in (0, 1)  # 0: the approval's own expiry check got there first
            assert champion(name) == 1
            assert not any(m.promotion_id == request.id for m in moves(name))
            assert events("promotion_request.expire", request.id) == 1
            assert events("promotion_request.apply", request.id) == 0
            assert events("promotion_request.approved", request.id) == 0
            assert PromotionDecision.objects.filter(request=request).count() == 1
        assert_history_consistent(name)
        if kind == "approval first":
            assert request.state == State.APPLIED
        elif kind == "expiry first":
            assert request.state == State.EXPIRED and swept == 1
        elif kind == "due mid-approval":
            assert request.state == State.EXPIRED and swept == 0
        seen.add(request.state)
    assert seen == {State.APPLIED, State.EXPIRED}


# --- 6. an approval while someone else edits the version ---------------------------------------


@pytest.mark.parametrize("kind", ["alias", "stage"])
def test_final_approval_races_an_edit_of_the_version(team, fresh_model, monkeypatch, kind):
    """bob's final approval against dana editing the description of a version the apply
    writes (the target; for a stage with archive_existing_versions, the version it archives).
    The edit locks the version row and then writes its audit event; the edit's audit write is
    slowed, and the head start alternates. Both must succeed, in either order: an approval
    that wrote its own audit event before locking the version deadlocked here (a 500)."""
    seen = set()
    for round_ in range(ROUNDS + 1):
        name = fresh_model(required_approvals=2)
        if kind == "stage":
            ModelVersion.objects.filter(model__full_name=name, version=1).update(
                stage=ModelVersion.Stage.PRODUCTION
            )
            services.alias_policy_create(
                actor=act(team["owen"]),
                securable_type="registered_model",
                full_name=name,
                alias_patterns=["production"],
                approvers=["reviewers"],
                required_approvals=2,
            )
            with pytest.raises(ApprovalRequired) as caught:
                services.model_version_transition_stage(
                    actor=act(team["dana"]),
                    full_name=name,
                    version=2,
                    stage="Production",
                    archive_existing_versions=True,
                )
            request, edited = caught.value.request, 1
        else:
            request, edited = request_champion(team, name), 2
        services.promotion_request_approve(actor=act(team["ann"]), request_id=request.id)

        def edit(name=name, edited=edited):
            return services.model_version_update(
                actor=act(team["dana"]), full_name=name, version=edited, description="retrained"
            )

        edit_first = round_ % 2 == 0
        with monkeypatch.context() as patch:
            slowed(patch, version_services, "version_audit")  # inside the edit's row lock
            slowed(patch, policies, "counted_approvals")  # inside the approval's locks
            if edit_first:
                outcomes = race(edit, after(HEAD_START, approve(team["bob"], request.id)))
            else:
                outcomes = race(after(HEAD_START, edit), approve(team["bob"], request.id))
        assert clean_errors(outcomes) == []
        assert outcomes[1].state == State.APPLIED
        request.refresh_from_db()
        assert request.state == State.APPLIED
        assert events("promotion_request.apply", request.id) == 1
        versions = {v.version: v for v in ModelVersion.objects.filter(model__full_name=name)}
        assert versions[edited].description == "retrained"
        if kind == "stage":
            assert versions[2].stage == ModelVersion.Stage.PRODUCTION
            assert versions[1].stage == ModelVersion.Stage.ARCHIVED
        else:
            assert champion(name) == 2
            assert assert_history_consistent(name)[-1].promotion_id == request.id
        seen.add(edit_first)
    assert seen == {True, False}
