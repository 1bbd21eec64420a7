"""Rate limits shared by every process: in Redis when ``KARTU_REDIS_URL`` is set (beside SQLite),
else in the database (always beside PostgreSQL; see :func:`default_store`).

Both stores run the same *sliding-window counter* algorithm: hits are counted in fixed windows of
``period`` seconds and the estimate is ``current + previous × (unexpired share of the previous
window)``. Increments are atomic (Redis INCR; SQL ``INSERT … ON CONFLICT DO UPDATE … RETURNING``),
so concurrent processes never lose a hit. Keys are pseudonymised before they are stored.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Protocol

from django.conf import settings
from django.db import connection

from kartu.core import sql
from kartu.core.crypto import pseudonym


@dataclass(frozen=True)
class Limit:
    count: int
    period: int  # seconds

    @classmethod
    def named(cls, name: str) -> Limit:
        count, period = settings.KARTU_LIMITS[name]
        return cls(int(count), int(period))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    estimate: float
    retry_after: int  # seconds until the estimate falls below the limit (0 when allowed)


@dataclass
class DeferredHit:
    """A hit that rides in the caller's own statement when ``cte`` is set (PostgreSQL counters:
    see RateLimiter.deferred_hit); with any other store it was counted already and ``cte`` is
    empty. Either way the decision ends up in ``decision``."""

    cte: str
    params: list[object]
    limiter: RateLimiter
    limit: Limit
    now: float
    decision: Decision | None = None

    def counted(self, current: int, previous: int | None) -> Decision:
        """Record what the statement returned (``hit.current, hit.previous``); the decision."""
        self.decision = self.limiter._decide(int(current), int(previous or 0), self.limit,
                                             self.now)
        return self.decision


class Store(Protocol):
    def incr(self, bucket: str, slot: int, ttl: int) -> tuple[int, int]:
        """Add one hit to ``slot``; return (count in slot, count in slot - 1)."""

    def peek(self, bucket: str, slot: int) -> tuple[int, int]: ...

    def decr(self, bucket: str, slot: int) -> None:
        """Take one hit back from ``slot`` (never below zero)."""

    def incr_many(self, items: Sequence[tuple[str, int, int]]) -> list[tuple[int, int]]:
        """:meth:`incr` for several distinct ``(bucket, slot, ttl)`` at once (one round trip)."""

    def decr_many(self, items: Sequence[tuple[str, int]]) -> None:
        """:meth:`decr` for several ``(bucket, slot)`` at once."""

    def clear(self, bucket: str) -> None: ...


class DatabaseStore:
    table = "core_ratecounter"
    _incr_sql = (
        f"INSERT INTO {table} (bucket, slot, count) VALUES (%s, %s, 1) "
        f"ON CONFLICT (bucket, slot) DO UPDATE SET count = {table}.count + 1 "
        f"RETURNING count, (SELECT count FROM {table} WHERE bucket = %s AND slot = %s)"
    )
    # The same increment as a common table expression ``hit(current, previous)``, for
    # PostgreSQL only (RateLimiter.deferred_hit): SQLite has no data-modifying CTEs, so
    # _incr_sql above cannot be written as "WITH hit AS (...) SELECT ..." there.
    incr_cte = (
        f"hit AS (INSERT INTO {table} (bucket, slot, count) VALUES (%s, %s, 1) "
        f"ON CONFLICT (bucket, slot) DO UPDATE SET count = {table}.count + 1 "
        f"RETURNING count AS current, "
        f"(SELECT count FROM {table} WHERE bucket = %s AND slot = %s) AS previous)"
    )

    def incr(self, bucket: str, slot: int, ttl: int) -> tuple[int, int]:
        # One statement (one round trip): the increment returns the previous window's count too.
        with sql.hot_cursor() as cur:
            cur.execute(self._incr_sql, [bucket, slot, bucket, slot - 1])
            current, previous = cur.fetchone()
        return int(current), int(previous or 0)

    def peek(self, bucket: str, slot: int) -> tuple[int, int]:
        with connection.cursor() as cur:
            cur.execute(
                f"SELECT slot, count FROM {self.table} WHERE bucket = %s AND slot IN (%s, %s)",
                [bucket, slot, slot - 1],
            )
            counts = dict(cur.fetchall())
        return int(counts.get(slot, 0)), int(counts.get(slot - 1, 0))

    def decr(self, bucket: str, slot: int) -> None:
        self.decr_many([(bucket, slot)])

    def incr_many(self, items: Sequence[tuple[str, int, int]]) -> list[tuple[int, int]]:
        t = self.table
        values = ", ".join(["(%s, %s, 1)"] * len(items))
        with sql.hot_cursor() as cur:
            cur.execute(
                f"INSERT INTO {t} (bucket, slot, count) VALUES {values} "
                f"ON CONFLICT (bucket, slot) DO UPDATE SET count = {t}.count + 1 "
                f"RETURNING bucket, count, (SELECT p.count FROM {t} AS p "
                f"WHERE p.bucket = {t}.bucket AND p.slot = {t}.slot - 1)",
                [v for bucket, slot, _ttl in items for v in (bucket, slot)],
            )
            found = {bucket: (int(count), int(previous or 0))
                     for bucket, count, previous in cur.fetchall()}
        return [found[bucket] for bucket, _slot, _ttl in items]

    def decr_many(self, items: Sequence[tuple[str, int]]) -> None:
        where = " OR ".join(["(bucket = %s AND slot = %s)"] * len(items))
        with sql.hot_cursor() as cur:
            cur.execute(f"UPDATE {self.table} SET count = count - 1 WHERE count > 0 AND ({where})",
                        [v for item in items for v in item])

    def clear(self, bucket: str) -> None:
        with connection.cursor() as cur:
            cur.execute(f"DELETE FROM {self.table} WHERE bucket = %s", [bucket])

    def prune(self, now: float | None = None) -> int:
        """Delete windows no limit can read any more (older than the previous window)."""
        from kartu.core.models import RateCounter

        now = time.time() if now is None else now
        deleted = 0
        for period in {int(p) for _c, p in settings.KARTU_LIMITS.values()}:
            cutoff = math.floor(now / period) - 1
            deleted += RateCounter.objects.filter(
                bucket__startswith=f"p{period}:", slot__lt=cutoff
            ).delete()[0]
        return deleted


class RedisStore:
    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def _key(self, bucket: str, slot: int) -> str:
        return f"kartu:rl:{bucket}:{slot}"

    def incr(self, bucket: str, slot: int, ttl: int) -> tuple[int, int]:
        pipe = self.client.pipeline(transaction=False)
        pipe.incr(self._key(bucket, slot))
        pipe.expire(self._key(bucket, slot), ttl)
        pipe.get(self._key(bucket, slot - 1))
        current, _, previous = pipe.execute()
        return int(current), int(previous or 0)

    def peek(self, bucket: str, slot: int) -> tuple[int, int]:
        current, previous = self.client.mget(self._key(bucket, slot), self._key(bucket, slot - 1))
        return int(current or 0), int(previous or 0)

    # DECR that stops at zero (and does not create a missing key), in one atomic step.
    _DECR_FLOOR = (
        "local n = tonumber(redis.call('GET', KEYS[1]) or '0') "
        "if n > 0 then return redis.call('DECR', KEYS[1]) end return 0"
    )

    def decr(self, bucket: str, slot: int) -> None:
        self.client.eval(self._DECR_FLOOR, 1, self._key(bucket, slot))

    def incr_many(self, items: Sequence[tuple[str, int, int]]) -> list[tuple[int, int]]:
        pipe = self.client.pipeline(transaction=False)
        for bucket, slot, ttl in items:
            pipe.incr(self._key(bucket, slot))
            pipe.expire(self._key(bucket, slot), ttl)
            pipe.get(self._key(bucket, slot - 1))
        replies = pipe.execute()
        return [(int(replies[i]), int(replies[i + 2] or 0)) for i in range(0, len(replies), 3)]

    def decr_many(self, items: Sequence[tuple[str, int]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for bucket, slot in items:
            pipe.eval(self._DECR_FLOOR, 1, self._key(bucket, slot))
        pipe.execute()

    def clear(self, bucket: str) -> None:
        keys = list(self.client.scan_iter(match=f"kartu:rl:{bucket}:*", count=100))
        if keys:
            self.client.delete(*keys)


@cache
def _redis_store(url: str) -> RedisStore:
    return RedisStore(url)


def default_store() -> Store:
    """Redis when it is configured, except beside PostgreSQL: there the counters stay in the
    database's UNLOGGED table even with Redis, because they can ride inside the verification's
    own statements (``RateLimiter.deferred_hit``: one round trip fewer per verification, two per
    failed one) and an unlogged write costs what a Redis one does. Beside SQLite, Redis takes
    the counters' writes off the single-writer database."""
    if settings.REDIS_URL and connection.vendor != "postgresql":
        return _redis_store(settings.REDIS_URL)
    return DatabaseStore()


