"""Experimenters may fetch assignments too (to debug what a unit sees); viewers may not."""

from django.db import migrations

from experiments.migrations._groups import grant


def forwards(apps, schema_editor):
    grant(apps, "experimenter", ["fetch_assignment"])


class Migration(migrations.Migration):
    dependencies = [("experiments", "0003_assignment")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
