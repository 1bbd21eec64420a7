"""Keep personal data out of logs.

A filter on every handler masks what looks like a NIK (16 digits, possibly grouped), a KPJ
(11 digits), a phone number or an email address in the formatted message, whatever logger wrote it.
"""

from __future__ import annotations

import logging
import re

_PATTERNS = [
    (re.compile(r"(?<!\d)(?:\d[ .\-]?){15}\d(?!\d)"), "[NIK]"),
    (re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[EMAIL]"),
    (re.compile(r"(?<!\d)(?:\+?62|0)8\d{7,12}(?!\d)"), "[PHONE]"),
    (re.compile(r"(?<!\d)\d{11}(?!\d)"), "[KPJ]"),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactPiiFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            # Exception texts (e.g. an IntegrityError quoting a row) can carry PII too.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
