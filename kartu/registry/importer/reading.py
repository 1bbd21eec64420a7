"""The reading half of an import: the file as :class:`ParsedChunk` s, in this process or a forked
worker (see the package docstring)."""

from __future__ import annotations

import contextlib
import csv
import marshal
import multiprocessing
import os
import pickle
import signal
import struct
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any, NamedTuple

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kartu.core import crypto
from kartu.registry.importer.rows import _CACHE_LIMIT, ImportFileError, RowError, RowParser
from kartu.registry.models import EMAIL_AAD, NIK_AAD, PHONE_AAD


class ParsedChunk(NamedTuple):
    """Up to ``chunk_size`` accepted rows, and everything read since the previous chunk.

    ``members[i]`` and ``people[i]`` are the i-th accepted row in the shape the database write
    takes (see :func:`_parse_chunks`) and ``lines[i]`` its line number. ``rejects`` are the
    rows rejected while reading, in file order, all before the chunk's last accepted row.
    ``position`` is the byte offset reached in the file (for the progress bar).
    """

    rows: int
    position: int
    rejects: list[tuple[int, str, list[str]]]
    lines: list[int]
    members: list[tuple[Any, ...]]
    people: list[tuple[Any, ...]]
    repeats: bool  # a KPJ occurs more than once among the accepted rows


class _Sealer:
    """:func:`kartu.core.crypto.encrypt` for many values, with the same ciphertext layout.

    The layout prefix (format byte, key-id length, key id) is taken from a real
    ``crypto.encrypt`` result, so :func:`kartu.core.crypto.decrypt` reads every ciphertext made
    here. Nonces are random 96-bit values as there, drawn from ``os.urandom`` 1,024 at a time.
    A sealer must be used in one process only (it is created inside :func:`_parse_chunks`, in
    the process that parses): a buffer of nonces copied by ``fork`` into two processes that
    both encrypt would repeat nonces. As a second guard the buffer is refilled, never reused,
    when the process id changes.
    """

    def __init__(self, ring: crypto.Keyring) -> None:
        sample = crypto.encrypt("", b"", ring)
        self.prefix = sample[: 2 + sample[1]]
        self.aead = AESGCM(ring.field_keys[ring.active_field])
        self.nonces: list[bytes] = []
        self.pid = 0

    def seal(self, value: str, aad: bytes) -> bytes:
        nonces = self.nonces
        if not nonces or self.pid != os.getpid():
            block = os.urandom(12 * 1024)
            nonces[:] = [block[i : i + 12] for i in range(0, len(block), 12)]
            self.pid = os.getpid()
        nonce = nonces.pop()
        return b"".join((self.prefix, nonce, self.aead.encrypt(nonce, value.encode(), aad)))


# PostgreSQL binary COPY: file header, per-row field count, NULL, and fixed-size field headers.
_PG_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_PG_COPY_TRAILER = b"\xff\xff"
_PG_NULL = b"\xff\xff\xff\xff"
_PG_DATE_EPOCH = date(2000, 1, 1)
_PG_TIME_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_int4 = struct.Struct(">i").pack
_int8 = struct.Struct(">q").pack


def _pg_text(value: str) -> bytes:
    """A text/varchar field of binary COPY (the connection's encoding is UTF-8)."""
    data = value.encode()
    return _int4(len(data)) + data


def _pg_bytes(value: bytes | None) -> bytes:
    return _PG_NULL if value is None else _int4(len(value)) + value


def _pg_date(iso: str) -> bytes:
    return b"\0\0\0\4" + _int4((date.fromisoformat(iso) - _PG_DATE_EPOCH).days)


def _bounded_memo(convert: Callable[[str], bytes]) -> Callable[[str], bytes]:
    """``convert`` memoised per value, the memo emptied whenever it reaches _CACHE_LIMIT."""
    memo: dict[str, bytes] = {}

    def cached(value: str) -> bytes:
        found = memo.get(value)
        if found is None:
            if len(memo) >= _CACHE_LIMIT:
                memo.clear()
            found = memo[value] = convert(value)
        return found

    return cached


