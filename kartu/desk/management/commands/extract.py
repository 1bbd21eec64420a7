"""``kartu extract``: read identity fields out of a message on stdin.

    echo "saya Budi lahir di Bandung 17-8-1985 NIK 3273..." | kartu extract
    kartu extract --subject "Nomor KPJ" < message.txt
    kartu extract --jsonl < messages.jsonl > fields.jsonl

The work is done by :mod:`kartu.desk.extract.cli`; this command is a shell.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser


class Command(BaseCommand):
    stealth_options = ("stdin",)
    help = (
        "Extract full name, birth place, birth date and NIK from one message on stdin "
        "(or from JSON lines with --jsonl) and print JSON."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--subject", default=None, help="email subject of the message")
        parser.add_argument(
            "--jsonl",
            action="store_true",
            help='read JSON lines {"id", "subject", "text"}, write one JSON line per input',
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from kartu.desk.extract.cli import run_jsonl, run_single, text_stdin

        stdin = options.get("stdin") or text_stdin()
        out = _Raw(self.stdout)
        if options["jsonl"]:
            run_jsonl(stdin, out)
        else:
            run_single(stdin.read(), out, options["subject"])


class _Raw:
    """Write through Django's OutputWrapper without it adding line endings."""

    def __init__(self, wrapper: Any) -> None:
        self._wrapper = wrapper

    def write(self, text: str) -> int:
        self._wrapper.write(text, ending="")
        return len(text)

    def flush(self) -> None:
        self._wrapper.flush()
