"""``kartu createagent USERNAME [--password-stdin] [--email ADDRESS]``

Creates a help-desk agent: a user in the "agents" group (the group is created when missing). For
an existing user it only adds them to the group (and sets the password when one is given).
Without ``--password-stdin`` the password is asked for on the terminal.
"""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from kartu.desk.forms import AGENTS_GROUP


class Command(BaseCommand):
    help = 'Create a help-desk agent (a user in the "agents" group).'

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--password-stdin", action="store_true",
            help="read the password from the first line of standard input",
        )

    def _password(self, options: dict[str, Any]) -> str | None:
        if options["password_stdin"]:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("no password on standard input")
            return password
        if not sys.stdin.isatty():
            return None
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("the passwords differ")
        return first

    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        username: str = options["username"].strip()
        if not username:
            raise CommandError("the username is empty")
        existing = User.objects.filter(**{User.USERNAME_FIELD: username}).first()
        password = self._password(options)
        if existing is None and password is None:
            raise CommandError("a new agent needs a password: use --password-stdin or a terminal")
        if password is not None:
            probe = existing or User(**{User.USERNAME_FIELD: username, "email": options["email"]})
            try:
                password_validation.validate_password(password, probe)
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from None
        with transaction.atomic():
            group, _ = Group.objects.get_or_create(name=AGENTS_GROUP)
            if existing is None:
                user = User.objects.create_user(username, email=options["email"] or "",
                                                password=password)
            else:
                user = existing
                if password is not None:
                    user.set_password(password)
                    user.save(update_fields=["password"])
            user.groups.add(group)
        verb = "updated" if existing else "created"
        self.stdout.write(self.style.SUCCESS(f'agent "{username}" {verb} (group "{AGENTS_GROUP}")'))
