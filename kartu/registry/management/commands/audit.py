"""``kartu audit verify`` — check the disclosure audit's hash chain."""

from __future__ import annotations

import json
import sys
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from kartu.registry import audit


class Command(BaseCommand):
    help = "Check the disclosure audit log."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        ver = sub.add_parser("verify", help="detect edited, deleted or reordered records")
        ver.add_argument("--json", action="store_true")

    def handle(self, *args: Any, **opts: Any) -> None:
        report = audit.verify_chain()
        if opts["json"]:
            self.stdout.write(json.dumps(report.as_dict()))
        elif report.ok:
            self.stdout.write(f"audit chain intact: {report.checked} records")
        else:
            self.stdout.write(f"audit chain BROKEN ({report.checked} records checked):")
            for problem in report.problems:
                self.stdout.write(f"  {problem}")
        if not report.ok:
            sys.exit(1)