def _parse_chunks(
    src: Path, parser: RowParser, chunk_size: int, vendor: str
) -> Iterator[ParsedChunk]:
    """Read ``src`` (after its header) and yield it as :class:`ParsedChunk` s.

    A chunk ends when it holds ``chunk_size`` accepted rows, as in the original one-row-at-a-
    time loop, so the chunks (and with them the KPJ checks, the "later row wins" rule and the
    counts) do not depend on whether this runs in a worker process or not.

    Row shapes:

    * person: ``(nik_index, nik_index_kid, nik_cipher, full_name, birth_place, birth_date,
      sex, email_cipher, phone_cipher, contact_digest)`` - the parameters of the SQLite
      ``INSERT`` as they are - plus, for PostgreSQL, the same row as binary ``COPY`` fields.
      A person is encrypted once per chunk: rows of the same NIK with the same values share
      one tuple (the usual case of several memberships), which then also crosses the pipe
      once (marshal sends a shared object once);
    * membership: ``(nik_index, kpj, employer, status, registered_on, programmes)`` plus, for
      PostgreSQL, its binary ``COPY`` fields but the person id and the timestamps.

    Dates travel as ISO text. A blank line is skipped; a bad row is a reject with its fields
    and the reason from :meth:`RowParser.parse`; a record the CSV reader refuses is a reject
    too, counted as read, with its raw text read again from the file (:class:`_RawLines`) so
    that the operator can mend it from the rejects file. A quote left open swallows the lines
    after it into one field until the reader gives up (at a badly placed quote, at the field
    size limit or at the end of the file); each of those lines is then a reject of its own,
    so the rejects file shows exactly which lines were not imported.
    """
    sqlite = vendor == "sqlite"
    seal = _Sealer(parser.ring).seal
    fast, slow = parser.fast, parser.slow
    index_kid = parser.ring.active_index
    # Binary COPY fields that repeat: memoised per value (bounded: see _CACHE_LIMIT).
    field = _bounded_memo(_pg_text)
    date_field = _bounded_memo(_pg_date)

    kid_field = _pg_text(index_kid)
    with open(src, encoding="utf-8-sig", errors="surrogateescape", newline="") as fh, \
            _RawLines(src) as raw_lines:
        reader = csv.reader(fh, strict=True)
        next(reader, None)  # the header, checked by the caller
        rows = 0
        rejects: list[tuple[int, str, list[str]]] = []
        line_nos: list[int] = []
        members: list[tuple[Any, ...]] = []
        people: list[tuple[Any, ...]] = []
        persons: dict[str, tuple[Any, ...]] = {}
        kpjs: set[str] = set()
        repeats = False
        while True:
            start = reader.line_num + 1
            try:
                rec = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                found = raw_lines.malformed(start, reader.line_num, exc)
                rows += len(found)
                rejects += found
                continue
            if not rec or (len(rec) == 1 and not rec[0].strip()):
                continue  # blank line
            rows += 1
            row = fast(rec)
            if row is None:
                try:
                    row = slow(rec)
                except RowError as exc:
                    reason = str(exc)
                    if reader.line_num > start:
                        reason += (f" (a quoted field runs over lines {start}\u2013"
                                   f"{reader.line_num} as one record)")
                    rejects.append((start, reason, rec))
                    continue
            (index, nik, name, place, birth, sex, email, phone, contact, kpj, employer, status,
             reg, programmes) = row
            dob = birth[1]
            person = persons.get(index)
            if (person is None or person[3] != name or person[4] != place or person[5] != dob
                    or person[6] != sex or person[9] != contact):
                nik_c = seal(nik, NIK_AAD)
                email_c = seal(email, EMAIL_AAD) if email else None
                phone_c = seal(phone, PHONE_AAD) if phone else None
                if sqlite:
                    person = (index, index_kid, nik_c, name, place, dob, sex, email_c, phone_c,
                              contact)
                else:
                    person = (index, index_kid, nik_c, name, place, dob, sex, email_c, phone_c,
                              contact, b"".join((
                                  b"\0\0\0\x20", index.encode(), kid_field, _pg_bytes(nik_c),
                                  _pg_text(name), field(place), date_field(dob), field(sex),
                                  _pg_bytes(email_c), _pg_bytes(phone_c),
                                  b"\0\0\0\x18", contact.encode(),
                              )))
                persons[index] = person
            reg_text = reg[1] if reg is not None else None
            if sqlite:
                members.append((index, kpj, employer, status, reg_text, programmes))
            else:
                members.append((index, kpj, employer, status, reg_text, programmes, b"".join((
                    b"\0\0\0\x0b", kpj.encode(), field(employer), field(status),
                    _PG_NULL if reg_text is None else date_field(reg_text), field(programmes),
                ))))
            people.append(person)
            line_nos.append(start)
            if kpj in kpjs:
                repeats = True
            else:
                kpjs.add(kpj)
            if len(members) >= chunk_size:
                yield ParsedChunk(rows, os.lseek(fh.fileno(), 0, os.SEEK_CUR), rejects,
                                  line_nos, members, people, repeats)
                rows = 0
                rejects, line_nos, members, people = [], [], [], []
                persons = {}
                kpjs = set()
                repeats = False
        if rows or rejects:
            yield ParsedChunk(rows, os.lseek(fh.fileno(), 0, os.SEEK_CUR), rejects, line_nos,
                              members, people, repeats)


