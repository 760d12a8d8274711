"""The Celery application: `celery -A config worker --beat` starts a worker with its scheduler."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("experiments_platform")
# Every Celery setting lives in Django settings as CELERY_<NAME>, read from the environment there.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
