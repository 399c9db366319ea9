"""Issue 4 with the real mlflow client: `set_registered_model_alias(..., "champion", ...)` on a
protected model fails with the promotion request named; after two approvals
`models:/...@champion` loads the new version."""

from __future__ import annotations

import re
import warnings

import mlflow
import numpy as np
import pytest
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from core.actor import Actor
from registry import services
from registry.models import PromotionRequest

# PostgreSQL only, for the reason given in test_mlflow_governed_model.py (parallel downloads).
pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NAME = "main.ml.wine_quality"


def test_protected_champion_needs_two_approvals(login, tree, grant, make_user, admin_actor):
    tree("main.ml")
    alice = make_user("alice")
    ann = make_user("ann", groups=("reviewers",))
    bob = make_user("bob", groups=("reviewers",))
    grant("catalog", "main", "alice", "USE CATALOG", "USE SCHEMA", "CREATE MODEL")
    client = login(alice)

    X, y = load_wine(return_X_y=True, as_frame=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        first = LogisticRegression(max_iter=500).fit(X, y)
        second = LogisticRegression(C=1e-4, max_iter=500).fit(X, y)  # a different model
    assert not np.array_equal(first.predict(X), second.predict(X))

    mlflow.set_experiment("wine-quality")
    for model in (first, second):
        with mlflow.start_run():
            mlflow.sklearn.log_model(
                model,
                name="model",
                registered_model_name=NAME,
                input_example=X[:2],
                pip_requirements=["scikit-learn"],
            )
    client.set_registered_model_alias(NAME, "champion", "1")  # not protected yet

    services.alias_policy_create(
        actor=admin_actor,
        securable_type="catalog",
        full_name="main",
        alias_patterns=["champion"],
        approvers=["reviewers"],
        required_approvals=2,
    )
    with pytest.raises(MlflowException) as caught:
        client.set_registered_model_alias(NAME, "champion", "2")
    message = str(caught.value)
    request = PromotionRequest.objects.get()
    assert "PERMISSION_DENIED" in message and str(request.id) in message
    assert re.search(rf"/console/promotion-requests/{request.id}", message)
    assert client.get_model_version_by_alias(NAME, "champion").version == "1"

    # The requester cannot approve it; two reviewers do, and the alias moves.
    with pytest.raises(Exception, match="cannot approve"):
        services.promotion_request_approve(actor=Actor.system(alice), request_id=request.id)
    services.promotion_request_approve(actor=Actor.system(ann), request_id=request.id)
    assert client.get_model_version_by_alias(NAME, "champion").version == "1"
    services.promotion_request_approve(actor=Actor.system(bob), request_id=request.id)
    request.refresh_from_db()
    assert request.state == PromotionRequest.State.APPLIED

    loaded = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    assert np.array_equal(np.asarray(loaded.predict(X[:20])), second.predict(X[:20]))

    # The legacy stage door is governed the same way once Production is protected.
    services.alias_policy_create(
        actor=admin_actor,
        securable_type="registered_model",
        full_name=NAME,
        alias_patterns=["production"],
        approvers=["ann"],
    )
    with pytest.raises(MlflowException, match="promotion request"):
        client.transition_model_version_stage(NAME, "2", "Production")
    assert client.get_model_version(NAME, "2").current_stage == "None"
