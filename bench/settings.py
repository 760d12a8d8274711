"""Settings for `bench/assignment.py`'s server: the project's settings plus two baseline endpoints.

Everything (database, broker, DEBUG, middleware, DRF defaults) comes from config.settings
and the environment exactly as in production; only the URL configuration differs.
"""

from config.settings import *  # noqa: F401,F403

ROOT_URLCONF = "bench.urls"
