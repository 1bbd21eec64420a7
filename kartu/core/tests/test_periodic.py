from __future__ import annotations

from datetime import timedelta

import pytest

from kartu.core import periodic
from kartu.core.models import PeriodicJob

pytestmark = pytest.mark.django_db


def test_a_due_job_runs_once_however_many_workers_ask(monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(periodic, "JOBS", {})
    periodic.register("test.job", every=timedelta(minutes=5))(lambda: calls.append(1))
    assert periodic.run_due() == ["test.job"]
    assert periodic.run_due() == []  # a second worker finds it already claimed
    assert calls == [1]
    job = PeriodicJob.objects.get(name="test.job")
    assert job.runs == 1 and job.last_error == ""


def test_a_failing_job_is_recorded_and_does_not_stop_the_others(monkeypatch):
    ran: list[str] = []
    monkeypatch.setattr(periodic, "JOBS", {})

    def boom() -> None:
        raise RuntimeError("disk full")

    periodic.register("a.boom", every=timedelta(minutes=1))(boom)
    periodic.register("b.ok", every=timedelta(minutes=1))(lambda: ran.append("ok"))
    assert periodic.run_due() == ["a.boom", "b.ok"]
    assert ran == ["ok"]
    assert PeriodicJob.objects.get(name="a.boom").last_error == "RuntimeError: disk full"


def test_core_jobs_are_registered():
    assert {"core.prune_rate_counters", "core.prune_task_results"} <= set(periodic.JOBS)
