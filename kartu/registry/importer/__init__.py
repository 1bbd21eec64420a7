"""Registry import and export (CSV, one row per membership).

Header: ``nik,full_name,birth_place,birth_date,sex,email,phone,kpj,employer,status,registered_on``
(an optional ``programmes`` column holds space-separated codes such as ``JHT JKK JKM JP``).

The import streams the file in chunks (memory does not grow with the file), validates every row,
compares each chunk with what the registry already holds (so importing the same file twice
writes nothing, and a changed row updates its record), and writes new rows with the database's
fastest path: ``COPY`` on PostgreSQL, ``executemany`` on SQLite. A bad row never stops the run:
it goes to ``<input>.rejects.csv`` with its line number and the reason.

How it is fast
--------------
The work is split in two halves, which run in parallel for a file of two chunks or more:

* **reading** (:func:`_parse_chunks`): CSV, validation, blind index, contact digest and the
  encryption of each person (once per chunk), giving a :class:`ParsedChunk` of plain tuples
  already in the shape of the database write. Validation takes a fast path
  (:meth:`RowParser.fast`: cheap sufficient checks and memoised dates, places and
  employers) and leaves every unusual row to the reference rules of :meth:`RowParser.parse`,
  so the accepted values and the reject reasons are exactly those of the reference rules.
  Blind indexes are ``crypto.blind_index`` values and ciphertexts are in the
  ``crypto.encrypt`` format, computed with the same primitives held ready (:class:`_Sealer`);
* **writing** (:func:`_apply_chunk`): the KPJ-ownership check, the comparison with what the
  registry holds, and the bulk writes, one transaction per chunk. SQLite gets the chunk's
  tuples as ``executemany`` parameters as they are (the timestamp is a literal of the
  statement, the person id a sub-select) and a larger page cache for the import
  (:meth:`Writer.tuned`); PostgreSQL gets binary ``COPY`` with person ids taken from the
  sequence beforehand, and existence look-ups that always use the unique indexes.

The reading half runs in a forked worker process (:class:`_WorkerChunks`) that streams the
chunks through a pipe, one ahead: while the database takes chunk N the worker parses chunk
N+1. Both paths run the same generator with the same chunk boundaries, so the chunks, the
rejects and their order, the counts and the registry are the same with or without the worker
(a test compares them); files under about two chunks are read in this process.

Modules: ``rows`` (columns, row types, the validation rules), ``reading`` (the file as chunks,
the worker), ``writing`` (the database's bulk reads and writes), and this one (the import
itself, its summary and rejects file, and the export).
"""

from __future__ import annotations

import contextlib
import csv
import logging
import multiprocessing
import operator
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from django.db import transaction
from django.utils import timezone

from kartu.core import crypto
from kartu.registry.importer.reading import (
    ParsedChunk,
    _parse_chunks,
    _SourceRecords,
    _WorkerChunks,
)
from kartu.registry.importer.rows import (
    CHUNK,
    COLUMNS,
    OPTIONAL_COLUMNS,
    STATUSES,
    ImportFileError,
    ImportSummary,
    MembershipRow,
    PersonRow,
    RowError,
    RowParser,
    contact_digest,
    contact_key,
)
from kartu.registry.importer.writing import Writer
from kartu.registry.models import EMAIL_AAD, NIK_AAD, PHONE_AAD
from kartu.registry.signals import persons_changed

log = logging.getLogger(__name__)

# --- the import -------------------------------------------------------------------------------


class _Progress:
    def __init__(self, path: Path, enabled: bool) -> None:
        self.bar: Any = None
        self.position = 0
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=path.stat().st_size, unit="B", unit_scale=True,
                            desc="import", file=sys.stderr, mininterval=0.5)

    def advance_to(self, position: int) -> None:
        if self.bar is not None and position > self.position:
            self.bar.update(position - self.position)
            self.position = position

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def rejects_path_for(path: Path) -> Path:
    return path.with_name(path.name + ".rejects.csv")


#: Files smaller than this many bytes per row of a chunk, times two chunks, are read in this
#: process: below about two chunks the worker has nothing to overlap and its start-up is waste.
_BYTES_PER_ROW_ESTIMATE = 100


