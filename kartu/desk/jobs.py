"""Periodic recovery: work a crashed worker left behind is picked up again."""

from __future__ import annotations

from datetime import timedelta

from kartu.core.periodic import register
from kartu.desk import services


@register("desk.reclaim_outbox", every=timedelta(seconds=15))
def reclaim_outbox() -> int:
    """Outbox rows that are due, or whose lease expired (the worker holding them died)."""
    ids = services.due_outbox_ids()
    for outbox_id in ids:
        services.enqueue_deliver(outbox_id)
    return len(ids)


@register("desk.process_stalled", every=timedelta(seconds=30))
def process_stalled() -> int:
    """Inbound messages stored but never processed (their task was lost)."""
    ids = services.stalled_inbound_ids()
    for message_id in ids:
        services.enqueue_process(message_id)
    return len(ids)
