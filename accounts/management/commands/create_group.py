"""python manage.py create_group NAME"""

from django.core.management.base import BaseCommand, CommandError

from accounts.services import SystemActor, group_create
from core.errors import StewardError


class Command(BaseCommand):
    help = "Create a group (users join it with create_user --group), audited as the system."

    def add_arguments(self, parser):
        parser.add_argument("name")

    def handle(self, *args, name, **options):
        try:
            group = group_create(actor=SystemActor(), name=name)
        except StewardError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(f"Group '{group.name}' created.")
