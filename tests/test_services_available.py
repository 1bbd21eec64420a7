"""The service variables are a promise: set means reachable, or the suite fails here."""

from __future__ import annotations

import os

import pytest


def test_postgres_is_reachable_when_configured():
    url = os.environ.get("KARTU_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("KARTU_TEST_POSTGRES_URL is not set: PostgreSQL run skipped")
    import psycopg

    try:
        with psycopg.connect(url.replace("postgres://", "postgresql://"), connect_timeout=5) as c:
            assert c.execute("SELECT 1").fetchone() == (1,)
    except psycopg.OperationalError as exc:
        pytest.fail(f"KARTU_TEST_POSTGRES_URL is set but PostgreSQL is unreachable: {exc}")


def test_redis_is_reachable_when_configured(redis_url):
    import redis

    assert redis.Redis.from_url(redis_url).ping()
