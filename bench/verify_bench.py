"""Verification latency: the whole ``services.verify_identity(services.parse_claim(...), key)``.

    .venv/bin/python bench/verify_bench.py [--people 1000000] [--backend sqlite|postgres|both]
                                           [--calls 5000] [--redis] [--reuse DIR]
                                           [--loader importer|direct] [--profile]

Per backend: load ``--people`` demo people (about 1.35 memberships each) with the importer into
a fresh database (``--reuse DIR`` keeps the data directory / PostgreSQL database between runs
and loads only the first time; ``--loader direct`` writes the same rows -- real AES-GCM
ciphertexts and HMAC blind indexes, through the importer's own Writer -- straight from the demo
generator, skipping the CSV and the row validation, for 10M-people registries). Then time, in
one shuffled sequence so drift hits every case alike:

* ``verified``   a real person's NIK, name (in title case), place and birth date;
* ``unknown``    a well-formed NIK that is not in the registry;
* ``wrong_dob``  a real person's NIK, name and place with the birth date one day off;
* ``raw``        the database floor on the same connection (``connection.connection``):
  BEGIN, one indexed SELECT of the membership rows joined to person by blind index, one INSERT
  of an audit-like row into a scratch table with the audit table's indexes (id, subject_index,
  person_id), COMMIT.

Every call uses its own requester key (``email:bench-<run>-<n>@x.id``) and every failing call
its own NIK, so neither the per-requester limit (5/hour) nor the per-NIK lock (3 failures/day)
is ever reached; the limits themselves are left at their defaults and still counted (in Redis
with ``--redis`` beside SQLite, else in the database). This prints figures; it asserts nothing
about timing.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import pstats
import random
import secrets
import shutil
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c

CASES = ("verified", "unknown", "wrong_dob")
TARGET_P50_MS = 1.0
TARGET_RATIO = 3.0
WARMUP = 300


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--people", type=int, default=1_000_000)
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--calls", type=int, default=5000, help="timed calls per case (default 5000)")
    ap.add_argument("--redis", action="store_true",
                    help=f"set KARTU_REDIS_URL ({c.REDIS_URL}): cache and, beside SQLite, the "
                         "rate-limit counters in Redis (beside PostgreSQL they stay in the "
                         "database: kartu.core.ratelimit.default_store)")
    ap.add_argument("--reuse", metavar="DIR",
                    help="keep the loaded registry in DIR (and a PostgreSQL database named "
                         "after it) and reuse it on later runs")
    ap.add_argument("--loader", choices=["importer", "direct"], default="importer")
    ap.add_argument("--profile", action="store_true",
                    help="also profile 1,500 verify calls (500 per case) with cProfile")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    c.setup_parent()
    print(f"# verify_bench  people={args.people:,}  backend={args.backend}  calls={args.calls:,}"
          f"/case  {'KARTU_REDIS_URL set' if args.redis else 'rate limits in the database'}  "
          f"loader={args.loader}{'  reuse=' + args.reuse if args.reuse else ''}")
    print(f"# {c.environment()}", flush=True)
    if args.loader == "importer" and not args.reuse:
        path = c.demo_csv_people(args.people)  # generate once for both backends
        print(f"# demo CSV {path}", flush=True)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    results = []
    for backend in backends:
        child_args = ["--child", "--backend", backend, "--people", str(args.people),
                      "--calls", str(args.calls), "--loader", args.loader,
                      "--seed", str(args.seed)]
        if args.redis:
            child_args.append("--redis")
        if args.reuse:
            child_args += ["--reuse", args.reuse]
        if args.profile:
            child_args.append("--profile")
        res = c.run_child(Path(__file__), child_args)
        if res:
            results.append(res)
    report(results)


def report(results: list[dict[str, Any]]) -> None:
    print()
    print("== verify_identity(parse_claim(...)) latency, ms (whole call: parse, lookup, match, "
          "limits, audit, commit)")
    rows = []
    for r in results:
        for case in (*CASES, "raw"):
            s = r["stats"][case]
            rows.append([r["backend"] + ("+redis" if r["redis"] else ""), f"{r['people']:,}",
                         case, s["n"], f"{s['p50']:.3f}", f"{s['p90']:.3f}", f"{s['p99']:.3f}",
                         f"{s['mean']:.3f}", r["queries"].get(case, "-")])
    print(c.table(["backend", "people", "case", "n", "p50", "p90", "p99", "mean", "queries"],
                  rows))
    print()
    print("== targets (issue): p50 <= 1 ms and p50 <= 3x the raw steps")
    for r in results:
        raw = r["stats"]["raw"]["p50"]
        name = r["backend"] + ("+redis" if r["redis"] else "")
        for case in CASES:
            p50 = r["stats"][case]["p50"]
            ratio = p50 / raw
            ok_abs = "MET" if p50 <= TARGET_P50_MS else "MISSED"
            ok_rel = "MET" if ratio <= TARGET_RATIO else "MISSED"
            print(f"  {name:<14} {case:<10} p50 {p50:6.3f} ms: <= 1 ms {ok_abs:<6} "
                  f"({p50 / TARGET_P50_MS:.2f}x the budget); p50/raw = {ratio:5.2f}: "
                  f"<= 3x {ok_rel}")
    print()
    print("== unknown NIK vs known NIK with a wrong birth date (can a caller tell them apart?)")
    for r in results:
        d = r["distinguish"]
        name = r["backend"] + ("+redis" if r["redis"] else "")
        print(f"  {name:<14} p50 unknown - p50 wrong_dob = {d['p50_diff_us']:+8.1f} us "
              f"(pooled IQR {d['iqr_us']:.1f} us, difference/IQR {d['diff_over_iqr']:+.2f}); "
              f"AUC P(t_unknown > t_wrong) = {d['auc']:.3f}; Mann-Whitney z = {d['z']:+.2f}, "
              f"p = {d['p']:.2g} -> {d['verdict']}")
    print()


# --- child: one backend -----------------------------------------------------------------------


def child(args: argparse.Namespace) -> None:
    backend = args.backend
    redis_url = c.REDIS_URL if args.redis else None
    if args.reuse:
        data_dir = Path(args.reuse).resolve() / f"{backend}-{args.people}-{args.loader}"
        dbname = f"kartu_bench_verify_{args.people}_{args.loader}"
        marker = data_dir / "loaded.json"
        fresh = not marker.exists() or (backend == "postgres" and not c.pg_exists(dbname))
        if fresh and data_dir.exists():
            shutil.rmtree(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
    else:
        data_dir = Path(tempfile.mkdtemp(prefix=f"kartu-bench-verify-{backend}-"))
        dbname = "kartu_bench_verify"
        marker = data_dir / "loaded.json"
        fresh = True
    url = None
    if backend == "postgres":
        if fresh:
            c.pg_recreate(dbname)
        url = c.pg_url(dbname)
    c.setup_django(data_dir, url, redis_url)

    from django.db import connection

    print(f"\n-- {backend}: {c.db_version()}, data dir {data_dir}"
          f"{', PostgreSQL database ' + dbname if url else ''}", flush=True)
    if fresh:
        started = time.perf_counter()
        load(args)
        load_s = time.perf_counter() - started
        marker.write_text(json.dumps({"people": args.people, "load_s": load_s}))
    else:
        load_s = json.loads(marker.read_text())["load_s"]
        print(f"reusing the registry loaded earlier (it took {load_s:.0f} s)", flush=True)
    if connection.vendor == "sqlite":
        with connection.cursor() as cur:
            cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        with connection.cursor() as cur:
            cur.execute("ANALYZE")

    from kartu.registry.models import Membership, Person

    people, memberships = Person.objects.count(), Membership.objects.count()
    print(f"registry: {people:,} people, {memberships:,} memberships", flush=True)

    rng = random.Random(args.seed)
    run = secrets.token_hex(3)
    n = args.calls
    warm = WARMUP
    prof_n = 500 if args.profile else 0
    q_n = 1
    known = sample_known(rng, 2 * (n + warm + prof_n + q_n))
    unknown = make_unknown(rng, n + warm + prof_n + q_n)
    warm_file_cache()
    claims: dict[str, list[dict[str, str]]] = {"verified": [], "unknown": [], "wrong_dob": []}
    for i, p in enumerate(known):
        if i % 2 == 0:
            claims["verified"].append(claim_of(p))
        else:
            claims["wrong_dob"].append(claim_of(p, dob_shift=1))
    claims["unknown"] = [claim_of(p) for p in unknown]
    reset_limits([kw["nik"] for kw in claims["unknown"] + claims["wrong_dob"]])
    raw = RawSteps(run)

    calls = iter(range(10**9))

    def key() -> str:
        return f"email:bench-{run}-{next(calls)}@x.id"

    # Warm-up (not timed): every case, so caches, statement caches and JITs settle.
    c.log(f"{backend}: warm-up ({warm} calls per case)")
    plan = [(case, i) for case in CASES for i in range(warm)]
    rng.shuffle(plan)
    for case, i in plan:
        one_call(claims[case][i], key())
    for i in range(warm):
        raw.step(claims_index(claims["verified"][i]))

    # Query counts for one call of each case (outside the timed run).
    from django.test.utils import CaptureQueriesContext

    queries: dict[str, int] = {}
    for case in CASES:
        with CaptureQueriesContext(connection) as ctx:
            one_call(claims[case][warm], key())
        queries[case] = len(ctx.captured_queries)
    queries["raw"] = 4  # BEGIN, SELECT, INSERT, COMMIT
    base = warm + q_n

    # The timed run: all four cases interleaved in one shuffled sequence.
    c.log(f"{backend}: timing {n:,} calls per case + {n:,} raw steps")
    plan = [(case, base + i) for case in (*CASES, "raw") for i in range(n)]
    rng.shuffle(plan)
    times: dict[str, list[float]] = {case: [] for case in (*CASES, "raw")}
    unexpected: dict[str, int] = {case: 0 for case in CASES}
    raw_indexes = [claims_index(claims["verified"][i]) for i in range(len(claims["verified"]))]
    perf = time.perf_counter
    from kartu.registry import services

    for case, i in plan:
        if case == "raw":
            idx = raw_indexes[i]
            t0 = perf()
            raw.step(idx)
            times["raw"].append(perf() - t0)
            continue
        kw = claims[case][i]
        k = key()
        t0 = perf()
        v = services.verify_identity(services.parse_claim(**kw), k)
        times[case].append(perf() - t0)
        expected = {"verified": "", "unknown": "nik_unknown", "wrong_dob": "dob_mismatch"}[case]
        if v.reason != expected or v.verified != (case == "verified"):
            unexpected[case] += 1
    for case, bad in unexpected.items():
        if bad:
            print(f"!! {case}: {bad} calls did not give the expected outcome", flush=True)
    raw.drop()

    stats = {case: c.summary_ms(t) for case, t in times.items()}
    print(c.table(["case", "n", "p50 ms", "p90 ms", "p99 ms", "mean ms", "min", "max"],
                  [[case, s["n"], f"{s['p50']:.3f}", f"{s['p90']:.3f}", f"{s['p99']:.3f}",
                    f"{s['mean']:.3f}", f"{s['min']:.3f}", f"{s['max']:.3f}"]
                   for case, s in stats.items()]), flush=True)
    distinguish = compare(times["unknown"], times["wrong_dob"])

    if args.profile:
        profile_calls(claims, base + n, prof_n, key)

    result = {"backend": backend, "redis": bool(redis_url), "people": people,
              "memberships": memberships, "load_s": load_s, "stats": stats,
              "queries": queries, "distinguish": distinguish, "unexpected": unexpected}
    connection.close()
    if backend == "postgres" and not args.reuse:
        c.pg_drop(dbname)
    c.emit_result(result)


def one_call(kw: dict[str, str], key: str) -> Any:
    from kartu.registry import services

    return services.verify_identity(services.parse_claim(**kw), key)


def compare(unknown: list[float], wrong: list[float]) -> dict[str, Any]:
    p50_diff = (c.percentile(unknown, 50) - c.percentile(wrong, 50)) * 1e6
    pooled = unknown + wrong
    iqr = (c.percentile(pooled, 75) - c.percentile(pooled, 25)) * 1e6
    a = c.auc(unknown, wrong)
    z = c.mann_whitney_z(unknown, wrong)
    p = c.two_sided_p(z)
    if abs(a - 0.5) < 0.05:
        effect = "small effect (|AUC - 0.5| < 0.05)"
    elif abs(a - 0.5) < 0.1:
        effect = "moderate effect (0.05 <= |AUC - 0.5| < 0.1)"
    else:
        effect = "DISTINGUISHABLE (|AUC - 0.5| >= 0.1)"
    significance = "significant" if p < 0.001 else "not significant"
    verdict = f"{effect}, {significance} at p < 0.001 with these sample sizes"
    return {"p50_diff_us": p50_diff, "iqr_us": iqr, "diff_over_iqr": p50_diff / iqr if iqr else 0,
            "auc": a, "z": z, "p": p, "verdict": verdict}


# --- data -------------------------------------------------------------------------------------


def load(args: argparse.Namespace) -> None:
    if args.loader == "importer":
        from kartu.registry.importer import import_csv

        path = c.demo_csv_people(args.people)
        c.log(f"loading {path.name} with the importer")
        summary = import_csv(path, progress=False)
        print(f"load (importer):\n{summary.text()}", flush=True)
    else:
        direct_load(args.people)


def direct_load(people: int, seed: int = 2024, chunk: int = 50_000) -> None:
    """Write the demo rows without CSV or validation, with the importer's own Writer, in the
    very format ``_apply_chunk`` writes for new rows (same ciphertexts, same blind index)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from kartu.core import crypto
    from kartu.core.phone import normalize_phone
    from kartu.registry import demo, importer
    from kartu.registry.models import EMAIL_AAD, NIK_AAD, PHONE_AAD

    ring = crypto.keyring()
    contact_key = importer.contact_key(ring)
    writer = importer.Writer()
    iso = writer.vendor == "sqlite"
    enc = crypto.encrypt
    started = time.perf_counter()
    done_rows = 0
    done_people = 0

    def flush(p_rows: list[tuple[Any, ...]], m_rows: list[tuple[str, tuple[Any, ...]]]) -> None:
        with transaction.atomic():
            writer.insert_people(p_rows)
            ids = writer.person_ids([r[0] for r in p_rows])
            writer.insert_memberships([(ids[index], *rest) for index, rest in m_rows])

    now = timezone.now()
    ts = connection.ops.adapt_datetimefield_value(now) if iso else now
    p_rows: list[tuple[Any, ...]] = []
    m_rows: list[tuple[str, tuple[Any, ...]]] = []
    last_nik = None
    index = ""
    for row in demo.generate(people, seed):
        nik = row["nik"]
        if nik != last_nik:
            if len(p_rows) >= chunk:
                flush(p_rows, m_rows)
                done_people += len(p_rows)
                p_rows, m_rows = [], []
                if done_people % 500_000 < chunk:
                    rate = done_rows / (time.perf_counter() - started)
                    c.log(f"direct load: {done_people:,} people, {done_rows:,} rows "
                          f"({rate:,.0f} rows/s)")
            last_nik = nik
            index = crypto.blind_index(nik, ring=ring)
            email = row["email"].lower()
            phone = normalize_phone(row["phone"]) if row["phone"] else ""
            dob = row["birth_date"] if iso else date.fromisoformat(row["birth_date"])
            p_rows.append((
                index, ring.active_index, enc(nik, NIK_AAD, ring), row["full_name"],
                row["birth_place"], dob, row["sex"],
                enc(email, EMAIL_AAD, ring) if email else None,
                enc(phone, PHONE_AAD, ring) if phone else None,
                importer.contact_digest(email, phone, contact_key), ts, ts,
            ))
        reg = row["registered_on"] if iso else date.fromisoformat(row["registered_on"])
        m_rows.append((index, (row["kpj"], row["employer"], row["status"], reg,
                               row["programmes"], ts, ts)))
        done_rows += 1
    if p_rows:
        flush(p_rows, m_rows)
    elapsed = time.perf_counter() - started
    print(f"load (direct): {people:,} people, {done_rows:,} rows in {elapsed:.0f} s "
          f"({done_rows / elapsed:,.0f} rows/s)", flush=True)


