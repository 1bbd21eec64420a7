"""The ``kartu`` command: Django's management commands with kartu's settings.

``kartu migrate``, ``kartu registry import FILE``, ``kartu up`` … — every management command,
run as ``kartu <command>`` from any directory.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str] | None = None) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kartu.settings")
    from django.core.management import execute_from_command_line

    args = list(sys.argv if argv is None else ["kartu", *argv])
    args[0] = "kartu"
    execute_from_command_line(args)


if __name__ == "__main__":
    main()
