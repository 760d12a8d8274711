"""Helpers for data migrations that give permission groups their permissions (not a migration)."""


def ensure_permissions(apps) -> None:
    """Create model permissions now; Django would only create them after all migrations ran."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None


def grant(apps, group_name: str, codenames: list[str]) -> None:
    """Give the group (created if missing) these permissions of the experiments app."""
    ensure_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=group_name)
    group.permissions.add(*Permission.objects.filter(content_type__app_label="experiments", codename__in=codenames))