class _RawLines:
    """The file's lines read again, forward only, for the records the CSV reader refuses.

    The reader does not give back the text of a record it refuses, and keeping every line's
    text for the rare refusal would cost every row; so the lines are read again here, with
    the same settings and numbering as the reader's (one line per item of the file iterator),
    which the refusals arrive in increasing order for: one forward pass serves them all.
    """

    def __init__(self, src: Path) -> None:
        self.src = src
        self.fh: IO[str] | None = None
        self.line = 0  # lines read so far

    def __enter__(self) -> _RawLines:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fh is not None:
            self.fh.close()

    def lines(self, first: int, last: int) -> list[str]:
        """The text of lines ``first`` to ``last`` (1-based, inclusive), line breaks removed."""
        if self.fh is None:
            self.fh = open(self.src, encoding="utf-8-sig", errors="surrogateescape",  # noqa: SIM115
                           newline="")
        found = []
        if first <= self.line:
            raise RuntimeError(f"line {first} was already read")  # never: refusals come in order
        for text in self.fh:
            self.line += 1
            if self.line >= first:
                found.append(text.rstrip("\r\n"))
                if self.line >= last:
                    break
        return found

    def malformed(
        self, start: int, end: int, exc: csv.Error
    ) -> list[tuple[int, str, list[str]]]:
        """The rejects for a record refused by the CSV reader: lines ``start`` to ``end``.

        On one line: a reject with the line's text as its first field. Over several lines, a
        quote opened on line ``start`` was not closed there: line ``start`` is a reject that
        says so, and every later non-blank line one of its own, with its fields when the line
        reads as a record by itself (else its text as the first field).
        """
        texts = self.lines(start, end)
        if len(texts) <= 1:
            return [(start, f"malformed CSV: {exc}", texts)]
        found = [(start, f"unterminated quoted field starting at line {start}: lines "
                         f"{start}\u2013{end} were read as one field ({exc})", texts[:1])]
        for line, text in enumerate(texts[1:], start + 1):
            if text.strip():
                found.append((line, f"not imported: inside the quoted field left open at line "
                                    f"{start}", _split_line(text)))
        return found


def _split_line(text: str) -> list[str]:
    """The fields of one line read as a record by itself, or ``[text]`` if it is not one."""
    try:
        recs = list(csv.reader([text], strict=True))
    except csv.Error:
        return [text]
    return recs[0] if len(recs) == 1 else [text]


