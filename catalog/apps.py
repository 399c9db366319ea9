from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalog"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from catalog import models

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
