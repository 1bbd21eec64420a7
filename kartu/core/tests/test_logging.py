from __future__ import annotations

import logging

from kartu.core.logging import RedactPiiFilter, redact


def test_redact_masks_identifiers_and_contacts():
    text = ("NIK 3174 0557 0890 0003 / 3174055708900003, KPJ 12345678901, "
            "hp 0812-3456-7890? no: +6281234567890, mail siti@contoh.id")
    clean = redact(text)
    for secret in ("3174055708900003", "0557", "12345678901", "6281234567890",
                   "siti@contoh.id"):
        assert secret not in clean
    assert clean.count("[NIK]") == 2 and "[KPJ]" in clean and "[EMAIL]" in clean


def test_the_filter_rewrites_records_and_their_arguments():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "verify %s for %s",
                               ("3174055708900003", "siti@contoh.id"), None)
    RedactPiiFilter().filter(record)
    assert record.getMessage() == "verify [NIK] for [EMAIL]"


def test_settings_attach_the_filter_to_the_console_handler(settings):
    assert "redact_pii" in settings.LOGGING["handlers"]["console"]["filters"]
