"""``kartu demo --people N`` — load synthetic demo participants and print a few to try."""

from __future__ import annotations

from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from kartu.registry import demo, importer
from kartu.registry.models import Person


class Command(BaseCommand):
    help = "Load N synthetic (but valid) participants, or write them as CSV."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--people", type=int, default=1000)
        parser.add_argument("--seed", type=int, default=2024)
        parser.add_argument("--if-empty", action="store_true",
                            help="do nothing when the registry already has people")
        parser.add_argument("--csv", help="only write the rows to this CSV file")
        parser.add_argument("--show", type=int, default=5, help="identities to print")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["csv"]:
            rows = demo.write_csv_file(Path(opts["csv"]), opts["people"], opts["seed"])
            self.stdout.write(f"{rows} rows written to {opts['csv']}")
            return
        if opts["if_empty"] and Person.objects.exists():
            self.stdout.write("registry already has people; demo data not loaded")
        else:
            # The CSV holds NIKs in clear: write it, import it, and remove it (and its rejects).
            path = Path(settings.DATA_DIR) / "demo-registry.csv"
            try:
                demo.write_csv_file(path, opts["people"], opts["seed"])
                summary = importer.import_csv(path, progress=False)
            finally:
                path.unlink(missing_ok=True)
                importer.rejects_path_for(path).unlink(missing_ok=True)
            self.stdout.write(summary.text())
        if opts["show"]:
            self.stdout.write("\nDemo identities (synthetic) to try:")
            for p in demo.sample_identities(opts["show"], opts["seed"]):
                self.stdout.write(
                    f"  {p['full_name']}, lahir di {p['birth_place']} {p['birth_date']}, "
                    f"NIK {p['nik']} -> KPJ {', '.join(p['kpj'])}"  # type: ignore[arg-type]
                )
