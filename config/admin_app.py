"""The admin's app config: its modules are discovered when the URLs load, not at start-up.

Django's default `AdminConfig` imports every app's `admin` module in `ready()`. Ours import the
analysis (forms and previews plan samples) and so scipy, a second of every process's start-up,
which a management command such as `import_covariates` paid for nothing (bench/README.md,
covariate_import.py). config/urls.py calls `autodiscover()`; the system checks do it too, so
that `manage.py check` always checks every registered ModelAdmin.
"""

from django.contrib.admin import autodiscover
from django.contrib.admin.apps import SimpleAdminConfig
from django.contrib.admin.checks import check_admin_app, check_dependencies
from django.core import checks


def check_discovered_admin(app_configs, **kwargs):
    """Django's admin check, after discovery (the checks may run before the URLs have loaded)."""
    autodiscover()
    return check_admin_app(app_configs, **kwargs)


class AdminDiscoveredWithURLsConfig(SimpleAdminConfig):
    def ready(self):
        # SimpleAdminConfig.ready() would register check_admin_app itself, before any discovery.
        checks.register(check_dependencies, checks.Tags.admin)
        checks.register(check_discovered_admin, checks.Tags.admin)
