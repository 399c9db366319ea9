"""One of every kind of object, owned by someone else, for the access contract suite.

`build()` makes, through the services (as a real user would, so ownership, grants and audit
are what the doors see in production):

- `olive`, a plain user with CREATE CATALOG, owns catalog `vault`, schema `vault.s` and model
  `vault.s.m` with version 1 (READY, alias `champion`, tags, legal hold) and version 2
  (PENDING_REGISTRATION, so file uploads and finalize have something to act on); an experiment
  with a run (metric, param, tag), a logged model (PENDING) and run and logged-model artifacts;
  a webhook on her catalog; an alias policy protecting `prod` (approver `ann`) and a pending
  promotion request for it; a retention policy; a second API token; the experiment shared
  with `ann`.
- `sam`, a user who holds nothing: the stranger.
- `root`, a metastore admin.

Every name and id the stranger must never see goes into `World.secrets`; `World.values` fills
the placeholders of the request table, `World.ghosts` the same placeholders with objects that
do not exist (a hidden object must answer exactly like a missing one).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile

from accounts.models import User
from accounts.services import api_token_issue
from core.actor import Actor

MLMODEL = b"""artifact_path: model
flavors:
  python_function:
    loader_module: mlflow.sklearn
"""


@dataclass
class World:
    values: dict[str, str] = field(default_factory=dict)
    ghosts: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    users: dict[str, User] = field(default_factory=dict)


def _user(name: str, *, admin: bool = False, groups: tuple[str, ...] = ()) -> User:
    user = User.objects.create_user(username=name, password="x-unused-pw", email=f"{name}@x.test")
    for group in groups:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    if admin:
        user.groups.add(Group.objects.get_or_create(name=settings.STEWARD_ADMIN_GROUP)[0])
    return user


def build() -> World:
    from accounts.scim.resources import group_scim_id
    from catalog import services as catalog_services
    from catalog.selectors import metastore
    from lineage.models import LineageNode
    from registry import services as registry_services
    from registry.storage import artifact_storage, join, model_prefix, version_prefix
    from tracking import services as tracking_services
    from webhooks import services as webhook_services

    root = _user("root", admin=True)
    olive = _user("olive", groups=("olive-team",))
    ann = _user("ann")
    sam = _user("sam")
    as_root, as_olive = Actor.system(root), Actor.system(olive)

    catalog_services.permissions_update(
        actor=as_root,
        securable_type="metastore",
        full_name=metastore().name,
        changes=[{"principal": "olive", "add": ["CREATE CATALOG"], "remove": []}],
    )
    catalog_services.catalog_create(actor=as_olive, name="vault", comment="vault-secret-comment")
    catalog_services.schema_create(actor=as_olive, catalog_name="vault", name="s")
    registry_services.registered_model_create(
        actor=as_olive, catalog_name="vault", schema_name="s", name="m", tags={"team": "olive"}
    )
    model = "vault.s.m"
    # ann may approve promotions: she needs to see the model.
    catalog_services.permissions_update(
        actor=as_olive,
        securable_type="catalog",
        full_name="vault",
        changes=[{"principal": "ann", "add": ["USE CATALOG", "USE SCHEMA", "BROWSE"]}],
    )

    # Tracking: an experiment, a run with data, a logged model, artifacts of both.
    experiment = tracking_services.experiment_create(actor=as_olive, name="olive-exp")
    exp_id = str(experiment.experiment_id)
    run = tracking_services.run_create(actor=as_olive, experiment_id=exp_id)
    tracking_services.run_log_metric(
        actor=as_olive, run_id=run.run_id, key="acc", value=0.9, timestamp=1, step=0
    )
    tracking_services.run_log_param(actor=as_olive, run_id=run.run_id, key="lr", value="0.1")
    tracking_services.run_tag_set(actor=as_olive, run_id=run.run_id, key="k", value="v")
    logged = tracking_services.logged_model_create(
        actor=as_olive,
        experiment_id=exp_id,
        name="lm",
        source_run_id=run.run_id,
        tags=[{"key": "t", "value": "1"}],
    )
    tracking_services.experiment_tag_set(actor=as_olive, experiment_id=exp_id, key="k", value="v")
    gone_run = tracking_services.run_create(actor=as_olive, experiment_id=exp_id)
    tracking_services.run_delete(actor=as_olive, run_id=gone_run.run_id)
    gone = tracking_services.experiment_create(actor=as_olive, name="olive-gone")
    tracking_services.experiment_delete(actor=as_olive, experiment_id=str(gone.experiment_id))
    tracking_services.experiment_permission_set(
        actor=as_olive, experiment_id=exp_id, principal="ann", level="CAN_READ"
    )
    run_artifacts = f"{exp_id}/{run.run_id}/artifacts"
    logged_artifacts = f"{exp_id}/models/{logged.model_id}/artifacts"
    artifact_storage.save(join(run_artifacts, "notes.txt"), ContentFile(b"run notes"))
    artifact_storage.save(join(logged_artifacts, "MLmodel"), ContentFile(MLMODEL))

    # Versions: 1 and 3 READY (from a logged model of her own), 2 pending with its files.
    source_model = tracking_services.logged_model_create(
        actor=as_olive, experiment_id=exp_id, name="src", source_run_id=run.run_id
    )
    source = f"models:/{source_model.model_id}"

    def version(full_name: str, *, ready: bool):
        obj = registry_services.model_version_create(
            actor=as_olive, full_name=full_name, source=source
        )
        for name, content in {"MLmodel": MLMODEL, "model.skops": b"m"}.items():
            artifact_storage.save(join(version_prefix(obj), name), ContentFile(content))
        if ready:
            registry_services.model_version_finalize(
                actor=as_olive, full_name=full_name, version=obj.version
            )
        return obj

    v1 = version(model, ready=True)
    v2 = version(model, ready=False)
    version(model, ready=True)
    registry_services.model_version_tag_set(
        actor=as_olive, full_name=model, version=1, key="vt", value="1"
    )
    # champion moved 3 -> 1, so that a rollback has somewhere to go.
    registry_services.alias_set(actor=as_olive, full_name=model, alias="champion", version=3)
    registry_services.alias_set(actor=as_olive, full_name=model, alias="champion", version=1)

    policy = registry_services.alias_policy_create(
        actor=as_olive,
        securable_type="registered_model",
        full_name=model,
        alias_patterns=["prod", "gold"],
        approvers=["ann"],
    )
    request = registry_services.promotion_request_create(
        actor=as_olive, full_name=model, alias="prod", version=1, justification="ship it"
    )
    from registry.services import retention as retention_services

    retention = retention_services.retention_policy_create(
        actor=as_olive, securable_type="catalog", full_name="vault", archive_after_days=3650
    )
    # Legal holds live in a catalog of their own: a hold blocks every delete path around it,
    # and the deletes of `vault` in the request table are meant to succeed for olive.
    catalog_services.catalog_create(actor=as_olive, name="archive")
    catalog_services.schema_create(actor=as_olive, catalog_name="archive", name="s")
    registry_services.registered_model_create(
        actor=as_olive, catalog_name="archive", schema_name="s", name="held"
    )
    version("archive.s.held", ready=True)
    retention_services.legal_hold_set(actor=as_root, full_name="archive.s.held", reason="court")
    retention_services.legal_hold_set(
        actor=as_root, full_name="archive.s.held", version=1, reason="court"
    )

    hook = webhook_services.webhook_create(
        actor=as_olive,
        name="olive-hook",
        url="https://hooks.example.com/olive",
        events=["registered_model.created", "model_version.created"],
        securable_type="catalog",
        full_name="vault",
    )
    token, _ = api_token_issue(actor=as_olive, user=olive, name="olive-ci")

    version_node = LineageNode.objects.filter(model_version_id=v1.pk).first()
    lineage_node = version_node.key if version_node else f"model_version:{v1.pk}"
    group = Group.objects.get(name="olive-team")

    world = World(users={"root": root, "olive": olive, "ann": ann, "sam": sam})
    world.values = {
        "catalog": "vault",
        "schema": "vault.s",
        "schema_name": "s",
        "model": model,
        "model_name": "m",
        "version": "1",
        "pending_version": "2",
        "held_model": "archive.s.held",
        "source": source,
        "deleted_experiment_id": str(gone.experiment_id),
        "deleted_run_id": gone_run.run_id,
        "alias": "champion",
        "protected_alias": "prod",
        "experiment_id": exp_id,
        "experiment_name": "olive-exp",
        "run_id": run.run_id,
        "logged_model_id": logged.model_id,
        "alias_policy_id": str(policy.pk),
        "request_id": str(request.pk),
        "retention_policy_id": str(retention.pk),
        "webhook_id": str(hook.pk),
        "token_id": str(token.pk),
        "user_id": str(olive.pk),
        "group_id": group_scim_id(group.pk),
        "lineage_node": lineage_node,
        "run_artifact": f"{run_artifacts}/notes.txt",
        "run_artifact_dir": run_artifacts,
        "logged_artifact": f"{logged_artifacts}/MLmodel",
        "version_artifact": f"{version_prefix(v1)}/MLmodel",
        "pending_artifact": f"{version_prefix(v2)}/MLmodel",
        "version_artifact_dir": version_prefix(v1),
        "model_prefix": model_prefix(v1.model),
    }
    ghost_model_prefix = f"models/{uuid.UUID(int=7)}"
    world.ghosts = {
        **world.values,
        "catalog": "nowhere",
        "schema": "nowhere.s",
        "model": "nowhere.s.m",
        "held_model": "nowhere.s.held",
        "deleted_experiment_id": "987654322",
        "deleted_run_id": uuid.UUID(int=13).hex,
        "experiment_id": "987654321",
        "experiment_name": "nowhere-exp",
        "run_id": uuid.UUID(int=5).hex,
        "logged_model_id": f"m-{uuid.UUID(int=6).hex}",
        "alias_policy_id": str(uuid.UUID(int=8)),
        "request_id": str(uuid.UUID(int=9)),
        "retention_policy_id": str(uuid.UUID(int=10)),
        "webhook_id": str(uuid.UUID(int=11)),
        "token_id": "987654",
        "user_id": "987654",
        "group_id": group_scim_id(987654),
        "lineage_node": f"model_version:{uuid.UUID(int=12)}",
        "run_artifact": f"987654321/{uuid.UUID(int=5).hex}/artifacts/notes.txt",
        "run_artifact_dir": f"987654321/{uuid.UUID(int=5).hex}/artifacts",
        "logged_artifact": f"987654321/models/m-{uuid.UUID(int=6).hex}/artifacts/MLmodel",
        "version_artifact": f"{ghost_model_prefix}/versions/1/MLmodel",
        "pending_artifact": f"{ghost_model_prefix}/versions/2/MLmodel",
        "version_artifact_dir": f"{ghost_model_prefix}/versions/1",
        "model_prefix": ghost_model_prefix,
    }
    # What a stranger must never read in an answer (ids long enough not to match by chance).
    world.secrets = [
        "vault",
        "archive.s",
        "olive-exp",
        "olive-gone",
        "olive-hook",
        "olive-ci",
        "vault-secret-comment",
        "hooks.example.com",
        "ship it",
        run.run_id,
        gone_run.run_id,
        logged.model_id,
        source_model.model_id,
        str(policy.pk),
        str(request.pk),
        str(retention.pk),
        str(hook.pk),
        str(v1.pk),
        str(v1.model.pk),
    ]
    return world
