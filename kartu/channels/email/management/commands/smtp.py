"""``kartu smtp [--listen HOST:PORT]`` — receive mail for the care address until SIGINT/SIGTERM."""

from __future__ import annotations

import signal
import threading
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from kartu.channels.email import inbound, listener


class Command(BaseCommand):
    help = "Run the SMTP listener for the care address (KARTU_SMTP_LISTEN)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--listen", default=None,
                            help="HOST:PORT (default KARTU_SMTP_LISTEN, "
                                 f"now {settings.KARTU_SMTP_LISTEN})")

    def handle(self, *args: Any, **opts: Any) -> None:
        stopping = threading.Event()

        def stop(signum: int, frame: object) -> None:
            stopping.set()

        # Under `kartu up` Ctrl-C is ignored here (up stops its children itself, in order).
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            running = listener.start(opts["listen"])
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot listen on {opts['listen'] or settings.KARTU_SMTP_LISTEN}:"
                               f" {exc}") from exc
        self.stdout.write(f"kartu smtp: listening on {running.host}:{running.port} for "
                          f"{inbound.care_address()} (max {settings.KARTU_EMAIL_MAX_BYTES} bytes)")
        self.stdout.flush()
        try:
            while not stopping.wait(0.5):
                pass
        finally:
            running.stop()
            self.stdout.write("kartu smtp: stopped")
