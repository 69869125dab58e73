"""Django settings, all taken from the environment (see README, "Configuration").

Nothing here is environment-specific: production, CI and a laptop differ only
in the variables they set. Readers in ``environment`` fail loudly, naming the
variable, on malformed values.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from erumlab.config.environment import Environment, celery_redis_urls, persisted_secret
from erumlab.config.keys import oidc_private_key
from erumlab.config.layout import DataDir

env = Environment()
DATA = DataDir.from_environment().ensure()
BASE_DIR = DATA.root
PACKAGE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env.bool("DEBUG", False)
SECRET_KEY = env.raw("SECRET_KEY") or persisted_secret(DATA.secret_key, nbytes=50)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", [])

# Public addresses. The portal is the OpenID Connect issuer; the hub is where
# "Open notebook" leads. The API URL is how the portal reaches the hub from the
# server side (inside a compose network it differs from the public one).
ERUMLAB_PORTAL_URL = env.url("ERUMLAB_PORTAL_URL", "http://127.0.0.1:8000")
ERUMLAB_HUB_URL = env.url("ERUMLAB_HUB_URL", "http://127.0.0.1:8001")
# The hub's own API port, not the public proxy: the proxy holds back the hub's
# streamed spawn-progress events until the stream ends.
ERUMLAB_HUB_API_URL = env.url(
    "ERUMLAB_HUB_API_URL",
    f"http://127.0.0.1:{env.int('ERUMLAB_HUB_INTERNAL_PORT', 8081, minimum=1)}/hub/api")
# Where the portal reaches users' servers through the hub's proxy (server side).
ERUMLAB_HUB_PROXY_URL = env.url("ERUMLAB_HUB_PROXY_URL", ERUMLAB_HUB_URL)
ERUMLAB_HUB_API_TOKEN = env.raw("ERUMLAB_HUB_API_TOKEN") or persisted_secret(DATA.hub_api_token)
ERUMLAB_HUB_CLIENT_ID = env.str("ERUMLAB_HUB_CLIENT_ID", "jupyterhub")
# The site's GPUs, as the hub allocates them: "" discovers them with nvidia-smi,
# "none" means none, "0,1,2,3" (indices or UUIDs) names them.
ERUMLAB_GPUS = env.str("ERUMLAB_GPUS", "")
# Notebook servers a user may run at once, and GPUs they may hold, unless a
# quota for them or one of their collaborations says otherwise.
ERUMLAB_SESSION_MAX_SERVERS = env.int("ERUMLAB_SESSION_MAX_SERVERS", 1, minimum=1)
ERUMLAB_SESSION_MAX_GPUS = env.int("ERUMLAB_SESSION_MAX_GPUS", 1, minimum=0)
# A notebook server's API token lives this long past the last time the reconciler
# (every ERUMLAB_SESSION_RECONCILE_SECONDS) saw the server running.
ERUMLAB_SESSION_TOKEN_HOURS = env.int("ERUMLAB_SESSION_TOKEN_HOURS", 24, minimum=1)
ERUMLAB_HUB_CLIENT_SECRET = env.raw("ERUMLAB_HUB_CLIENT_SECRET") or persisted_secret(
    DATA.hub_client_secret
)
# How workers (and job kernels) reach the portal; differs from the public URL in a
# compose network.
ERUMLAB_PORTAL_INTERNAL_URL = env.url("ERUMLAB_PORTAL_INTERNAL_URL", ERUMLAB_PORTAL_URL)
ERUMLAB_ALLOW_SIGNUP = env.bool("ERUMLAB_ALLOW_SIGNUP", True)
ERUMLAB_API_TOKEN_PREFIX = "erl_"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "oauth2_provider",
    "axes",
    "django_htmx",
    "erumlab.core",
    "erumlab.accounts",
    "erumlab.sessions",
    "erumlab.jobs",
    "erumlab.catalogue",
    "erumlab.zoo",
    "erumlab.courses",
    "erumlab.api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns lockouts raised by the backend into responses.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "core:dashboard"
LOGOUT_REDIRECT_URL = "core:home"

ROOT_URLCONF = "erumlab.config.urls"
WSGI_APPLICATION = "erumlab.config.wsgi.application"
ASGI_APPLICATION = "erumlab.config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [PACKAGE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "erumlab.core.context_processors.platform",
            ],
        },
    },
]

_sqlite_default = f"sqlite:///{DATA.sqlite}"
_database = env.database("DATABASE_URL", _sqlite_default)
if _database["ENGINE"].endswith("sqlite3"):
    # Portal and worker write at once: WAL lets readers go on during a write,
    # IMMEDIATE takes the write lock up front instead of failing mid-transaction.
    _database.setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    _database.setdefault("CONN_MAX_AGE", env.int("DATABASE_CONN_MAX_AGE", 60, minimum=0))
    _database.setdefault("CONN_HEALTH_CHECKS", True)
# A file, not memory, for SQLite test databases: worker and hub processes
# started by the tests must see the same data as the test itself.
if _database["ENGINE"].endswith("sqlite3"):
    _database["TEST"] = {"NAME": str(DATA.root / "test.sqlite3")}
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Redis: REDIS_URL, or the embedded server that `erumlab up` starts on a unix
# socket inside the data dir (reachable only from this machine).
REDIS_URL = env.redis_url("REDIS_URL") or DATA.embedded_redis_url
ERUMLAB_EMBEDDED_REDIS = env.raw("REDIS_URL") in (None, "")

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "erumlab",
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA.static
STATICFILES_DIRS = [PACKAGE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = DATA.media
STORAGES = {
    # Uploads, job outputs and artifacts: the data dir, or S3-compatible object
    # storage (django-storages) when ERUMLAB_STORAGE_URL is s3://bucket?endpoint_url=...
    "default": env.storage("ERUMLAB_STORAGE_URL"),
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the packages too, so a checkout works before collectstatic.
WHITENOISE_USE_FINDERS = True

_email = env.email("EMAIL_URL", "consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
for _key in ("EMAIL_HOST", "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD"):
    if _email.get(_key):
        globals()[_key] = _email[_key]
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS", False))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL", False))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", "erumlab <noreply@localhost>")

# Distinct names: portal and hub share a host on different ports, and
# browsers share cookies across ports.
SESSION_COOKIE_NAME = "erumlab_session"
CSRF_COOKIE_NAME = "erumlab_csrftoken"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Behind TLS (production): secure cookies, HSTS and redirects to https.
ERUMLAB_HTTPS = env.bool("ERUMLAB_HTTPS", False)
if ERUMLAB_HTTPS:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", True)
if env.bool("ERUMLAB_BEHIND_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True

# Login rate limiting (django-axes): a username/IP pair is locked out after
# this many failures, for this long.
AXES_FAILURE_LIMIT = env.int("ERUMLAB_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("ERUMLAB_LOGIN_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_USERNAME_FORM_FIELD = "username"
AXES_VERBOSE = False

# The portal is the OpenID Connect provider for JupyterHub (single sign-on).
OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    "OIDC_RSA_PRIVATE_KEY": env.raw("OIDC_RSA_PRIVATE_KEY") or oidc_private_key(DATA.oidc_private_key),
    "OIDC_ISS_ENDPOINT": ERUMLAB_PORTAL_URL,
    "OAUTH2_VALIDATOR_CLASS": "erumlab.accounts.oidc.ClaimsValidator",
    "SCOPES": {
        "openid": "Sign you in with your erumlab account",
        "profile": "Your username, name and collaborations",
        "email": "Your e-mail address",
    },
    "DEFAULT_SCOPES": ["openid"],
    "PKCE_REQUIRED": True,
    "ACCESS_TOKEN_EXPIRE_SECONDS": 3600,
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http"] if not ERUMLAB_HTTPS else ["https"],
    # OAuth 2.0 Security BCP (RFC 9700): no implicit or password grants, S256
    # PKCE only, tokens never in query strings, `iss` in authorization
    # responses, tokens stored hashed, refresh-token replay revokes the family.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "erumlab.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": env.str("ERUMLAB_API_RATE", "2000/hour")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "erumlab API",
    "DESCRIPTION": "REST API of the erumlab portal. Authenticate with a personal API token: "
    "`Authorization: Bearer erl_...`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI served by the platform itself (no CDN).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Jobs and dataset versions both have a "state": name their enums apart.
    "ENUM_NAME_OVERRIDES": {
        "JobStateEnum": "erumlab.jobs.models.Job.State",
        "VersionStateEnum": "erumlab.catalogue.models.DatasetVersion.State",
    },
}

# Celery: JSON only, nothing unpickled; a task is acknowledged after it ran,
# and a worker that dies mid-task hands it back to the queue.
CELERY_BROKER_URL, CELERY_RESULT_BACKEND = celery_redis_urls(REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A late-acked task that outlives the visibility timeout is redelivered; batch
# jobs run for hours, so the timeout must exceed the longest job.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("ERUMLAB_TASK_VISIBILITY_TIMEOUT", 12 * 3600, minimum=60)
}
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BEAT_SCHEDULE = {
    "reconcile-jobs": {
        "task": "erumlab.jobs.reconcile",
        "schedule": float(env.int("ERUMLAB_JOB_RECONCILE_SECONDS", 30, minimum=1)),
        "options": {"queue": "default", "expires": 25},
    },
    "reconcile-submissions": {
        "task": "erumlab.courses.reconcile",
        "schedule": float(env.int("ERUMLAB_JOB_RECONCILE_SECONDS", 30, minimum=1)),
        "options": {"queue": "default", "expires": 25},
    },
    "reconcile-sessions": {
        "task": "erumlab.sessions.reconcile",
        "schedule": float(env.int("ERUMLAB_SESSION_RECONCILE_SECONDS", 60, minimum=1)),
        "options": {"queue": "default", "expires": 50},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA.run / "celerybeat-schedule")

# Batch jobs (papermill notebooks on workers).
ERUMLAB_JOB_DEFAULT_WALL_TIME = env.int("ERUMLAB_JOB_DEFAULT_WALL_TIME", 3600, minimum=1)
ERUMLAB_JOB_MAX_WALL_TIME = env.int("ERUMLAB_JOB_MAX_WALL_TIME", 24 * 3600, minimum=1)
ERUMLAB_JOB_MAX_RUNNING_PER_USER = env.int("ERUMLAB_JOB_MAX_RUNNING_PER_USER", 2, minimum=1)
ERUMLAB_JOB_ARTIFACT_QUOTA_MB = env.int("ERUMLAB_JOB_ARTIFACT_QUOTA_MB", 1000, minimum=1)
ERUMLAB_JOB_HEARTBEAT_SECONDS = env.int("ERUMLAB_JOB_HEARTBEAT_SECONDS", 5, minimum=1)
# A running job whose heartbeat is older than this has lost its worker.
ERUMLAB_JOB_STALE_AFTER = env.int("ERUMLAB_JOB_STALE_AFTER", 60, minimum=2)
# A queued job not picked up after this long is dispatched again (duplicates are dropped).
ERUMLAB_JOB_REDISPATCH_AFTER = env.int("ERUMLAB_JOB_REDISPATCH_AFTER", 900, minimum=10)
ERUMLAB_JOB_MAX_ATTEMPTS = env.int("ERUMLAB_JOB_MAX_ATTEMPTS", 3, minimum=1)
ERUMLAB_JOB_WAIT_COUNTDOWN = env.int("ERUMLAB_JOB_WAIT_COUNTDOWN", 5, minimum=1)
ERUMLAB_JOB_SCRATCH = env.str("ERUMLAB_JOB_SCRATCH", str(DATA.root / "scratch"))
ERUMLAB_TEMPLATE_MAX_BYTES = env.int("ERUMLAB_TEMPLATE_MAX_MB", 20, minimum=1) * 1_000_000
# Dataset catalogue.
ERUMLAB_PID_PREFIX = env.str("ERUMLAB_PID_PREFIX", "erumlab")
ERUMLAB_PUBLISHER = env.str("ERUMLAB_PUBLISHER", "erumlab")
ERUMLAB_QUOTA_USER_BYTES = env.int("ERUMLAB_QUOTA_USER_GB", 50, minimum=0) * 1_000_000_000
ERUMLAB_QUOTA_COLLABORATION_BYTES = (
    env.int("ERUMLAB_QUOTA_COLLABORATION_GB", 500, minimum=0) * 1_000_000_000
)
ERUMLAB_UPLOAD_SCRATCH = env.str("ERUMLAB_UPLOAD_SCRATCH", str(DATA.root / "uploads"))
ERUMLAB_UPLOAD_CHUNK_BYTES = env.int("ERUMLAB_UPLOAD_CHUNK_MB", 8, minimum=1) * 1_000_000
# Hand file transfers to the reverse proxy: "" (stream from Django), "nginx"
# (X-Accel-Redirect to ERUMLAB_ACCEL_PREFIX + storage key) or "sendfile" (X-Sendfile).
ERUMLAB_DOWNLOAD_ACCEL = env.str("ERUMLAB_DOWNLOAD_ACCEL", "")
ERUMLAB_ACCEL_PREFIX = env.str("ERUMLAB_ACCEL_PREFIX", "/protected-media/")
if ERUMLAB_DOWNLOAD_ACCEL not in ("", "nginx", "sendfile"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        f"ERUMLAB_DOWNLOAD_ACCEL: expected '', 'nginx' or 'sendfile', got {ERUMLAB_DOWNLOAD_ACCEL!r}"
    )
# Model zoo: the largest model file accepted (weights or ONNX graph).
ERUMLAB_MODEL_MAX_BYTES = env.int("ERUMLAB_MODEL_MAX_MB", 2000, minimum=1) * 1_000_000
ERUMLAB_TEMPLATES_DIR = env.str(
    "ERUMLAB_TEMPLATES_DIR", str(PACKAGE_DIR.parent.parent / "notebooks_templates")
)
# Courses: the material installed by `erumlab manage install_courses` (and `erumlab up`),
# and the grader's limits.
ERUMLAB_COURSES_DIR = env.str("ERUMLAB_COURSES_DIR", str(PACKAGE_DIR.parent.parent / "courses"))
ERUMLAB_GRADING_TIME_LIMIT = env.int("ERUMLAB_GRADING_TIME_LIMIT", 600, minimum=1)
ERUMLAB_GRADING_QUEUE = env.str("ERUMLAB_GRADING_QUEUE", "default")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
