"""python manage.py create_service_principal NAME [--group GROUP ...]"""

from django.core.management.base import BaseCommand, CommandError

from accounts.services import SystemActor, service_principal_create
from core.errors import StewardError


class Command(BaseCommand):
    help = (
        "Create a service principal (token-only login) for CI/CD in existing groups, audited "
        "as the system; issue_token then gives it a token."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument(
            "--group", action="append", default=[], help="an existing group; repeatable"
        )

    def handle(self, *args, name, group, **options):
        try:
            principal = service_principal_create(actor=SystemActor(), name=name, groups=group)
        except StewardError as exc:
            raise CommandError(exc.message) from exc
        groups = f" in {', '.join(group)}" if group else ""
        self.stdout.write(f"Service principal '{principal.username}' created{groups}.")