def import_csv(
    path: str | os.PathLike[str],
    *,
    progress: bool | None = None,
    chunk_size: int = CHUNK,
    max_listed_rejects: int = 10,
    parallel: bool | None = None,
) -> ImportSummary:
    """Import a registry CSV; see the module docstring.

    ``parallel``: read and validate in a worker process while this one writes (``True``), in
    this process (``False``), or decide by file size (``None``: a worker for files of about
    two chunks or more, where ``fork`` is available). The result is the same either way.
    """
    src = Path(path)
    if not src.is_file():
        raise ImportFileError(f"{src}: no such file")
    ring = crypto.keyring()
    if _people_left_to_reindex(ring):
        raise ImportFileError(
            "a blind-index key rotation is in progress; run `kartu keys rotate` to finish it "
            "before importing"
        )
    started = time.perf_counter()
    summary = ImportSummary(rejects_path=str(rejects_path_for(src)))
    # The header is checked before the rejects file is opened: a file that cannot be imported
    # at all leaves the rejects file of an earlier import as it was.
    with open(src, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        header = _read_header(csv.reader(fh, strict=True), src)
    parser = RowParser(header, ring)
    with open(
        summary.rejects_path, "w", encoding="utf-8", errors="surrogateescape", newline=""
    ) as rej_fh:
        rejects = csv.writer(rej_fh)
        rejects.writerow(["line", "reason", *header])
        writer = Writer()
        # A chunk's rejects come from reading and, for KPJs owned by another NIK, from
        # writing; they are collected here and written in line order once the chunk is done.
        pending: list[tuple[int, str, list[str]]] = []

        def reject(line: int, reason: str, rec: list[str]) -> None:
            pending.append((line, reason, rec))

        def write_rejects() -> None:
            pending.sort(key=operator.itemgetter(0))
            for line, reason, rec in pending:
                summary.rejected += 1
                rejects.writerow([line, reason, *rec])
                if len(summary.first_rejects) < max_listed_rejects:
                    summary.first_rejects.append(f"line {line}: {reason}")
            pending.clear()

        if parallel is None:
            parallel = src.stat().st_size >= 2 * chunk_size * _BYTES_PER_ROW_ESTIMATE
        parallel = parallel and "fork" in multiprocessing.get_all_start_methods()

        def chunks() -> Iterator[ParsedChunk]:
            return _parse_chunks(src, parser, chunk_size, writer.vendor)

        with contextlib.ExitStack() as stack:
            # The worker is forked first, before the progress bar starts tqdm's thread.
            worker = _WorkerChunks(chunks) if parallel else None
            if worker is not None:
                stack.callback(worker.close)
            bar = _Progress(src, sys.stderr.isatty() if progress is None else progress)
            stack.callback(bar.close)
            sources = _SourceRecords(src, parser)
            stack.callback(sources.close)
            stack.enter_context(writer.tuned())
            with_programmes = parser.programmes_pos is not None
            for chunk in worker if worker is not None else chunks():
                summary.rows += chunk.rows
                pending += chunk.rejects
                if chunk.members:
                    _apply_chunk(chunk, writer, summary, reject, sources, with_programmes,
                                 _key_state(ring))
                write_rejects()
                bar.advance_to(chunk.position)
    summary.seconds = time.perf_counter() - started
    return summary


def _read_header(reader: Iterator[list[str]], src: Path) -> list[str]:
    """The file's column names, or an ImportFileError that says what is wrong with line 1.

    The messages never quote the line itself unless it is a header: a file without one starts
    with a person's NIK, name and date of birth, and the message goes to stderr and cron logs.
    """
    expected = f"Expected header: {','.join(COLUMNS)}"
    try:
        first = next(reader)
    except StopIteration:
        raise ImportFileError(f"{src}: the file is empty (expected a header line)") from None
    except csv.Error as exc:
        raise ImportFileError(f"{src}: line 1: not a valid CSV header ({exc}). {expected}") \
            from None
    header = [h.strip().lower() for h in first]
    known = {*COLUMNS, *OPTIONAL_COLUMNS}
    if not known.intersection(header):
        by_semicolon = {h.strip().lower() for h in ",".join(first).split(";")}
        if len(by_semicolon) > 1 and known.intersection(by_semicolon):
            raise ImportFileError(
                f"{src}: line 1: the columns seem to be separated by semicolons (as Excel saves "
                f"CSV with Indonesian regional settings); the file must use commas. {expected}"
            )
        raise ImportFileError(f"{src}: line 1: the first line is not a header. {expected}")
    try:
        "".join(header).encode("utf-8")
    except UnicodeEncodeError:
        raise ImportFileError(f"{src}: line 1: the header is not UTF-8 text") from None
    missing = [c for c in COLUMNS if c not in header]
    unknown = [c for c in header if c not in COLUMNS and c not in OPTIONAL_COLUMNS]
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if unknown:
            parts.append(f"unknown column(s) {', '.join(unknown)}")
        raise ImportFileError(
            f"{src}: line 1: {'; '.join(parts)}. Expected header: {','.join(COLUMNS)}"
        )
    if len(set(header)) != len(header):
        raise ImportFileError(f"{src}: line 1: a column is named twice")
    return header


def _apply_chunk(
    chunk: ParsedChunk,
    writer: Writer,
    summary: ImportSummary,
    reject: Callable[[int, str, list[str]], None],
    sources: _SourceRecords,
    with_programmes: bool,
    keys_read: tuple[str, str],
) -> None:
    """Write one chunk in one transaction.

    The rules are those of the original row-by-row version: a KPJ that the registry or an
    earlier row of the chunk gives to another NIK is a reject; the last accepted row of a NIK
    gives its person values; new people and memberships are inserted, changed ones updated,
    the rest counted unchanged. The common case of a first import - no KPJ known yet and none
    repeated in the chunk - skips the per-row loops and hands the chunk's own tuples to the
    bulk insert.

    ``with_programmes``: the file has the optional ``programmes`` column. Without it (the
    default export has none) a membership's stored programmes are neither compared nor
    updated: the file says nothing about them, so exporting and importing back keeps them.

    After the commit, :data:`~kartu.registry.signals.persons_changed` names the people already
    in the registry whose person row was updated or who gained or changed a membership; the
    ids come from the look-ups made anyway (no query of their own). People new in this chunk
    are left out: they have no card yet.

    ``keys_read``: the keys the rows were encrypted and indexed with (:func:`_key_state`). A
    rotation that started since then stops the import before this chunk writes (see
    :func:`_rotation_barrier`).
    """
    when = timezone.now()
    now, ts = writer.stamps(when)
    members, people_rows = chunk.members, chunk.people
    # Membership values compared and updated: employer, status, registered_on [, programmes].
    end = 6 if with_programmes else 5
    touched: set[int] = set()  # ids of existing people whose registry data changed
    with transaction.atomic():
        _rotation_barrier(keys_read, chunk)
        # The people of every row are looked up first (a rejected row's person is looked up for
        # nothing, which is harmless), so that the memberships need no join: a KPJ's owner is
        # compared by person id, which stands for exactly one blind index.
        existing_p = writer.existing_people(list(dict.fromkeys([m[0] for m in members])))
        existing_m = writer.existing_memberships([m[1] for m in members])
        check_kpjs = bool(existing_m) or chunk.repeats
        if check_kpjs:
            # KPJs repeated inside the chunk: the first owner wins; another NIK is a reject.
            kpj_owner: dict[str, str] = {}
            keep: list[int] = []
            for i, m in enumerate(members):
                kpj, index = m[1], m[0]
                old_m = existing_m.get(kpj)
                if old_m is not None:
                    mine = existing_p.get(index)
                    taken = mine is None or mine[0] != old_m[0]
                else:
                    owner = kpj_owner.get(kpj)
                    taken = owner is not None and owner != index
                if taken:
                    line = chunk.lines[i]
                    reject(line, "kpj: this KPJ already belongs to another NIK",
                           sources.get(line, index, kpj))
                    continue
                kpj_owner[kpj] = index
                keep.append(i)
            if len(keep) < len(members):
                members = [members[i] for i in keep]
                people_rows = [people_rows[i] for i in keep]

        people = {p[0]: p for p in people_rows}  # later rows of the same NIK win
        changed: list[tuple[Any, ...]] = []
        changed_contact: list[tuple[Any, ...]] = []
        if existing_p:
            new_people = []  # (existing_p may also hold people of rejected rows)
            for index, p in people.items():
                old = existing_p.get(index)
                if old is None:
                    new_people.append(p)
                elif old[5] != p[9]:
                    changed_contact.append((*p[3:10], now, old[0]))
                    touched.add(old[0])
                elif old[1:5] != p[3:7]:
                    changed.append((*p[3:7], now, old[0]))
                    touched.add(old[0])
        else:
            new_people = list(people.values())
        ids = writer.add_people(new_people, when, ts) if new_people else {}
        writer.update_people(changed, changed_contact)
        summary.people_added += len(new_people)
        summary.people_updated += len(changed) + len(changed_contact)

        if writer.vendor == "postgresql":
            ids.update({i: v[0] for i, v in existing_p.items()})
        changed_m: list[tuple[Any, ...]] = []
        if check_kpjs:
            new_m = []
            seen: dict[str, tuple[Any, ...]] = {}
            for m in members:
                kpj = m[1]
                values = m[2:end]  # employer, status, registered_on [, programmes]
                if kpj in seen:
                    # Same KPJ twice for the same NIK in one chunk: the later row wins.
                    if seen[kpj] != values:
                        changed_m.append((*values, now, kpj))
                        seen[kpj] = values
                        old = existing_p.get(m[0])
                        if old is not None:
                            touched.add(old[0])
                    else:
                        summary.unchanged += 1
                    continue
                seen[kpj] = values
                old_m = existing_m.get(kpj)
                if old_m is None:
                    new_m.append(m)
                    old = existing_p.get(m[0])
                    if old is not None:
                        touched.add(old[0])
                elif old_m[1 : end - 1] != values:
                    changed_m.append((*values, now, kpj))
                    touched.add(old_m[0])
                else:
                    summary.unchanged += 1
        else:
            new_m = members
            # No row was rejected here, so every person looked up gains a membership.
            touched.update(old[0] for old in existing_p.values())
        if new_m:
            writer.add_memberships(new_m, when, ts, ids)
        if changed_m:
            writer.update_memberships(changed_m, with_programmes)
        summary.memberships_added += len(new_m)
        summary.memberships_updated += len(changed_m)
        if touched:
            person_ids = frozenset(touched)
            transaction.on_commit(lambda: _announce(person_ids))


#: PostgreSQL advisory lock between an import's chunks (shared) and the start of a key
#: rotation (exclusive, taken once its new key is written): ``kartu.registry.keys.rotate``.
ROTATION_LOCK = 0x6B617274  # "kart"
#: SQLite: a statement that writes nothing but takes the database's write lock now. (With
#: kartu's ``transaction_mode`` IMMEDIATE, Django's atomic block already holds it from its
#: BEGIN; the statement keeps the barrier right under a DEFERRED mode too.)
SQLITE_TAKE_WRITE_LOCK = "UPDATE registry_audithead SET id = id WHERE 0 = 1"


def take_rotation_lock(shared: bool) -> None:
    """Inside a transaction: hold the lock that orders key rotations and import chunks until
    it ends (PostgreSQL: the advisory lock, shared for a chunk, exclusive for a rotation;
    SQLite: the database's write lock, which both need)."""
    from django.db import connection

    with connection.cursor() as cur:
        if connection.vendor == "postgresql":
            cur.execute(f"SELECT pg_advisory_xact_lock{'_shared' if shared else ''}(%s)",
                        [ROTATION_LOCK])
        else:
            cur.execute(SQLITE_TAKE_WRITE_LOCK)


def _key_state(ring: crypto.Keyring) -> tuple[str, str]:
    # The active keys only: an old index key that stays live for legacy NIK locks (and is
    # dropped when they are cleared) does not change how this import encrypts and indexes.
    return ring.active_field, ring.active_index


def _people_left_to_reindex(ring: crypto.Keyring) -> bool:
    """Whether an index rotation is still moving people: then an import would insert a second
    row for a person not yet moved. (Old index keys may also stay live only for NIK locks
    written before locks kept their NIK: people are all moved then, and imports go on.)"""
    from kartu.registry.models import Person

    return len(ring.index_keys) > 1 and Person.objects.exclude(
        nik_index_kid=ring.active_index).exists()


def _rotation_barrier(keys_read: tuple[str, str], chunk: ParsedChunk) -> None:
    """Refuse to write a chunk encrypted or indexed under keys that are no longer the live ones.

    An import checks at its start that no rotation is in progress, but a rotation may start
    while it runs; rows it then wrote under the old index key would be missed by the
    re-index (or duplicate a person the re-index has already moved), and rows encrypted under
    the old field key would be missed by the re-encryption (and become unreadable once that
    key is dropped). So each chunk, inside its transaction, first takes the rotation lock
    (:func:`take_rotation_lock`, which a rotation takes too once its new key is written), then
    reads the key file afresh and stops the import if an active key changed: a chunk that read
    the old keys has committed before the rotation's own work starts."""
    take_rotation_lock(shared=True)
    if _key_state(crypto.reload_keyring()) != keys_read:
        raise ImportFileError(
            f"a key rotation started during the import: the rows before line "
            f"{chunk.lines[0]} are imported, the rest are not. Run the same import again "
            "once `kartu keys rotate` has finished (importing the same file twice changes "
            "nothing)."
        )


def _announce(person_ids: frozenset[int]) -> None:
    """Tell the listeners (the card app) which people changed. A listener's failure is logged
    and does not stop the import: the rows are committed, and a card whose data changed is
    also caught when it is next shown."""
    for receiver, result in persons_changed.send_robust(sender="registry.importer",
                                                        person_ids=person_ids):
        if isinstance(result, Exception):
            log.error("import: %s failed for %d changed people", getattr(
                receiver, "__qualname__", receiver), len(person_ids),
                exc_info=(type(result), result, result.__traceback__))


# --- export -----------------------------------------------------------------------------------


def export_csv(out: IO[str], *, programmes: bool = False, batch: int = 5000) -> int:
    """Write the registry back in the import format; returns the number of rows."""
    from kartu.registry.models import Membership

    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*COLUMNS, *(OPTIONAL_COLUMNS if programmes else ())])
    ring = crypto.keyring()
    count = 0
    last = 0
    while True:
        rows = list(
            Membership.objects.select_related("person").filter(pk__gt=last).order_by("pk")[:batch]
        )
        if not rows:
            return count
        for m in rows:
            p = m.person
            writer.writerow([
                crypto.decrypt(p.nik_cipher, NIK_AAD, ring), p.full_name, p.birth_place,
                p.birth_date.isoformat(), p.sex,
                crypto.decrypt(p.email_cipher, EMAIL_AAD, ring) if p.email_cipher else "",
                crypto.decrypt(p.phone_cipher, PHONE_AAD, ring) if p.phone_cipher else "",
                m.kpj, m.employer, m.status,
                m.registered_on.isoformat() if m.registered_on else "",
                *([m.programmes] if programmes else []),
            ])
            count += 1
        last = rows[-1].pk


def iter_csv_rows(rows: Iterable[dict[str, str]], out: IO[str]) -> None:
    """Write dict rows in the import format (used by demo data and benchmarks)."""
    writer = csv.DictWriter(out, fieldnames=[*COLUMNS, *OPTIONAL_COLUMNS], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)


__all__ = [
    "CHUNK",
    "COLUMNS",
    "OPTIONAL_COLUMNS",
    "STATUSES",
    "ImportFileError",
    "ImportSummary",
    "MembershipRow",
    "ParsedChunk",
    "PersonRow",
    "RowError",
    "RowParser",
    "Writer",
    "_SourceRecords",
    "_WorkerChunks",
    "_apply_chunk",
    "_parse_chunks",
    "contact_digest",
    "contact_key",
    "export_csv",
    "import_csv",
    "iter_csv_rows",
    "rejects_path_for",
]
