"""``kartu web`` — the production web server (granian, WSGI)."""

from __future__ import annotations

import os
import sys
from argparse import ArgumentParser
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


def split_bind(bind: str) -> tuple[str, int]:
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit():
        raise CommandError(f"--bind {bind!r}: expected HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


class Command(BaseCommand):
    help = "Serve kartu over HTTP with granian."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--bind", default=os.environ.get("KARTU_BIND", "127.0.0.1:8000"))
        parser.add_argument("--workers", type=int,
                            default=int(os.environ.get("KARTU_WEB_WORKERS", "2")))
        parser.add_argument("--threads", type=int,
                            default=int(os.environ.get("KARTU_WEB_THREADS", "2")),
                            help="request threads per worker")

    def handle(self, *args: Any, **opts: Any) -> None:
        host, port = split_bind(opts["bind"])
        call_command("collectstatic", interactive=False, verbosity=0)
        argv = [
            sys.executable, "-m", "granian", "--interface", "wsgi",
            "--host", host, "--port", str(port), "--workers", str(opts["workers"]),
            "--blocking-threads", str(opts["threads"]), "--backpressure", str(4 * opts["threads"]),
            "--no-ws", "--log-level", "warning", "kartu.wsgi:application",
        ]
        os.execv(sys.executable, argv)  # noqa: S606 (replace this process with the server)
