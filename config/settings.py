"""Django settings, every one read from the environment through django-environ.

The defaults run the embedded setup (SQLite file and Celery's filesystem transport in
`var/`), so that `make run` needs no server. Production sets DATABASE_URL,
CELERY_BROKER_URL, SECRET_KEY and ALLOWED_HOSTS.
"""

from pathlib import Path

import environ

from experiments.limits import MAX_BODY_BYTES

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("VAR_DIR", default=str(BASE_DIR / "var")))
# Runtime state of the embedded setup (SQLite file, filesystem broker); never committed.
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env(
    DEBUG=(bool, False),
    ALLOWED_HOSTS=(list, ["127.0.0.1", "localhost"]),
)
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env("DEBUG")
# No default secret outside DEBUG: a production deployment must set its own.
SECRET_KEY = env("SECRET_KEY") if not DEBUG else env("SECRET_KEY", default="dev-only-insecure-key")
ALLOWED_HOSTS = env("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # The admin, discovered when the URLs load rather than at start-up (config/admin_app.py: why).
    "config.admin_app.AdminDiscoveredWithURLsConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "experiments",
]

MIDDLEWARE = [
    # First: under /api/ every answer is JSON, and a body over the limit is refused unread.
    "experiments.api.middleware.ApiBoundaryMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # A database outage answers 503 (HTML page, JSON under /api/), not 500; outside the session
    # and auth middleware, which load the session and the user from the database.
    "experiments.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the Celery worker write to one SQLite file: WAL and immediate
    # transactions make them wait for each other instead of failing with "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    # Off by default: a health check is one more round trip (SELECT 1) at the start of every
    # request that touches the database, first-time assignments included. Without it, after a
    # database restart each worker's first request answers 503 JSON and the broken connection
    # is dropped at the end of that request (Django checks it then), so the next one reconnects.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=False)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/reports/"
LOGOUT_REDIRECT_URL = "login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "experiments.api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    # Reads at most the body limit and refuses JSON nested deeper than limits.MAX_JSON_DEPTH.
    "DEFAULT_PARSER_CLASSES": ["experiments.api.renderers.StrictJsonParser"],
    # Per key (service key or personal token): a fixed-window counter in the cache (throttling.py).
    "DEFAULT_THROTTLE_CLASSES": ["experiments.api.throttling.KeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "serving": env("THROTTLE_SERVING_RATE", default="1000000/minute"),  # assignments, observations
        "people": env("THROTTLE_PEOPLE_RATE", default="1000/minute"),  # every other endpoint
    },
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "experiments.api.errors.json_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Experiments platform API",
    "DESCRIPTION": "Preregistered A/B and champion/challenger tests: define, assign, observe, analyse.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # The docs page loads Swagger UI from our own static files, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "experiments.api.schema.add_common_error_responses",
    ],
}

# Request bodies: the API's own limits are in experiments/limits.py (2.5 MiB, 16 MiB for
# observations and batch assignments), checked by experiments/api/middleware.py; Django's own
# (forms, the admin) stays at its default.
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_BODY_BYTES

# The cache holds the API's throttling counters. Without CACHE_URL: LocMemCache, one per
# process (each gunicorn worker counts on its own); CACHE_URL=redis://host:6379/2 shares them.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

# HTTPS behind a TLS-terminating proxy (the production setup of the README, which sets
# SECURE_PROXY=true): the proxy sets X-Forwarded-Proto; plain-http requests are redirected;
# cookies are secure; HSTS. Off by default, so that a server reached over plain http (make run,
# the tests, a gunicorn on a private network) answers rather than redirecting every call.
SECURE_PROXY = env.bool("SECURE_PROXY", default=False)
if SECURE_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # /healthz is probed over plain http by load balancers and orchestrators.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)

# Celery: the embedded default is kombu's filesystem transport in var/celery, so that a
# worker runs without any server; production points CELERY_BROKER_URL at Redis or RabbitMQ.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = VAR_DIR / "celery" / "queue"
    _queue_dir.mkdir(parents=True, exist_ok=True)
    (VAR_DIR / "celery" / "processed").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "store_processed": False,
        # kombu writes its exchange tables here; its default is ./control, in the working tree.
        "control_folder": str(VAR_DIR / "celery" / "control"),
    }
else:
    # A task that is not acknowledged within this time is delivered again (acks_late): it
    # must exceed the hard time limit, or a long analysis would run twice at once.
    # Redis checks for such tasks every interval x throttle seconds (kombu's defaults: 10 x 10).
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
        "unacked_restore_interval": env.float("CELERY_UNACKED_RESTORE_INTERVAL", default=10.0),
        "unacked_restore_throttle": env.int("CELERY_UNACKED_RESTORE_THROTTLE", default=10),
    }
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=None)
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=30 * 60)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=35 * 60)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE = {
    # Moves experiments whose lock has lifted to analyzing and queues their analysis.
    "queue-due-analyses": {
        "task": "experiments.queue_due_analyses",
        "schedule": env.float("ANALYSIS_SWEEP_SECONDS", default=60.0),
    },
    # Queues each planned interim look whose time has come (experiments/services/looks.py). More
    # often than the analysis sweep: a look taken late sees data beyond its planned fraction, and a
    # short test's look could otherwise fall past the end of the test. The query is one indexed filter.
    "queue-due-looks": {
        "task": "experiments.queue_due_looks",
        "schedule": env.float("LOOK_SWEEP_SECONDS", default=15.0),
    },
    # CUPED: gives the covariates of the units assigned since the last run their arm, so that the
    # analysis reads plain aggregates (experiments.db.covariate_arms).
    "resolve-covariate-arms": {
        "task": "experiments.resolve_covariate_arms",
        "schedule": env.float("COVARIATE_ARMS_SECONDS", default=60.0),
    },
}
# An analysis without a result whose experiment row is not locked (no worker runs it) is
# queued again this long after it was handed to the broker: a lost message or a worker that
# died. Two sweeps at most later it runs again, instead of after the broker's redelivery.
ANALYSIS_REQUEUE_SECONDS = env.int("ANALYSIS_REQUEUE_SECONDS", default=120)
# How long queueing an analysis waits for the broker before leaving it to the sweep.
BROKER_PUBLISH_TIMEOUT_SECONDS = env.float("BROKER_PUBLISH_TIMEOUT_SECONDS", default=1.0)
# PostgreSQL work_mem for the analysis transaction (per-unit aggregation of millions of rows).
ANALYSIS_WORK_MEM = env("ANALYSIS_WORK_MEM", default="256MB")

# Assignment serving: how long a worker process trusts its copy of an experiment's state
# (status, traffic, concluded variant). A stop, promotion or ramp reaches every worker within
# this time; 0 reads the database on every request.
ASSIGNMENT_STATE_CACHE_SECONDS = env.float("ASSIGNMENT_STATE_CACHE_SECONDS", default=2.0)
# Authentication: how long a worker process trusts a token it verified (no query, no hash on
# a hit). A revoked key or a deactivated user is refused everywhere within this time; 0 checks
# the database on every request.
AUTH_CACHE_SECONDS = env.float("AUTH_CACHE_SECONDS", default=5.0)

# Health check: how long /healthz waits for the broker before calling it unreachable.
HEALTHZ_BROKER_TIMEOUT_SECONDS = env.float("HEALTHZ_BROKER_TIMEOUT_SECONDS", default=2.0)
# /healthz/ready reports the broker without requiring it, and never waits longer than this for it.
HEALTHZ_READY_BROKER_TIMEOUT_SECONDS = env.float("HEALTHZ_READY_BROKER_TIMEOUT_SECONDS", default=0.5)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
}
