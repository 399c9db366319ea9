"""Fixtures for registry tests: a logged model of one's own to register, files in the store."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from core.actor import Actor
from registry.storage import artifact_storage, join

MLMODEL = """artifact_path: model
flavors:
  python_function:
    loader_module: mlflow.sklearn
signature:
  inputs: '[{"type": "double", "name": "alcohol"}]'
  outputs: '[{"type": "long"}]'
saved_input_example_info:
  artifact_path: input_example.json
  type: dataframe
"""


@pytest.fixture
def logged_model():
    """logged_model(user) -> "models:/m-..." source owned by `user` (a run and a logged model)."""
    from tracking.services import experiment_create, logged_model_create, run_create

    def make(user, experiment: str = "exp") -> str:
        actor = Actor.system(user)
        from tracking.models import Experiment

        exp = Experiment.objects.filter(name=experiment).first() or experiment_create(
            actor=actor, name=experiment
        )
        run = run_create(actor=actor, experiment_id=str(exp.pk))
        model = logged_model_create(
            actor=actor, experiment_id=str(exp.pk), name="model", source_run_id=run.run_id
        )
        return f"models:/{model.model_id}"

    return make


def upload_version_files(version, files: dict[str, bytes] | None = None) -> None:
    """Write files where the UC client would copy them (the version's storage location)."""
    from registry.storage import version_prefix

    files = files or {
        "MLmodel": MLMODEL.encode(),
        "input_example.json": b'{"columns": ["alcohol"], "data": [[13.2]]}',
        "model.skops": b"not a pickle",
    }
    for name, content in files.items():
        artifact_storage.save(join(version_prefix(version), name), ContentFile(content))


@pytest.fixture
def ready_version(logged_model):
    """ready_version(user, "c.s.m", tags={...}) -> a READY ModelVersion registered by `user`
    (who needs MODIFY on the model) from a logged model of their own, through the services."""
    from registry import services

    def make(user, full_name: str, *, tags: dict | None = None, mlmodel: str = MLMODEL):
        actor = Actor.system(user)
        version = services.model_version_create(
            actor=actor,
            full_name=full_name,
            source=logged_model(user, f"exp-{user.username}"),
            tags=tags or None,
        )
        upload_version_files(version, {"MLmodel": mlmodel.encode(), "model.skops": b"m"})
        return services.model_version_finalize(
            actor=actor, full_name=full_name, version=version.version
        )

    return make
