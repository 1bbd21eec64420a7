"""``kartu up`` — everything one machine needs, in one process group.

Starts the web server, one task worker (with the periodic jobs) and every channel listener that
registered itself in ``kartu.core.services.LISTENERS``; Ctrl-C (or SIGTERM) stops them all.
If one of them dies, the others are stopped too and ``up`` exits with an error.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from kartu.core.management.commands.web import split_bind
from kartu.core.processes import listener_commands


class Command(BaseCommand):
    help = "Run the web server, a task worker and the channel listeners together."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--bind", default=os.environ.get("KARTU_BIND", "127.0.0.1:8000"))

    def handle(self, *args: Any, **opts: Any) -> None:
        kartu = [sys.executable, "-m", "kartu"]
        commands = {
            "web": [*kartu, "web", "--bind", opts["bind"]],
            "worker": [*kartu, "worker"],
            **{name: [*kartu, *argv] for name, argv in listener_commands().items()},
        }
        children: dict[str, subprocess.Popen[bytes]] = {}
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        for name, argv in commands.items():
            # Children run in their own session, so the terminal's Ctrl-C reaches only `up`,
            # which then stops them itself.
            children[name] = subprocess.Popen(argv, start_new_session=True)  # noqa: S603
        host, port = split_bind(opts["bind"])
        local = f"http://{host}:{port}"
        self.stdout.write(
            f"kartu is up on {local}/ (public URL {settings.PUBLIC_URL}/)\n"
            f"  web chat:    {local}/tanya-kpj/\n"
            f"  agent inbox: {local}/desk/\n"
            f"  health:      {local}/healthz\n"
            f"running: {', '.join(commands)} — press Ctrl-C to stop"
        )
        failed = ""
        while not stopping:
            for name, child in children.items():
                if child.poll() is not None:
                    failed = f"{name} exited with status {child.returncode}"
                    stopping = True
                    break
            time.sleep(0.2)
        self.stdout.write(f"stopping ({failed})" if failed else "stopping …")
        for child in children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + 10
        for child in children.values():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        self.stdout.write("stopped")
        if failed:
            sys.exit(1)

