"""Import throughput: ``kartu.registry.importer.import_csv`` against a raw bulk-insert baseline.

    .venv/bin/python bench/import_bench.py [--rows 1000000] [--backend sqlite|postgres|both]
                                           [--profile]

For each backend, in a fresh data directory and a freshly migrated, empty database:

1. import the demo CSV (generated once and cached in $TMPDIR/kartu-bench-cache) -> rows/s;
2. import the same file again (idempotent re-import: every row compared, nothing written);
3. raw baseline on the same database: the same number of pre-built tuples (an index-like hex
   text, a real AES-GCM ciphertext, name, place, birth date, sex, KPJ, employer, status,
   registration date, programmes, timestamp) written into a scratch table with the same two
   unique indexes (index text, KPJ) in one transaction: ``executemany`` INSERT with the stdlib
   ``sqlite3`` module on SQLite, psycopg 3 ``COPY ... FROM STDIN`` on PostgreSQL. Building the
   tuples is not timed.

PostgreSQL uses the database ``kartu_bench`` (dropped and re-created per run). ``--profile``
also runs the importer once under cProfile (on a second fresh database) and prints the top 15.
This prints figures; it asserts nothing about timing.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import hashlib
import hmac
import io
import os
import pstats
import sqlite3
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

TARGETS = {"sqlite": 50_000, "postgres": 100_000}
PG_DB = "kartu_bench"

RAW_COLS = ("idx, blob, full_name, birth_place, birth_date, sex, kpj, employer, status, "
            "registered_on, programmes, created_at")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--profile", action="store_true", help="also profile one import (cProfile)")
    ap.add_argument("--profile-rows", type=int, default=200_000,
                    help="rows for the profiled import (default 200000)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--csv", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return

    c.setup_parent()
    print(f"# import_bench  rows={args.rows:,}  backend={args.backend}")
    print(f"# {c.environment()}")
    path, people = c.demo_csv(args.rows)
    rows = c.count_rows(path)
    print(f"# demo CSV {path} ({people:,} people, {rows:,} rows, "
          f"{path.stat().st_size / 1e6:,.0f} MB)", flush=True)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = []
    for backend in backends:
        extra = ["--profile", "--profile-rows", str(args.profile_rows)] if args.profile else []
        res = c.run_child(Path(__file__), ["--child", "--backend", backend, "--csv", str(path),
                                           *extra])
        if res:
            results.append(res)
    report(results)


def report(results: list[dict[str, Any]]) -> None:
    print()
    print("== import throughput")
    print(c.table(
        ["backend", "rows", "import s", "rows/s", "re-import s", "re-import rows/s",
         "raw s", "raw rows/s", "import/raw"],
        [[r["backend"], f"{r['rows']:,}", c.fmt(r["import_s"], 1), c.fmt(r["import_rps"]),
          c.fmt(r["reimport_s"], 1), c.fmt(r["reimport_rps"]), c.fmt(r["raw_s"], 2),
          c.fmt(r["raw_rps"]), f"{r['import_rps'] / r['raw_rps']:.3f}"] for r in results],
    ))
    print()
    print("== CPU per row (this process and its reader + the PostgreSQL backend process)")
    cores = os.cpu_count() or 1
    rows_ = []
    for r in results:
        budget = 1e6 * cores / TARGETS[r["backend"]]
        for what, (cl, sv) in (("import", r["import_cpu_us"]), ("raw", r["raw_cpu_us"])):
            rows_.append([r["backend"], what, c.fmt(cl, 1), c.fmt(sv, 1), c.fmt(cl + sv, 1),
                          c.fmt(budget, 1)])
    print(c.table(["backend", "run", "client us", "server us", "total us",
                   f"budget us ({cores} cores at the target)"], rows_))
    print()
    print("== targets (issue): >= 50,000 rows/s on SQLite, >= 100,000 rows/s on PostgreSQL")
    for r in results:
        target = TARGETS[r["backend"]]
        got = r["import_rps"]
        verdict = "MET" if got >= target else "MISSED"
        print(f"  {r['backend']:<9} import {got:>10,.0f} rows/s vs {target:,}: {verdict} "
              f"({got / target:.2f}x the target; the raw baseline is {r['raw_rps'] / target:.1f}x)")
    print()


# --- child: one backend -----------------------------------------------------------------------


def child(args: argparse.Namespace) -> None:
    backend = args.backend
    path = Path(args.csv)
    data_dir = Path(tempfile.mkdtemp(prefix=f"kartu-bench-import-{backend}-"))
    url = None
    if backend == "postgres":
        c.pg_recreate(PG_DB)
        url = c.pg_url(PG_DB)
    c.setup_django(data_dir, url)

    from django.db import connection

    from kartu.registry.importer import import_csv
    from kartu.registry.models import Membership, Person

    print(f"\n-- {backend}: {c.db_version()}, data dir {data_dir}", flush=True)
    c.log(f"{backend}: importing {path.name}")
    meter = c.CpuMeter(backend_pids()).start()
    started = time.perf_counter()
    first = import_csv(path, progress=False)
    import_s = time.perf_counter() - started
    meter.stop()
    import_cpu = meter.per_item_us(first.rows)
    print(f"first import:\n{first.text()}", flush=True)
    people, memberships = Person.objects.count(), Membership.objects.count()
    print(f"registry now holds {people:,} people, {memberships:,} memberships", flush=True)

    c.log(f"{backend}: re-importing")
    started = time.perf_counter()
    second = import_csv(path, progress=False)
    reimport_s = time.perf_counter() - started
    print(f"re-import:\n{second.text()}", flush=True)
    if second.people_added or second.memberships_added or second.memberships_updated:
        print("!! the re-import wrote rows: it is not idempotent on this data", flush=True)

    c.log(f"{backend}: building {first.rows:,} tuples for the raw baseline")
    tuples = build_raw_tuples(path, first.rows, iso=(connection.vendor == "sqlite"))
    c.log(f"{backend}: raw baseline")
    if connection.vendor == "sqlite":
        raw_s, raw_meter = raw_sqlite(Path(connection.settings_dict["NAME"]), tuples)
    else:
        raw_s, raw_meter = raw_postgres(url or "", tuples)
    del tuples
    raw_rps = first.rows / raw_s
    raw_cpu = raw_meter.per_item_us(first.rows)
    print(f"raw baseline: {first.rows:,} rows in {raw_s:.2f} s ({raw_rps:,.0f} rows/s)",
          flush=True)

    result = {
        "backend": backend,
        "db": c.db_version(),
        "rows": first.rows,
        "rejected": first.rejected,
        "people": people,
        "memberships": memberships,
        "import_s": import_s,
        "import_rps": first.rows / import_s,
        "reimport_s": reimport_s,
        "reimport_rps": second.rows / reimport_s,
        "raw_s": raw_s,
        "raw_rps": raw_rps,
        "import_cpu_us": import_cpu,
        "raw_cpu_us": raw_cpu,
    }
    connection.close()
    if args.profile:
        profile_import(backend, path, args.profile_rows)
    if backend == "postgres":
        c.pg_drop(PG_DB)
    c.emit_result(result)


def build_raw_tuples(path: Path, limit: int, iso: bool) -> list[tuple[Any, ...]]:
    """One tuple per CSV row: what a minimal loader would write, with no validation."""
    from django.utils import timezone

    from kartu.core import crypto
    from kartu.registry.models import NIK_AAD

    ring = crypto.keyring()
    key = hashlib.sha256(b"bench-raw").digest()
    now: Any = timezone.now()
    if iso:
        now = now.isoformat(" ")
    out: list[tuple[Any, ...]] = []
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        pos = {name: i for i, name in enumerate(header)}
        cols = [pos[n] for n in ("nik", "full_name", "birth_place", "birth_date", "sex", "kpj",
                                 "employer", "status", "registered_on", "programmes")]
        for rec in reader:
            nik, name, place, dob, sex, kpj, employer, status, reg, programmes = (
                rec[i] for i in cols)
            # The index text must be unique per row (a person may have several rows).
            idx = hmac.digest(key, kpj.encode(), "sha256")[:16].hex()
            blob = crypto.encrypt(nik, NIK_AAD, ring)
            if not iso:
                dob = date.fromisoformat(dob)  # type: ignore[assignment]
                reg = date.fromisoformat(reg) if reg else None  # type: ignore[assignment]
            out.append((idx, blob, name, place, dob, sex, kpj, employer, status, reg or None,
                        programmes, now))
            if len(out) >= limit:
                break
    return out


SCRATCH_SQLITE = """
CREATE TABLE bench_raw (
    id integer NOT NULL PRIMARY KEY AUTOINCREMENT,
    idx varchar(32) NOT NULL, blob BLOB NOT NULL, full_name varchar(200) NOT NULL,
    birth_place varchar(100) NOT NULL, birth_date date NOT NULL, sex varchar(1) NOT NULL,
    kpj varchar(11) NOT NULL, employer varchar(200) NOT NULL, status varchar(10) NOT NULL,
    registered_on date NULL, programmes varchar(40) NOT NULL, created_at datetime NOT NULL)
