"""Django's database cache, with writes that are one atomic statement and no full-table count.

Without Redis the database cache holds allauth's rate-limit counters and locks, the ALTCHA
replay markers and used TOTP codes, so it is written several times per sign-in. Django's
``DatabaseCache`` pays ``SELECT COUNT(*)`` over the whole table plus a transaction with a SELECT
and an INSERT or UPDATE for every ``set``/``add``: the count grows with the table (about 100k
live ALTCHA markers at full login load) and the check-then-write ``add`` relies on a unique-key
error to stay correct under concurrency.

Here ``set`` and ``add`` are a single ``INSERT … ON CONFLICT (cache_key) DO UPDATE`` (SQLite ≥
3.24 and PostgreSQL): ``add`` only overwrites an *expired* row, and says whether it wrote, so two
processes adding the same key cannot both win. Expired rows are deleted (and the table culled to
``MAX_ENTRIES`` the way Django does) at most once per ``CULL_INTERVAL`` seconds per process.
Everything else (get, delete, touch, clear) is Django's.
"""

from __future__ import annotations

import base64
import pickle
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.db import DatabaseCache as DjangoDatabaseCache
from django.db import DatabaseError, connections, router, transaction
from django.utils.timezone import now as tz_now

CULL_INTERVAL = 60.0


class DatabaseCache(DjangoDatabaseCache):
    def __init__(self, table: str, params: dict[str, Any]) -> None:
        super().__init__(table, params)
        self._next_cull = 0.0

    def _maybe_cull(self, db: str) -> None:
        clock = time.monotonic()
        if clock < self._next_cull:
            return
        self._next_cull = clock + CULL_INTERVAL
        connection = connections[db]
        table = connection.ops.quote_name(self._table)  # type: ignore[attr-defined]
        now = tz_now().replace(microsecond=0)
        with connection.cursor() as cursor:
            cursor.execute(
                f"DELETE FROM {table} WHERE {connection.ops.quote_name('expires')} < %s",
                [connection.ops.adapt_datetimefield_value(now)],
            )
            cursor.execute(f"SELECT COUNT(*) FROM {table}")
            num = cursor.fetchone()[0]
            if num > self._max_entries:
                self._cull(db, cursor, now, num)  # type: ignore[attr-defined]

    def _base_set(self, mode: str, key: str, value: Any,
                  timeout: float | None = DEFAULT_TIMEOUT) -> bool:
        if mode not in ("set", "add"):
            return bool(super()._base_set(mode, key, value, timeout))  # type: ignore[misc]
        timeout = self.get_backend_timeout(timeout)
        db = router.db_for_write(self.cache_model_class)
        self._maybe_cull(db)
        connection = connections[db]
        ops = connection.ops
        table = ops.quote_name(self._table)  # type: ignore[attr-defined]
        key_col, value_col, expires_col = (
            ops.quote_name("cache_key"), ops.quote_name("value"), ops.quote_name("expires")
        )
        now = tz_now().replace(microsecond=0)
        if timeout is None:
            exp = datetime.max  # noqa: DTZ901 (as Django's DatabaseCache: "never")
        else:
            exp = datetime.fromtimestamp(timeout, tz=UTC if settings.USE_TZ else None)
        exp = exp.replace(microsecond=0)
        encoded = base64.b64encode(pickle.dumps(value, self.pickle_protocol)).decode("latin1")
        sql = (
            f"INSERT INTO {table} ({key_col}, {value_col}, {expires_col}) VALUES (%s, %s, %s) "
            f"ON CONFLICT ({key_col}) DO UPDATE SET {value_col} = excluded.{value_col}, "
            f"{expires_col} = excluded.{expires_col}"
        )
        params: list[Any] = [key, encoded, ops.adapt_datetimefield_value(exp)]
        if mode == "add":
            sql += f" WHERE {table}.{expires_col} < %s"
            params.append(ops.adapt_datetimefield_value(now))
        try:
            # Inside a caller's transaction a savepoint keeps a failed write from breaking it;
            # outside one the statement commits on its own.
            with (transaction.atomic(using=db) if connection.in_atomic_block else nullcontext()), \
                    connection.cursor() as cursor:
                cursor.execute(sql, params)
                written = cursor.rowcount
        except DatabaseError:
            return False  # as Django's: a failed write is a miss, never an exception
        return mode == "set" or written == 1
