"""Webhook secrets at rest: Fernet (AES-128-CBC + HMAC-SHA256, from `cryptography`) under a key
derived from SECRET_KEY with HKDF-SHA256.

A secret must be recoverable (it keys the HMAC of every delivery), so it is encrypted, not
hashed; MLflow does the same with Fernet (mlflow/store/model_registry/dbmodels/models.py,
EncryptedString). Decryption also tries the keys derived from SECRET_KEY_FALLBACKS, so a
SECRET_KEY rotation done Django's way keeps the stored secrets readable.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

_INFO = b"steward webhook secrets v1"


class SecretUnreadable(Exception):
    """The stored secret was encrypted under a key Steward no longer has."""


def _fernet(key: str) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        key.encode("utf-8")
    )
    return Fernet(base64.urlsafe_b64encode(derived))


def _cipher() -> MultiFernet:
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet([_fernet(k) for k in keys if k])


def encrypt(secret: str) -> str:
    return _cipher().encrypt(secret.encode("utf-8")).decode("ascii") if secret else ""


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _cipher().decrypt(token.encode("ascii")).decode("utf-8")
    except InvalidToken:
        raise SecretUnreadable(
            "The webhook's secret cannot be decrypted (SECRET_KEY changed without keeping the "
            "old one in SECRET_KEY_FALLBACKS); set the secret again."
        ) from None
