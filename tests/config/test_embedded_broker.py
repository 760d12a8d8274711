"""The embedded setup's filesystem broker keeps everything it writes under VAR_DIR, never in the working tree."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PUBLISH = """
import django
django.setup()
from config.celery_app import app
with app.connection_for_write() as connection:
    app.send_task("experiments.queue_due_analyses", connection=connection)
"""


def test_publishing_on_the_filesystem_broker_writes_only_under_var_dir(tmp_path):
    var_dir, working_dir = tmp_path / "var", tmp_path / "cwd"
    working_dir.mkdir()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "CELERY_BROKER_URL": "filesystem://",
           "VAR_DIR": str(var_dir), "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "DEBUG": "true",
           "PYTHONPATH": str(ROOT)}

    subprocess.run([sys.executable, "-c", PUBLISH], cwd=working_dir, env=env, check=True, timeout=60)

    assert list(working_dir.iterdir()) == []
    assert (var_dir / "celery" / "control" / "celery.exchange").exists()
    assert len(list((var_dir / "celery" / "queue").iterdir())) == 1