"""
SCRATCH_PG = """
CREATE TABLE bench_raw (
    id bigint NOT NULL PRIMARY KEY GENERATED BY DEFAULT AS IDENTITY,
    idx varchar(32) NOT NULL, blob bytea NOT NULL, full_name varchar(200) NOT NULL,
    birth_place varchar(100) NOT NULL, birth_date date NOT NULL, sex varchar(1) NOT NULL,
    kpj varchar(11) NOT NULL, employer varchar(200) NOT NULL, status varchar(10) NOT NULL,
    registered_on date NULL, programmes varchar(40) NOT NULL,
    created_at timestamp with time zone NOT NULL)
"""
INDEXES = (
    "CREATE UNIQUE INDEX bench_raw_idx ON bench_raw (idx)",
    "CREATE UNIQUE INDEX bench_raw_kpj ON bench_raw (kpj)",
)


def backend_pids() -> list[int]:
    """The PostgreSQL backend serving Django's connection (none on SQLite: it is in-process)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        return [int(cur.fetchone()[0])]


def raw_sqlite(db_path: Path, tuples: list[tuple[Any, ...]]) -> tuple[float, c.CpuMeter]:
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("DROP TABLE IF EXISTS bench_raw")
        conn.execute(SCRATCH_SQLITE)
        for ddl in INDEXES:
            conn.execute(ddl)
        meter = c.CpuMeter().start()
        started = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(f"INSERT INTO bench_raw ({RAW_COLS}) VALUES ({','.join('?' * 12)})",
                         tuples)
        conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
        meter.stop()
        (n,) = conn.execute("SELECT count(*) FROM bench_raw").fetchone()
        assert n == len(tuples), (n, len(tuples))
        conn.execute("DROP TABLE bench_raw")
        return elapsed, meter
    finally:
        conn.close()


