"""The admin is discovered when the URLs load, not at start-up (config/admin_app.py), and is still checked."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# In a fresh process, as `manage.py` starts one: what django.setup() imports, then what the checks see.
PROBE = """
import json, sys
import django
django.setup()
from django.contrib import admin
from django.core import checks
before = {"scipy": "scipy" in sys.modules, "registered": len(admin.site._registry)}
messages = checks.run_checks(tags=[checks.Tags.admin])
print(json.dumps({**before, "after_checks": len(admin.site._registry), "messages": [str(m) for m in messages]}))
"""


def test_start_up_imports_neither_the_admin_nor_scipy_and_the_checks_still_see_every_model_admin():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=True)
    probe = json.loads(done.stdout.strip().splitlines()[-1])

    assert probe["scipy"] is False
    assert probe["registered"] == 0
    from django.contrib import admin
    from django.urls import reverse
    reverse("admin:index")   # this process's URLs are loaded: its registry is the full one
    assert probe["after_checks"] == len(admin.site._registry) > 0
    assert probe["messages"] == []
