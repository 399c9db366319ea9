"""Temporary model-version credentials (UC): the door through which a client is told where to
read or write a version's files. Reading needs EXECUTE and is an audited download."""

from __future__ import annotations

import time
from typing import NotRequired, TypedDict

from django.conf import settings

from audit.governance import governed
from catalog import authz
from catalog.privileges import Privilege
from catalog.selectors import model_lookup
from core.actor import Actor
from core.errors import FailedPrecondition
from registry.models import ModelVersion, RegisteredModel
from registry.services.lookups import version_audit, version_of

LIFETIME_MS = 15 * 60 * 1000


class Credentials(TypedDict):
    """The answer of UC's temporary model-version credentials, as Steward gives it."""

    expiration_time: int  # epoch milliseconds
    storage_mode: NotRequired[str]  # "PROXY": files go through the MLflow artifact proxy


@governed("model_version.credentials")
def model_version_credentials(
    *, actor: Actor, full_name: object, version: object, operation: str
) -> Credentials:
    model: RegisteredModel = model_lookup(full_name)
    write = operation == "READ_WRITE_MODEL_VERSION"
    authz.require(actor, Privilege.MODIFY if write else Privilege.EXECUTE, model)
    obj = version_of(model, version)
    if write and obj.status != ModelVersion.Status.PENDING_REGISTRATION:
        raise FailedPrecondition(f"Version {obj.version} is {obj.status}; its files are sealed.")
    version_audit(
        actor,
        "model_version.upload" if write else "model_version.download",
        obj,
        {"operation": operation, "storage_location": obj.storage_location},
    )
    answer: Credentials = {"expiration_time": int(time.time() * 1000) + LIFETIME_MS}
    if settings.STEWARD_ARTIFACT_STORAGE == "s3":
        # Steward does not mint cloud credentials; clients use the MLflow artifact proxy.
        answer["storage_mode"] = "PROXY"
    return answer
