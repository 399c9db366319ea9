"""Create the admin group, an admin account (password printed once) and the demo catalog with
the principals the README's examples name; then say where the console is."""

import os
import secrets
import sys

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User
from accounts.services import SystemActor, group_create, user_create
from catalog.models import Catalog, Schema
from catalog.selectors import metastore
from catalog.services import catalog_create, schema_create
from core.actor import Actor
from registry.models import RegisteredModel
from registry.services import registered_model_create

# The README's examples grant to, ask about and hand ownership to these principals.
DEMO_GROUPS = ["data-scientists", "ml-engineers", "reviewers"]
DEMO_USERS = {"alice": ["data-scientists"], "bob": ["reviewers"]}


def _manage_py() -> str:
    """How to run manage.py from here: the interpreter that runs this, relative if it can be."""
    python = os.path.relpath(sys.executable)
    return f"{python if not python.startswith('..') else sys.executable} manage.py"


class Command(BaseCommand):
    help = (
        "Idempotent: admin group and user; demo catalog main (schemas default and ml, model "
        "main.default.wine_quality); groups data-scientists, ml-engineers, reviewers; users "
        "alice and bob (no password). Every principal is created through the audited services."
    )

    def add_arguments(self, parser):
        parser.add_argument("--admin", default="admin")

    def handle(self, *args, admin, **options):
        password = self._bootstrap(admin)
        if password:
            self.stdout.write(f"Admin account: {admin} / password: {password}  (shown once)")
        else:
            self.stdout.write(f"Admin account '{admin}' exists (password unchanged).")
        self.stdout.write("Demo catalog main (schemas main.default, main.ml) is ready.")
        self.stdout.write(
            f"Console: {settings.STEWARD_BASE_URL}/console/  "
            "(API docs: /api/docs/, Django admin: /admin/)"
        )
        self.stdout.write(
            f"Admin password lost? Set a new one: {_manage_py()} changepassword {admin}"
        )

    @transaction.atomic
    def _bootstrap(self, admin: str) -> str | None:
        """Everything missing, in one transaction; the admin's new password, if one was made."""
        metastore()
        system = SystemActor()
        admin_group = str(settings.STEWARD_ADMIN_GROUP)
        for name in [admin_group, *DEMO_GROUPS]:
            if not Group.objects.filter(name=name).exists():
                group_create(actor=system, name=name)
        password = None
        user = User.objects.filter(username=admin).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            user = user_create(
                actor=system,
                username=admin,
                password=password,
                groups=[admin_group],
                superuser=True,
            )
        for name, groups in DEMO_USERS.items():
            if not User.objects.filter(username=name).exists():
                user_create(actor=system, username=name, groups=groups)
        actor = Actor.system(user)
        if not Catalog.objects.filter(name="main").exists():
            catalog_create(actor=actor, name="main", comment="Demo catalog")
        for schema, comment in [("default", "Demo schema"), ("ml", "The README's MLflow models")]:
            if not Schema.objects.filter(full_name=f"main.{schema}").exists():
                schema_create(actor=actor, catalog_name="main", name=schema, comment=comment)
        if not RegisteredModel.objects.filter(full_name="main.default.wine_quality").exists():
            registered_model_create(
                actor=actor,
                catalog_name="main",
                schema_name="default",
                name="wine_quality",
                comment="Sample model: register versions with the MLflow client.",
            )
        return password
