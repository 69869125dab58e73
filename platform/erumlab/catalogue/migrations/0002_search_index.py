"""A GIN index for PostgreSQL's full-text search over datasets (nothing on SQLite).

The expression is exactly the one the search selector uses, so the planner can
use the index.
"""

from django.db import migrations

INDEX = "catalogue_dataset_search_gin"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON catalogue_dataset "
            f"USING gin (to_tsvector('english'::regconfig, search_document))"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("catalogue", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