def raw_postgres(url: str, tuples: list[tuple[Any, ...]]) -> tuple[float, c.CpuMeter]:
    import psycopg

    with psycopg.connect(url.replace("postgres://", "postgresql://", 1)) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_raw")
        conn.execute(SCRATCH_PG)
        for ddl in INDEXES:
            conn.execute(ddl)
        conn.commit()
        (pid,) = conn.execute("SELECT pg_backend_pid()").fetchone()  # type: ignore[misc]
        meter = c.CpuMeter([pid]).start()
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY bench_raw ({RAW_COLS}) FROM STDIN") as copy:
            for row in tuples:
                copy.write_row(row)
        conn.commit()
        elapsed = time.perf_counter() - started
        meter.stop()
        (n,) = conn.execute("SELECT count(*) FROM bench_raw").fetchone()  # type: ignore[misc]
        assert n == len(tuples), (n, len(tuples))
        conn.execute("DROP TABLE bench_raw")
        conn.commit()
        return elapsed, meter


def profile_import(backend: str, path: Path, rows: int) -> None:
    """Profile one import of the first ``rows`` rows into a second, empty database."""
    from django.db import connection

    from kartu.registry.importer import import_csv

    sub = Path(tempfile.mkdtemp(prefix="kartu-bench-prof-")) / "profile.csv"
    with open(path, encoding="utf-8") as src, open(sub, "w", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i > rows:
                break
            dst.write(line)
    if connection.vendor == "sqlite":
        from django.db import connections

        connections["default"].settings_dict["NAME"] = str(sub.with_suffix(".sqlite3"))
    else:
        c.pg_recreate(PG_DB + "_prof")
        connection.settings_dict["NAME"] = PG_DB + "_prof"
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    c.log(f"{backend}: profiling an import of {rows:,} rows")
    prof = cProfile.Profile()
    started = time.perf_counter()
    prof.enable()
    summary = import_csv(sub, progress=False)
    prof.disable()
    elapsed = time.perf_counter() - started
    print(f"\n-- {backend}: cProfile of import_csv ({summary.rows:,} rows, {elapsed:.1f} s "
          "under the profiler)")
    for key in ("cumulative", "tottime"):
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(key).print_stats(15)
        print(f"top 15 by {key}:")
        print("\n".join(line for line in buf.getvalue().splitlines()[4:] if line.strip()))
    connection.close()
    if backend == "postgres":
        c.pg_drop(PG_DB + "_prof")


if __name__ == "__main__":
    main()
