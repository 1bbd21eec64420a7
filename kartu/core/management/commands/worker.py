"""``kartu worker`` — one background-task worker plus the periodic-job runner."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand
from django.utils.crypto import get_random_string
from django_tasks_db.management.commands.db_worker import Worker

from kartu.core.periodic import Runner


class Command(BaseCommand):
    help = "Run a task worker (django-tasks database backend) and the periodic jobs."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--interval", type=float, default=0.5,
                            help="seconds between polls when the queue is empty")
        parser.add_argument("--queues", default="*")
        parser.add_argument("--no-periodic", action="store_true",
                            help="do not run periodic jobs in this worker")

    def handle(self, *args: Any, **opts: Any) -> None:
        runner = None
        if not opts["no_periodic"]:
            runner = Runner()
            runner.start()
        worker = Worker(
            queue_names=opts["queues"].split(","),
            interval=opts["interval"],
            batch=False,
            backend_name="default",
            startup_delay=True,
            max_tasks=None,
            worker_id=get_random_string(32),
            excluded_queue_names=[],
        )
        worker.configure_signals()
        self.stdout.write("kartu worker: ready")
        try:
            worker.run()
        finally:
            if runner is not None:
                runner.stop()
