"""Create the admin group, an admin account (password printed once) and the demo catalog."""

import secrets

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User
from catalog.models import Catalog, Schema
from catalog.selectors import metastore
from catalog.services import catalog_create, schema_create
from core.actor import Actor
from registry.models import RegisteredModel
from registry.services import registered_model_create


class Command(BaseCommand):
    help = "Idempotent: admin group and user, demo catalog main.default with a sample model."

    def add_arguments(self, parser):
        parser.add_argument("--admin", default="admin")

    @transaction.atomic
    def handle(self, *args, admin, **options):
        metastore()
        group, _ = Group.objects.get_or_create(name=settings.STEWARD_ADMIN_GROUP)
        user = User.objects.filter(username=admin).first()
        if user is None:
            password = secrets.token_urlsafe(12)
            user = User.objects.create_user(
                username=admin, password=password, is_staff=True, is_superuser=True
            )
            self.stdout.write(f"Admin account: {admin} / password: {password}")
        else:
            self.stdout.write(f"Admin account '{admin}' exists (password unchanged).")
        user.groups.add(group)
        actor = Actor.system(user)
        if not Catalog.objects.filter(name="main").exists():
            catalog_create(actor=actor, name="main", comment="Demo catalog")
        if not Schema.objects.filter(full_name="main.default").exists():
            schema_create(actor=actor, catalog_name="main", name="default", comment="Demo schema")
        if not RegisteredModel.objects.filter(full_name="main.default.wine_quality").exists():
            registered_model_create(
                actor=actor,
                catalog_name="main",
                schema_name="default",
                name="wine_quality",
                comment="Sample model: register versions with the MLflow client.",
            )
        self.stdout.write("Demo catalog main.default is ready.")
