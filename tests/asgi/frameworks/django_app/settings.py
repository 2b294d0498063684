"""Django settings for the framework tests: no database, no middleware, no debug pages."""

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "django_app.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict[str, object] = {}
USE_TZ = True
# The /upload route reads a body of several MiB.
DATA_UPLOAD_MAX_MEMORY_SIZE = None
TIME_ZONE = "UTC"  # Django sets TZ for the whole worker process (and its log lines)
