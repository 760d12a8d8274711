"""Django admin: define experiments, follow them while locked, act on their results; API keys.

Writes go through the same services as the REST API (so every change is audited) and the
same definition rules apply; see docs/admin.md. Observations and assignments are
deliberately not registered: while an experiment is locked the admin shows counts only.
"""

from django.contrib import admin

from experiments.admin import experiment, keys  # noqa: F401 (each module registers its model admins)

admin.site.site_header = "Experiments"
admin.site.site_title = "Experiments admin"
admin.site.index_title = "Preregistered A/B and champion/challenger tests"
