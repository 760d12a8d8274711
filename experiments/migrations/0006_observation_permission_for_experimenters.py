"""Experimenters may post observations too (backfills by hand); viewers may not."""

from django.db import migrations

from experiments.migrations._groups import grant


def forwards(apps, schema_editor):
    grant(apps, "experimenter", ["post_observation"])


class Migration(migrations.Migration):
    dependencies = [("experiments", "0005_observation")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
