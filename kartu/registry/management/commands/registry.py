"""``kartu registry import|export|verify|unlock|lookup`` — operator tools for the registry."""

from __future__ import annotations

import json
import sys
from argparse import ArgumentParser
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser

from kartu.registry import importer, services


def _json_argument_error(message: str) -> NoReturn:
    """``verify``'s answer to arguments argparse cannot take (a missing ``--nik``, an unknown
    option, ``--factors sms``): the same ``{"error": ...}`` object and exit status 2 as a
    malformed claim, instead of a usage text on stderr."""
    sys.stdout.write(json.dumps({"error": f"arguments: {message}"}) + "\n")
    sys.stdout.flush()
    sys.exit(2)


class Command(BaseCommand):
    help = "Import, export and query the participant registry."

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        refuse = parser.error

        def error(message: str) -> NoReturn:
            # Options no subcommand knows (--colour) are refused here, not by `verify`'s parser.
            if "verify" in sys.argv[2:3] and self._from_command_line():
                _json_argument_error(message)
            refuse(message)
            raise SystemExit(2)  # refuse() exits or raises; this line is never reached

        parser.error = error  # type: ignore[method-assign]
        return parser

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        imp = sub.add_parser("import", help="import a registry CSV (one row per membership)")
        imp.add_argument("file")
        imp.add_argument("--no-progress", action="store_true", help="no progress bar")
        imp.add_argument("--chunk-size", type=int, default=importer.CHUNK)

        exp = sub.add_parser("export", help="write the registry as CSV (stdout or --out)")
        exp.add_argument("--out", default="-")
        exp.add_argument("--programmes", action="store_true",
                         help="add the optional programmes column")

        ver = sub.add_parser("verify", help="verify a claimed identity; prints one JSON object")
        # Scripts read one JSON object from `verify`, also when the arguments are wrong.
        ver.error = self._verify_argument_error  # type: ignore[method-assign]
        ver.add_argument("--nik", required=True)
        ver.add_argument("--name", default=None)
        ver.add_argument("--place", default=None)
        ver.add_argument("--dob", required=True, help="YYYY-MM-DD")
        ver.add_argument("--phone", default=None, help="caller's number (with --factors phone)")
        ver.add_argument("--factors", choices=services.FACTOR_SETS, default="full")
        ver.add_argument("--requester", default="cli:operator")

        unl = sub.add_parser("unlock", help="clear the failed-attempt lock on a NIK")
        unl.add_argument("--nik", required=True)
        unl.add_argument("--by", default="cli:operator")

    def _from_command_line(self) -> bool:
        return bool(getattr(self, "_called_from_command_line", False))

    def _verify_argument_error(self, message: str) -> NoReturn:
        """From the command line: the JSON answer. From ``call_command``: Django's usual
        CommandError (never a SystemExit inside the calling process)."""
        if self._from_command_line():
            _json_argument_error(message)
        raise CommandError(f"Error: {message}")

    def handle(self, *args: Any, **opts: Any) -> None:
        getattr(self, f"do_{opts['action']}")(opts)

    def do_import(self, opts: dict[str, Any]) -> None:
        try:
            summary = importer.import_csv(
                opts["file"],
                progress=False if opts["no_progress"] else None,
                chunk_size=opts["chunk_size"],
            )
        except importer.ImportFileError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(summary.text())

    def do_export(self, opts: dict[str, Any]) -> None:
        if opts["out"] == "-":
            n = importer.export_csv(sys.stdout, programmes=opts["programmes"])
        else:
            with open(opts["out"], "w", encoding="utf-8", newline="") as fh:
                n = importer.export_csv(fh, programmes=opts["programmes"])
        self.stderr.write(f"{n} rows exported")

    def do_verify(self, opts: dict[str, Any]) -> None:
        try:
            claim = services.parse_claim(
                nik=opts["nik"], birth_date=opts["dob"], full_name=opts["name"],
                birth_place=opts["place"], phone=opts["phone"], factors=opts["factors"],
            )
        except services.InvalidClaim as exc:
            self.stdout.write(json.dumps({"error": exc.message, "field": exc.field}))
            sys.exit(2)
        result = services.verify_identity(claim, opts["requester"])
        self.stdout.write(json.dumps(result.public_dict(), ensure_ascii=False))

    def do_unlock(self, opts: dict[str, Any]) -> None:
        cleared = services.clear_nik_lock(opts["nik"], by=opts["by"])
        self.stdout.write("lock cleared" if cleared else "that NIK was not locked")
