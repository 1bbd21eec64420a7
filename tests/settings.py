"""Test settings: kartu's settings with a throw-away data dir and a fast password hasher."""

import os
import tempfile

os.environ.setdefault("KARTU_DATA_DIR", tempfile.mkdtemp(prefix="kartu-test-"))

from kartu.settings import *  # noqa: F403

# Argon2 is measured by the benchmark; tests need speed (as Saleor and Zulip do).
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
LOGGING["loggers"]["django_tasks"] = {"level": "WARNING"}  # noqa: F405
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405  (WhiteNoise warns otherwise)
# A file (not Django's shared-cache in-memory database) so threads in the concurrency tests get
# real SQLite locking with the busy timeout, as in production.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}  # noqa: F405
# The desk's own tests sign agents in with force_login; staff MFA is tested (switched back on)
# in kartu/accounts/tests/test_staff_mfa.py.
KARTU_REQUIRE_STAFF_MFA = False
