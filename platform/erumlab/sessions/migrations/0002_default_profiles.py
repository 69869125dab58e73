from django.db import migrations


def create_defaults(apps, schema_editor):  # noqa: ANN001, ANN201
    """A fresh site gets a CPU and a GPU profile (the GPU one shows only where GPUs are)."""
    Profile = apps.get_model("notebook_sessions", "Profile")
    if Profile.objects.exists():
        return
    Profile.objects.create(slug="cpu", name="CPU: 2 cores, 4 GB", cpus=2, memory_gb=4,
                           description="For analysis, plotting and small trainings.")
    Profile.objects.create(slug="gpu", name="1 GPU: 4 cores, 16 GB", cpus=4, memory_gb=16,
                           gpus=1, order=1, description="One GPU of its own.")


class Migration(migrations.Migration):
    dependencies = [("notebook_sessions", "0001_initial")]
    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
