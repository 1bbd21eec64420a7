"""Housekeeping jobs of the core app."""

from __future__ import annotations

from datetime import timedelta

from kartu.core.periodic import register
from kartu.core.ratelimit import DatabaseStore


@register("core.prune_rate_counters", every=timedelta(hours=1))
def prune_rate_counters() -> int:
    return DatabaseStore().prune()


@register("core.prune_task_results", every=timedelta(days=1))
def prune_task_results() -> None:
    from django.core.management import call_command

    call_command("prune_db_task_results", min_age_days=7, verbosity=0)
