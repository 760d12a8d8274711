"""WSGI entry point for gunicorn: `gunicorn config.wsgi`."""

import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()

# Import every view now (the URL configuration loads lazily otherwise), then move everything
# loaded so far out of the garbage collector's reach: a full collection otherwise walks all
# of Django's and the project's objects, a pause of about 0.15 s that a request allocating
# many objects (a 10,000-unit batch) triggers every few requests (bench/README.md).
get_resolver().url_patterns
gc.freeze()