class RateLimiter:
    def __init__(self, store: Store | None = None) -> None:
        self._store = store

    @property
    def store(self) -> Store:
        return self._store or default_store()

    @staticmethod
    def bucket(scope: str, key: str, limit: Limit) -> str:
        return f"p{limit.period}:{scope}:{pseudonym(key, 'ratelimit')}"

    def _decide(self, current: int, previous: int, limit: Limit, now: float) -> Decision:
        elapsed = now % limit.period
        weight = (limit.period - elapsed) / limit.period
        estimate = current + previous * weight
        if estimate <= limit.count:
            return Decision(True, estimate, 0)
        # When will current + previous*w(t) drop to the limit? Only the previous window decays
        # within this window; if `current` alone exceeds it, wait for the next window too.
        if current <= limit.count and previous:
            needed = (estimate - limit.count) / previous * limit.period
            retry = math.ceil(needed)
        else:
            retry = math.ceil(limit.period - elapsed + limit.period * min(1.0, weight))
        return Decision(False, estimate, max(1, retry))

    def hit(self, scope: str, key: str, limit: Limit, now: float | None = None) -> Decision:
        """Count one attempt and say whether it is within the limit (the attempt counts even
        when refused, so hammering keeps a key limited)."""
        now = time.time() if now is None else now
        slot = math.floor(now / limit.period)
        current, previous = self.store.incr(
            self.bucket(scope, key, limit), slot, ttl=2 * limit.period
        )
        return self._decide(current, previous, limit, now)

    def deferred_hit(
        self, scope: str, key: str, limit: Limit, now: float | None = None
    ) -> DeferredHit:
        """:meth:`hit`, counted where it costs least. With the counters in PostgreSQL the hit
        is not counted yet: the caller puts :attr:`DeferredHit.cte` in a ``WITH`` clause of its
        own statement, selects ``hit.current, hit.previous`` and gives the two values to
        :meth:`DeferredHit.counted` (one round trip instead of two on the verification path).
        With any other store (Redis, or SQLite, which has no data-modifying CTEs) it is counted
        now: ``cte`` is empty and :attr:`DeferredHit.decision` is set."""
        now = time.time() if now is None else now
        store = self.store
        if not isinstance(store, DatabaseStore) or connection.vendor != "postgresql":
            return DeferredHit("", [], self, limit, now, self.hit(scope, key, limit, now))
        slot = math.floor(now / limit.period)
        bucket = self.bucket(scope, key, limit)
        return DeferredHit(store.incr_cte, [bucket, slot, bucket, slot - 1], self, limit, now)

    def peek(self, scope: str, key: str, limit: Limit, now: float | None = None) -> Decision:
        """Would one more hit be allowed? (Does not count.)"""
        now = time.time() if now is None else now
        slot = math.floor(now / limit.period)
        current, previous = self.store.peek(self.bucket(scope, key, limit), slot)
        return self._decide(current + 1, previous, limit, now)

    def hit_many(
        self, hits: Sequence[tuple[str, str, Limit]], now: float | None = None
    ) -> list[Decision]:
        """:meth:`hit` for several ``(scope, key, limit)`` at once: one statement or one Redis
        round trip (a sign-in counts three limits)."""
        now = time.time() if now is None else now
        counts = self.store.incr_many([
            (self.bucket(scope, key, limit), math.floor(now / limit.period), 2 * limit.period)
            for scope, key, limit in hits
        ])
        return [self._decide(current, previous, limit, now)
                for (current, previous), (_s, _k, limit) in zip(counts, hits, strict=True)]

    def undo_many(self, hits: Sequence[tuple[str, str, Limit]], at: float) -> None:
        """:meth:`undo` for several hits counted at ``at``, at once."""
        if hits:
            self.store.decr_many([
                (self.bucket(scope, key, limit), math.floor(at / limit.period))
                for scope, key, limit in hits
            ])

    def undo(self, scope: str, key: str, limit: Limit, at: float) -> None:
        """Take back the hit counted at ``at`` (the ``now`` of that :meth:`hit`): for an attempt
        counted before it was known to be harmless, e.g. a sign-in that turned out right."""
        self.store.decr(self.bucket(scope, key, limit), math.floor(at / limit.period))

    def clear(self, scope: str, key: str, limit: Limit) -> None:
        self.store.clear(self.bucket(scope, key, limit))