def warm_file_cache() -> None:
    """Read the whole SQLite database into the OS page cache.

    Sampling the known people read exactly their pages, so without this the known-NIK cases would
    meet a warm cache and the unknown-NIK case (which reads a random person as its stand-in) a
    cold one: a difference of disk reads, not of the code under test. A registry in production
    is either mostly cached or equally cold for both; either way the two cases then match."""
    from django.conf import settings
    from django.db import connection

    if connection.vendor != "sqlite":
        _prewarm_postgres()
        return
    for suffix in ("", "-wal"):
        path = f"{settings.DATABASES['default']['NAME']}{suffix}"
        if os.path.exists(path):
            with open(path, "rb") as fh:
                while fh.read(1 << 24):
                    pass


def _prewarm_postgres() -> None:
    """The PostgreSQL side of :func:`warm_file_cache`: read the registry's tables and indexes
    into the OS page cache with ``pg_prewarm(..., 'read')`` (contrib, shipped with Debian's
    server package). This machine's kernel reclaims cold page cache on its own (DAMON), so a
    10 M registry loaded earlier is partly back on disk; the run then measures disk reads for
    some calls and not others."""
    from django.db import connection
    from django.db.utils import DatabaseError

    started = time.perf_counter()
    try:
        with connection.cursor() as cur:
            cur.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
            cur.execute(
                "SELECT coalesce(sum(pg_prewarm(c.oid, 'read')), 0) FROM pg_class c "
                "WHERE c.relkind IN ('r', 'i') AND (c.relname LIKE 'registry_person%%' "
                "OR c.relname LIKE 'registry_membership%%')"
            )
            blocks = cur.fetchone()[0]
    except DatabaseError as exc:
        print(f"(pg_prewarm unavailable, the registry is not prewarmed: {exc})", flush=True)
        return
    c.log(f"prewarmed {blocks * 8 / 1024:,.0f} MB of the registry into the OS cache in "
          f"{time.perf_counter() - started:.1f} s")


