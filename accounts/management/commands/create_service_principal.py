"""python manage.py create_service_principal NAME [--group GROUP ...]"""

from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User


class Command(BaseCommand):
    help = "Create a service principal (token-only login) for CI/CD, optionally in groups."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--group", action="append", default=[])

    def handle(self, *args, name, group, **options):
        if User.objects.filter(username=name).exists():
            raise CommandError(f"Principal '{name}' already exists.")
        user = User(username=name, kind=User.Kind.SERVICE_PRINCIPAL)
        user.set_unusable_password()
        user.save()
        for group_name in group:
            user.groups.add(Group.objects.get_or_create(name=group_name)[0])
        self.stdout.write(f"Service principal '{name}' created.")
