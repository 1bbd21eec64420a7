"""``kartu keys rotate|status`` — field-encryption, blind-index and card signing keys."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from kartu.registry import keys


class Command(BaseCommand):
    help = "Rotate or inspect the field-encryption, blind-index and card signing keys."

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        rot = sub.add_parser("rotate", help="rotate keys and re-encrypt / re-index, online")
        rot.add_argument("--field", action="store_true", help="only the field-encryption key")
        rot.add_argument("--index", action="store_true", help="only the blind-index key")
        rot.add_argument("--card", action="store_true", help="only the card signing key")
        sub.add_parser("status", help="which keys are live and how many rows use each")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["action"] == "status":
            from kartu.card import keys as card_keys

            state = {**keys.status(), "card_signing_keys": card_keys.status()}
            self.stdout.write(json.dumps(state, indent=2))
            return
        if opts["card"]:
            from kartu.card import keys as card_keys

            try:
                new, retired = card_keys.rotate()
            except card_keys.CardKeyError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"card signing key {new.kid} is active; retired: "
                              f"{', '.join(retired) or 'none'} (their cards stay valid)")
            if not (opts["field"] or opts["index"]):
                return
        both = not (opts["field"] or opts["index"])
        try:
            report = keys.rotate(
                field=both or opts["field"], index=both or opts["index"], log=self.stdout.write
            )
        except keys.RotationError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(report.text())
        if report.stuck_locks:
            # Not an error (every lookup and lock check works), but not done either.
            raise CommandError(
                f"blind-index rotation not finished: {report.stuck_locks} old NIK locks keep "
                f"{', '.join(report.old_index_keys)} live"
            )
