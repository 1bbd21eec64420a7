"""Background tasks of the desk. Arguments are ids only: no personal data in the task queue."""

from __future__ import annotations

from django_tasks import task

from kartu.desk import services


@task()
def process_inbound(message_id: int) -> str:
    return services.process_inbound(message_id)


@task()
def deliver_outbox(outbox_id: int) -> str:
    return services.deliver(outbox_id)
