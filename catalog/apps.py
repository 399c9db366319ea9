from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalog"

    def ready(self) -> None:
        # Imported here: models and auditlog's registry need the app registry to be ready.
        from auditlog.registry import auditlog

        from catalog import models
        from catalog.privileges import Privilege, SecurableType
        from catalog.securables import SecurableKind, register

        register(
            SecurableKind(
                SecurableType.METASTORE,
                models.Metastore,
                models.MetastoreUserGrant,
                models.MetastoreGroupGrant,
                label="Metastore",
                name_field="name",
            )
        )
        register(
            SecurableKind(
                SecurableType.CATALOG,
                models.Catalog,
                models.CatalogUserGrant,
                models.CatalogGroupGrant,
                label="Catalog",
                name_field="name",
                create_privilege=Privilege.CREATE_CATALOG,
            )
        )
        register(
            SecurableKind(
                SecurableType.SCHEMA,
                models.Schema,
                models.SchemaUserGrant,
                models.SchemaGroupGrant,
                label="Schema",
                parent=SecurableType.CATALOG,
                parent_field="catalog",
                create_privilege=Privilege.CREATE_SCHEMA,
            )
        )
        for model in (
            models.Metastore,
            models.Catalog,
            models.Schema,
            models.MetastoreUserGrant,
            models.MetastoreGroupGrant,
            models.CatalogUserGrant,
            models.CatalogGroupGrant,
            models.SchemaUserGrant,
            models.SchemaGroupGrant,
        ):
            auditlog.register(model)
