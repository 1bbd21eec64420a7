"""Session stores that write a new session once (kartu.accounts.session_backends)."""

from __future__ import annotations

import pytest
from django.contrib.sessions.backends.base import CreateError
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from kartu.accounts.session_backends import cache as cache_store
from kartu.accounts.session_backends import db as db_store
from kartu.accounts.tests.conftest import login, make_member

pytestmark = [pytest.mark.django_db, pytest.mark.backends]


@pytest.fixture(params=["db", "cache: database", "cache: redis"])
def engine(request, settings):  # type: ignore[no-untyped-def]
    """Each store as production uses it: the cache store runs on the database cache without
    Redis and on Redis with it (skipped when KARTU_TEST_REDIS_URL is absent)."""
    if request.param == "db":
        return db_store
    if request.param == "cache: redis":
        url = request.getfixturevalue("clean_redis")
        settings.CACHES = {**settings.CACHES, "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url,
            "KEY_PREFIX": "kartu:test"}}
    return cache_store


def test_a_new_session_is_written_once_and_reads_back(engine):
    store = engine.SessionStore()
    store["pesan"] = "halo"
    store.save()
    key = store.session_key
    assert key and len(key) == 32
    again = engine.SessionStore(key)
    assert again["pesan"] == "halo"
    again["pesan"] = "lagi"
    again.save()
    assert engine.SessionStore(key)["pesan"] == "lagi"


def test_a_key_that_exists_is_never_overwritten(engine, monkeypatch):
    first = engine.SessionStore()
    first["pemilik"] = "budi"
    first.save()
    import kartu.accounts.session_backends as backends

    monkeypatch.setattr(backends, "get_random_string", lambda *a: first.session_key)
    second = engine.SessionStore()
    second["pemilik"] = "penyerang"
    with pytest.raises(CreateError):
        second.save()
    assert engine.SessionStore(first.session_key)["pemilik"] == "budi"


def test_signing_in_writes_the_session_row_once():
    make_member("budi@contoh.id")
    with CaptureQueriesContext(connection) as queries:
        response = login(Client(), "budi@contoh.id")
    assert response.status_code == 302 and response["Location"] == "/akun/"
    session_sql = [q["sql"] for q in queries.captured_queries if "django_session" in q["sql"]]
    assert len(session_sql) == 1 and session_sql[0].startswith("INSERT"), session_sql
    client = Client()
    client.cookies = response.cookies
    assert client.get("/akun/").status_code == 200
