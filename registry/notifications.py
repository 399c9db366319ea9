"""Promotion emails (placeholder until the mail templates land): counts who would be told."""

from __future__ import annotations


def send_promotion_event(request_id: str, event: str, extra: dict) -> int:
    return 0
