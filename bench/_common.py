"""Shared helpers for the benchmarks in this directory (not part of the kartu package).

Django reads its settings from environment variables once per process, so every benchmark
runs each database backend in a child process of its own (``run_child``); the child prints one
``RESULT {json}`` line that the parent collects into the final table.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG_ADMIN_URL = os.environ.get("KARTU_BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("KARTU_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
CACHE_DIR = Path(tempfile.gettempdir()) / "kartu-bench-cache"
PEOPLE_PER_ROW = 1 / 1.345  # demo.generate: 70 % one membership, 25.5 % two, 4.5 % three


# --- database and Django setup ----------------------------------------------------------------


def pg_url(dbname: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{dbname}".replace("postgresql://", "postgres://", 1)


def pg_recreate(dbname: str) -> None:
    """Drop (terminating any session) and create ``dbname``."""
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{dbname}"')


def pg_exists(dbname: str) -> bool:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone() \
            is not None


def pg_drop(dbname: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def setup_django(data_dir: Path, database_url: str | None, redis_url: str | None = None,
                 migrate: bool = True) -> None:
    """Point kartu at ``data_dir`` / ``database_url`` and migrate. Call once per process."""
    os.environ["KARTU_DATA_DIR"] = str(data_dir)
    if database_url:
        os.environ["KARTU_DATABASE_URL"] = database_url
    else:
        os.environ.pop("KARTU_DATABASE_URL", None)
    if redis_url:
        os.environ["KARTU_REDIS_URL"] = redis_url
    else:
        os.environ.pop("KARTU_REDIS_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "kartu.settings"
    os.environ.setdefault("KARTU_LOG_LEVEL", "WARNING")
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def setup_parent() -> None:
    """Django for a parent process that only generates data (no database is touched)."""
    setup_django(Path(tempfile.mkdtemp(prefix="kartu-bench-parent-")), None, migrate=False)


def db_version() -> str:
    from django.db import connection

    connection.ensure_connection()
    if connection.vendor == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        return f"PostgreSQL {cur.fetchone()[0]}"


# --- data -------------------------------------------------------------------------------------


def demo_csv(rows: int, seed: int = 2024) -> tuple[Path, int]:
    """A cached demo CSV of about ``rows`` rows; returns (path, number of people)."""
    people = max(1, round(rows * PEOPLE_PER_ROW))
    return demo_csv_people(people, seed), people


def demo_csv_people(people: int, seed: int = 2024) -> Path:
    from kartu.registry import demo

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path = CACHE_DIR / f"demo-{people}-{seed}.csv"
    if not path.exists():
        started = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        n = demo.write_csv_file(tmp, people, seed)
        os.replace(tmp, path)
        log(f"generated {path} ({people:,} people, {n:,} rows) in "
            f"{time.perf_counter() - started:.1f} s")
    return path


def count_rows(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(1 for _ in fh) - 1


# --- CPU accounting ---------------------------------------------------------------------------


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc; 0.0 when unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU seconds spent by this process and its waited-for children (``client``), and by the
    given other processes (``server``: e.g. the PostgreSQL backend serving the connection),
    between :meth:`start` and :meth:`stop`. Per-process, so other load on the machine does not
    count; background database processes (WAL writer, checkpointer) are not included."""

    def __init__(self, server_pids: Sequence[int] = ()) -> None:
        self.server_pids = list(server_pids)
        self.client_s = self.server_s = 0.0

    @staticmethod
    def _client_now() -> float:
        import resource

        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
            resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    def start(self) -> CpuMeter:
        self._c0 = self._client_now()
        self._s0 = sum(proc_cpu_s(p) for p in self.server_pids)
        return self

    def stop(self) -> CpuMeter:
        self.client_s = self._client_now() - self._c0
        self.server_s = sum(proc_cpu_s(p) for p in self.server_pids) - self._s0
        return self

    def per_item_us(self, n: int) -> tuple[float, float]:
        return 1e6 * self.client_s / n, 1e6 * self.server_s / n


# --- statistics -------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (q in 0..100) of unsorted values."""
    s = sorted(values)
    if not s:
        return math.nan
    k = (len(s) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50": percentile(ms, 50),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "mean": sum(ms) / len(ms),
        "min": min(ms),
        "max": max(ms),
        "q1": percentile(ms, 25),
        "q3": percentile(ms, 75),
    }


def auc(a: Sequence[float], b: Sequence[float]) -> float:
    """P(A > B) + ½·P(A = B), by ranking the pooled sample (the Mann-Whitney U / (n·m))."""
    pooled = sorted([(x, 0) for x in a] + [(x, 1) for x in b])
    ranks = [0.0] * len(pooled)
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1  # average rank for ties
        i = j + 1
    rank_sum_a = sum(r for r, (_, g) in zip(ranks, pooled, strict=True) if g == 0)
    n, m = len(a), len(b)
    u = rank_sum_a - n * (n + 1) / 2
    return u / (n * m)


def mann_whitney_z(a: Sequence[float], b: Sequence[float]) -> float:
    """Normal-approximation z of the Mann-Whitney U statistic (no tie correction)."""
    n, m = len(a), len(b)
    u = auc(a, b) * n * m
    mu = n * m / 2
    sigma = math.sqrt(n * m * (n + m + 1) / 12)
    return (u - mu) / sigma


def two_sided_p(z: float) -> float:
    return math.erfc(abs(z) / math.sqrt(2))


# --- output -----------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def environment() -> str:
    import django

    return (f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')} | Python {platform.python_version()} | "
            f"Django {django.get_version()} | {os.cpu_count()} CPUs | {platform.platform()}")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    for n, r in enumerate(cells):
        out.append("  ".join(c.rjust(w) if n and i else c.ljust(w)
                             for i, (c, w) in enumerate(zip(r, widths, strict=True))))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def emit_result(data: dict[str, Any]) -> None:
    print("RESULT " + json.dumps(data, default=str), flush=True)


def run_child(script: Path, args: list[str]) -> dict[str, Any] | None:
    """Run ``script args`` in a fresh interpreter, stream its output, return its RESULT."""
    cmd = [sys.executable, str(script), *args]
    result = None
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("RESULT "):
                result = json.loads(line[7:])
            else:
                print(line, end="", flush=True)
        proc.wait()
    if proc.returncode:
        print(f"!! {script.name} {' '.join(args)} exited with {proc.returncode}", flush=True)
    return result


def fmt(v: float, digits: int = 0) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return f"{v:,.{digits}f}"
