"""Django settings for kartu.

Every setting an operator may change comes from a ``KARTU_*`` environment variable with a safe
default; the README lists them all. Secrets that are not given are generated once into the data
directory (with a warning) so that a fresh checkout runs with nothing to configure.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url

from kartu.core.config import env_bool, env_int, env_str, load_or_create_secret

BASE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(env_str("KARTU_DATA_DIR", "var")).resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("KARTU_DEBUG", False)
SECRET_KEY = env_str("KARTU_SECRET_KEY", "") or load_or_create_secret(DATA_DIR, "secret_key")

PUBLIC_URL = env_str("KARTU_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
_public_host = PUBLIC_URL.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]
ALLOWED_HOSTS = [
    h.strip()
    for h in env_str("KARTU_ALLOWED_HOSTS", f"{_public_host},127.0.0.1,localhost").split(",")
    if h.strip()
]
CSRF_TRUSTED_ORIGINS = [PUBLIC_URL]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_tasks",
    "django_tasks_db",
    "kartu.core",
    "kartu.registry",
    "kartu.card",
    "kartu.desk",
    "kartu.channels.email",
    "kartu.channels.webchat",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.usersessions",
    "django_altcha",  # the ALTCHA widget script, served from our own static files
    "kartu.accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "allauth.usersessions.middleware.UserSessionsMiddleware",
    "kartu.accounts.middleware.StaffMfaMiddleware",
]

ROOT_URLCONF = "kartu.urls"
WSGI_APPLICATION = "kartu.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# SQLite is the embedded default (nothing to install); PostgreSQL is what production uses.
SQLITE_PATH = DATA_DIR / "kartu.sqlite3"
DATABASE_URL = env_str("KARTU_DATABASE_URL", f"sqlite:///{SQLITE_PATH}")
# Prepared statements for the hot paths on PostgreSQL (see kartu/core/sql.py); turn off behind a
# transaction-mode pooler that does not support them.
KARTU_DB_PREPARE = env_bool("KARTU_DB_PREPARE", True)


def _database(url: str) -> dict[str, Any]:
    db: dict[str, Any] = dict(dj_database_url.parse(url))
    if db["ENGINE"] == "django.db.backends.sqlite3":
        # WAL lets readers run beside the writer; IMMEDIATE takes the write lock at BEGIN so
        # concurrent writers queue on the busy timeout instead of failing with "database is
        # locked" half-way through a transaction.
        db["OPTIONS"] = {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": (
                "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA busy_timeout=20000;"
                "PRAGMA foreign_keys=ON;"
                # Read the file through a memory map and keep a larger page cache: a lookup in a
                # registry of millions touches pages all over the file, and a read() system call
                # per page cost more than the rest of the lookup. (Address space, not memory:
                # the OS keeps what it can in its page cache either way.)
                f"PRAGMA mmap_size={env_int('KARTU_SQLITE_MMAP_MB', 4096) * 1024 * 1024};"
                "PRAGMA cache_size=-65536;"
            ),
        }
    else:
        db["CONN_HEALTH_CHECKS"] = True
        # Only kartu.core.sql's hot-path cursors use server-side binding, and they prepare at
        # the first execution; the ORM's client-side cursors never prepare.
        db.setdefault("OPTIONS", {}).setdefault(
            "prepare_threshold", 0 if KARTU_DB_PREPARE else None
        )
    # Persistent connections for both: Django's default (0) opens a new connection for every
    # request, which for SQLite also means running the PRAGMAs above and starting with an empty
    # page cache every time (about a millisecond, and cold reads, per request).
    db["CONN_MAX_AGE"] = env_int("KARTU_DB_CONN_MAX_AGE", 60)
    db.setdefault("TEST", {})
    return db


DATABASES = {"default": _database(DATABASE_URL)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, sessions, rate limits -----------------------------------------------------------
# With Redis: cache, sessions and rate-limit counters live there. Without it, the database
# cache is still shared by every process (a per-process memory cache would not be).
REDIS_URL = env_str("KARTU_REDIS_URL", "")
if REDIS_URL:
    CACHES: dict[str, dict[str, Any]] = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "kartu",
        }
    }
    SESSION_ENGINE = "kartu.accounts.session_backends.cache"
else:
    CACHES = {
        "default": {
            # Django's database cache with one-statement atomic set/add (kartu/accounts/dbcache.py)
            "BACKEND": "kartu.accounts.dbcache.DatabaseCache",
            "LOCATION": "kartu_cache",
            # Rate-limit counters and ALTCHA replay markers live here: never cull live entries
            # at Django's default of 300 (expired ones are deleted first).
            "OPTIONS": {"MAX_ENTRIES": 200_000},
        }
    }
    SESSION_ENGINE = "kartu.accounts.session_backends.db"

# --- Background tasks -----------------------------------------------------------------------
TASKS = {
    "default": {
        "BACKEND": env_str("KARTU_TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
    }
}

# --- Security -------------------------------------------------------------------------------
PASSWORD_HASHERS = [
    "kartu.core.hashers.Argon2idOwaspHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
_https = PUBLIC_URL.startswith("https://")
SESSION_COOKIE_SECURE = _https
CSRF_COOKIE_SECURE = _https
# allauth builds the links in its mails (password reset, address verification) from the request,
# which is plain http behind a TLS-terminating proxy: an https public URL makes them https.
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if _https else "http"
# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (and drops any a client sent),
# KARTU_TRUST_FORWARDED_PROTO=1 lets Django see those requests as https (request.is_secure()).
# Never turn it on without such a proxy: a client could then claim https itself.
if env_bool("KARTU_TRUST_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "id"
LANGUAGES = [("id", "Bahasa Indonesia"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Jakarta"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
LOGIN_URL = "account_login"
STATIC_ROOT = DATA_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- kartu ----------------------------------------------------------------------------------
# Field-encryption and blind-index keys: "kid:base64key,kid:base64key" — the first is active,
# the others are still read (encryption) or still looked up (blind index) until a rotation ends.
KARTU_FIELD_KEYS = env_str("KARTU_FIELD_KEYS", "")
KARTU_BLIND_INDEX_KEYS = env_str("KARTU_BLIND_INDEX_KEYS", "")
KARTU_KEYS_FILE = DATA_DIR / "keys.json"

KARTU_LIMITS = {
    # verification attempts per requester key per hour (member channels)
    "requester": (env_int("KARTU_LIMIT_REQUESTER_PER_HOUR", 5), 3600),
    # staff keys ("agent:…", "cli:…")
    "staff": (env_int("KARTU_LIMIT_STAFF_PER_HOUR", 60), 3600),
    # failed attempts per NIK per 24 h before automated disclosure is locked
    "nik_failures": (env_int("KARTU_LIMIT_NIK_FAILURES_PER_DAY", 3), 86400),
    # portal sign-in (allauth's login and login_failed rules, counted by kartu's limiter)
    "signin_ip": (env_int("KARTU_LIMIT_SIGNIN_PER_IP_PER_MINUTE", 30), 60),
    "signin_failed_ip": (10, 60),
    "signin_failed_key": (5, 300),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_pii": {"()": "kartu.core.logging.RedactPiiFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["redact_pii"],
            "formatter": "plain",
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("KARTU_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Help desk --------------------------------------------------------------------------------
# Disclosure policy per channel: "direct" (the number is in the reply, the agency's practice) or
# "confirm" (a one-time code goes to the email/phone on file first). "direct" or e.g.
# "confirm" or "direct,email=confirm".
KARTU_DISCLOSURE_POLICY = env_str("KARTU_DISCLOSURE_POLICY", "direct")
KARTU_BOT_MAX_FAILURES = env_int("KARTU_BOT_MAX_FAILURES", 2)

# SMS for one-time codes: console | file | twilio
KARTU_SMS_BACKEND = env_str("KARTU_SMS_BACKEND", "console")
KARTU_TWILIO_BASE_URL = env_str("KARTU_TWILIO_BASE_URL", "https://api.twilio.com")
KARTU_TWILIO_ACCOUNT_SID = env_str("KARTU_TWILIO_ACCOUNT_SID", "")
KARTU_TWILIO_AUTH_TOKEN = env_str("KARTU_TWILIO_AUTH_TOKEN", "")
KARTU_TWILIO_FROM = env_str("KARTU_TWILIO_FROM", "")

# Email: outbound through KARTU_SMTP_URL (smtp://user:pass@host:port, smtps:// for TLS);
# without it, mail is written to the console.
KARTU_CARE_ADDRESS = env_str("KARTU_CARE_ADDRESS", "care@kartu.localhost")
DEFAULT_FROM_EMAIL = env_str("KARTU_FROM_EMAIL", KARTU_CARE_ADDRESS)
SERVER_EMAIL = DEFAULT_FROM_EMAIL
KARTU_SMTP_URL = env_str("KARTU_SMTP_URL", "")
if KARTU_SMTP_URL:
    from urllib.parse import unquote, urlsplit

    _smtp = urlsplit(KARTU_SMTP_URL)
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _smtp.hostname or "127.0.0.1"
    EMAIL_PORT = _smtp.port or (465 if _smtp.scheme == "smtps" else 25)
    EMAIL_HOST_USER = unquote(_smtp.username or "")
    EMAIL_HOST_PASSWORD = unquote(_smtp.password or "")
    EMAIL_USE_SSL = _smtp.scheme == "smtps"
    EMAIL_USE_TLS = "starttls" in _smtp.query
    EMAIL_TIMEOUT = 20
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
KARTU_SMTP_LISTEN = env_str("KARTU_SMTP_LISTEN", "127.0.0.1:2525")
KARTU_IMAP_URL = env_str("KARTU_IMAP_URL", "")
KARTU_EMAIL_MAX_BYTES = env_int("KARTU_EMAIL_MAX_BYTES", 10 * 1024 * 1024)

# --- Member accounts (django-allauth) ---------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",  # staff usernames (desk, admin)
    "allauth.account.auth_backends.AuthenticationBackend",  # members sign in by email
]
LOGIN_REDIRECT_URL = "accounts:dashboard"
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"  # enumeration prevention only works with this
ACCOUNT_PREVENT_ENUMERATION = True
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_CHANGE_EMAIL = True  # one address per account, changed by verifying the new one
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[kartu] "
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = False
ACCOUNT_FORMS = {
    "login": "kartu.accounts.forms.LoginForm",
    "signup": "kartu.accounts.forms.SignupForm",
    "reset_password": "kartu.accounts.forms.ResetPasswordForm",
}
# allauth's limits (signup 20/m/ip, reset_password 20/m/ip + 5/m/key, …) apply in the shared
# cache above, except the two on signing in: the same rules are counted by kartu's limiter
# (KARTU_LIMITS signin_*; see kartu/accounts/adapter.py), which needs one operation per rate
# where allauth's takes four.
ACCOUNT_ADAPTER = "kartu.accounts.adapter.AccountAdapter"
ACCOUNT_RATE_LIMITS = {"login": None, "login_failed": None}
# Behind a reverse proxy, say how many proxies to trust for the client IP (rate limits by IP).
ALLAUTH_TRUSTED_PROXY_COUNT = env_int("KARTU_TRUSTED_PROXY_COUNT", 0)

MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_PASSKEY_LOGIN_ENABLED = True
MFA_TOTP_ISSUER = "kartu"
# WebAuthn needs HTTPS except on localhost; allow plain http only for development and tests.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = DEBUG
# Flash messages name a member's KPJ and, on the desk, a member's name: keep them in the
# server-side session, not in the (signed, readable) cookie of Django's default storage.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
USERSESSIONS_TRACK_ACTIVITY = False  # no write on every request; sessions are still listed
# Agents, staff and superusers must use a second factor before /desk/ or /admin/ works.
KARTU_REQUIRE_STAFF_MFA = True

# "Saya bukan robot" (ALTCHA proof of work). A cheap phone solves 50,000 in about a second.
ALTCHA_HMAC_KEY = env_str("KARTU_ALTCHA_HMAC_KEY", "") or load_or_create_secret(
    DATA_DIR, "altcha_hmac_key"
)
ALTCHA_CHALLENGE_EXPIRE = 20 * 60 * 1000  # milliseconds
ALTCHA_CACHE_ALIAS = "default"  # shared by every process: replay is refused everywhere
KARTU_ALTCHA_MAXNUMBER = env_int("KARTU_ALTCHA_MAXNUMBER", 50_000)

if _https:
    # __Host- cookies: Secure, whole site, no Domain (no subdomain can set or read them).
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
