"""python manage.py issue_token USERNAME [--name NAME] [--days N] [--scope all|read]"""

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.services import api_token_issue
from core.actor import Actor
from core.errors import StewardError


class Command(BaseCommand):
    help = "Issue an API token for a user or service principal; prints the token on its last line."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli")
        parser.add_argument("--days", type=int, default=None)
        parser.add_argument("--scope", default="all", choices=["all", "read"])

    def handle(self, *args, username, name, days, scope, **options):
        user = User.objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"No active user '{username}'.")
        # The operator at the console acts as the user the token is for.
        actor = Actor(user=user, auth_method="cli", source_address="")
        try:
            token, raw = api_token_issue(actor=actor, user=user, name=name, days=days, scope=scope)
        except StewardError as exc:
            raise CommandError(exc.message) from exc
        self.stderr.write(
            f"Token '{token.name}' for {username}, expires {token.expires_at:%Y-%m-%d}."
        )
        self.stdout.write(raw)