def sample_known(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """``count`` distinct registry people, picked at random, with their decrypted NIK."""
    from django.db.models import Max, Min

    from kartu.registry.models import Person

    bounds = Person.objects.aggregate(lo=Min("pk"), hi=Max("pk"))
    ids = rng.sample(range(bounds["lo"], bounds["hi"] + 1), count)
    out: dict[int, dict[str, Any]] = {}
    while True:
        for start in range(0, len(ids), 5000):
            part = ids[start : start + 5000]
            for p in Person.objects.filter(pk__in=part).only(
                "nik_cipher", "full_name", "birth_place", "birth_date"
            ):
                out[p.pk] = {"nik": p.nik, "full_name": p.full_name,
                             "birth_place": p.birth_place, "birth_date": p.birth_date}
        if len(out) >= count:
            break
        ids = [rng.randrange(bounds["lo"], bounds["hi"] + 1) for _ in range(count - len(out))]
        ids = [i for i in ids if i not in out]
    people = list(out.values())[:count]
    rng.shuffle(people)
    # Reading them warmed this connection's page cache for exactly these people's rows; start
    # the timed run on a fresh connection so known and unknown NIKs meet the same cold cache.
    from django.db import connection

    connection.close()
    return people


def make_unknown(rng: random.Random, count: int) -> list[dict[str, Any]]:
    """``count`` distinct well-formed NIKs that are not in the registry, with plausible claims."""
    from kartu.core import crypto
    from kartu.registry import demo, regions
    from kartu.registry.models import Person
    from kartu.registry.nik import make_nik

    codes = sorted(regions.REGENCIES)
    start = date(1960, 1, 1)
    out: dict[str, dict[str, Any]] = {}
    while len(out) < count:
        batch: dict[str, dict[str, Any]] = {}
        while len(batch) < min(5000, count - len(out)):
            sex = rng.choice("LP")
            born = start + timedelta(days=rng.randrange(17_000))
            nik = make_nik(f"{rng.choice(codes)}{rng.randrange(1, 40):02d}", born, sex,
                           rng.randrange(1, 10000))
            if nik in out:
                continue
            first = rng.choice(demo.MALE if sex == "L" else demo.FEMALE)
            batch[nik] = {"nik": nik, "full_name": f"{first} {rng.choice(demo.FAMILY)}",
                          "birth_place": demo._place_name(regions.REGENCIES[rng.choice(codes)]),
                          "birth_date": born}
        by_index = {crypto.blind_index(nik): nik for nik in batch}
        taken = set(Person.objects.filter(nik_index__in=list(by_index))
                    .values_list("nik_index", flat=True))
        for index, nik in by_index.items():
            if index not in taken:
                out[nik] = batch[nik]
    return list(out.values())


def claim_of(p: dict[str, Any], dob_shift: int = 0) -> dict[str, str]:
    """What a member would type: title-case name and place, ISO birth date."""
    return {"nik": p["nik"], "full_name": p["full_name"].title(),
            "birth_place": p["birth_place"].title(),
            "birth_date": (p["birth_date"] + timedelta(days=dob_shift)).isoformat()}


def claims_index(kw: dict[str, str]) -> str:
    from kartu.core import crypto

    return crypto.blind_index(kw["nik"])


def reset_limits(niks: list[str]) -> None:
    """Forget earlier runs' locks and failure counts for the NIKs this run uses (only matters
    with --reuse: the same seed picks the same people). Requester keys are new every run."""
    import math

    from django.db import connection

    from kartu.core import crypto
    from kartu.core.ratelimit import Limit, RedisStore
    from kartu.registry import services
    from kartu.registry.models import NikLock

    NikLock.objects.all().delete()  # the bench database's own table
    store = services._limiter.store
    if not isinstance(store, RedisStore):
        with connection.cursor() as cur:
            cur.execute("DELETE FROM core_ratecounter")  # ditto
        return
    limit = Limit.named("nik_failures")
    slot = math.floor(time.time() / limit.period)
    keys = []
    for nik in niks:
        bucket = services._limiter.bucket("nik_failures", crypto.blind_index(nik), limit)
        keys += [store._key(bucket, slot), store._key(bucket, slot - 1)]
    for start in range(0, len(keys), 1000):
        store.client.delete(*keys[start : start + 1000])


class RawSteps:
    """The database floor of one verification, on Django's own DB-API connection."""

    def __init__(self, run: str) -> None:
        from django.db import connection
        from django.utils import timezone

        connection.ensure_connection()
        self.conn = connection.connection
        self.sqlite = connection.vendor == "sqlite"
        ph = "?" if self.sqlite else "%s"
        self.begin = "BEGIN IMMEDIATE" if self.sqlite else "BEGIN"
        self.select = (
            "SELECT m.id, m.kpj, m.employer, m.status, m.registered_on, m.programmes, p.id, "
            "p.full_name, p.birth_place, p.birth_date, p.phone_cipher "
            "FROM registry_membership m JOIN registry_person p ON p.id = m.person_id "
            f"WHERE p.nik_index IN ({ph})"
        )
        self.insert = (
            "INSERT INTO bench_audit (at, action, channel, requester_ref, subject_index, "
            "person_id, outcome, reason, agent, memberships, prev_hash, hash) VALUES "
            f"({', '.join([ph] * 12)})"
        )
        cur = self.conn.cursor()
        cur.execute("DROP TABLE IF EXISTS bench_audit")
        if self.sqlite:
            cur.execute(
                "CREATE TABLE bench_audit (id integer NOT NULL PRIMARY KEY AUTOINCREMENT, "
                "at datetime NOT NULL, action varchar(16) NOT NULL, channel varchar(32) NOT NULL,"
                " requester_ref varchar(100) NOT NULL, subject_index varchar(32) NOT NULL, "
                "person_id bigint NULL, outcome varchar(16) NOT NULL, reason varchar(32) NOT NULL,"
                " agent varchar(150) NOT NULL, memberships varchar(200) NOT NULL, "
                "prev_hash varchar(64) NOT NULL, hash varchar(64) NOT NULL)"
            )
        else:
            cur.execute(
                "CREATE TABLE bench_audit (id bigint NOT NULL PRIMARY KEY GENERATED BY DEFAULT "
                "AS IDENTITY, at timestamp with time zone NOT NULL, action varchar(16) NOT NULL, "
                "channel varchar(32) NOT NULL, requester_ref varchar(100) NOT NULL, "
                "subject_index varchar(32) NOT NULL, person_id bigint NULL, "
                "outcome varchar(16) NOT NULL, reason varchar(32) NOT NULL, "
                "agent varchar(150) NOT NULL, memberships varchar(200) NOT NULL, "
                "prev_hash varchar(64) NOT NULL, hash varchar(64) NOT NULL)"
            )
        cur.execute("CREATE INDEX bench_audit_subject ON bench_audit (subject_index)")
        cur.execute("CREATE INDEX bench_audit_person ON bench_audit (person_id)")
        now = timezone.now()
        self.at: Any = connection.ops.adapt_datetimefield_value(now) if self.sqlite else now
        self.run = run
        self.n = 0

    def step(self, index: str) -> None:
        self.n += 1
        digest = hashlib.sha256(f"{self.run}:{self.n}".encode()).hexdigest()
        cur = self.conn.cursor()
        cur.execute(self.begin)
        cur.execute(self.select, (index,))
        rows = cur.fetchall()
        cur.execute(self.insert, (
            self.at, "disclose", "email", "email:#0123456789abcdef01234567", index,
            rows[0][6] if rows else None, "disclosed", "", "",
            ",".join(str(r[0]) for r in rows), digest, digest[::-1],
        ))
        cur.execute("COMMIT")

    def drop(self) -> None:
        self.conn.cursor().execute("DROP TABLE IF EXISTS bench_audit")


def profile_calls(claims: dict[str, list[dict[str, str]]], start: int, n: int, key: Any) -> None:
    from kartu.registry import services

    plan = [(case, start + i) for case in CASES for i in range(n)]
    random.Random(1).shuffle(plan)
    prof = cProfile.Profile()
    prof.enable()
    for case, i in plan:
        services.verify_identity(services.parse_claim(**claims[case][i]), key())
    prof.disable()
    print(f"\ncProfile of {len(plan):,} verify_identity(parse_claim(...)) calls "
          f"({n} per case):")
    for sort in ("cumulative", "tottime"):
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).strip_dirs().sort_stats(sort).print_stats(15)
        print(f"top 15 by {sort}:")
        print("\n".join(line for line in buf.getvalue().splitlines()[4:] if line.strip()))


if __name__ == "__main__":
    main()
