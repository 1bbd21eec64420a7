"""Line processing behind ``kartu extract`` (testable without Django).

* one message: the whole of stdin is the text, the result is one JSON object
  with the four fields;
* ``--jsonl``: each input line is ``{"id", "subject", "text"}`` (other keys
  ignored, ``subject`` optional or null); each output line is
  ``{"id", "full_name", "birth_place", "birth_date", "nik"}`` in input order.
  A line that cannot be used gives ``{"id": <id or null>, "error": "..."}``
  in its place and the run goes on.  Blank lines are skipped.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, Protocol, TextIO

from .core import extract
from .result import FIELDS

# A line longer than this is not parsed (the extractor only scans 20 000
# characters of text anyway); it gets an error record.
MAX_LINE_CHARS = 5_000_000


class Writer(Protocol):
    """Anything with ``write(str)`` (a text stream, Django's OutputWrapper shim ...)."""

    def write(self, text: str, /) -> object: ...


def _dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))


def run_single(text: str, out: Writer, subject: str | None = None) -> dict[str, str | None]:
    """Extract from one message and write one JSON object (and a newline)."""
    result = extract(text, subject).as_dict()
    out.write(_dumps(result) + "\n")
    return result


def process_line(line: str) -> dict[str, Any] | None:
    """The output record for one JSON line; ``None`` for a blank line."""
    if not line.strip():
        return None
    if len(line) > MAX_LINE_CHARS:
        return {"id": None, "error": f"line longer than {MAX_LINE_CHARS} characters"}
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError) as exc:
        return {"id": None, "error": f"invalid JSON: {str(exc)[:200]}"}
    if not isinstance(obj, dict):
        return {"id": None, "error": "not a JSON object"}
    ident = obj.get("id")
    if ident is not None and not isinstance(ident, str | int | float | bool):
        ident = None
    text = obj.get("text")
    if not isinstance(text, str):
        return {"id": ident, "error": "'text' must be a string"}
    subject = obj.get("subject")
    if not isinstance(subject, str):
        subject = None
    try:
        result = extract(text, subject).as_dict()
    except Exception as exc:  # pragma: no cover - extract() does not raise
        return {"id": ident, "error": f"extraction failed: {type(exc).__name__}"}
    record: dict[str, Any] = {"id": ident}
    record.update({f: result[f] for f in FIELDS})
    return record


def run_jsonl(lines: Iterable[str], out: Writer) -> tuple[int, int]:
    """Process JSON lines; returns (records written, errors)."""
    written = errors = 0
    for line in lines:
        record = process_line(line)
        if record is None:
            continue
        if "error" in record:
            errors += 1
        out.write(_dumps(record) + "\n")
        written += 1
    return written, errors


def text_stdin() -> TextIO:
    """stdin as UTF-8 text that never fails on bad bytes."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:
        return sys.stdin
    return io.TextIOWrapper(buffer, encoding="utf-8", errors="replace")


def main(
    argv: Sequence[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None
) -> int:
    """``python -m kartu.desk.extract.cli [--subject S] [--jsonl]``."""
    parser = argparse.ArgumentParser(prog="extract", description=__doc__.splitlines()[0])
    parser.add_argument("--subject", default=None, help="email subject of the single message")
    parser.add_argument("--jsonl", action="store_true", help="read and write JSON lines")
    args = parser.parse_args(argv)
    src = stdin if stdin is not None else text_stdin()
    out = stdout if stdout is not None else sys.stdout
    if args.jsonl:
        run_jsonl(src, out)
    else:
        run_single(src.read(), out, args.subject)
    out.flush()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
