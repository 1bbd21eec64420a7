"""The database cache: one-statement atomic add/set (ALTCHA replay markers, rate limits)."""

from __future__ import annotations

import threading

import pytest
from django.core.cache import cache, caches
from django.db import connection

from kartu.accounts import dbcache


def test_the_project_uses_it() -> None:
    assert isinstance(caches["default"], dbcache.DatabaseCache)


@pytest.mark.django_db
def test_add_set_get_and_expiry(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    assert cache.add("k", 1, timeout=60) is True
    assert cache.add("k", 2, timeout=60) is False
    assert cache.get("k") == 1
    cache.set("k", {"x": [1, 2]}, timeout=60)
    assert cache.get("k") == {"x": [1, 2]}
    cache.set("gone", 1, timeout=-1)  # already expired: add may take the key over
    assert cache.get("gone") is None
    assert cache.add("gone", 3, timeout=60) is True and cache.get("gone") == 3
    cache.set("forever", 1, timeout=None)
    assert cache.get("forever") == 1
    cache.delete("k")
    assert cache.add("k", 4) is True


@pytest.mark.django_db
def test_expired_rows_are_deleted_now_and_then(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    backend = caches["default"]
    cache.set("old", 1, timeout=-10)
    backend._next_cull = 0.0
    cache.set("new", 1, timeout=60)
    with connection.cursor() as cur:
        cur.execute("SELECT cache_key FROM kartu_cache")
        keys = {k for (k,) in cur.fetchall()}
    assert not any(k.endswith(":old") for k in keys) and any(k.endswith(":new") for k in keys)


@pytest.mark.django_db(transaction=True)
def test_concurrent_adds_have_one_winner() -> None:
    cache.clear()
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        from django.db import connection as conn

        barrier.wait()
        results.append(cache.add("contested", 1, timeout=60))
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]
    cache.clear()
