"""Create the experimenter and viewer groups with their permissions."""

from django.db import migrations

GROUPS = {
    # Define, start, stop, analyze and promote.
    "experimenter": ["add_experiment", "change_experiment", "view_experiment", "run_experiment"],
    # Read experiments and reports.
    "viewer": ["view_experiment"],
}


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations ran; create them now so that
    # the groups can hold them on a fresh database.
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in GROUPS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(
            *Permission.objects.filter(content_type__app_label="experiments", codename__in=codenames)
        )


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
