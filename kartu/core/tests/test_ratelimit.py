"""Rate limits: the same sliding-window algorithm over the database and over Redis."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from kartu.core.ratelimit import DatabaseStore, Limit, RateLimiter, RedisStore

LIMIT = Limit(5, 3600)
T0 = 1_800_000_000.0  # the start of a window (divisible by 3600)


@pytest.fixture(params=["database", "redis"])
def limiter(request):  # type: ignore[no-untyped-def]
    if request.param == "database":
        request.getfixturevalue("db")
        return RateLimiter(DatabaseStore())
    url = request.getfixturevalue("clean_redis")
    return RateLimiter(RedisStore(url))


pytestmark = pytest.mark.backends


def test_allows_the_limit_then_refuses(limiter):
    decisions = [limiter.hit("t", "email:a@x.id", LIMIT, now=T0 + i) for i in range(7)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 2
    assert decisions[-1].retry_after > 0


def test_keys_are_counted_separately(limiter):
    for _ in range(5):
        limiter.hit("t", "a", LIMIT, now=T0)
    assert not limiter.hit("t", "a", LIMIT, now=T0).allowed
    assert limiter.hit("t", "b", LIMIT, now=T0).allowed
    assert limiter.hit("other-scope", "a", LIMIT, now=T0).allowed


def test_the_previous_window_fades_out(limiter):
    for _ in range(5):
        limiter.hit("t", "a", LIMIT, now=T0 + 3000)
    # just after the window turns, the previous hits still count almost fully
    assert not limiter.hit("t", "a", LIMIT, now=T0 + 3600 + 60).allowed
    # late in the next window they have mostly faded
    assert limiter.hit("t", "a", LIMIT, now=T0 + 3600 + 3000).allowed


def test_peek_does_not_count_and_clear_resets(limiter):
    for _ in range(4):
        limiter.hit("t", "a", LIMIT, now=T0)
    assert limiter.peek("t", "a", LIMIT, now=T0).allowed
    assert limiter.peek("t", "a", LIMIT, now=T0).allowed
    limiter.hit("t", "a", LIMIT, now=T0)
    assert not limiter.peek("t", "a", LIMIT, now=T0).allowed
    limiter.clear("t", "a", LIMIT)
    assert limiter.hit("t", "a", LIMIT, now=T0).allowed


def test_undo_takes_one_hit_back_in_its_own_window_and_never_below_zero(limiter):
    for _ in range(5):
        limiter.hit("t", "a", LIMIT, now=T0 + 10)
    assert not limiter.peek("t", "a", LIMIT, now=T0 + 20).allowed
    limiter.undo("t", "a", LIMIT, at=T0 + 10)
    assert limiter.peek("t", "a", LIMIT, now=T0 + 20).allowed
    for _ in range(10):  # more undos than hits: the count stops at zero
        limiter.undo("t", "a", LIMIT, at=T0 + 10)
    assert [limiter.hit("t", "a", LIMIT, now=T0 + 30).allowed for _ in range(6)] == \
        [True] * 5 + [False]
    limiter.undo("t", "never-hit", LIMIT, at=T0)  # nothing to take back: no error
    assert limiter.hit("t", "never-hit", LIMIT, now=T0).estimate == 1


def test_hit_many_counts_each_key_like_hit_and_undo_many_takes_them_back(limiter):
    small = Limit(2, 60)
    hits = [("a", "x", LIMIT), ("b", "x", small), ("c", "y", LIMIT)]
    first = limiter.hit_many(hits, now=T0 + 1)
    second = limiter.hit_many(hits, now=T0 + 2)
    third = limiter.hit_many(hits, now=T0 + 3)
    assert [d.allowed for d in first + second] == [True] * 6
    assert [d.allowed for d in third] == [True, False, True]  # only the small limit is over
    assert [d.estimate for d in third] == [3, 3, 3]
    limiter.undo_many(hits[1:2], at=T0 + 3)
    limiter.undo_many(hits[1:2], at=T0 + 3)
    assert limiter.hit("b", "x", small, now=T0 + 4).allowed  # 2 of 2 again
    assert limiter.peek("a", "x", LIMIT, now=T0 + 4).estimate == 4  # untouched by the undo
    limiter.undo_many([], at=T0)  # nothing to do


def test_stored_keys_are_pseudonyms(limiter):
    limiter.hit("t", "email:siti@contoh.id", LIMIT, now=T0)
    bucket = limiter.bucket("t", "email:siti@contoh.id", LIMIT)
    assert "siti" not in bucket and bucket.startswith("p3600:t:")


@pytest.mark.django_db(transaction=True)
def test_concurrent_hits_are_never_lost_in_the_database():
    limiter = RateLimiter(DatabaseStore())
    big = Limit(10_000, 3600)

    def hammer() -> None:
        try:
            for _ in range(25):
                limiter.hit("t", "shared", big, now=T0)
        finally:
            connections.close_all()  # this thread's connection: the test DB must drop

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert limiter.peek("t", "shared", big, now=T0).estimate == 101  # 100 hits + the peek


def test_concurrent_hits_are_never_lost_in_redis(clean_redis):
    limiter = RateLimiter(RedisStore(clean_redis))
    big = Limit(10_000, 3600)
    threads = [threading.Thread(target=lambda: [limiter.hit("t", "s", big, now=T0)
                                                for _ in range(50)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert limiter.peek("t", "s", big, now=T0).estimate == 201


@pytest.mark.django_db
def test_old_database_windows_are_pruned():
    from kartu.core.models import RateCounter

    limiter = RateLimiter(DatabaseStore())
    limiter.hit("t", "a", LIMIT, now=T0)
    limiter.hit("t", "a", LIMIT, now=T0 + 3 * 3600)
    assert RateCounter.objects.count() == 2
    assert DatabaseStore().prune(now=T0 + 3 * 3600) == 1
    assert RateCounter.objects.count() == 1


def test_verification_counts_in_the_configured_store(clean_redis, settings, loaded_registry):
    """Redis beside SQLite; the UNLOGGED table beside PostgreSQL (default_store)."""
    import redis
    from django.db import connection

    from kartu.core.models import RateCounter
    from kartu.registry import services

    settings.REDIS_URL = clean_redis
    claim = services.parse_claim(nik="3174055708900003", full_name="Siti Nurhaliza",
                                 birth_place="Jakarta", birth_date="1990-08-17")
    assert services.verify_identity(claim, "email:r@x.id").verified
    keys = list(redis.Redis.from_url(clean_redis).scan_iter(match="kartu:rl:*"))
    if connection.vendor == "postgresql":
        assert not keys and RateCounter.objects.filter(bucket__contains=":verify:").exists()
    else:
        assert keys, "the requester's attempt was counted in Redis"
        assert not RateCounter.objects.exists()


@pytest.mark.django_db
@pytest.mark.backends
def test_the_database_counters_are_unlogged_on_postgresql():
    """A bump of a counter must not wait for a WAL flush (core migration 0003)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("UNLOGGED tables are a PostgreSQL feature")
    with connection.cursor() as cur:
        cur.execute("SELECT relpersistence FROM pg_class WHERE relname = 'core_ratecounter'")
        assert cur.fetchone() == ("u",)


@pytest.mark.django_db
def test_the_counters_live_in_redis_beside_sqlite_and_in_postgresql_beside_postgresql(
    clean_redis, settings
):
    from django.db import connection

    from kartu.core.ratelimit import default_store

    settings.REDIS_URL = clean_redis
    expected = DatabaseStore if connection.vendor == "postgresql" else RedisStore
    assert isinstance(default_store(), expected)
    settings.REDIS_URL = ""
    assert isinstance(default_store(), DatabaseStore)
