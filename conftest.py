"""Shared fixtures. Service-backed fixtures skip (with the reason) only when their variable is
absent, and fail loudly when it is set but the service cannot be reached."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date

import pytest


def pytest_report_header(config: pytest.Config) -> list[str]:
    from django.db import connection

    def state(var: str) -> str:
        return "set" if os.environ.get(var) else "absent"

    return [
        f"kartu: database vendor {connection.vendor}",
        f"kartu: KARTU_TEST_POSTGRES_URL {state('KARTU_TEST_POSTGRES_URL')}",
        f"kartu: KARTU_TEST_REDIS_URL {state('KARTU_TEST_REDIS_URL')}",
    ]


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get("KARTU_TEST_REDIS_URL")
    if not url:
        pytest.skip("KARTU_TEST_REDIS_URL is not set: Redis tests skipped")
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.fail(f"KARTU_TEST_REDIS_URL is set but Redis is unreachable: {exc}")
    return url


@pytest.fixture
def clean_redis(redis_url: str) -> Iterator[str]:
    import redis

    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match="kartu:*"):
        client.delete(key)
    yield redis_url
    for key in client.scan_iter(match="kartu:*"):
        client.delete(key)


@pytest.fixture
def person_rows() -> list[dict[str, str]]:
    """Two people, the first with two memberships (the normal multi-employer case)."""
    base = {
        "nik": "3174055708900003", "full_name": "SITI NURHALIZA", "birth_place": "JAKARTA",
        "birth_date": "1990-08-17", "sex": "P", "email": "siti@contoh.id",
        "phone": "081234567890", "status": "aktif", "registered_on": "2015-03-01",
    }
    return [
        {**base, "kpj": "12345678901", "employer": "PT MAJU JAYA", "status": "nonaktif"},
        {**base, "kpj": "10987654321", "employer": "PT SINAR ABADI"},
        {
            "nik": "3505120910770018", "full_name": "MUHAMMAD RIZKI", "birth_place": "BLITAR",
            "birth_date": "1977-10-09", "sex": "L", "email": "", "phone": "",
            "kpj": "11122233344", "employer": "", "status": "aktif", "registered_on": "",
        },
    ]


@pytest.fixture
def registry_csv(tmp_path, person_rows):  # type: ignore[no-untyped-def]
    from kartu.registry.importer import iter_csv_rows

    path = tmp_path / "members.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        iter_csv_rows(person_rows, fh)
    return path


@pytest.fixture
def own_keys_file(settings, tmp_path):  # type: ignore[no-untyped-def]
    """A copy of the test keys file that a test may rotate (settings point at it meanwhile)."""
    import shutil

    from kartu.core import crypto

    original = settings.KARTU_KEYS_FILE
    path = tmp_path / "keys.json"
    crypto.keyring()
    shutil.copy(original, path)
    settings.KARTU_KEYS_FILE = path
    crypto.reload_keyring()
    yield path
    settings.KARTU_KEYS_FILE = original
    crypto.reload_keyring()


def add_active_key(path, section: str):  # type: ignore[no-untyped-def]
    """The first half of a rotation, in the keys file at ``path``: a new key of ``section``
    ("index" or "field") becomes active beside the old one (every process looks up under
    both from now on). Returns the keyring as it was before."""
    from kartu.core import crypto
    from kartu.registry import keys

    before = crypto.keyring()
    data = crypto.read_keys_file(path)
    kid = keys._next_kid(data[section], section[0])
    data[section]["keys"][kid] = crypto.new_key()
    data[section]["active"] = kid
    crypto.write_keys_file(path, data)
    crypto.reload_keyring()
    return before


@pytest.fixture
def loaded_registry(db, registry_csv):  # type: ignore[no-untyped-def]
    from kartu.registry.importer import import_csv

    summary = import_csv(registry_csv, progress=False)
    assert summary.rejected == 0, summary.first_rejects
    return summary


SITI = {"nik": "3174055708900003", "full_name": "Siti Nurhaliza", "birth_place": "Jakarta",
        "birth_date": date(1990, 8, 17)}


CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]


def find_chromium() -> str | None:
    """Debian's Chromium (or KARTU_CHROMIUM), if it is installed."""
    import shutil

    path = os.environ.get("KARTU_CHROMIUM") or shutil.which("chromium")
    return path if path and os.path.exists(path) else None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium. Outside CI a missing browser skips (with the reason); in CI it fails."""
    path = find_chromium()
    if path is None:
        message = "Chromium is not installed (apt-get install chromium): browser tests"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} must run in CI")
        pytest.skip(f"{message} skipped")
    return path


@pytest.fixture(scope="session")
def browser(chromium_path: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop on this thread; Django would then refuse ORM
    # calls from the test body as "async context", though they are not run concurrently.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_FLAGS)
        yield b
        b.close()