class _SourceRecords:
    """The file's records read again, forward only, for the rare reject found while writing.

    A row whose KPJ turns out to belong to another NIK is rejected by the writing half, which
    no longer holds the row's fields (sending them along for every row would cost more than
    the rest of the transfer). So they are read again here, with the same reader settings and
    line numbering as the first pass; such rejects come in increasing line order, so one
    forward pass over the file serves them all. The record found is checked to be the same
    row (same blind index and KPJ): should the file have changed during the import, that is
    an error rather than a wrong reject.
    """

    def __init__(self, src: Path, parser: RowParser) -> None:
        self.src = src
        self.parser = parser
        self.fh: IO[str] | None = None
        self.reader: Any = None

    def get(self, line: int, index: str, kpj: str) -> list[str]:
        if self.reader is None:
            self.fh = open(self.src, encoding="utf-8-sig", errors="surrogateescape",  # noqa: SIM115
                           newline="")
            self.reader = csv.reader(self.fh, strict=True)
            next(self.reader, None)
        while True:
            start = self.reader.line_num + 1
            try:
                rec: list[str] = next(self.reader)
            except StopIteration:
                break
            except csv.Error:
                continue
            if start < line:
                continue
            if start == line:
                try:
                    _, membership = self.parser.parse_fast(rec)
                except RowError:
                    break
                if (membership.nik_index, membership.kpj) == (index, kpj):
                    return rec
            break
        raise ImportFileError(f"{self.src}: line {line} changed during the import")

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()


class _WorkerChunks:
    """:func:`_parse_chunks` run in a forked worker process; iterate to receive its chunks.

    The worker is forked, so it inherits the parser (and with it the keys) in memory: nothing
    secret is pickled or put on a command line. It needs no database and never touches the
    inherited connection. Each chunk is serialised with :mod:`marshal` (plain tuples, lists,
    strings, bytes and ints; about twice as fast as pickle both ways) and sent through a
    one-way pipe; the worker blocks in ``send`` until this process has taken the previous
    chunk, so at most about two chunks are in flight and memory stays bounded. Chunks arrive
    in file order (one worker, one pipe).

    Errors: an exception in the worker is sent over (pickled) and raised here. ``close()``
    (always called, also on Ctrl-C or a database error here) closes the pipe and stops the
    worker if it is still running; the worker ignores SIGINT so that Ctrl-C is handled here
    only, and it exits by itself if this process goes away (its next ``send`` fails).
    """

    def __init__(self, make: Callable[[], Iterator[ParsedChunk]]) -> None:
        ctx = multiprocessing.get_context("fork")
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # else the child would flush the same buffered text again
        self.conn, child_end = ctx.Pipe(duplex=False)
        self.done = False
        self.proc = ctx.Process(target=_worker_main, args=(make, child_end, self.conn),
                                name="kartu-import-reader", daemon=True)
        self.proc.start()
        child_end.close()

    def __iter__(self) -> Iterator[ParsedChunk]:
        while True:
            try:
                data = self.conn.recv_bytes()
            except EOFError:
                self.proc.join(1)
                raise RuntimeError(
                    f"the import's reader process stopped unexpectedly "
                    f"(exit code {self.proc.exitcode})"
                ) from None
            kind, body = data[:1], memoryview(data)[1:]
            if kind == b"C":
                yield ParsedChunk(*marshal.loads(body))  # noqa: S302 - from our own child
            elif kind == b"D":
                self.done = True
                return
            else:
                raise pickle.loads(body)  # noqa: S301 - our own child, through a pipe

    def close(self) -> None:
        self.conn.close()
        if not self.done and self.proc.is_alive():
            self.proc.terminate()
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


def _worker_main(make: Callable[[], Iterator[ParsedChunk]], conn: Any, parent_end: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    parent_end.close()
    try:
        for chunk in make():
            conn.send_bytes(b"C" + marshal.dumps(tuple(chunk), 4))
        conn.send_bytes(b"D")
    except (BrokenPipeError, ConnectionResetError):
        return  # the parent stopped listening
    except BaseException as exc:  # every failure is reported to the parent
        try:
            data = pickle.dumps(exc)
            pickle.loads(data)  # noqa: S301 - checks that the exception survives the trip
        except Exception:
            data = pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))
        with contextlib.suppress(OSError):
            conn.send_bytes(b"E" + data)
    finally:
        conn.close()
