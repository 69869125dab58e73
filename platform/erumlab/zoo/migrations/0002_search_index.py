from django.db import migrations

INDEX = "zoo_model_search_gin"


def create_index(apps, schema_editor):
    # PostgreSQL only: a GIN index over the stored search vector.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON zoo_model USING gin (search_vector)")


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):

    dependencies = [("zoo", "0001_initial")]

    operations = [migrations.RunPython(create_index, drop_index)]
