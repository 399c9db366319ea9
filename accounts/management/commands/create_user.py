"""python manage.py create_user USERNAME [--email E] [--display-name N] [--group G ...]
[--password-stdin]"""

import sys

from django.core.management.base import BaseCommand, CommandError

from accounts.services import SystemActor, user_create
from core.errors import StewardError


class Command(BaseCommand):
    help = (
        "Create a user in existing groups, audited as the system. Without --password-stdin the "
        "user has no password and signs in with tokens (issue_token) or an identity provider."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument("--display-name", default="")
        parser.add_argument(
            "--group", action="append", default=[], help="an existing group; repeatable"
        )
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help="read the password from the first line of standard input",
        )

    def handle(self, *args, username, email, display_name, group, password_stdin, **options):
        password = None
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
            if not password:
                raise CommandError("No password on standard input.")
        try:
            user = user_create(
                actor=SystemActor(),
                username=username,
                email=email,
                display_name=display_name,
                password=password,
                groups=group,
            )
        except StewardError as exc:
            raise CommandError(exc.message) from exc
        groups = f" in {', '.join(group)}" if group else ""
        self.stdout.write(f"User '{user.username}' created{groups}.")
