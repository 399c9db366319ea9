"""Verify the audit hash chain: an edited, removed or reordered event breaks it."""

from __future__ import annotations

from dataclasses import dataclass

from audit.canonical import GENESIS, digest, event_payload
from audit.models import AuditChainHead, AuditEvent


@dataclass
class ChainReport:
    ok: bool
    checked: int
    problem: str = ""


def verify_chain() -> ChainReport:
    """Walk every event in order, recomputing each hash; constant memory."""
    prev = GENESIS
    count = 0
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=2000):
        if event.prev_hash != prev:
            return ChainReport(False, count, f"event {event.id}: previous hash does not match")
        if digest(prev, event_payload(event)) != event.hash:
            return ChainReport(False, count, f"event {event.id}: contents do not match its hash")
        prev = event.hash
        count += 1
    head = AuditChainHead.objects.filter(id=1).first()
    if head is not None and head.last_hash != prev:
        return ChainReport(False, count, "the chain's tail was cut off")
    return ChainReport(True, count)
