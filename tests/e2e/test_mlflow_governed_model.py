"""Issue 3's headline: a data scientist changes nothing but the tracking URI and a token.

The real mlflow client trains on load_wine, logs and registers `main.ml.wine_quality` in one
`log_model` call (files through the artifact proxy, version files copied server-side), sets
alias `champion`, and loads `models:/main.ml.wine_quality@champion`, which predicts exactly
what the in-memory model predicts. A user without EXECUTE is refused by the client; the
audit trail holds the registration, the alias move and the download.
"""

from __future__ import annotations

import warnings

import mlflow  # a dev dependency: fail loudly if missing
import numpy as np
import pytest
import requests
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from audit.models import AuditEvent

# PostgreSQL only: the client downloads files in parallel threads, and SQLite's shared-cache
# in-memory test database refuses concurrent writers at once ("table is locked"); the file
# database of the embedded default waits instead.
pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_log_register_alias_and_load_by_alias(login, tree, grant, make_user):
    tree("main.ml")
    alice = make_user("alice")
    grant("catalog", "main", "alice", "USE CATALOG", "USE SCHEMA", "CREATE MODEL")
    client = login(alice)

    X, y = load_wine(return_X_y=True, as_frame=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = LogisticRegression(max_iter=500).fit(X, y)
    expected = model.predict(X[:10])

    mlflow.set_experiment("wine-quality")
    with mlflow.start_run():
        mlflow.log_metric("val_accuracy", float(model.score(X, y)))
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name="main.ml.wine_quality",
            input_example=X[:2],
            pip_requirements=["scikit-learn"],
        )
    assert str(info.registered_model_version) == "1"
    version = client.get_model_version("main.ml.wine_quality", "1")
    assert version.status == "READY"

    client.set_registered_model_alias("main.ml.wine_quality", "champion", "1")
    loaded = mlflow.pyfunc.load_model("models:/main.ml.wine_quality@champion")
    assert np.array_equal(np.asarray(loaded.predict(X[:10])), expected)

    from registry.models import ModelVersion

    stored = ModelVersion.objects.get(model__full_name="main.ml.wine_quality", version=1)
    assert stored.signature and stored.signature.get("inputs")
    assert stored.input_example is not None

    # Bob may see the model (BROWSE) but not execute it: the client's download is refused.
    bob = make_user("bob")
    grant("catalog", "main", "bob", "USE CATALOG", "USE SCHEMA", "BROWSE")
    login(bob)
    with pytest.raises((MlflowException, requests.HTTPError), match="does not have EXECUTE"):
        mlflow.pyfunc.load_model("models:/main.ml.wine_quality@champion")

    actions = {
        (e.action, e.actor, e.outcome)
        for e in AuditEvent.objects.filter(securable="main.ml.wine_quality")
    }
    assert ("model_version.create", "alice", "SUCCESS") in actions
    assert ("alias.set", "alice", "SUCCESS") in actions
    assert ("model_version.download", "alice", "SUCCESS") in actions
    assert AuditEvent.objects.filter(
        actor="bob", outcome="DENIED", securable="main.ml.wine_quality"
    ).exists()
