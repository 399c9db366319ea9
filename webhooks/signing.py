"""Delivery signatures exactly as MLflow makes them (mlflow/webhooks/delivery.py,
`_generate_hmac_signature`; header names from mlflow/webhooks/constants.py).

    X-MLflow-Delivery-Id: <uuid>            the same on every attempt of one delivery
    X-MLflow-Timestamp:   <unix seconds>    the attempt's time
    X-MLflow-Signature:   v1,<base64(HMAC-SHA256(secret, f"{id}.{timestamp}.{body}"))>

The signature header is sent only when the webhook has a secret, as MLflow does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-MLflow-Signature"
TIMESTAMP_HEADER = "X-MLflow-Timestamp"
DELIVERY_ID_HEADER = "X-MLflow-Delivery-Id"
SIGNATURE_VERSION = "v1"


def signature(secret: str, delivery_id: str, timestamp: str, payload: str) -> str:
    signed = f"{delivery_id}.{timestamp}.{payload}".encode()
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def headers(
    *, secret: str, delivery_id: str, payload: str, timestamp: str | None = None
) -> dict[str, str]:
    timestamp = timestamp or str(int(time.time()))
    out = {
        "Content-Type": "application/json",
        DELIVERY_ID_HEADER: delivery_id,
        TIMESTAMP_HEADER: timestamp,
    }
    if secret:
        out[SIGNATURE_HEADER] = signature(secret, delivery_id, timestamp, payload)
    return out


def verify(secret: str, delivery_id: str, timestamp: str, payload: str, header: str) -> bool:
    """What a receiver does (MLflow's documented receiver): recompute and compare in constant
    time. Used by the tests; receivers should also refuse stale timestamps."""
    return hmac.compare_digest(signature(secret, delivery_id, timestamp, payload), header or "")
