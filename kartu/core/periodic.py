"""Periodic jobs, run by the task worker.

Each job has a row in ``PeriodicJob``. A worker claims a due run with one conditional UPDATE
(``… SET next_run_at = now + interval WHERE name = … AND next_run_at <= now``): only the worker
whose UPDATE changed the row runs the job, so a run happens once however many workers there are.
Apps register jobs at import time of their ``jobs`` module (loaded in ``AppConfig.ready``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import close_old_connections
from django.db.models import F
from django.utils import timezone

from kartu.core.models import PeriodicJob

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    name: str
    every: timedelta
    func: Callable[[], object]


JOBS: dict[str, Job] = {}


def register(name: str, every: timedelta) -> Callable[[Callable[[], object]], Callable[[], object]]:
    def decorator(func: Callable[[], object]) -> Callable[[], object]:
        JOBS[name] = Job(name, every, func)
        return func

    return decorator


def claim(job: Job) -> bool:
    """Claim the job's due run for this worker. True when this worker must run it now."""
    now = timezone.now()
    PeriodicJob.objects.get_or_create(name=job.name, defaults={"next_run_at": now})
    claimed = PeriodicJob.objects.filter(name=job.name, next_run_at__lte=now).update(
        next_run_at=now + job.every, last_started_at=now
    )
    return claimed == 1


def run_due() -> list[str]:
    """Run every due job once; return the names of the jobs this call ran."""
    ran = []
    for job in list(JOBS.values()):
        if not claim(job):
            continue
        ran.append(job.name)
        error = ""
        try:
            job.func()
        except Exception as exc:  # a failing job must not stop the others
            log.exception("periodic job %s failed", job.name)
            error = f"{type(exc).__name__}: {exc}"[:2000]
        PeriodicJob.objects.filter(name=job.name).update(
            last_finished_at=timezone.now(), last_error=error, runs=F("runs") + 1
        )
    return ran


class Runner(threading.Thread):
    """Background thread inside the worker process that runs due jobs every ``tick`` seconds."""

    def __init__(self, tick: float = 5.0) -> None:
        super().__init__(name="kartu-periodic", daemon=True)
        self.tick = tick
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            close_old_connections()
            try:
                run_due()
            except Exception:
                log.exception("periodic runner tick failed")
            self.stopping.wait(self.tick)
        close_old_connections()

    def stop(self) -> None:
        self.stopping.set()
