"""Create the experimenter and viewer groups with their permissions."""

from django.db import migrations

from experiments.migrations._groups import grant

GROUPS = {
    # Define, start, stop, analyze and promote.
    "experimenter": ["add_experiment", "change_experiment", "view_experiment", "run_experiment"],
    # Read experiments and reports.
    "viewer": ["view_experiment"],
}


def create_groups(apps, schema_editor):
    for name, codenames in GROUPS.items():
        grant(apps, name, codenames)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
