"""Signing matches MLflow's; secrets are stored encrypted (never in clear, never answered)
and survive a SECRET_KEY rotation done with SECRET_KEY_FALLBACKS."""

from __future__ import annotations

import pytest
from mlflow.webhooks import constants
from mlflow.webhooks.delivery import _generate_hmac_signature

from webhooks import crypto, signing
from webhooks.models import Webhook
from webhooks.services import webhook_create

from .receiver import mlflow_verify


def test_header_names_are_mlflows():
    assert signing.SIGNATURE_HEADER == constants.WEBHOOK_SIGNATURE_HEADER
    assert signing.TIMESTAMP_HEADER == constants.WEBHOOK_TIMESTAMP_HEADER
    assert signing.DELIVERY_ID_HEADER == constants.WEBHOOK_DELIVERY_ID_HEADER
    assert signing.SIGNATURE_VERSION == constants.WEBHOOK_SIGNATURE_VERSION


@pytest.mark.parametrize("secret", ["s", "ünïcode-secret", "x" * 512])
def test_signature_equals_mlflows(secret):
    payload = '{"entity": "model_version", "action": "created", "data": {"name": "é"}}'
    ours = signing.signature(secret, "d-1", "1700000000", payload)
    assert ours == _generate_hmac_signature(secret, "d-1", "1700000000", payload)
    assert ours.startswith("v1,")
    assert mlflow_verify(secret, "d-1", "1700000000", payload, ours)
    assert signing.verify(secret, "d-1", "1700000000", payload, ours)
    assert not mlflow_verify(secret, "d-2", "1700000000", payload, ours)
    assert not mlflow_verify(secret, "d-1", "1700000001", payload, ours)
    assert not mlflow_verify(secret + "x", "d-1", "1700000000", payload, ours)


def test_headers_sign_only_with_a_secret():
    signed = signing.headers(secret="k", delivery_id="d", payload="{}", timestamp="5")
    assert signed["X-MLflow-Signature"] == signing.signature("k", "d", "5", "{}")
    unsigned = signing.headers(secret="", delivery_id="d", payload="{}", timestamp="5")
    assert "X-MLflow-Signature" not in unsigned and unsigned["X-MLflow-Delivery-Id"] == "d"


@pytest.mark.django_db
def test_the_secret_is_stored_encrypted(admin_actor):
    hook = webhook_create(
        actor=admin_actor,
        name="enc",
        url="https://hooks.example.com/",
        events=["model_version.created"],
        secret="very-secret-value",
    )
    stored = Webhook.objects.values_list("secret_encrypted", flat=True).get(pk=hook.pk)
    assert "very-secret-value" not in stored and stored.startswith("gAAAA")  # a Fernet token
    assert crypto.decrypt(stored) == "very-secret-value"


def test_secret_key_rotation_with_fallbacks(settings):
    settings.SECRET_KEY = "old-key-" + "0" * 40
    token = crypto.encrypt("abc")
    settings.SECRET_KEY = "new-key-" + "1" * 40
    with pytest.raises(crypto.SecretUnreadable):
        crypto.decrypt(token)
    settings.SECRET_KEY_FALLBACKS = ["old-key-" + "0" * 40]
    assert crypto.decrypt(token) == "abc"
    assert crypto.encrypt("") == "" and crypto.decrypt("") == ""
